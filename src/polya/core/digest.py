"""One way to fingerprint things: canonical JSON and SHA-256.

Every identity polya compares (a stage's settings on resume, a catalog's content, a prompt, the
inputs of a pipeline step, a per-request sampling seed) goes through these functions, so two
places never disagree about how the same value hashes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

SHORT = 16
"""Hex characters kept for short ids (64 bits: collisions are not a concern for folder names and caches)."""


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no whitespace; values JSON lacks are written with ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(data: str | bytes) -> str:
    """SHA-256 of text (UTF-8) or bytes, as 64 hex characters."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def digest(value: Any, length: int | None = None) -> str:
    """SHA-256 of ``value``'s canonical JSON; ``length`` keeps only the first hex characters."""
    full = sha256_hex(canonical_json(value))
    return full[:length] if length else full


def short_digest(value: Any) -> str:
    """:func:`digest` cut to :data:`SHORT` characters (folder names, cache keys, scorer ids)."""
    return digest(value, SHORT)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a local file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def seed_from(*parts: Any) -> int:
    """A deterministic non-negative 31-bit seed from ``parts`` (joined with ``|``)."""
    raw = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(raw[:4], "big") & 0x7FFFFFFF


def seeded_order(keys: Any, seed: int) -> list[str]:
    """A deterministic pseudo-random order of string keys (by the SHA-256 of seed and key)."""
    return sorted(keys, key=lambda k: sha256_hex(f"{seed}|{k}"))
