"""``polya pipeline``: compile the Kubeflow pipelines, submit them to a KFP endpoint, or run them locally.

Every subcommand takes the build settings of :class:`PipelineBuildConfig` (images, GPU pool,
MinIO Secret, checkpoints, node counts, arms) as ``--config FILE``, ``--set key=value`` or one
option per setting, and ``--print-config``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from polya.cli.options import config_options, print_config, resolve_config
from polya.core.config import parse_value
from polya.core.errors import ConfigError
from polya.pipeline.config import PipelineBuildConfig
from polya.pipeline.loader import PIPELINES

_PIPELINE_OPTION = click.option(
    "--pipeline", "pipeline_name", type=click.Choice(PIPELINES), default="polya", show_default=True,
    help="polya: the whole experiment (GPU cluster); smoke: data -> generate -> select on CPU.",
)
_ARG_OPTION = click.option(
    "--arg", "args", multiple=True, metavar="NAME=VALUE",
    help="A run-time pipeline parameter (repeatable), e.g. --arg model=meta-llama/Llama-3.2-3B-Instruct --arg rounds=3.",
)


def parse_arguments(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``name=value`` pairs -> arguments; values are read as YAML (numbers stay numbers)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--arg '{pair}' must look like name=value (for example rounds=3)")
        key, raw = pair.split("=", 1)
        value = parse_value(raw)
        out[key.strip()] = raw if isinstance(value, (dict, list)) else value  # *_config parameters take YAML text
    return out


def _build(kwargs: dict[str, Any]) -> tuple[PipelineBuildConfig, bool]:
    build, only_print = resolve_config(PipelineBuildConfig, kwargs)
    if only_print:
        print_config(build)
    return build, only_print


@click.group()
def pipeline() -> None:
    """Kubeflow Pipelines: compile, submit, or run the Pólya pipeline locally."""


@pipeline.command("compile")
@_PIPELINE_OPTION
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Where to write the pipeline IR YAML.")
@config_options(PipelineBuildConfig)
def compile_command(pipeline_name: str, output: str, **kwargs: Any) -> None:
    """Compile a pipeline to KFP IR YAML (--output FILE), ready to upload in the KFP UI or submit."""
    build, only_print = _build(kwargs)
    if only_print:
        return
    from polya.pipeline.kfp import compile_pipeline

    click.echo(json.dumps(compile_pipeline(pipeline_name, output, build)))


@pipeline.command("submit")
@_PIPELINE_OPTION
@_ARG_OPTION
@click.option("--host", default=None, help="KFP API endpoint, e.g. http://localhost:8080 or https://kubeflow.example.com/pipeline; unset: from the kubeconfig / in-cluster.")
@click.option("--kfp-namespace", default="kubeflow", show_default=True, help="Namespace (KFP profile) to run in.")
@click.option("--token", default=None, help="Bearer token for the KFP API (also read from $POLYA_KFP_TOKEN).")
@click.option("--cookies", default=None, help="Cookie header for the KFP API (e.g. an authservice_session cookie of a Kubeflow dex login).")
@click.option("--ssl-ca-cert", default=None, type=click.Path(dir_okay=False), help="CA bundle that signs the endpoint's TLS certificate.")
@click.option("--insecure", is_flag=True, help="Skip TLS verification of the endpoint.")
@click.option("--kube-context", default=None, help="Kubeconfig context to reach KFP through when --host is unset.")
@click.option("--run-name", default=None, help="Name of the run (default: pipeline name and time).")
@click.option("--experiment", default="polya", show_default=True, help="KFP experiment to file the run under (created when missing).")
@click.option("--run-service-account", default=None, help="Service account the run's pods use (needs the RBAC of pipelines/rbac.yaml for multi-node stages).")
@click.option("--wait/--no-wait", default=False, show_default=True, help="Wait for the run to finish and fail if it does.")
@config_options(PipelineBuildConfig)
def submit_command(pipeline_name: str, args: tuple[str, ...], host: str | None, kfp_namespace: str, token: str | None, cookies: str | None,
                   ssl_ca_cert: str | None, insecure: bool, kube_context: str | None, run_name: str | None, experiment: str,
                   run_service_account: str | None, wait: bool, **kwargs: Any) -> None:
    """Compile a pipeline and start a run on a KFP endpoint (kfp.Client)."""
    build, only_print = _build(kwargs)
    if only_print:
        return
    from polya.pipeline.kfp import KfpAuth, submit_pipeline

    auth = KfpAuth(host=host, namespace=kfp_namespace, token=token, cookies=cookies, ssl_ca_cert=ssl_ca_cert,
                   verify_ssl=False if insecure else None, kube_context=kube_context)
    out = submit_pipeline(pipeline_name, auth, parse_arguments(args), build, run_name=run_name, experiment=experiment,
                          service_account=run_service_account, wait=wait)
    click.echo(json.dumps(out))


@pipeline.command("run-local")
@click.option("--pipeline", "pipeline_name", type=click.Choice(PIPELINES), default="smoke", show_default=True,
              help="smoke: data -> generate -> select on CPU; polya needs the RL and eval stages and a lot of compute.")
@_ARG_OPTION
@click.option("--pipeline-root", default="runs/kfp-local", show_default=True, type=click.Path(file_okay=False), help="Folder for the run's artifacts.")
@click.option("--cache/--no-cache", "enable_caching", default=False, show_default=True, help="Reuse outputs of identical earlier local tasks.")
@config_options(PipelineBuildConfig)
def run_local_command(pipeline_name: str, args: tuple[str, ...], pipeline_root: str, enable_caching: bool, **kwargs: Any) -> None:
    """Run a pipeline on this machine with kfp.local.SubprocessRunner (each task a subprocess of this Python)."""
    build, only_print = _build(kwargs)
    if only_print:
        return
    from polya.pipeline.kfp import run_local

    click.echo(json.dumps(run_local(pipeline_name, parse_arguments(args), build, pipeline_root, enable_caching)))
