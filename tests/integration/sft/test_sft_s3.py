"""``polya sft`` with its run directory in S3 (a real S3-protocol server process, moto).

The dataset is read from the store, checkpoints are uploaded as they are saved (with a completion
marker, rotation mirrored), and a run that crashed is resumed on a "fresh machine" (an empty
local_dir) from the checkpoint it downloads. The model is a 2-layer toy with SmolLM2's tokenizer so
that checkpoints are a few MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polya.core.manifest import RunManifest
from polya.core.store import open_store
from polya.training.callbacks import CheckpointUploadCallback
from polya.sft.config import SftConfig
from polya.sft.stage import run

pytestmark = pytest.mark.integration


class SimulatedCrash(RuntimeError):
    """Raised right after checkpoint-2 reached the store, as if the machine died there."""


def test_s3_run_uploads_checkpoints_and_resumes_on_a_fresh_machine(
    bucket: str, tmp_path: Path, tiny_model: str, write_chat_dataset: Any
) -> None:
    run_dir = f"s3://{bucket}/runs/exp"
    store = open_store(run_dir)
    local = write_chat_dataset(tmp_path / "train.jsonl")
    store.upload_file(local, "select/polya/train.jsonl")  # where polya select puts it
    settings = dict(
        run_dir=run_dir, model=tiny_model, max_steps=6, save_steps=2, save_total_limit=1, batch_size=2,
        max_seq_length=128, learning_rate=1e-3, logging_steps=1, progress=False,
    )

    upload = CheckpointUploadCallback.on_save

    def upload_then_crash(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        upload(self, args, state, control, **kwargs)
        if state.global_step == 2:
            raise SimulatedCrash("machine lost after checkpoint-2")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(SimulatedCrash):
        patch.setattr(CheckpointUploadCallback, "on_save", upload_then_crash)
        run(SftConfig(local_dir=str(tmp_path / "machine-1"), **settings))
    assert store.exists("sft/polya/checkpoint-2/polya-upload-complete.json")
    assert store.exists("sft/polya/checkpoint-2/model.safetensors") and store.exists("sft/polya/checkpoint-2/optimizer.pt")
    assert store.exists("sft/polya/metrics.jsonl") and not store.exists("sft/polya/summary.json")
    assert RunManifest.load_or_create(store).stage("sft/polya").status == "failed"

    out = run(SftConfig(local_dir=str(tmp_path / "machine-2"), **settings))
    summary = out.summary
    assert summary["resumed_from"] == "checkpoint-2" and summary["global_step"] == 6
    assert summary["local_dir"] == str(tmp_path / "machine-2")  # an empty folder: checkpoint-2 came from the store
    assert out.final_uri == f"{run_dir}/sft/polya/final"
    objects = store.list("sft/polya")
    # save_total_limit=1: only the newest checkpoint is kept, in the store as on disk.
    assert sorted({p.split("/")[2] for p in objects if p.split("/")[2].startswith("checkpoint-")}) == ["checkpoint-6"]
    assert store.exists("sft/polya/checkpoint-6/polya-upload-complete.json")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert store.exists(f"sft/polya/final/{name}"), name
    assert store.read_json("sft/polya/summary.json") == summary
    steps = [r["step"] for r in store.read_jsonl("sft/polya/metrics.jsonl") if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]
    record = RunManifest.load_or_create(store).stage("sft/polya")
    assert record.status == "done" and record.attempts == 2
    assert "sft/polya/final/model.safetensors" in record.artifacts
    assert record.artifacts["sft/polya/summary.json"] == store.sha256("sft/polya/summary.json")

    # The final model from the store loads with transformers.
    from transformers import AutoModelForCausalLM

    fetched = tmp_path / "fetched"
    store.download_dir("sft/polya/final", fetched)
    assert AutoModelForCausalLM.from_pretrained(fetched).config.num_hidden_layers == 2
