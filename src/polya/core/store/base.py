"""The one interface every stage uses to read and write its artifacts.

An :class:`ArtifactStore` is rooted somewhere (a local folder, an S3 bucket + prefix) and
addresses objects by paths relative to that root with ``/`` separators (``generate/rows.jsonl``).
Every write is atomic: readers see the old object or the complete new one, never a partial one.
Concrete stores implement a handful of primitives; text, JSON, JSONL and folder transfers are
built on them here once.
"""

from __future__ import annotations

import builtins
import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable, TypeVar

from polya.core.errors import StoreError

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
"""Name prefix of in-progress files; listings and folder uploads never include them."""

S = TypeVar("S", bound="ArtifactStore")


def normalize_path(path: str, *, allow_root: bool = False) -> str:
    """Return ``path`` as clean ``a/b/c`` segments, rejecting anything that leaves the root.

    Empty and ``.`` segments are dropped; ``..`` segments and absolute paths raise
    :class:`StoreError`. The empty path (the root itself) is only valid with ``allow_root``.
    """
    if path.startswith("/") or path.startswith("\\"):
        raise StoreError(f"store path '{path}' is absolute; use a path relative to the store root, e.g. 'stage/file.jsonl'")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise StoreError(f"store path '{path}' escapes the store root ('..' is not allowed); use a path inside the store")
    if not parts and not allow_root:
        raise StoreError("store path is empty; name a file relative to the store root, e.g. 'stage/file.jsonl'")
    return "/".join(parts)


def join_path(prefix: str, path: str) -> str:
    """Join two already-normalized relative paths (either may be empty)."""
    return "/".join(part for part in (prefix, path) if part)


def is_temp_path(path: str) -> bool:
    """True when any segment of ``path`` is an in-progress temp file or folder."""
    return any(part.startswith(TEMP_PREFIX) for part in path.split("/"))


class ArtifactStore(ABC):
    """Read and write artifacts under one root, atomically, by relative ``/`` paths."""

    # Annotations in this class say ``builtins.list``: the ``list`` method shadows the builtin here.

    # ---- primitives each store implements ---------------------------------------------------

    @abstractmethod
    def uri(self, path: str = "") -> str:
        """Full location of ``path`` for messages and logs (``s3://b/p/a.jsonl``, ``/abs/a.jsonl``)."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """True when an object (a file, not a folder) exists at ``path``."""

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """Return the object's content; a missing object raises :class:`StoreError` naming its uri."""

    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace the object at ``path`` with ``data`` atomically."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Sorted paths (relative to the store root) of every object inside folder ``prefix``.

        Recursive; ``prefix`` is a folder (``ckpt`` lists ``ckpt/a`` but not ``ckpt2/a``); temp
        files of unfinished writes are never listed.
        """

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove the object at ``path``; removing a missing object is not an error."""

    @abstractmethod
    def upload_file(self, local_path: str | Path, path: str) -> None:
        """Copy a local file into the store at ``path`` atomically."""

    @abstractmethod
    def download_file(self, path: str, local_path: str | Path) -> None:
        """Copy the object at ``path`` to ``local_path``; the local file appears only when complete."""

    @abstractmethod
    def sha256(self, path: str) -> str:
        """Hex SHA-256 digest of the object's content, read as a stream."""

    @abstractmethod
    def child(self: S, prefix: str) -> S:
        """A store of the same kind rooted at ``prefix`` inside this one."""

    # ---- formats built on the primitives ---------------------------------------------------

    def read_text(self, path: str) -> str:
        """Return the object's content decoded as UTF-8."""
        data = self.read_bytes(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(f"{self.uri(path)} is not UTF-8 text: {exc}") from exc

    def write_text(self, path: str, text: str) -> None:
        """Write ``text`` encoded as UTF-8, atomically."""
        self.write_bytes(path, text.encode("utf-8"))

    def read_json(self, path: str) -> Any:
        """Parse the object as one JSON document."""
        text = self.read_text(path)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self.uri(path)} is not valid JSON: {exc}") from exc

    def write_json(self, path: str, obj: Any) -> None:
        """Write ``obj`` as indented JSON (keys in their given order), atomically."""
        self.write_text(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")

    def read_jsonl(self, path: str) -> builtins.list[dict[str, Any]]:
        """Parse the object as JSON Lines: one JSON object per non-blank line."""
        from polya.core.jsonl import jsonl_objects

        return [row for _n, row in jsonl_objects(self.read_text(path).splitlines(), self.uri(path), StoreError)]

    def write_jsonl(self, path: str, rows: Iterable[dict[str, Any]]) -> None:
        """Write ``rows`` as JSON Lines (one object per line, UTF-8 kept as is), atomically."""
        lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
        self.write_text(path, "".join(lines))

    # ---- folders (checkpoints) ---------------------------------------------------------------

    def upload_dir(self, local_dir: str | Path, prefix: str) -> builtins.list[str]:
        """Upload every file under ``local_dir`` to folder ``prefix``; return the store paths.

        Each file is uploaded atomically; leftover temp files in ``local_dir`` are skipped.
        """
        source = Path(local_dir)
        if not source.is_dir():
            raise StoreError(f"cannot upload {source}: it is not a folder")
        prefix = normalize_path(prefix, allow_root=True)
        uploaded: builtins.list[str] = []
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            relative = file.relative_to(source).as_posix()
            if is_temp_path(relative):
                continue
            target = join_path(prefix, relative)
            self.upload_file(file, target)
            uploaded.append(target)
        logger.info("uploaded %s files from %s to %s", len(uploaded), source, self.uri(prefix))
        return uploaded

    def download_dir(self, prefix: str, local_dir: str | Path) -> builtins.list[Path]:
        """Download every object in folder ``prefix`` under ``local_dir``; return the local files.

        An empty or missing folder raises :class:`StoreError`, so a missing checkpoint is never
        mistaken for an empty one.
        """
        prefix = normalize_path(prefix, allow_root=True)
        paths = self.list(prefix)
        if not paths:
            raise StoreError(f"nothing to download: no objects under {self.uri(prefix)}")
        target = Path(local_dir)
        downloaded: builtins.list[Path] = []
        for path in paths:
            relative = path[len(prefix) + 1 :] if prefix else path
            local_path = target.joinpath(*relative.split("/"))
            self.download_file(path, local_path)
            downloaded.append(local_path)
        logger.info("downloaded %s files from %s to %s", len(downloaded), self.uri(prefix), target)
        return downloaded

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri()!r})"
