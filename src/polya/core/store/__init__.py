"""Artifact stores: one interface over a local folder or an S3 bucket.

Stages never touch files directly; they take an :class:`ArtifactStore` (usually from
:func:`open_store` on a ``--run-dir`` value) and read/write by relative paths.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from polya.core.errors import StoreError
from polya.core.store.base import ArtifactStore
from polya.core.store.local import LocalStore
from polya.core.store.s3 import S3Store

__all__ = ["ArtifactStore", "LocalStore", "S3Store", "copy_folder_in", "copy_folder_out", "open_store"]

SUPPORTED_SCHEMES = ("s3://bucket/prefix", "file:///absolute/path", "a plain local path")


def open_store(uri: str | Path, *, create_bucket: bool = False) -> ArtifactStore:
    """Open the store a location names.

    ``s3://bucket/some/prefix`` gives an :class:`S3Store` (``create_bucket`` creates a missing
    bucket); ``file:///x`` or a plain path gives a :class:`LocalStore`. Any other scheme raises
    :class:`StoreError` listing the supported forms.
    """
    if isinstance(uri, Path):
        return LocalStore(uri)
    parts = urlsplit(uri)
    # A one-letter "scheme" is a Windows drive (C:\runs), not a URL.
    if not parts.scheme or len(parts.scheme) == 1:
        return LocalStore(uri)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StoreError(f"'{uri}' names no bucket; expected s3://bucket/optional/prefix")
        return S3Store(parts.netloc, parts.path.strip("/"), create_bucket=create_bucket)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"'{uri}' names a remote host; a file:// location must be local, e.g. file:///data/runs")
        return LocalStore(unquote(parts.path))
    raise StoreError(
        f"unsupported store location '{uri}' (scheme '{parts.scheme}://'); use one of: {', '.join(SUPPORTED_SCHEMES)}"
    )


def copy_folder_in(uri: str, local_dir: str | Path) -> Path:
    """Copy the folder at ``uri`` (local path or ``s3://``) to ``local_dir``, replacing what was there."""
    target = Path(local_dir)
    if target.exists():
        shutil.rmtree(target)
    store = open_store(uri)
    if isinstance(store, LocalStore):
        source = Path(store.uri())
        if not source.is_dir():
            raise StoreError(f"expected a folder at {uri}, found none")
        shutil.copytree(source, target)
    else:
        target.mkdir(parents=True, exist_ok=True)
        store.download_dir("", target)
    return target


def copy_folder_out(local_dir: str | Path, uri: str) -> str:
    """Copy a local folder to ``uri`` (local path or ``s3://``), replacing a local target; return ``uri``."""
    store = open_store(uri)
    if isinstance(store, LocalStore):
        target = Path(store.uri())
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(local_dir, target)
    else:
        store.upload_dir(local_dir, "")
    return uri
