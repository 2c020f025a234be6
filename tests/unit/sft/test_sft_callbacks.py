"""Metrics lines and gauges, checkpoint upload with its completion marker, and finding the checkpoint to resume."""

from __future__ import annotations

import json
import types
from pathlib import Path

from prometheus_client import REGISTRY

from polya.core.store import LocalStore
from polya.sft.callbacks import SftMetricsCallback
from polya.training.callbacks import CheckpointUploadCallback
from polya.training.checkpoints import (
    METRICS_FILE,
    UPLOAD_MARKER,
    checkpoint_step,
    last_local_checkpoint,
    last_stored_checkpoint,
)


def _state(step: int, tokens: int, main: bool = True) -> types.SimpleNamespace:
    return types.SimpleNamespace(global_step=step, num_input_tokens_seen=tokens, epoch=step / 10, is_world_process_zero=main)


def test_metrics_lines_and_gauges(tmp_path: Path) -> None:
    callback = SftMetricsCallback(tmp_path / METRICS_FILE)
    callback.on_train_begin(None, _state(0, 0), None)
    callback.on_log(None, _state(1, 500), None, logs={"loss": 2.5, "learning_rate": 1e-4, "grad_norm": 3.0, "epoch": 0.1})
    callback.on_log(None, _state(2, 1000), None, logs={"loss": 1.5, "learning_rate": 5e-5, "grad_norm": 2.0, "epoch": 0.2})
    callback.on_log(None, _state(2, 1000), None, logs={"train_runtime": 3.2, "train_loss": 2.0, "epoch": 0.2})
    callback.on_log(None, _state(2, 1000), None, logs={"eval_loss": 9.0})  # not a training line: skipped
    lines = [json.loads(line) for line in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 2]
    assert lines[0]["loss"] == 2.5 and lines[0]["learning_rate"] == 1e-4 and lines[0]["tokens"] == 500
    assert lines[1]["tokens_per_s"] > 0 and lines[1]["grad_norm"] == 2.0
    assert lines[2]["event"] == "train_end" and lines[2]["train_loss"] == 2.0
    assert REGISTRY.get_sample_value("polya_sft_loss") == 1.5
    assert REGISTRY.get_sample_value("polya_sft_learning_rate") == 5e-5
    assert REGISTRY.get_sample_value("polya_sft_tokens_total") == 1000
    assert REGISTRY.get_sample_value("polya_sft_global_step") == 2
    assert REGISTRY.get_sample_value("polya_sft_tokens_per_second") > 0


def test_only_the_main_process_writes_metrics(tmp_path: Path) -> None:
    callback = SftMetricsCallback(tmp_path / METRICS_FILE)
    callback.on_train_begin(None, _state(0, 0, main=False), None)
    callback.on_log(None, _state(1, 10, main=False), None, logs={"loss": 1.0})
    assert not (tmp_path / METRICS_FILE).exists()


def _fake_checkpoint(work: Path, step: int, complete: bool = True) -> Path:
    folder = work / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 10)
    if complete:
        (folder / "trainer_state.json").write_text("{}")
    return folder


def test_upload_marks_complete_checkpoints_and_mirrors_rotation(tmp_path: Path) -> None:
    work = tmp_path / "work"
    store = LocalStore(tmp_path / "store")
    callback = CheckpointUploadCallback(store, work)
    (work).mkdir()
    (work / METRICS_FILE).write_text('{"step": 2}\n')
    _fake_checkpoint(work, 2)
    callback.on_save(None, _state(2, 0), None)
    assert store.exists(f"checkpoint-2/{UPLOAD_MARKER}") and store.exists("checkpoint-2/model.safetensors")
    assert store.exists(METRICS_FILE)
    # The trainer rotated checkpoint-2 away after saving checkpoint-4: the store follows.
    import shutil

    shutil.rmtree(work / "checkpoint-2")
    _fake_checkpoint(work, 4)
    callback.on_save(None, _state(4, 0), None)
    assert not store.list("checkpoint-2") and store.exists(f"checkpoint-4/{UPLOAD_MARKER}")
    assert last_stored_checkpoint(store) == (4, "checkpoint-4")
    callback.on_save(None, _state(6, 0, main=False), None)  # other ranks never upload
    assert last_stored_checkpoint(store) == (4, "checkpoint-4")


def test_an_interrupted_upload_is_not_resumed_from(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.write_json(f"checkpoint-2/{UPLOAD_MARKER}", {"global_step": 2})
    store.write_bytes("checkpoint-4/model.safetensors", b"partial")  # no marker: cut short
    assert last_stored_checkpoint(store) == (2, "checkpoint-2")
    assert last_stored_checkpoint(LocalStore(tmp_path / "empty")) is None


def test_last_local_checkpoint_needs_the_trainer_state(tmp_path: Path) -> None:
    assert last_local_checkpoint(tmp_path / "missing") is None
    _fake_checkpoint(tmp_path, 2)
    _fake_checkpoint(tmp_path, 10)
    _fake_checkpoint(tmp_path, 12, complete=False)  # killed while saving
    (tmp_path / "checkpoint-x").mkdir()
    assert last_local_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert checkpoint_step("checkpoint-10") == 10 and checkpoint_step("final") is None
