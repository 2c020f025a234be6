"""Compile, submit and run the pipelines: the functions behind ``polya pipeline compile | submit | run-local``."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from polya.core.errors import ConfigError, PolyaError
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


@contextlib.contextmanager
def local_optional_parameters() -> Iterator[None]:
    """Let ``kfp.local`` pass an unset optional parameter (``Optional[int] = None``) as None.

    The pipelines' optional parameters (``sft_max_steps``, ``data_limit``, ...) compile to valid IR
    that a KFP backend runs, but ``kfp.local`` (2.17) fails on an unset number: it reads the absent
    default as an unknown value, cannot write None into an executor input and calls ``int(None)``.
    These three small wrappers, active only during :func:`run_local`, give None the meaning the
    backend gives it: the component's argument is None.
    """
    from google.protobuf import struct_pb2
    from kfp.compiler import pipeline_spec_builder
    from kfp.local import executor_input_utils, executor_output_utils
    from kfp.pipeline_spec import pipeline_spec_pb2

    to_value, to_python, to_dict = (
        pipeline_spec_builder.to_protobuf_value, executor_output_utils.pb2_value_to_python, executor_input_utils.executor_input_to_dict
    )
    integer = pipeline_spec_pb2.ParameterType.ParameterTypeEnum.NUMBER_INTEGER

    def value_or_null(value: Any) -> Any:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE) if value is None else to_value(value)

    def python_or_none(value: Any) -> Any:
        return None if value.WhichOneof("kind") is None else to_python(value)

    def dict_without_int_none(executor_input: Any, component_spec: Any) -> dict[str, Any]:
        nulls = {
            name for name, spec in component_spec.input_definitions.parameters.items()
            if spec.parameter_type == integer and executor_input.inputs.parameter_values[name].WhichOneof("kind") in (None, "null_value")
        } if executor_input.inputs.parameter_values else set()
        for name in nulls:
            executor_input.inputs.parameter_values[name].null_value = struct_pb2.NULL_VALUE
        kept = {name: spec for name, spec in component_spec.input_definitions.parameters.items() if name not in nulls}
        view = pipeline_spec_pb2.ComponentSpec()
        view.CopyFrom(component_spec)
        view.input_definitions.ClearField("parameters")
        for name, spec in kept.items():
            view.input_definitions.parameters[name].CopyFrom(spec)
        out = to_dict(executor_input, view)
        for name in nulls:
            out["inputs"]["parameterValues"][name] = None
        return out

    pipeline_spec_builder.to_protobuf_value = value_or_null
    executor_output_utils.pb2_value_to_python = python_or_none
    executor_input_utils.executor_input_to_dict = dict_without_int_none
    try:
        yield
    finally:
        pipeline_spec_builder.to_protobuf_value = to_value
        executor_output_utils.pb2_value_to_python = to_python
        executor_input_utils.executor_input_to_dict = to_dict


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
        with local_optional_parameters():
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
