"""The verify stage (``polya verify``): judge a JSONL file of items, in-process or through a
running verifier service, and write each record back with its verdict's fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from polya.core.errors import DataError
from polya.core.jsonl import jsonl_objects
from polya.core.store.local import atomic_file
from polya.verify.client import Verifier, first_validation_error
from polya.verify.protocol import VerifyItem

_ITEM_FIELDS = frozenset(VerifyItem.model_fields)
VERDICT_FIELDS = ("correct", "status", "extracted", "reason", "latency_s")
"""Fields a verdict adds to each input record in the output file."""


def read_items_jsonl(path: str | Path) -> tuple[list[dict[str, Any]], list[VerifyItem]]:
    """The records of a JSONL file and the items in them; errors name the file and the line.

    Keys other than :class:`VerifyItem`'s fields (a question id, a heuristic, ...) are kept in the
    record and left out of judging. Blank lines are skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"input file not found: {p}")
    records: list[dict[str, Any]] = []
    items: list[VerifyItem] = []
    with p.open("rb") as handle:
        for lineno, record in jsonl_objects(handle, str(p), DataError):
            try:
                item = VerifyItem.model_validate({k: v for k, v in record.items() if k in _ITEM_FIELDS})
            except ValidationError as exc:
                raise DataError(
                    f"{p}: line {lineno}: not a valid item: {first_validation_error(exc)} "
                    "(an item needs kind math|code|choice and prediction; math and choice need reference, "
                    "choice needs options, code needs tests)"
                ) from None
            records.append(record)
            items.append(item)
    return records, items


def verify_jsonl(
    input_path: str | Path, output_path: str | Path, verifier: Verifier, *, progress: bool = True
) -> dict[str, Any]:
    """Judge every item of a JSONL file; write each record plus its verdict's fields to ``output_path``.

    The output appears all at once (temporary file, fsync, rename). Returns a summary.
    """
    from tqdm import tqdm

    records, items = read_items_jsonl(input_path)
    out = Path(output_path)
    with tqdm(total=len(items), unit="item", desc="verify", disable=not progress, dynamic_ncols=True) as bar:
        verdicts = verifier.verify(items, progress=bar.update)
    with atomic_file(out) as handle:  # the output appears whole or not at all
        for record, verdict in zip(records, verdicts):
            row = dict(record)
            for key in VERDICT_FIELDS:
                row[key] = getattr(verdict, key)
            handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    counts = {status: sum(1 for v in verdicts if v.status == status) for status in ("pass", "fail", "timeout", "error")}
    return {
        "items": len(items), "correct": sum(1 for v in verdicts if v.correct), **counts,
        "undecided": counts["timeout"] + counts["error"], "output": str(out),
    }
