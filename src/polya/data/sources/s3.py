"""Question files in S3-compatible object storage, fetched through :mod:`polya.core.store`."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path, PurePosixPath
from typing import Literal, Mapping

from polya.core.errors import DataError, PolyaError
from polya.data.config import S3_PREFIX, ColumnsConfig, resolve_format
from polya.data.sources.files import load_jsonl, load_parquet
from polya.data.sources.normalize import OnError, QuestionSet

logger = logging.getLogger(__name__)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/dir/file.jsonl`` -> (``s3://bucket/dir``, ``file.jsonl``).

    >>> split_s3_uri("s3://bucket/q.parquet")
    ('s3://bucket', 'q.parquet')
    """
    if not uri.startswith(S3_PREFIX):
        raise DataError(f"not an s3:// URI: {uri!r}")
    rest = uri[len(S3_PREFIX) :].strip("/")
    if "/" not in rest or not rest.split("/", 1)[0]:
        raise DataError(f"s3 URI {uri!r} must name a bucket and a file, e.g. s3://bucket/questions.jsonl")
    parent, name = rest.rsplit("/", 1)
    return f"{S3_PREFIX}{parent}", name


def load_s3(
    uri: str,
    *,
    format: Literal["auto", "jsonl", "parquet"] = "auto",
    columns: ColumnsConfig | Mapping[str, str | None] | None = None,
    on_error: OnError = "raise",
) -> QuestionSet:
    """Download ``s3://bucket/key.jsonl|.parquet`` to a temporary file and read it.

    Messages and each record's ``source`` name the URI, not the temporary file.
    """
    try:
        fmt = resolve_format(uri, format)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if fmt not in ("jsonl", "parquet"):
        raise DataError(f"{uri}: s3 sources must be .jsonl or .parquet files (got format {fmt!r})")
    store_uri, name = split_s3_uri(uri)
    from polya.core.store import open_store  # lazy: the store pulls in the S3 client

    with tempfile.TemporaryDirectory(prefix="polya-data-") as tmp:
        local = Path(tmp) / PurePosixPath(name).name
        try:
            store = open_store(store_uri)
            store.download_file(name, local)
        except PolyaError:
            raise
        except Exception as exc:  # noqa: BLE001 - network and client errors
            raise DataError(f"could not download {uri} ({type(exc).__name__}: {exc})") from None
        logger.info("downloaded %s", uri)
        reader = load_jsonl if fmt == "jsonl" else load_parquet
        return reader(local, columns=columns, on_error=on_error, label=uri, source_name=uri)
