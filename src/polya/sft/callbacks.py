"""Trainer callbacks of the SFT stage: training metrics (JSONL + Prometheus) and checkpoint upload.

Both act on the main process only (``state.is_world_process_zero``), so a multi-GPU run writes
one metrics file and uploads each checkpoint once.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client import Gauge
from transformers import TrainerCallback

from polya.checkpoints import METRICS_FILE, UPLOAD_MARKER
from polya.store import ArtifactStore

logger = logging.getLogger(__name__)


LOSS = Gauge("polya_sft_loss", "Training loss of the latest logging interval")
LEARNING_RATE = Gauge("polya_sft_learning_rate", "Current learning rate")
TOKENS_PER_SECOND = Gauge("polya_sft_tokens_per_second", "Training tokens per second over the latest logging interval")
TOKENS = Gauge("polya_sft_tokens_total", "Training tokens seen (resumed runs included)")
STEP = Gauge("polya_sft_global_step", "Optimizer steps done")
EPOCH = Gauge("polya_sft_epoch", "Epochs done (fractional)")
GRAD_NORM = Gauge("polya_sft_grad_norm", "Gradient norm before clipping, latest logging interval")


class SftMetricsCallback(TrainerCallback):
    """Append one JSON line per logging step to ``metrics.jsonl`` and set the Prometheus gauges.

    Each line holds ``step``, ``epoch``, ``loss``, ``learning_rate``, ``grad_norm``, ``tokens``
    (tokens seen so far: non-padding tokens, resumed runs included), ``tokens_per_s`` over the
    interval since the previous line, ``elapsed_s`` since this process started training and
    ``time``. The trainer's closing line (``train_runtime``, ``train_loss``) is written with
    ``"event": "train_end"``.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._last_time = 0.0
        self._last_tokens = 0
        self._start = 0.0
        self.records: list[dict[str, Any]] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = self._last_time = time.monotonic()
        self._last_tokens = int(state.num_input_tokens_seen or 0)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.monotonic()
        tokens = int(state.num_input_tokens_seen or 0)
        record: dict[str, Any] = {"step": state.global_step, "epoch": _round(logs.get("epoch", state.epoch), 4)}
        if "loss" in logs:
            interval = max(now - self._last_time, 1e-9)
            tokens_per_s = (tokens - self._last_tokens) / interval
            record.update(
                loss=_round(logs.get("loss"), 6),
                learning_rate=logs.get("learning_rate"),
                grad_norm=_round(logs.get("grad_norm"), 6),
                tokens=tokens,
                tokens_per_s=round(tokens_per_s, 2),
                mean_token_accuracy=_round(logs.get("mean_token_accuracy"), 6),
            )
            self._last_time, self._last_tokens = now, tokens
            _set(LOSS, logs.get("loss"))
            _set(LEARNING_RATE, logs.get("learning_rate"))
            _set(GRAD_NORM, logs.get("grad_norm"))
            TOKENS_PER_SECOND.set(tokens_per_s)
        elif "train_runtime" in logs:
            record.update(
                event="train_end",
                train_loss=_round(logs.get("train_loss"), 6),
                train_runtime_s=_round(logs.get("train_runtime"), 3),
                tokens=tokens,
            )
        else:
            return
        TOKENS.set(tokens)
        STEP.set(state.global_step)
        _set(EPOCH, state.epoch)
        record["elapsed_s"] = round(now - self._start, 3)
        record["time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.records.append(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


class CheckpointUploadCallback(TrainerCallback):
    """Upload every saved ``checkpoint-N`` (and ``metrics.jsonl``) to the output store, then mirror rotation.

    Files go first, then :data:`UPLOAD_MARKER`; a checkpoint without the marker (an upload cut
    short) is never resumed from. Checkpoints that the trainer's ``save_total_limit`` deleted
    locally are deleted from the store too.
    """

    def __init__(self, store: ArtifactStore, work_dir: Path):
        self.store = store
        self.work_dir = Path(work_dir)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        name = f"checkpoint-{state.global_step}"
        local = self.work_dir / name
        if not local.is_dir():
            logger.warning("checkpoint %s was not found after saving; nothing uploaded", local)
            return
        started = time.monotonic()
        self.store.upload_dir(local, name)
        self.store.write_json(f"{name}/{UPLOAD_MARKER}", {"global_step": state.global_step, "time": datetime.now(timezone.utc).isoformat()})
        upload_metrics(self.store, self.work_dir)
        self.mirror_rotation()
        logger.info("uploaded %s to %s in %.1fs", name, self.store.uri(name), time.monotonic() - started)

    def mirror_rotation(self) -> None:
        """Delete store checkpoints that no longer exist locally."""
        local = {p.name for p in self.work_dir.glob("checkpoint-*") if p.is_dir()}
        for path in self.store.list():
            top = path.split("/", 1)[0]
            if top.startswith("checkpoint-") and top not in local:
                self.store.delete(path)


def upload_metrics(store: ArtifactStore, work_dir: Path) -> None:
    """Copy ``metrics.jsonl`` to the store when it exists."""
    metrics = Path(work_dir) / METRICS_FILE
    if metrics.is_file():
        store.upload_file(metrics, METRICS_FILE)


def _round(value: Any, digits: int) -> Any:
    return round(float(value), digits) if isinstance(value, (int, float)) else value


def _set(gauge: Gauge, value: Any) -> None:
    if isinstance(value, (int, float)):
        gauge.set(float(value))
