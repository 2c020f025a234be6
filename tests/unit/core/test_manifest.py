"""RunManifest: stage lifecycle, resume decisions, corruption handling, recorded environment, stages killed from outside."""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest

import polya
from polya.core.errors import StoreError
from polya.core.manifest import MANIFEST_PATH, RunManifest, config_hash, record_stage
from polya.core.store import LocalStore

CONFIG = {"model": "tiny", "sampling": {"temperature": 0.7, "n": 4}}


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "run")


def _run_stage(manifest: RunManifest, store: LocalStore, config: dict = CONFIG) -> None:
    manifest.start_stage("generate", config)
    store.write_jsonl("generate/rows.jsonl", [{"id": 1}, {"id": 2}])
    manifest.finish_stage("generate", ["generate/rows.jsonl"], {"rows": 2})


def test_create_saves_a_manifest_with_environment(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store, run_id="r1")
    saved = store.read_json(MANIFEST_PATH)
    assert saved["run_id"] == "r1"
    assert saved["polya_version"] == polya.__version__
    assert saved["packages"]["python"] == platform.python_version()
    assert saved["packages"]["polya"] == polya.__version__
    assert "math-verify" in saved["packages"]  # a core dependency, always installed
    assert "not-a-real-package" not in saved["packages"]
    assert saved["host"]["machine"] == platform.machine()
    assert saved["stages"] == {}
    assert manifest.created_at.tzinfo is not None
    assert datetime.fromisoformat(saved["created_at"].replace("Z", "+00:00")) == manifest.created_at


def test_generated_run_id_is_kept_on_reload(store: LocalStore) -> None:
    created = RunManifest.load_or_create(store)
    assert created.run_id
    assert RunManifest.load_or_create(store, run_id="ignored").run_id == created.run_id


