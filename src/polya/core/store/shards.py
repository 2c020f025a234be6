"""Stream records into a store as a series of atomic JSONL shards.

Object stores cannot append, and a local file that is appended to can be left with a half line
after a crash. So a stream of records is written as numbered shard objects
(``<prefix>/part-000003-<token>.jsonl``), each written atomically by the store. A reader sees
every record that was flushed and never a partial one; a killed writer loses at most the records
still in its buffer, and the caller controls that bound with ``flush_every``/``flush_interval_s``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any, Iterator

from polya.core.store.base import ArtifactStore

_SHARD = re.compile(r"part-(\d{6})-[0-9a-f]+\.jsonl$")


def shard_paths(store: ArtifactStore, prefix: str) -> list[str]:
    """The shard objects under ``prefix``, in write order within each folder, folders in name order."""
    found = [p for p in store.list(prefix) if _SHARD.search(p)]
    return sorted(found, key=lambda p: (p.rsplit("/", 1)[0] if "/" in p else "", int(_SHARD.search(p).group(1)), p))  # type: ignore[union-attr]


def read_shards(store: ArtifactStore, prefix: str) -> Iterator[dict[str, Any]]:
    """Every record of every shard under ``prefix``, in write order."""
    for path in shard_paths(store, prefix):
        for line in store.read_text(path).splitlines():
            if line.strip():
                yield json.loads(line)


class ShardWriter:
    """Buffer records and write them out as atomic shards under one prefix."""

    def __init__(self, store: ArtifactStore, prefix: str, flush_every: int = 64, flush_interval_s: float = 10.0):
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        existing = [int(_SHARD.search(p).group(1)) for p in shard_paths(store, self.prefix)]  # type: ignore[union-attr]
        self._next_seq = max(existing, default=-1) + 1
        self.written = 0

    def add(self, records: list[dict[str, Any]]) -> bool:
        """Buffer records (kept together in one shard); return True when a flush is due."""
        self._buffer.extend(records)
        return self.due()

    def due(self) -> bool:
        return bool(self._buffer) and (
            len(self._buffer) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_interval_s
        )

    def take(self) -> tuple[str, list[dict[str, Any]]] | None:
        """Detach the buffered records with the shard path they should be written to."""
        if not self._buffer:
            return None
        rows, self._buffer = self._buffer, []
        path = f"{self.prefix}/part-{self._next_seq:06d}-{secrets.token_hex(4)}.jsonl"
        self._next_seq += 1
        self._last_flush = time.monotonic()
        return path, rows

    def write(self, path: str, rows: list[dict[str, Any]]) -> None:
        self.store.write_jsonl(path, rows)
        self.written += len(rows)

    def flush(self) -> None:
        """Write whatever is buffered now (synchronously)."""
        batch = self.take()
        if batch:
            self.write(*batch)
