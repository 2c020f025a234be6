"""A small chat dataset, a real SFT run on the embedded model (shared by the tests that inspect it), a tiny model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TRAIN_STEPS = 6


@pytest.fixture()
def run_dir_with_dataset(tmp_path: Path, write_chat_dataset: Any) -> Path:
    """A run directory whose select stage wrote 16 chat rows for the polya arm."""
    run_dir = tmp_path / "run"
    write_chat_dataset(run_dir / "select" / "polya" / "train.jsonl")
    return run_dir


@dataclass
class TrainedRun:
    run_dir: Path
    config: Any
    outputs: Any
    base_model: str


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, embedded_checkpoint: str, write_chat_dataset: Any) -> TrainedRun:
    """``polya sft`` for real: 6 steps, batch 2, max_seq_length 256 on the embedded SmolLM2-135M, on CPU."""
    from polya.sft.config import SftConfig
    from polya.sft.stage import run

    run_dir = tmp_path_factory.mktemp("sft-run") / "run"
    write_chat_dataset(run_dir / "select" / "polya" / "train.jsonl")
    config = SftConfig(
        run_dir=str(run_dir), max_steps=TRAIN_STEPS, batch_size=2, max_seq_length=256, learning_rate=1e-4,
        logging_steps=1, save_steps=100, progress=False,
    )
    return TrainedRun(run_dir=run_dir, config=config, outputs=run(config), base_model=embedded_checkpoint)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, embedded_checkpoint: str) -> str:
    """A 2-layer, 64-wide Llama with SmolLM2's tokenizer and chat template: checkpoints of a few MB."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_checkpoint)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    target = tmp_path_factory.mktemp("tiny-model")
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return str(target)