def test_stage_lifecycle(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    assert manifest.stage("generate") is None

    running = manifest.start_stage("generate", CONFIG)
    assert running.status == "running"
    assert RunManifest.load_or_create(store).stage("generate").status == "running"  # saved at once

    store.write_jsonl("generate/rows.jsonl", [{"id": 1}])
    manifest.finish_stage("generate", ["generate/rows.jsonl"], {"rows": 1})

    record = RunManifest.load_or_create(store).stage("generate")
    assert record is not None
    assert record.status == "done"
    assert record.config == CONFIG
    assert record.config_hash == config_hash(CONFIG)
    assert record.artifacts == {"generate/rows.jsonl": store.sha256("generate/rows.jsonl")}
    assert record.outputs == {"rows": 1}
    assert record.attempts == 1
    assert record.error is None
    assert record.started_at <= record.finished_at
    assert record.duration_s == (record.finished_at - record.started_at).total_seconds()


def test_updated_at_moves_on_save(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    first = manifest.updated_at
    manifest.start_stage("generate", CONFIG)
    assert manifest.updated_at >= first
    assert RunManifest.load_or_create(store).updated_at == manifest.updated_at


def test_failure_and_retry_count_attempts(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    manifest.start_stage("sft", {"lr": 1e-5})
    manifest.fail_stage("sft", "CUDA out of memory")

    record = RunManifest.load_or_create(store).stage("sft")
    assert (record.status, record.error, record.attempts) == ("failed", "CUDA out of memory", 1)
    assert record.finished_at is not None
    assert not manifest.is_done("sft", {"lr": 1e-5})

    manifest.start_stage("sft", {"lr": 1e-5})
    retried = manifest.stage("sft")
    assert (retried.status, retried.error, retried.attempts, retried.finished_at) == ("running", None, 2, None)
    manifest.finish_stage("sft", [])
    assert RunManifest.load_or_create(store).stage("sft").attempts == 2


def test_finish_or_fail_without_start_is_rejected(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    with pytest.raises(ValueError, match="stage 'select' was never started"):
        manifest.finish_stage("select", [])
    _run_stage(manifest, store)
    with pytest.raises(ValueError, match="stage 'generate' is done"):
        manifest.fail_stage("generate", "late")


def test_is_done_with_same_config_and_unchanged_artifacts(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    assert not manifest.is_done("generate", CONFIG)
    _run_stage(manifest, store)
    assert manifest.is_done("generate", CONFIG)
    reordered = {"sampling": {"n": 4, "temperature": 0.7}, "model": "tiny"}
    assert RunManifest.load_or_create(store).is_done("generate", reordered)  # key order is irrelevant


def test_is_done_false_after_config_change(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    _run_stage(manifest, store)
    changed = {"model": "tiny", "sampling": {"temperature": 0.8, "n": 4}}
    assert not manifest.is_done("generate", changed)


def test_is_done_false_after_artifact_modified(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    _run_stage(manifest, store)
    store.write_jsonl("generate/rows.jsonl", [{"id": 1}])
    assert not manifest.is_done("generate", CONFIG)


def test_is_done_false_after_artifact_deleted(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    _run_stage(manifest, store)
    store.delete("generate/rows.jsonl")
    assert not manifest.is_done("generate", CONFIG)


def test_folder_artifacts_are_recorded_file_by_file(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    manifest.start_stage("sft", {"epochs": 1})
    store.write_bytes("sft/checkpoint/model.safetensors", b"weights")
    store.write_json("sft/checkpoint/config.json", {})
    manifest.finish_stage("sft", ["sft/checkpoint/"])

    assert sorted(manifest.stage("sft").artifacts) == ["sft/checkpoint/config.json", "sft/checkpoint/model.safetensors"]
    assert manifest.is_done("sft", {"epochs": 1})
    store.write_bytes("sft/checkpoint/model.safetensors", b"other weights")
    assert not manifest.is_done("sft", {"epochs": 1})


def test_missing_artifact_fails_finish_and_names_it(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    manifest.start_stage("generate", CONFIG)
    with pytest.raises(StoreError, match=r"artifact .*generate/rows\.jsonl does not exist"):
        manifest.finish_stage("generate", ["generate/rows.jsonl"])
    assert manifest.stage("generate").status == "running"


def test_config_values_are_stored_json_safe(store: LocalStore, tmp_path: Path) -> None:
    manifest = RunManifest.load_or_create(store)
    manifest.start_stage("generate", {"output": tmp_path / "out"})
    assert RunManifest.load_or_create(store).stage("generate").config == {"output": str(tmp_path / "out")}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"run_id": "r1"}),  # valid JSON, missing fields
        "",
    ],
)
def test_corrupt_manifest_is_a_clear_error(store: LocalStore, content: str) -> None:
    store.write_text(MANIFEST_PATH, content)
    with pytest.raises(StoreError) as excinfo:
        RunManifest.load_or_create(store)
    message = str(excinfo.value)
    assert store.uri(MANIFEST_PATH) in message
    assert "remove it" in message and "new run directory" in message


def test_saving_leaves_only_the_manifest(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    manifest.start_stage("generate", CONFIG)
    assert store.list() == [MANIFEST_PATH]
    assert [p.name for p in store.root.iterdir()] == [MANIFEST_PATH]  # no temp files left


def test_recording_marks_start_failure_and_finish(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.write_text("out/a.txt", "a")
    with record_stage(store, "stage", {"x": 1}) as run:
        assert RunManifest.load_or_create(store).stage("stage").status == "running"  # type: ignore[union-attr]
        run.artifacts, run.outputs = ["out/a.txt"], {"n": 1}
    done = RunManifest.load_or_create(store).stage("stage")
    assert done is not None and done.status == "done" and done.outputs == {"n": 1} and list(done.artifacts) == ["out/a.txt"]
    with pytest.raises(RuntimeError, match="boom"):
        with record_stage(str(tmp_path), "stage", {"x": 2}):
            raise RuntimeError("boom")
    failed = RunManifest.load_or_create(store).stage("stage")
    assert failed is not None and failed.status == "failed" and failed.error == "RuntimeError: boom" and failed.attempts == 2
    with record_stage(None, "other", {}) as run:  # a process that does not own the manifest records nothing
        run.outputs = {"ignored": True}
    assert RunManifest.load_or_create(store).stage("other") is None


# ----- a stage killed from outside ---------------------------------------------------------------

STAGE_OWNER = textwrap.dedent("""
    import sys, time
    from polya.core.manifest import record_stage
    with record_stage(sys.argv[1], "sft/polya", {"lr": 1e-5}):
        print("running", flush=True)
        time.sleep(600)
""")


@pytest.fixture()
def killed_stage(store: LocalStore) -> Iterator[subprocess.Popen[str]]:
    """A real process that records stage ``sft/polya`` as running in ``store``'s manifest and sleeps."""
    proc = subprocess.Popen([sys.executable, "-c", STAGE_OWNER, str(store.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_stage_whose_process_lives_stays_running_and_a_killed_one_is_interrupted(
    store: LocalStore, killed_stage: subprocess.Popen[str], caplog: pytest.LogCaptureFixture
) -> None:
    record = RunManifest.load_or_create(store).stage("sft/polya")
    assert record is not None and record.status == "running" and record.runner is not None
    assert (record.runner.pid, record.runner.hostname) == (killed_stage.pid, socket.gethostname())

    os.kill(killed_stage.pid, signal.SIGKILL)
    killed_stage.wait()
    assert RunManifest.read(store).stage("sft/polya").status == "interrupted"  # read() tells, and writes nothing
    assert store.read_json(MANIFEST_PATH)["stages"]["sft/polya"]["status"] == "running"

    with caplog.at_level(logging.WARNING, logger="polya.core.manifest"):
        manifest = RunManifest.load_or_create(store)
    record = manifest.stage("sft/polya")
    assert record is not None and record.status == "interrupted"
    assert record.cause and "killed from outside" in record.cause and "kernel log" in record.cause
    assert record.finished_at is None  # no out-of-memory line: when it died is unknown
    assert store.read_json(MANIFEST_PATH)["stages"]["sft/polya"]["status"] == "interrupted"  # saved
    assert any("sft/polya" in r.getMessage() and "interrupted" in r.getMessage() for r in caplog.records)
    assert not manifest.is_done("sft/polya", {"lr": 1e-5})  # polya run re-runs it

    with record_stage(store, "sft/polya", {"lr": 1e-5}):  # the re-run: a second attempt that ends
        pass
    resumed = RunManifest.load_or_create(store).stage("sft/polya")
    assert resumed is not None and (resumed.status, resumed.attempts, resumed.cause) == ("done", 2, None)
    assert resumed.peak_rss_mib is not None and resumed.peak_rss_mib > 10


def test_an_out_of_memory_kill_in_the_kernel_log_is_the_cause(
    store: LocalStore, killed_stage: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    os.kill(killed_stage.pid, signal.SIGKILL)
    killed_stage.wait()
    started = RunManifest.read(store).stage("sft/polya").runner.started_s()
    # What the kernel logs when its OOM killer picks a process (the format of Linux 5.x/6.x), for the killed pid.
    pid = killed_stage.pid
    lines = [
        (started + 4.0, "python3 invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0"),
        (started + 4.1, f"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods/pod1,task_memcg=/kubepods/pod1/c1,task=python3,pid={pid},uid=1000"),
        (started + 4.1, f"Memory cgroup out of memory: Killed process {pid} (python3) total-vm:20971520kB, anon-rss:16777216kB, file-rss:1024kB, shmem-rss:0kB, UID:1000 pgtables:33000kB oom_score_adj:0"),
    ]
    monkeypatch.setattr("polya.core.manifest.kernel_log", lambda: lines)
    record = RunManifest.load_or_create(store).stage("sft/polya")
    assert record is not None and record.status == "interrupted"
    assert "out of memory" in record.cause and "/kubepods/pod1" in record.cause and "anon-rss 16.0 GiB" in record.cause
    assert record.finished_at is not None and record.started_at <= record.finished_at


def test_an_unreadable_kernel_log_says_the_cause_is_unknown(
    store: LocalStore, killed_stage: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    os.kill(killed_stage.pid, signal.SIGKILL)
    killed_stage.wait()
    monkeypatch.setattr("polya.core.manifest.kernel_log", lambda: None)
    record = RunManifest.load_or_create(store).stage("sft/polya")
    assert record is not None and record.status == "interrupted"
    assert "not readable" in record.cause and "out-of-memory killer" in record.cause


def test_a_stage_running_on_another_host_is_left_as_is(store: LocalStore) -> None:
    manifest = RunManifest.load_or_create(store)
    manifest.start_stage("generate", CONFIG)
    data = store.read_json(MANIFEST_PATH)
    data["stages"]["generate"]["runner"].update(hostname="another-pod", pid=999_999)  # no such pid here either
    store.write_json(MANIFEST_PATH, data)
    record = RunManifest.load_or_create(store).stage("generate")
    assert record is not None and record.status == "running" and record.cause is None


def test_a_record_without_its_runner_is_left_running(store: LocalStore) -> None:
    """Written before polya recorded who runs a stage: nothing to check it by."""
    manifest = RunManifest.load_or_create(store)
    manifest.start_stage("generate", CONFIG)
    data = store.read_json(MANIFEST_PATH)
    del data["stages"]["generate"]["runner"]
    store.write_json(MANIFEST_PATH, data)
    assert RunManifest.load_or_create(store).stage("generate").status == "running"
