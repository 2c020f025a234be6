"""What each KFP component does, as plain functions: map artifact folders and pipeline parameters
onto a stage config, call the stage's ``run(config)``, and lay the result out as the output artifact.

Artifact layouts (all folders):

============  ===========================================================================
questions     ``questions.jsonl`` (normalized question records) and ``data.json``
generations   a run directory holding ``generate/`` and ``manifest.json``
datasets      a run directory holding ``select/<arm>/train.jsonl`` + cards, ``select/report.json``
model         a Hugging Face checkpoint (``config.json``, weights, tokenizer) and ``polya-summary.json``
evaluation    a run directory holding ``eval/results.json``, ``eval/report.md`` and plots
report        the comparison of several evaluations (``write_comparison``)
============  ===========================================================================

A step whose cluster target is set (``cluster`` JSON, see :class:`ClusterTarget`) does not train in
its own pod: it stages the inputs under an ``s3://`` prefix, submits a PyTorchJob (SFT) or RayJob
(RL), waits for it, and reads the final checkpoint back. Staging and checkpoint folders are named
by a digest of the step's inputs, so a retried task resumes the same checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from polya.config.base import deep_merge, format_validation_error
from polya.errors import ConfigError
from polya.pipeline.config import ClusterTarget

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

SUMMARY_FILE = "polya-summary.json"
"""Written into every model artifact: the stage's summary (steps, losses, where it came from)."""


# ----- settings ------------------------------------------------------------------------------


def parse_config_yaml(config_yaml: str, what: str = "config_yaml") -> dict[str, Any]:
    """Read a component's ``config_yaml`` parameter (YAML or JSON mapping; empty: ``{}``)."""
    if not config_yaml or not config_yaml.strip():
        return {}
    try:
        data = yaml.safe_load(config_yaml)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML/JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a mapping of settings (got {type(data).__name__}: {config_yaml[:60]!r})")
    return data


def stage_config(model: type[M], config_yaml: str, forced: Mapping[str, Any]) -> M:
    """``model`` from ``config_yaml`` with ``forced`` (artifact paths, set pipeline parameters) merged over it."""
    data = deep_merge(parse_config_yaml(config_yaml), forced)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(model, exc, "component config_yaml + pipeline parameters")) from None


def split_list(value: str) -> list[str]:
    """``"a, b"`` or ``"[a, b]"`` -> ``["a", "b"]``; empty -> ``[]``."""
    value = (value or "").strip()
    if not value:
        return []
    if value.startswith("["):
        parsed = yaml.safe_load(value)
        if not isinstance(parsed, list):
            raise ConfigError(f"expected a list such as [a, b], got {value!r}")
        return [str(v) for v in parsed]
    return [v.strip() for v in value.split(",") if v.strip()]


