"""Artifact stores: one interface over a local folder or an S3 bucket.

Stages never touch files directly; they take an :class:`ArtifactStore` (usually from
:func:`open_store` on a ``--run-dir`` value) and read/write by relative paths.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from polya.errors import StoreError
from polya.store.base import ArtifactStore
from polya.store.local import LocalStore
from polya.store.s3 import S3Store

__all__ = ["ArtifactStore", "LocalStore", "S3Store", "open_store"]

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
