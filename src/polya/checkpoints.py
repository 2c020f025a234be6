"""Output folders of the training stages (``polya sft``, ``polya rl``) and their resume rules.

An output folder holds ``checkpoint-N/`` (resumable: HF model + optimizer + ``trainer_state.json``),
``final/``, ``metrics.jsonl``, ``summary.json`` and ``config.json`` (the identity: the settings
that decide what is trained). Training runs in a local work folder; with an ``s3://`` output each
checkpoint is uploaded and then marked whole with :data:`UPLOAD_MARKER`. Both stages follow the
same rules, written once here:

- a finished run with the same identity is returned as it is (:func:`finished_summary`);
- resuming with other settings is refused, naming them (:func:`check_identity`);
- ``resume: off`` removes what an earlier run left (:func:`start_over`);
- otherwise the newest whole checkpoint is resumed, fetched from the store when it is newer than
  the local one (:func:`resumable_checkpoint`), and metric lines after it are dropped
  (:func:`trim_metrics`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import resource
import shutil
from pathlib import Path
from typing import Any, Literal

from polya.errors import ConfigError
from polya.models.embedded import cache_dir
from polya.store import ArtifactStore, LocalStore

logger = logging.getLogger(__name__)

FINAL = "final"
SUMMARY = "summary.json"
IDENTITY = "config.json"
METRICS_FILE = "metrics.jsonl"
TRAINER_STATE = "trainer_state.json"
UPLOAD_MARKER = "polya-upload-complete.json"
"""Written into a checkpoint's folder in the store after all its files: the checkpoint is whole."""
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")

Resume = Literal["auto", "off"]


def identity_digest(identity: dict[str, Any]) -> str:
    """SHA-256 of the identity as canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def checkpoint_step(name: str) -> int | None:
    """N of a ``checkpoint-N`` folder name, else None."""
    match = _CHECKPOINT.match(name)
    return int(match.group(1)) if match else None


def _readable_state(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False  # missing, or cut short by a kill while it was written


def last_local_checkpoint(work_dir: Path) -> Path | None:
    """The highest ``checkpoint-N`` under ``work_dir`` whose trainer state was written (the trainer writes it last)."""
    best: tuple[int, Path] | None = None
    if not work_dir.is_dir():
        return None
    for child in work_dir.iterdir():
        step = checkpoint_step(child.name)
        if step is not None and child.is_dir() and _readable_state(child / TRAINER_STATE):
            if best is None or step > best[0]:
                best = (step, child)
    return best[1] if best else None


def last_stored_checkpoint(store: ArtifactStore) -> tuple[int, str] | None:
    """The highest ``checkpoint-N`` in the store whose upload finished (its marker exists)."""
    best: tuple[int, str] | None = None
    for path in store.list():
        parts = path.split("/")
        if len(parts) == 2 and parts[1] == UPLOAD_MARKER:
            step = checkpoint_step(parts[0])
            if step is not None and (best is None or step > best[0]):
                best = (step, parts[0])
    return best


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def work_dir(stage: str, output_uri: str, local_dir: str | None, remote: bool) -> Path:
    """Where training writes: the output folder itself, or for an ``s3://`` output ``local_dir``
    (else a cache folder named after the output, so a re-run finds its checkpoints)."""
    if not remote:
        return Path(LocalStore(output_uri).uri())
    if local_dir:
        return Path(local_dir).expanduser().absolute()
    return cache_dir() / stage / hashlib.sha256(output_uri.encode()).hexdigest()[:16]


def finished_summary(store: ArtifactStore, resume: Resume, digest: str) -> dict[str, Any] | None:
    """The summary of a completed run with this identity digest and a ``final/``, else None."""
    if resume != "auto" or not store.exists(SUMMARY):
        return None
    summary = store.read_json(SUMMARY)
    if summary.get("completed") and summary.get("identity_sha256") == digest and store.list(FINAL):
        return summary
    return None


def check_identity(store: ArtifactStore, resume: Resume, identity: dict[str, Any], what_else: str = "use another output") -> None:
    """Refuse to resume a run trained with other settings; the error names the changed ones."""
    if resume == "off" or not store.exists(IDENTITY):
        return
    previous = store.read_json(IDENTITY).get("identity", {})
    changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
    if changed:
        raise ConfigError(
            f"{store.uri()} holds a run trained with other settings (changed: {', '.join(changed)}); "
            f"{what_else}, restore those settings to resume, or set resume off to start over"
        )


def start_over(work: Path, store: ArtifactStore, remote: bool, files: tuple[str, ...], folders: tuple[str, ...] = ()) -> None:
    """``resume: off``: remove earlier checkpoints and the given files and folders, locally and in the store."""
    for child in list(work.glob("checkpoint-*")) + [work / name for name in files + folders]:
        if child.is_dir():
            shutil.rmtree(child)
        elif child.exists():
            child.unlink()
    if remote:
        for path in store.list():
            top = path.split("/", 1)[0]
            if top.startswith("checkpoint-") or top in folders or path in files:
                store.delete(path)


def resumable_checkpoint(work: Path, store: ArtifactStore, remote: bool) -> Path | None:
    """The newest whole local checkpoint, after fetching the store's newest one when it is newer
    (an ``s3://`` output resumed on another machine or after the cache was lost)."""
    if remote:
        stored = last_stored_checkpoint(store)
        local = last_local_checkpoint(work)
        local_step = checkpoint_step(local.name) if local else None
        if stored is not None and (local_step is None or stored[0] > local_step):
            step, name = stored
            target = work / name
            if target.exists():
                shutil.rmtree(target)
            logger.info("downloading %s to resume from step %s", store.uri(name), step)
            store.download_dir(name, target)
            if store.exists(METRICS_FILE):
                store.download_file(METRICS_FILE, work / METRICS_FILE)
    return last_local_checkpoint(work)


def trim_metrics(work: Path, step: int) -> None:
    """Drop metric lines of steps after the checkpoint being resumed (they are trained again)."""
    path = work / METRICS_FILE
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
