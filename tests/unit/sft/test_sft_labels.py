"""Loss on the assistant turn only: the labels the stage's own SFTTrainer builds mask every prompt token.

These build the real trainer (TRL SFTTrainer on the embedded SmolLM2-135M) without training and
read its prepared dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sft_samples import MARKED_TEMPLATE

from polya.sft.config import SftConfig
from polya.sft.stage import SftStage, preflight
from polya.sft.trainer import REAL_TOKENS_KEY, PackedRowsCollator

IGNORE = -100


def _trainer(run_dir: Path, **settings: Any) -> tuple[Any, Any]:
    config = SftConfig(run_dir=str(run_dir), max_steps=1, batch_size=2, max_seq_length=256, progress=False, **settings)
    stage = SftStage(config)
    plan = preflight(config)
    return stage.build_trainer(plan, stage.training_args(plan), []), plan


@pytest.fixture()
def marked_model(embedded_checkpoint: str, tmp_path: Path) -> str:
    """The embedded model with a chat template that has {% generation %} markers (weights linked, not copied)."""
    from transformers import AutoTokenizer

    target = tmp_path / "marked-model"
    target.mkdir()
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        (target / name).symlink_to(Path(embedded_checkpoint) / name)
    tokenizer = AutoTokenizer.from_pretrained(embedded_checkpoint)
    tokenizer.chat_template = MARKED_TEMPLATE
    tokenizer.save_pretrained(target)
    return str(target)


def _trained_text(tokenizer: Any, ids: list[int], labels: list[int]) -> str:
    return tokenizer.decode([t for t, label in zip(ids, labels) if label != IGNORE])


def test_prompt_completion_labels_mask_the_prompt(chat_jsonl: Path) -> None:
    trainer, plan = _trainer(chat_jsonl.parents[2])
    tok = plan.tokenizer
    assert plan.loss_mask == "prompt_completion"
    assert len(trainer.train_dataset) == 16
    for row, messages in zip(trainer.train_dataset, plan.dataset.messages):
        ids, labels = row["input_ids"], row["labels"]
        prompt_ids = tok.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        n = len(prompt_ids)
        assert ids[:n] == prompt_ids, "the prompt is rendered exactly as at inference (chat template + generation prompt)"
        assert all(label == IGNORE for label in labels[:n]), "every prompt token is masked"
        assert all(label != IGNORE for label in labels[n:]), "every completion token is trained"
        # What is trained: the assistant's text and its end-of-turn token (the model learns to stop).
        assert _trained_text(tok, ids, labels) == messages[-1]["content"] + tok.eos_token + "\n"
        assert "user" not in _trained_text(tok, ids, labels)


def test_packed_rows_keep_the_prompt_masks(chat_jsonl: Path) -> None:
    trainer, plan = _trainer(chat_jsonl.parents[2], packing=True)
    tok = plan.tokenizer
    rows = list(trainer.train_dataset)
    assert len(rows) < 16, "several examples share a packed row"
    assert all(len(r["input_ids"]) <= 256 for r in rows)
    trained = "".join(_trained_text(tok, r["input_ids"], r["labels"]) for r in rows)
    for messages in plan.dataset.messages:
        assert messages[-1]["content"] + tok.eos_token in trained
        assert messages[0]["content"] not in trained, "no question text is trained"
    total_trained = sum(label != IGNORE for r in rows for label in r["labels"])
    expected = sum(len(tok(m[-1]["content"] + tok.eos_token + "\n")["input_ids"]) for m in plan.dataset.messages)
    assert total_trained == expected
    assert all("seq_lengths" in r for r in rows)  # per-example boundaries: attention stays within each example


def test_generation_markers_mask_everything_but_assistant_turns(chat_jsonl: Path, marked_model: str) -> None:
    trainer, plan = _trainer(chat_jsonl.parents[2], model=marked_model)
    tok = plan.tokenizer
    assert plan.loss_mask == "generation_markers"
    assert trainer.args.assistant_only_loss is True
    for row, messages in zip(trainer.train_dataset, plan.dataset.messages):
        assert _trained_text(tok, row["input_ids"], row["labels"]) == messages[-1]["content"] + tok.eos_token


@pytest.mark.parametrize("packing", [False, True])
def test_trainer_settings_follow_the_config(chat_jsonl: Path, packing: bool) -> None:
    trainer, plan = _trainer(chat_jsonl.parents[2], packing=packing, learning_rate=3e-4, grad_accumulation=2)
    args = trainer.args
    assert args.learning_rate == 3e-4 and args.gradient_accumulation_steps == 2 and args.per_device_train_batch_size == 2
    assert args.max_length == 256 and args.packing is packing and args.bf16 is False and args.use_cpu is True
    assert args.output_dir == str(plan.work_dir) and args.max_steps == 1
    assert args.completion_only_loss is True and args.assistant_only_loss is False
    # Packed rows stay rows on SDPA (see polya.sft.trainer); their collator counts the real tokens.
    assert args.include_num_input_tokens_seen == ("no" if packing else "non_padding")
    assert isinstance(trainer.data_collator, PackedRowsCollator) is packing
    assert trainer.packed_rows is packing


def test_packed_rows_collator_isolates_examples(chat_jsonl: Path) -> None:
    collator = PackedRowsCollator(pad_token_id=0)
    batch = collator(
        [
            {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, 6, 7, -100, 9], "seq_lengths": [3, 2]},
            {"input_ids": [1, 2, 3], "labels": [1, 2, 3], "seq_lengths": [3]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 0, 1]]
    # first token of each example and all padding: no loss
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9], [-100, 2, 3, -100, -100]]
    assert batch[REAL_TOKENS_KEY].tolist() == [8]
    assert "attention_mask" not in batch


def test_packed_rows_give_the_same_logits_as_separate_examples(chat_jsonl: Path) -> None:
    """No attention across examples: each example's logits in a packed row equal its logits alone."""
    import torch

    trainer, plan = _trainer(chat_jsonl.parents[2], packing=True)
    model = trainer.model.eval()
    rows = list(trainer.train_dataset)[:2]
    batch = trainer.data_collator(rows)
    batch.pop(REAL_TOKENS_KEY)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        for r, row in enumerate(rows):
            start = 0
            for length in row["seq_lengths"]:
                alone = model(input_ids=torch.tensor([row["input_ids"][start:start + length]]), use_cache=False).logits[0]
                assert torch.allclose(packed[r, start:start + length], alone, atol=2e-3), (r, start)
                start += length
