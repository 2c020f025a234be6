"""Local JSONL and Parquet question files, read as a stream."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

from polya.core.errors import DataError
from polya.core.jsonl import JsonlLineError, jsonl_lines
from polya.data.config import ColumnsConfig
from polya.data.sources.normalize import OnError, QuestionSet, RowNormalizer, stem_of

logger = logging.getLogger(__name__)

PARQUET_BATCH_ROWS = 1024


def _existing_file(path: str | Path, label: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"question file not found: {label}")
    if not p.is_file():
        raise DataError(f"question source is not a file: {label}")
    return p


def load_jsonl(
    path: str | Path,
    *,
    columns: ColumnsConfig | Mapping[str, str | None] | None = None,
    on_error: OnError = "raise",
    label: str | None = None,
    source_name: str | None = None,
) -> QuestionSet:
    """Read a JSONL file line by line into normalized records.

    Blank lines are ignored. A line that is not valid JSON or UTF-8, not an object, or lacks
    the question/answer columns raises :class:`DataError` naming the file and the 1-based line
    (``on_error="raise"``), or is skipped and counted (``on_error="skip"``). ``label`` replaces
    the path in messages (an ``s3://`` URI the file was downloaded from, for instance) and
    ``source_name`` is what each record's ``source`` says (default: the label).
    """
    label = label or str(path)
    p = _existing_file(path, label)
    norm = RowNormalizer(label, id_prefix=stem_of(label), columns=columns, on_error=on_error, source_name=source_name)
    index = 0
    with p.open("rb") as handle:
        for line_no, row in jsonl_lines(handle, require_object=False):
            if isinstance(row, JsonlLineError):
                norm.fail(f"line {line_no}", str(row))
            else:
                norm.add(row, index, f"line {line_no}")
            index += 1
    result = norm.result()
    logger.info("read %d questions from %s (%d skipped)", len(result.records), label, result.skipped)
    return result


def load_parquet(
    path: str | Path,
    *,
    columns: ColumnsConfig | Mapping[str, str | None] | None = None,
    on_error: OnError = "raise",
    label: str | None = None,
    source_name: str | None = None,
) -> QuestionSet:
    """Read a Parquet file batch by batch into normalized records.

    Columns are resolved once from the schema (a missing question/answer column is always an
    error); a bad row raises :class:`DataError` naming the file and the 0-based row, or is
    skipped and counted when ``on_error="skip"``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    label = label or str(path)
    p = _existing_file(path, label)
    try:
        parquet = pq.ParquetFile(p)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{label}: not a readable Parquet file ({exc})") from None
    norm = RowNormalizer(label, id_prefix=stem_of(label), columns=columns, on_error=on_error, source_name=source_name)
    norm.resolve(parquet.schema_arrow.names)
    index = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                norm.add(row, index, f"row {index}")
                index += 1
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{label}: Parquet data unreadable after row {index} ({exc})") from None
    result = norm.result()
    logger.info("read %d questions from %s (%d skipped)", len(result.records), label, result.skipped)
    return result
