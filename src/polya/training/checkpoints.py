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

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from polya.core.digest import digest, short_digest
from polya.core.errors import ConfigError, DataError
from polya.core.layout import TrainingLayout, cache_dir
from polya.core.outputs import read_training_summary
from polya.core.store import ArtifactStore, LocalStore
from polya.training.config import Resume

logger = logging.getLogger(__name__)

FINAL = TrainingLayout.FINAL
SUMMARY = TrainingLayout.SUMMARY
IDENTITY = TrainingLayout.IDENTITY
METRICS_FILE = TrainingLayout.METRICS
UPLOAD_MARKER = TrainingLayout.UPLOAD_MARKER
"""Written into a checkpoint's folder in the store after all its files: the checkpoint is whole."""
TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")



def identity_digest(identity: dict[str, Any]) -> str:
    """SHA-256 of the identity as canonical JSON."""
    return digest(identity)


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


def work_dir(stage: str, output_uri: str, local_dir: str | None, remote: bool) -> Path:
    """Where training writes: the output folder itself, or for an ``s3://`` output ``local_dir``
    (else a cache folder named after the output, so a re-run finds its checkpoints)."""
    if not remote:
        return Path(LocalStore(output_uri).uri())
    if local_dir:
        return Path(local_dir).expanduser().absolute()
    return cache_dir() / stage / short_digest(output_uri)


def finished_summary(store: ArtifactStore, resume: Resume, identity_sha256: str) -> dict[str, Any] | None:
    """The summary of a completed run with this identity digest and a ``final/``, else None."""
    if resume != "auto":
        return None
    try:
        summary = read_training_summary(store)
    except DataError as exc:
        logger.warning("%s; training again", exc)
        return None
    if summary is not None and summary.completed and summary.identity_sha256 == identity_sha256 and store.list(FINAL):
        return summary.dump()
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


def replace_dir(target: Path, write: Any, is_main: bool = True) -> Path:
    """Write a folder atomically: ``write(tmp)`` fills a temporary sibling, which then replaces ``target``.

    Under a distributed launch every rank calls ``write`` (ZeRO-3 gathers the weights there) while
    only the main process prepares and renames the folder.
    """
    tmp = target.parent / f".tmp-{target.name}"
    if is_main and tmp.exists():
        shutil.rmtree(tmp)
    write(tmp)
    if is_main:
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    return target


def run_artifacts(run_dir: str, output_store: ArtifactStore, names: tuple[str, ...]) -> list[str]:
    """Paths of the run directory (for its manifest) of the output's ``names`` that exist, when the
    output lies inside the run directory; else nothing (an output elsewhere is not the run's artifact)."""
    from polya.core.store import open_store

    run_uri = open_store(run_dir).uri().rstrip("/")
    output_uri = output_store.uri().rstrip("/")
    if not output_uri.startswith(run_uri + "/"):
        return []
    relative = output_uri[len(run_uri) + 1 :]
    return [f"{relative}/{name}" for name in names if output_store.exists(name) or output_store.list(name)]
