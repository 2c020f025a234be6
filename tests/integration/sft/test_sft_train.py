"""A real ``polya sft`` run on the embedded SmolLM2-135M on CPU: the loss falls, the weights change,
the final checkpoint loads with transformers, metrics and the manifest are written, a re-run is a no-op."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from polya.core.manifest import RunManifest
from polya.core.store import LocalStore
from polya.sft.stage import run

pytestmark = pytest.mark.integration


def _dataset_loss(model_dir: str, messages: list[list[dict[str, str]]]) -> float:
    """Mean loss on the assistant turns (prompt tokens masked, as in training) over the whole dataset."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    rows, targets = [], []
    for conversation in messages:
        prompt = tok.apply_chat_template(conversation[:-1], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        full = tok.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"]
        rows.append(full)
        targets.append([-100] * len(prompt) + full[len(prompt):])
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets])
    with torch.no_grad():
        return float(model(input_ids=ids, attention_mask=mask, labels=labels).loss)


def test_the_loss_falls(trained_run: Any) -> None:
    summary = trained_run.outputs.summary
    assert summary["global_step"] == trained_run.config.max_steps and summary["completed"] is True
    assert summary["loss_mask"] == "prompt_completion" and summary["device"] == "cpu" and summary["bf16"] is False
    assert summary["last_loss"] < summary["first_loss"]
    from polya.sft.data import load_chat_dataset

    messages = load_chat_dataset(summary["data_file"]).messages
    before = _dataset_loss(trained_run.base_model, messages)
    after = _dataset_loss(trained_run.outputs.final_uri, messages)
    assert after < 0.7 * before, f"loss on the training answers went {before:.3f} -> {after:.3f}"


def test_the_weights_changed_and_keep_their_shapes(trained_run: Any) -> None:
    base = load_file(str(Path(trained_run.base_model) / "model.safetensors"))
    final = load_file(str(Path(trained_run.outputs.final_uri) / "model.safetensors"))
    assert set(final) == set(base)
    assert all(final[k].shape == base[k].shape for k in base)
    changed = [k for k in base if not torch.equal(base[k], final[k])]
    assert len(changed) >= 0.9 * len(base), f"only {len(changed)}/{len(base)} tensors changed"


def test_the_final_checkpoint_loads_with_transformers(trained_run: Any) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = Path(trained_run.outputs.final_uri)
    assert final == trained_run.run_dir / "sft" / "polya" / "final"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in final.iterdir()}
    tok = AutoTokenizer.from_pretrained(final)
    model = AutoModelForCausalLM.from_pretrained(final)
    base_tok = AutoTokenizer.from_pretrained(trained_run.base_model)
    assert tok.chat_template == base_tok.chat_template  # the inference template is saved unchanged
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does he have?"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=40, do_sample=False)
    text = tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "apples" in text or "boxed" in text, text


def test_metrics_summary_and_manifest(trained_run: Any) -> None:
    out_dir = trained_run.run_dir / "sft" / "polya"
    lines = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "loss" in line]
    assert [line["step"] for line in steps] == list(range(1, trained_run.config.max_steps + 1))
    for line in steps:
        assert line["learning_rate"] is not None and line["tokens"] > 0 and line["tokens_per_s"] > 0
    assert lines[-1]["event"] == "train_end"
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary == trained_run.outputs.summary
    assert summary["tokens"] > 0 and summary["tokens_per_s"] > 0 and summary["peak_rss_mib"] > 100
    manifest = RunManifest.load_or_create(LocalStore(trained_run.run_dir))
    record = manifest.stage("sft/polya")
    assert record is not None and record.status == "done"
    assert record.outputs["global_step"] == trained_run.config.max_steps
    assert "sft/polya/final/model.safetensors" in record.artifacts and "sft/polya/summary.json" in record.artifacts
    assert record.config["inputs"]["dataset_sha256"] == summary["dataset_sha256"]


def test_running_again_is_a_no_op(trained_run: Any) -> None:
    metrics = trained_run.run_dir / "sft" / "polya" / "metrics.jsonl"
    before = metrics.read_text()
    again = run(trained_run.config)
    assert again.summary == trained_run.outputs.summary
    assert metrics.read_text() == before


def test_other_settings_on_the_same_output_are_refused(trained_run: Any) -> None:
    from polya.core.errors import ConfigError

    changed: Any = trained_run.config.model_copy(update={"learning_rate": 5e-5})
    with pytest.raises(ConfigError, match="changed: learning_rate"):
        run(changed)
