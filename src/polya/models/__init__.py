"""Models: the embedded default checkpoint and what a config's ``model`` value resolves to."""

from polya.models.embedded import EMBEDDED_MODEL, ensure_embedded_checkpoint
from polya.models.resolve import (
    download_checkpoint,
    load_config_and_tokenizer,
    resolve_model,
)

__all__ = ["EMBEDDED_MODEL", "download_checkpoint", "ensure_embedded_checkpoint", "load_config_and_tokenizer", "resolve_model"]
