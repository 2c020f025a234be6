"""Where a config's ``model`` value points, as something vLLM and transformers can load.

One function, :func:`resolve_model`, used by every stage that loads or serves a model (SFT, RL,
eval, the model server), so a model value means the same thing everywhere:

- ``embedded:smollm2-135m-instruct``: the embedded checkpoint, converted once from its GGUF file;
- a local folder: its absolute path (it must hold ``config.json``);
- ``s3://bucket/.../final``: the checkpoint folder, downloaded once into polya's cache
  (``$POLYA_CACHE_DIR/models/s3/<digest>``) and reused; a download cut short is never used;
- anything else: a Hugging Face hub id, returned as it is.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from polya.core.digest import short_digest
from polya.core.errors import ConfigError
from polya.core.layout import cache_dir
from polya.models.embedded import EMBEDDED_MODEL, ensure_embedded_checkpoint

logger = logging.getLogger(__name__)

_COMPLETE = ".polya-complete"


def download_checkpoint(uri: str) -> Path:
    """The local copy of the ``s3://`` checkpoint folder ``uri``, downloaded on first use."""
    from polya.core.store import open_store

    target = cache_dir() / "models" / "s3" / short_digest(uri)
    marker = target / _COMPLETE
    if marker.is_file():
        return target
    store = open_store(uri)
    if not store.exists("config.json"):
        raise ConfigError(f"model {uri!r}: no config.json there; point to an HF checkpoint folder (e.g. <run_dir>/sft/polya/final)")
    if target.exists():
        shutil.rmtree(target)
    logger.info("downloading %s to %s (once)", uri, target)
    store.download_dir("", target)
    marker.write_text(uri + "\n", encoding="utf-8")
    return target


def resolve_model(model: str) -> str:
    """Map a config's ``model`` value to a local checkpoint directory or a hub id (see the module doc)."""
    if model == EMBEDDED_MODEL:
        return str(ensure_embedded_checkpoint())
    if model.startswith("embedded:"):
        raise ConfigError(f"unknown embedded model '{model}'; the embedded model is '{EMBEDDED_MODEL}'")
    if model.startswith("s3://"):
        return str(download_checkpoint(model))
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model directory {path} has no config.json; point to an HF checkpoint directory")
        return str(path.resolve())
    return model


def load_config_and_tokenizer(model: str) -> tuple[str, Any, Any]:
    """``(local path or hub id, HF config, tokenizer)`` of a config's ``model`` value, before any weights load.

    A model whose config or tokenizer cannot be read raises :class:`ConfigError` naming it.
    """
    path = resolve_model(model)
    from transformers import AutoConfig, AutoTokenizer

    try:
        return path, AutoConfig.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model {model!r}: cannot load its config/tokenizer from {path}: {exc}") from None
