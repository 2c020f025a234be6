"""Compile, submit and run the pipelines: the functions behind ``polya pipeline compile | submit | run-local``."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from polya.errors import ConfigError, PolyaError
from polya.pipeline.config import PipelineBuildConfig
from polya.pipeline.loader import PIPELINES, load_pipeline_module

logger = logging.getLogger(__name__)

TOKEN_ENV = "POLYA_KFP_TOKEN"
"""Environment variable read for the KFP bearer token when --token is not given."""


def build_pipeline(name: str, build: PipelineBuildConfig | None = None) -> Any:
    """The KFP pipeline ``name`` (one of :data:`PIPELINES`) built for ``build`` (default settings when None)."""
    return load_pipeline_module(name).build_pipeline(build or PipelineBuildConfig())


def pipeline_parameters(pipeline: Any) -> dict[str, Any]:
    """The run-time parameters of a built pipeline and their defaults."""
    inputs = pipeline.component_spec.inputs or {}
    return {key: spec.default for key, spec in inputs.items()}


def check_arguments(pipeline: Any, arguments: Mapping[str, Any]) -> None:
    """Reject arguments the pipeline has no parameter for, naming the valid ones."""
    valid = pipeline_parameters(pipeline)
    unknown = sorted(set(arguments) - set(valid))
    if unknown:
        raise ConfigError(f"unknown pipeline parameter(s) {unknown}; parameters: {', '.join(sorted(valid))}")


def compile_pipeline(name: str, output: str | Path, build: PipelineBuildConfig | None = None) -> dict[str, Any]:
    """Write the pipeline's IR YAML to ``output``; return a summary (tasks, parameters)."""
    from kfp import compiler

    pipeline = build_pipeline(name, build)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(out))
    spec = next(yaml.safe_load_all(out.read_text(encoding="utf-8")))
    tasks = sorted(t["taskInfo"]["name"] for t in spec["root"]["dag"]["tasks"].values())
    logger.info("compiled pipeline %s (%s tasks) -> %s", spec["pipelineInfo"]["name"], len(tasks), out)
    return {"pipeline": spec["pipelineInfo"]["name"], "output": str(out), "tasks": tasks, "parameters": sorted(pipeline_parameters(pipeline))}


@dataclass
class KfpAuth:
    """How to reach and authenticate to a KFP API endpoint (see ``kfp.Client``)."""

    host: str | None = None
    namespace: str = "kubeflow"
    token: str | None = None
    cookies: str | None = None
    ssl_ca_cert: str | None = None
    verify_ssl: bool | None = None
    kube_context: str | None = None
    proxy: str | None = None

    def client(self) -> Any:
        import kfp

        token = self.token or os.environ.get(TOKEN_ENV) or None
        try:
            return kfp.Client(
                host=self.host, namespace=self.namespace, existing_token=token, cookies=self.cookies, ssl_ca_cert=self.ssl_ca_cert,
                verify_ssl=self.verify_ssl, kube_context=self.kube_context, proxy=self.proxy,
            )
        except Exception as exc:  # kfp raises plain exceptions for unreachable hosts and bad configs
            raise PolyaError(f"cannot connect to the KFP API at {self.host or '(kubeconfig / in-cluster)'}: {exc}") from exc


def submit_pipeline(
    name: str, auth: KfpAuth, arguments: Mapping[str, Any] | None = None, build: PipelineBuildConfig | None = None,
    run_name: str | None = None, experiment: str = "polya", service_account: str | None = None, wait: bool = False,
    timeout_s: int = 7 * 24 * 3600,
) -> dict[str, Any]:
    """Compile the pipeline and start a run on a KFP endpoint; with ``wait``, follow it to the end."""
    build = build or PipelineBuildConfig()
    arguments = dict(arguments or {})
    check_arguments(build_pipeline(name, build), arguments)
    client = auth.client()
    with tempfile.TemporaryDirectory(prefix="polya-kfp-") as tmp:
        package = Path(tmp) / f"{name}.yaml"
        compile_pipeline(name, package, build)
        try:
            result = client.create_run_from_pipeline_package(
                str(package), arguments=arguments, run_name=run_name, experiment_name=experiment, namespace=auth.namespace,
                enable_caching=build.caching, service_account=service_account,
            )
        except Exception as exc:
            raise PolyaError(f"the KFP API at {auth.host or '(default)'} rejected the run: {exc}") from exc
    out: dict[str, Any] = {"run_id": result.run_id, "experiment": experiment, "host": auth.host}
    logger.info("submitted run %s of pipeline %s to %s", result.run_id, name, auth.host)
    if wait:
        run = client.wait_for_run_completion(result.run_id, timeout=timeout_s)
        state = str(getattr(run, "state", "") or "")
        out["state"] = state
        if state.upper() not in ("SUCCEEDED", "SKIPPED"):
            raise PolyaError(f"KFP run {result.run_id} ended in state {state or 'unknown'}; see the KFP UI for the failing task's log")
    return out


def run_local(name: str, arguments: Mapping[str, Any] | None = None, build: PipelineBuildConfig | None = None,
              pipeline_root: str | Path = "runs/kfp-local", enable_caching: bool = False) -> dict[str, Any]:
    """Run the pipeline here with ``kfp.local.SubprocessRunner`` in this Python environment.

    Every task runs as a subprocess of this interpreter (``use_venv=False``: polya must be
    installed here, nothing is pip-installed). Returns the run folder and, per executed task, its
    outputs; tasks served from the cache (``enable_caching``) are not executed and not listed.
    """
    from kfp import local

    build = build or PipelineBuildConfig()
    arguments = dict(arguments or {})
    pipeline = build_pipeline(name, build)
    check_arguments(pipeline, arguments)
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in root.iterdir()}
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), enable_caching=enable_caching, raise_on_error=True)
    try:
        pipeline(**arguments)
    except RuntimeError as exc:  # kfp.local raises RuntimeError naming the failed task
        raise PolyaError(f"local run of pipeline {name} failed: {exc}") from exc
    new = sorted((p for p in root.iterdir() if p.name not in before and p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if not new:  # kfp.local makes a run folder only for tasks it executes
        logger.info("every task of pipeline %s was served from the local cache under %s", name, root)
        return {"pipeline": name, "run_dir": None, "executed": {}}
    run_dir = new[-1]
    executed = {t.name: sorted(o.name for o in t.iterdir() if o.name != "executor_output.json") for t in sorted(run_dir.iterdir()) if t.is_dir()}
    return {"pipeline": name, "run_dir": str(run_dir), "executed": executed}


__all__ = ["PIPELINES", "KfpAuth", "build_pipeline", "compile_pipeline", "run_local", "submit_pipeline", "pipeline_parameters"]
