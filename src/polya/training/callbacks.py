"""What the training stages share in their trainer callbacks: the metrics file and checkpoint upload.

- :class:`MetricsLog` appends one JSON line per logging step to ``metrics.jsonl``;
- :class:`CheckpointUploadCallback` uploads every saved ``checkpoint-N`` to an ``s3://`` output.

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

from polya.core.store import ArtifactStore
from polya.training.checkpoints import METRICS_FILE, UPLOAD_MARKER

logger = logging.getLogger(__name__)


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


def rounded(value: Any, digits: int) -> Any:
    """``value`` rounded when it is a number, else as it is (None stays None)."""
    return round(float(value), digits) if isinstance(value, (int, float)) else value


def set_gauge(gauge: Gauge, value: Any) -> None:
    """Set ``gauge`` when ``value`` is a number (a missing metric leaves the gauge as it was)."""
    if isinstance(value, (int, float)):
        gauge.set(float(value))


class MetricsLog:
    """``metrics.jsonl`` of a training run: one JSON object per line, appended as steps are logged.

    Every record gets ``elapsed_s`` (since :meth:`start`) and ``time`` (UTC); the records of this
    process are kept in :attr:`records`.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        record["elapsed_s"] = round(time.monotonic() - self.started, 3)
        record["time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.records.append(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return record


class MetricsCallback(TrainerCallback):
    """Base of the stages' metrics callbacks: the :class:`MetricsLog` and the interval bookkeeping
    (time and tokens at the last logged step) that tokens/s is measured over."""

    def __init__(self, path: Path):
        self.log = MetricsLog(path)
        self._last_time = 0.0
        self._last_tokens = 0

    @property
    def path(self) -> Path:
        return self.log.path

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.log.records

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.log.start()
        self._last_time = time.monotonic()
        self._last_tokens = int(state.num_input_tokens_seen or 0)
