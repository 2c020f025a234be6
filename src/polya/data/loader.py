"""``load_questions(config)``: the one entry point that turns a :class:`DataConfig` into questions,
plus the ``questions.jsonl`` artifact helpers."""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path
from typing import Iterable

from pydantic import ValidationError

from polya.core.errors import ConfigError, DataError
from polya.core.jsonl import jsonl_objects
from polya.data.config import S3_PREFIX, SYNTHETIC_SOURCE, DataConfig, resolve_format
from polya.data.records import QuestionRecord
from polya.data.sources import QuestionSet, load_hf, load_jsonl, load_parquet, load_s3
from polya.data.sources.normalize import MAX_KEPT_ERRORS
from polya.data.synthetic import generate_word_problems

logger = logging.getLogger(__name__)


def read_source(config: DataConfig) -> QuestionSet:
    """Read every question of ``config.source``, in source order (no shuffle, no limit)."""
    try:
        fmt = resolve_format(config.source, config.format)
    except ValueError as exc:
        raise ConfigError(f"invalid data config: {exc}") from None
    source = config.source.strip()
    if fmt == "synthetic":
        syn = config.synthetic
        records = generate_word_problems(syn.count, seed=config.seed, difficulties=syn.difficulties, templates=syn.templates)
        return QuestionSet(records=records, source=SYNTHETIC_SOURCE)
    common = {"columns": config.columns, "on_error": config.on_error}
    if fmt == "hf":
        return load_hf(source, split=config.split, subset=config.subset, **common)
    if source.startswith(S3_PREFIX):
        return load_s3(source, format=fmt, **common)
    reader = load_jsonl if fmt == "jsonl" else load_parquet
    return reader(source, **common)


def load_questions(config: DataConfig) -> QuestionSet:
    """Load the questions ``config`` describes: read, shuffle with ``seed`` if asked, then ``limit``.

    Raises :class:`DataError` when the source yields no questions at all (showing the first
    skipped-row reasons, if rows were skipped).
    """
    result = read_source(config)
    records = list(result.records)
    if not records:
        detail = ""
        if result.skipped:
            detail = f"; all {result.skipped} rows were skipped, first reasons:\n  " + "\n  ".join(result.errors[:5])
        raise DataError(f"source {config.source} yielded no questions{detail}")
    if config.shuffle:
        random.Random(config.seed).shuffle(records)
    if config.limit is not None:
        records = records[: config.limit]
    if result.skipped:
        logger.warning(
            "skipped %d malformed rows of %s (first: %s)", result.skipped, result.source, result.errors[0] if result.errors else "?"
        )
    logger.info("loaded %d questions from %s", len(records), result.source)
    return QuestionSet(records=records, source=result.source, skipped=result.skipped, errors=list(result.errors[:MAX_KEPT_ERRORS]))


def write_questions(records: Iterable[QuestionRecord], path: str | Path) -> int:
    """Write records to ``path`` as JSONL, one ``QuestionRecord`` per line; returns the count.

    The file is written next to its final name and renamed into place, so a crash never
    leaves a half-written artifact behind.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.model_dump(mode="json"), ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, p)
    return count


def read_questions(path: str | Path) -> list[QuestionRecord]:
    """Read a ``questions.jsonl`` artifact written by :func:`write_questions`.

    Raises :class:`DataError` naming the file and line of the first bad record.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"questions file not found: {p}")
    records: list[QuestionRecord] = []
    with p.open("rb") as handle:
        for line_no, row in jsonl_objects(handle, str(p), DataError):
            try:
                records.append(QuestionRecord.model_validate(row))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
                raise DataError(f"{p}: line {line_no}: not a question record ({problems})") from None
    return records
