"""What each evaluated arm cost and where it came from, read back from the training outputs.

An arm's model is the ``final/`` folder of a training output (``polya sft``, ``polya rl``), or a
starting model. Every training output has a ``summary.json`` (:class:`~polya.core.outputs.TrainingSummary`)
naming the model it started from, its seed, package versions, GPUs, run directory and manifest
record, so the chain ``rl <- sft <- base`` is followed back from the arm's model alone: the same
code works for ``polya run``, for ``polya eval`` on any checkpoint and for the KFP pipeline, and
needs no knowledge of arm names.

Per arm (:func:`arm_accounting`):

- ``compute``: ``generation_tokens`` (completion tokens of the generate stage that produced the
  SFT data; shared by every arm trained on that generation run), ``sft_tokens`` (tokens trained
  on, padding excluded), ``rl_tokens`` (prompt + completion tokens the GRPO learners processed),
  ``wall_s`` (seconds of the stages that made the model: generate, select, sft, rl; every attempt
  of a resumed stage counted), ``gpu_hours`` (GPUs x wall time of the training stages; 0 on CPU;
  None when unknown), and ``stages``: the same per stage;
- ``provenance``: per training stage its seed, data digest (``dataset_sha256`` / ``prompts_sha256``),
  output and package versions.

What cannot be found (a hub model, a summary written before these fields existed, a run
directory that is not reachable) is left out or None, never guessed.
"""

from __future__ import annotations

import logging
from typing import Any

from polya.core.errors import PolyaError
from polya.core.layout import RunLayout, TrainingLayout
from polya.core.manifest import RunManifest
from polya.core.outputs import TrainingSummary, read_generate_summary, read_training_summary
from polya.core.store import open_store

logger = logging.getLogger(__name__)

_MAX_CHAIN = 8
"""A model trained from a model trained from ... at most this deep (guards against a loop)."""


def _training_output(model: str) -> tuple[str, TrainingSummary] | None:
    """The training output a model location belongs to, and its summary; None for anything else."""
    location = model.rstrip("/")
    candidates = [location]
    if location.rsplit("/", 1)[-1] == TrainingLayout.FINAL:
        candidates.insert(0, location.rsplit("/", 1)[0] if "/" in location else ".")
    for folder in candidates:
        if "://" not in folder and not folder.startswith(("/", ".")) and folder.count("/") == 1:
            continue  # an HF hub id such as org/name
        try:
            summary = read_training_summary(open_store(folder))
        except (PolyaError, OSError, ValueError):
            continue
        if summary is not None:
            return folder, summary
    return None


def _stage_seconds(run_dir: str | None, stage: str | None) -> float | None:
    if not run_dir or not stage:
        return None
    try:
        manifest = RunManifest.read(open_store(run_dir))
    except (PolyaError, OSError, ValueError):
        return None
    record = manifest.stages.get(stage) if manifest else None
    if record is None or record.status != "done":
        return None
    return round(record.total_duration_s or record.duration_s or 0.0, 1)


def _generation(run_dir: str) -> dict[str, Any]:
    """Tokens and time of the generate and select stages of ``run_dir`` (the SFT data's origin)."""
    out: dict[str, Any] = {}
    try:
        summary = read_generate_summary(open_store(run_dir))
    except (PolyaError, OSError, ValueError):
        summary = None
    if summary is not None:
        out["generation_tokens"] = summary.completion_tokens
    for stage in ("generate", "select"):
        seconds = _stage_seconds(run_dir, stage)
        if seconds is not None:
            out.setdefault("stages", {})[stage] = {"wall_s": seconds}
    return out


def _data_run_dir(data_file: Any) -> str | None:
    """The run directory whose select stage wrote an SFT data file (``<run>/select/<dataset>/train.jsonl``):
    the main run, or the teacher's ``<run>/distill`` for the distillation arms."""
    text = str(data_file or "")
    marker = f"/{RunLayout.select.root}/"
    return text.rsplit(marker, 1)[0] if marker in text else None


def arm_accounting(model: str) -> dict[str, Any]:
    """``{"compute": {...}, "provenance": [...]}`` of the model an arm evaluates (see the module docstring)."""
    chain: list[tuple[str, TrainingSummary]] = []
    current = model
    for _ in range(_MAX_CHAIN):
        found = _training_output(current)
        if found is None:
            break
        chain.append(found)
        current = found[1].model
    compute: dict[str, Any] = {"generation_tokens": None, "sft_tokens": None, "rl_tokens": None, "wall_s": None, "gpu_hours": None, "stages": {}}
    provenance: list[dict[str, Any]] = []
    known_gpu = True
    for folder, summary in reversed(chain):  # base first
        extra = summary.model_extra or {}
        stage = summary.stage or ("sft" if extra.get("dataset") else "rl")
        seconds = _stage_seconds(summary.run_dir, summary.manifest_stage)
        if seconds is None:
            seconds = extra.get("train_runtime_s") or extra.get("session_runtime_s")
        name = summary.manifest_stage or stage
        compute["stages"][name] = {"wall_s": seconds, "tokens": summary.tokens, "gpus": summary.gpus}
        key = "sft_tokens" if stage == "sft" else "rl_tokens"
        compute[key] = (compute[key] or 0) + (summary.tokens or 0)
        if summary.gpus is None or seconds is None:
            known_gpu = False
        else:
            compute["gpu_hours"] = (compute["gpu_hours"] or 0.0) + summary.gpus * float(seconds) / 3600
        data_run = _data_run_dir(extra.get("data_file")) or summary.run_dir
        if stage == "sft" and data_run and compute["generation_tokens"] is None:
            generation = _generation(data_run)
            compute["generation_tokens"] = generation.get("generation_tokens")
            compute["stages"] = {**generation.get("stages", {}), **compute["stages"]}
        provenance.append({
            "stage": name, "output": folder, "started_from": summary.model, "seed": summary.seed,
            "data_sha256": extra.get("dataset_sha256") or extra.get("prompts_sha256"),
            "identity_sha256": summary.identity_sha256, "packages": summary.packages,
        })
    seconds = [s["wall_s"] for s in compute["stages"].values() if s.get("wall_s") is not None]
    compute["wall_s"] = round(sum(seconds), 1) if seconds else None
    if not known_gpu:
        compute["gpu_hours"] = None
    elif compute["gpu_hours"] is not None:
        compute["gpu_hours"] = round(compute["gpu_hours"], 4)
    elif chain:
        compute["gpu_hours"] = 0.0
    return {"compute": compute, "provenance": provenance}