def _set(target: dict[str, Any], dotted: str, value: Any) -> None:
    node = target
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _given(forced: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Put each non-empty value (not '', 0, None, []) at its dotted key (``__`` stands for '.')."""
    for key, value in values.items():
        if value in ("", 0, 0.0, None) or value == []:
            continue
        _set(forced, key.replace("__", "."), value)
    return forced


def input_digest(stage: str, **inputs: Any) -> str:
    """A short digest naming a step's staging / checkpoint folder: same inputs, same folder."""
    blob = json.dumps({"stage": stage, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def join_uri(root: str, *parts: str) -> str:
    """Join a local path or ``s3://`` URI with sub-paths."""
    root = root.rstrip("/")
    return "/".join([root, *[p.strip("/") for p in parts if p]])


def work_root(checkpoint_root: str) -> str:
    """Where checkpoints go: the given root, else polya's cache (``$POLYA_CACHE_DIR/pipeline``)."""
    if checkpoint_root:
        return checkpoint_root
    from polya.models.embedded import cache_dir

    return str(cache_dir() / "pipeline")


# ----- folders -------------------------------------------------------------------------------


def fetch_dir(uri: str, local_dir: str | Path) -> Path:
    """Copy folder ``uri`` (local path or ``s3://``) to ``local_dir``, replacing what was there."""
    from polya.store import open_store

    target = Path(local_dir)
    if target.exists():
        shutil.rmtree(target)
    if "://" not in uri or uri.startswith("file://"):
        source = Path(uri.removeprefix("file://"))
        if not source.is_dir():
            raise ConfigError(f"expected a folder at {uri}, found none")
        shutil.copytree(source, target)
    else:
        target.mkdir(parents=True, exist_ok=True)
        open_store(uri).download_dir("", target)
    return target


def put_dir(local_dir: str | Path, uri: str) -> str:
    """Copy a local folder to ``uri`` (local path or ``s3://``); return ``uri``."""
    from polya.store import open_store

    if "://" not in uri:
        target = Path(uri)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(local_dir, target)
    else:
        open_store(uri).upload_dir(local_dir, "")
    return uri


def _prepare_output(output_dir: str | Path) -> Path:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


# ----- data ----------------------------------------------------------------------------------


def data_step(config_yaml: str, output_dir: str, source: str = "", limit: int = 0) -> dict[str, Any]:
    """Load the questions a ``DataConfig`` describes and write them as ``questions.jsonl``."""
    from polya.data.config import DataConfig
    from polya.data.loader import load_questions, write_questions

    cfg = stage_config(DataConfig, config_yaml, _given({}, source=source, limit=limit))
    out = _prepare_output(output_dir)
    qset = load_questions(cfg)
    count = write_questions(qset.records, out / "questions.jsonl")
    summary = {"questions": count, "source": qset.source, "skipped": qset.skipped, "config": cfg.model_dump(mode="json")}
    (out / "data.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    logger.info("data: %s questions from %s -> %s", count, qset.source, out)
    return summary


def questions_file(questions_dir: str) -> str:
    path = Path(questions_dir) / "questions.jsonl"
    if not path.is_file():
        raise ConfigError(f"questions artifact {questions_dir} holds no questions.jsonl (produce it with the data component)")
    return str(path)


# ----- generate ------------------------------------------------------------------------------


def generate_step(
    config_yaml: str, questions_dir: str, output_dir: str, model: str = "", heuristics: str = "", rounds: int = 0,
    samples: int = 0, token_budget: int = 0, endpoint: str = "", verifier_endpoint: str = "",
) -> dict[str, Any]:
    """Run the generate stage on the questions artifact; the output artifact is its run directory."""
    from polya.generate.config import GenerateConfig
    from polya.generate.stage import run

    forced = {"run_dir": str(_prepare_output(output_dir)), "data": {"source": questions_file(questions_dir), "format": "jsonl"}}
    _given(forced, server__model=model, heuristics=split_list(heuristics), bootstrap__rounds=rounds, bootstrap__samples=samples,
           bootstrap__token_budget=token_budget, server__endpoint=endpoint, verifier_endpoint=verifier_endpoint)
    cfg = stage_config(GenerateConfig, config_yaml, forced)
    out = run(cfg)
    keys = ("samples", "correct_samples", "pairs_solved", "pairs", "completion_tokens")
    return {k: out.summary[k] for k in keys if k in out.summary}


# ----- select --------------------------------------------------------------------------------


def select_step(config_yaml: str, generations_dir: str, output_dir: str, arms: str = "", n_per_question: int = 0, verifier_endpoint: str = "") -> dict[str, Any]:
    """Run the select stage on a generations artifact; the output holds ``select/`` (and the manifest).

    The input artifact is never written to: its ``generate/`` folder is linked into the output
    run directory for the stage to read, and the link is removed afterwards.
    """
    from polya.select.config import SelectConfig
    from polya.select.stage import run

    source = Path(generations_dir)
    if not (source / "generate").is_dir():
        raise ConfigError(f"generations artifact {generations_dir} holds no generate/ folder (produce it with the generate component)")
    out = _prepare_output(output_dir)
    link = out / "generate"
    if link.is_symlink() or link.exists():
        link.unlink() if link.is_symlink() else shutil.rmtree(link)
    if (source / "manifest.json").is_file():
        shutil.copyfile(source / "manifest.json", out / "manifest.json")
    forced = _given({"run_dir": str(out)}, arms=split_list(arms), n_per_question=n_per_question, verifier_endpoint=verifier_endpoint)
    cfg = stage_config(SelectConfig, config_yaml, forced)
    link.symlink_to(source.resolve() / "generate", target_is_directory=True)
    try:
        result = run(cfg)
    finally:
        link.unlink()
    return {name: {"examples": a.examples, "questions": a.questions, "path": a.data_path} for name, a in result.arms.items()}


def arm_dataset(datasets_dir: str, arm: str) -> Path:
    """The training file of ``arm`` in a datasets artifact, with an error listing the arms present."""
    folder = Path(datasets_dir) / "select" / arm
    for name in ("train.jsonl", "train.parquet"):
        if (folder / name).is_file():
            return folder / name
    present = sorted(p.name for p in (Path(datasets_dir) / "select").glob("*") if p.is_dir())
    raise ConfigError(f"datasets artifact {datasets_dir} has no dataset for arm {arm!r}; arms present: {', '.join(present) or 'none'} (add it to the select stage's arms)")


# ----- cluster jobs --------------------------------------------------------------------------


def parse_cluster(cluster: str) -> ClusterTarget | None:
    """The component's ``cluster`` parameter: JSON of a :class:`ClusterTarget`, or empty (run in the pod)."""
    data = parse_config_yaml(cluster, "cluster")
    if not data:
        return None
    try:
        return ClusterTarget.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(ClusterTarget, exc, "component parameter 'cluster'")) from None


def submit_and_wait(target: ClusterTarget, name: str, command: list[str], config: BaseModel, entrypoint: str | None = None,
                    api_client: Any | None = None) -> Any:
    """Build the target's job for ``command`` with ``config`` in ``$POLYA_STAGE_CONFIG``, run it and wait."""
    from polya.pipeline.jobs import JobRunner, JobSpec, current_namespace, pytorchjob_manifest, rayjob_manifest

    spec = JobSpec(
        name=name, namespace=target.namespace or current_namespace(), image=target.image, command=command,
        env={"POLYA_STAGE_CONFIG": yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)},
        gpus=target.gpus, cpu=target.cpu, memory=target.memory, gpu_pool=target.gpu, s3=target.s3,
        pull_policy=target.pull_policy, service_account=target.service_account,
        labels={"polya.dev/stage": name.split("-")[1] if "-" in name else name},
    )
    if target.kind == "pytorchjob":
        manifest = pytorchjob_manifest(spec, target.size)
    else:
        manifest = rayjob_manifest(spec, target.size, entrypoint or " ".join(command))
    runner = JobRunner(api_client, poll_interval_s=target.poll_interval_s, timeout_s=target.timeout_s)
    return runner.run(manifest)


def _require_s3(root: str, target: ClusterTarget) -> None:
    if not root.startswith("s3://"):
        raise ConfigError(f"a {target.kind} exchanges data through MinIO: checkpoint_root must be an s3:// URI (got {root!r}); set checkpoints.store: minio")


# ----- sft -----------------------------------------------------------------------------------


def sft_step(
    config_yaml: str, datasets_dir: str, model_dir: str, arm: str = "polya", model: str = "", max_steps: int = 0,
    learning_rate: float = 0.0, checkpoint_root: str = "", cluster: str = "", api_client: Any | None = None,
) -> dict[str, Any]:
    """Mid-train on one arm's dataset; the final checkpoint becomes the ``model_dir`` artifact.

    In the pod: the SFT stage trains here. With a ``pytorchjob`` cluster target: the dataset goes
    to MinIO, a PyTorchJob runs ``torchrun -m polya.cli.main sft`` on N GPU nodes, and the final
    checkpoint is downloaded from MinIO.
    """
    from polya.pipeline.jobs import job_name, shell_entrypoint
    from polya.sft.config import SftConfig

    dataset = arm_dataset(datasets_dir, arm)
    digest = input_digest("sft", config=config_yaml, arm=arm, model=model, max_steps=max_steps, lr=learning_rate,
                          dataset=hashlib.sha256(dataset.read_bytes()).hexdigest())
    target = parse_cluster(cluster)
    run_dir = join_uri(work_root(checkpoint_root), digest)
    forced = _given({"run_dir": run_dir, "arm": arm}, model=model, max_steps=max_steps, learning_rate=learning_rate)
    if target is None:
        forced["dataset"] = str(dataset)
        cfg = stage_config(SftConfig, config_yaml, forced)
        from polya.sft.stage import run

        out = run(cfg)
        final_uri, summary = out.final_uri, dict(out.summary)
    else:
        _require_s3(run_dir, target)
        from polya.store import open_store

        open_store(run_dir).upload_file(dataset, f"select/{arm}/{dataset.name}")
        cfg = stage_config(SftConfig, config_yaml, forced)
        config_path = "/tmp/polya-sft.yaml"
        command = shell_entrypoint(["torchrun", "-m", "polya.cli.main", "sft", "--config", config_path], config_path=config_path)
        submit_and_wait(target, job_name("polya-sft", arm, digest), command, cfg, api_client=api_client)
        output = cfg.output or join_uri(run_dir, "sft", arm)
        final_uri = join_uri(output, "final")
        store = open_store(output)
        summary = store.read_json("summary.json") if store.exists("summary.json") else {}
    fetch_dir(final_uri, model_dir)
    summary = {**summary, "arm": arm, "final": final_uri, "run_dir": run_dir}
    (Path(model_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


# ----- rl ------------------------------------------------------------------------------------


def rl_step(
    config_yaml: str, model_dir_in: str | None, model_dir: str, model: str = "", group_size: int = 0, max_steps: int = 0,
    checkpoint_root: str = "", cluster: str = "", api_client: Any | None = None,
) -> dict[str, Any]:
    """GRPO from the input model artifact (or ``model`` when there is none: vanilla RL).

    In the pod: ``polya.rl.stage.run``. With a ``rayjob`` cluster target: the input model goes to
    MinIO, a RayJob runs ``polya rl`` on its head (``ray_address: auto``, the KubeRay cluster) with
    the model's ``s3://`` URI, and ``final/`` is downloaded from MinIO.
    """
    import shlex

    from polya.pipeline.jobs import job_name, shell_entrypoint
    from polya.rl.config import RlConfig

    source = model_dir_in or model
    digest = input_digest("rl", config=config_yaml, model=source, group_size=group_size, max_steps=max_steps,
                          model_summary=_read_summary(model_dir_in))
    target = parse_cluster(cluster)
    run_dir = join_uri(work_root(checkpoint_root), digest)
    forced = _given({"run_dir": run_dir}, model=model_dir_in or model, group_size=group_size, max_steps=max_steps)
    if target is None:
        cfg = stage_config(RlConfig, config_yaml, forced)
        from polya.rl.stage import run

        final_uri = run(cfg).final_uri
    else:
        _require_s3(run_dir, target)
        if model_dir_in:
            forced["model"] = put_dir(model_dir_in, join_uri(run_dir, "inputs", "model"))
        if not parse_config_yaml(config_yaml).get("ray_address"):
            forced["ray_address"] = "auto"
        cfg = stage_config(RlConfig, config_yaml, forced)
        config_path = "/tmp/polya-rl.yaml"
        command = shell_entrypoint(["polya", "rl", "--config", config_path], config_path=config_path)
        submit_and_wait(target, job_name("polya-rl", digest), command, cfg, entrypoint=shlex.join(command), api_client=api_client)
        final_uri = join_uri(cfg.output or join_uri(run_dir, "rl"), "final")
    fetch_dir(final_uri, model_dir)
    summary = {"final": final_uri, "run_dir": run_dir, "from": source}
    (Path(model_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


def _read_summary(model_dir: str | None) -> Any:
    if not model_dir:
        return None
    path = Path(model_dir) / SUMMARY_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else sorted(os.listdir(model_dir))


# ----- eval and report -----------------------------------------------------------------------


def eval_step(config_yaml: str, model_dir_in: str | None, output_dir: str, model: str = "", benchmarks: str = "", label: str = "") -> dict[str, Any]:
    """Evaluate the input model artifact (or ``model``) as one arm named ``label``; the output is the eval run directory.

    The model replaces any ``arms`` of ``config_yaml`` (one evaluation task, one arm); with neither
    a model artifact nor ``model``, the config's arms are evaluated.
    """
    from polya.eval.config import EvalConfig
    from polya.eval.stage import run

    data = parse_config_yaml(config_yaml)
    target = model_dir_in or model
    forced: dict[str, Any] = {"run_dir": str(_prepare_output(output_dir))}
    if target:
        data.pop("arms", None)
        forced["arms"] = {label or "model": target}
    _given(forced, benchmarks=split_list(benchmarks))
    cfg = stage_config(EvalConfig, yaml.safe_dump(data), forced)
    out = run(cfg)
    return dict(out.results)


def scalar_metrics(results: Any, prefix: str = "", depth: int = 3) -> dict[str, float]:
    """Numbers of a results tree as flat ``a/b/c`` keys (what a KFP Metrics artifact can show)."""
    out: dict[str, float] = {}
    if isinstance(results, bool):
        return out
    if isinstance(results, (int, float)):
        return {prefix or "value": float(results)}
    if isinstance(results, dict) and depth > 0:
        for key, value in results.items():
            out.update(scalar_metrics(value, f"{prefix}/{key}" if prefix else str(key), depth - 1))
    return out


def report_step(evaluations: Mapping[str, str], output_dir: str) -> list[str]:
    """Compare the evaluation artifacts (label -> run directory) into ``output_dir``; return the files written."""
    from polya.eval.report import write_comparison

    if not evaluations:
        raise ConfigError("the report needs at least one evaluation artifact")
    out = _prepare_output(output_dir)
    write_comparison({label: join_uri(str(folder), "eval") for label, folder in evaluations.items()}, str(out))
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def log_metrics(artifact: Any, values: Mapping[str, Any]) -> dict[str, float]:
    """Log each number of ``values`` on a KFP ``Metrics`` artifact and also write them to its file.

    The file makes the artifact a real object in the artifact store (and lets ``kfp.local``'s
    cache, which checks that every output exists, reuse the task).
    """
    numbers = {k: float(v) for k, v in scalar_metrics(dict(values), depth=4).items()}
    for key, value in numbers.items():
        artifact.log_metric(key, value)
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(numbers, indent=2, sort_keys=True), encoding="utf-8")
    return numbers


def eval_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """pass@k per benchmark from an eval ``results.json`` (``<benchmark>/pass@<k>``; ``<arm>/...`` with several arms)."""
    arms = results.get("arms") or {}
    out: dict[str, float] = {}
    for arm, data in arms.items():
        prefix = f"{arm}/" if len(arms) > 1 else ""
        for bench, numbers in (data.get("benchmarks") or {}).items():
            for k, value in (numbers.get("pass_at_k") or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[f"{prefix}{bench}/pass@{k}"] = float(value)
    return out
