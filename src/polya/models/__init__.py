"""Model resolution: the embedded default checkpoint and user-supplied models."""

from polya.models.embedded import EMBEDDED_MODEL, ensure_embedded_checkpoint, resolve_model

__all__ = ["EMBEDDED_MODEL", "ensure_embedded_checkpoint", "resolve_model"]
