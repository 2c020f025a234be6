"""LoRA through peft: only the adapted projections change; final/ is the merged model, adapter/ the adapter.

Skipped where peft is not installed (it is not in the `train` extra yet).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from polya.sft.config import SftConfig
from polya.sft.stage import run

pytestmark = pytest.mark.integration
peft = pytest.importorskip("peft")


def test_lora_trains_adapters_and_merges_them(run_dir_with_dataset: Path, embedded_checkpoint: str) -> None:
    out = run(
        SftConfig(
            run_dir=str(run_dir_with_dataset), max_steps=4, batch_size=2, max_seq_length=256, learning_rate=1e-3,
            logging_steps=1, save_steps=100, progress=False,
            lora={"enabled": True, "r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
        )
    )
    summary = out.summary
    assert summary["lora"] is True and summary["global_step"] == 4
    assert summary["last_loss"] < summary["first_loss"]
    adapter = run_dir_with_dataset / "sft" / "polya" / "adapter"
    assert out.adapter_uri == str(adapter)
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    lora_weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert lora_weights and all("lora_" in k for k in lora_weights)
    assert any("q_proj" in k for k in lora_weights) and any("v_proj" in k for k in lora_weights)
    assert not any("k_proj" in k or "mlp" in k for k in lora_weights)

    base = load_file(str(Path(embedded_checkpoint) / "model.safetensors"))
    final = load_file(str(Path(out.final_uri) / "model.safetensors"))
    assert set(final) == set(base), "final/ is a plain checkpoint (adapter merged), loadable by vLLM"
    changed = {k for k in base if not torch.equal(base[k], final[k])}
    assert changed and all(("q_proj" in k or "v_proj" in k) for k in changed)
    assert any("q_proj" in k for k in changed) and any("v_proj" in k for k in changed)

    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out.final_uri).config.hidden_size == 576
