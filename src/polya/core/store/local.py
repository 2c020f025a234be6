"""An artifact store in a local (or mounted) folder, with crash-safe atomic writes.

A write goes to a ``.tmp-*`` file in the target's folder, is flushed and fsynced, then renamed
over the target with :func:`os.replace` and the folder is fsynced: after a crash the target holds
either its old content or the new content, and the leftover temp file is never listed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

from polya.core.digest import file_sha256
from polya.core.errors import StoreError
from polya.core.store.base import (
    TEMP_PREFIX,
    ArtifactStore,
    is_temp_path,
    join_path,
    normalize_path,
)

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[BinaryIO]:
    """Open a temp file next to ``target`` for binary writing; on success it replaces ``target``.

    The parent folder is created when missing. If the body raises, the temp file is removed and
    ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}-{target.name}"
    # O_EXCL: never reuse another writer's temp file; 0o666 lets the umask decide permissions.
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        _raise_if_full(exc, target)
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        if isinstance(exc, OSError):
            _raise_if_full(exc, target)
        raise
    _fsync_dir(target.parent)


def _raise_if_full(exc: OSError, target: Path) -> None:
    """A full disk (or quota) is a :class:`StoreError` that says where and how much is free; the
    temporary file is already gone, so nothing half-written is left."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return
    try:
        free = shutil.disk_usage(target.parent).free
        room = f"{free:,} bytes free there"
    except OSError:
        room = "free space unknown"
    raise StoreError(
        f"no space left to write {target} ({'disk quota exceeded' if exc.errno == errno.EDQUOT else 'disk full'}; {room}); "
        "free some space or put run_dir on a larger volume, then run the same command again: finished work is kept"
    ) from exc


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_atomically(source: Path, target: Path, missing: str) -> None:
    """Copy ``source`` to ``target`` through a temporary file; ``missing`` is the error when the source is no file."""
    try:
        with source.open("rb") as reader, atomic_file(target) as writer:
            shutil.copyfileobj(reader, writer, _CHUNK_BYTES)
    except OSError as exc:
        if not source.is_file():
            raise StoreError(missing) from None
        raise StoreError(f"cannot copy {source} to {target}: {exc}") from exc


class LocalStore(ArtifactStore):
    """Artifacts under a local folder; the folder is created on the first write."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()

    def _file(self, path: str) -> Path:
        return self.root.joinpath(*normalize_path(path).split("/"))

    def uri(self, path: str = "") -> str:
        """Absolute local path of ``path`` (the root itself for ``""``)."""
        relative = normalize_path(path, allow_root=True)
        return str(self.root.joinpath(*relative.split("/"))) if relative else str(self.root)

    def exists(self, path: str) -> bool:
        """True when a file exists at ``path``."""
        return self._file(path).is_file()

    def read_bytes(self, path: str) -> bytes:
        """Return the file's content."""
        file = self._file(path)
        try:
            return file.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"not found: {file}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {file}: {exc}") from exc

    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace the file at ``path`` with ``data`` atomically."""
        file = self._file(path)
        try:
            with atomic_file(file) as handle:
                handle.write(data)
        except OSError as exc:
            raise StoreError(f"cannot write {file}: {exc}") from exc
        logger.debug("wrote %s bytes to %s", len(data), file)

    def list(self, prefix: str = "") -> list[str]:
        """Sorted root-relative paths of all files inside folder ``prefix``, temp files excluded."""
        prefix = normalize_path(prefix, allow_root=True)
        folder = self.root.joinpath(*prefix.split("/")) if prefix else self.root
        if not folder.is_dir():
            return []
        paths: list[str] = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [name for name in dirnames if not name.startswith(TEMP_PREFIX)]
            relative_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                relative = join_path("" if relative_dir == "." else relative_dir, name)
                if not is_temp_path(relative):
                    paths.append(relative)
        return sorted(paths)

    def delete(self, path: str) -> None:
        """Remove the file at ``path`` if it exists."""
        file = self._file(path)
        try:
            file.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot delete {file}: {exc}") from exc

    def upload_file(self, local_path: str | Path, path: str) -> None:
        """Copy a local file into the store atomically."""
        source = Path(local_path)
        _copy_atomically(source, self._file(path), f"cannot upload {source} to {self._file(path)}: {source} is not a file")

    def download_file(self, path: str, local_path: str | Path) -> None:
        """Copy the file at ``path`` to ``local_path`` atomically."""
        source = self._file(path)
        _copy_atomically(source, Path(local_path), f"not found: {source}")

    def sha256(self, path: str) -> str:
        """Hex SHA-256 of the file, read in chunks."""
        file = self._file(path)
        try:
            return file_sha256(file)
        except FileNotFoundError:
            raise StoreError(f"not found: {file}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {file}: {exc}") from exc

    def child(self, prefix: str) -> LocalStore:
        """A local store rooted at folder ``prefix`` inside this one."""
        return LocalStore(self.root.joinpath(*normalize_path(prefix).split("/")))
