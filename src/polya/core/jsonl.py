"""JSON Lines, parsed one way everywhere: line numbers, UTF-8 (a BOM on the first line is allowed),
blank lines skipped, and a message for each bad line that the caller raises or counts."""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator


class JsonlLineError(ValueError):
    """What is wrong with one line (its text names the problem; the caller adds the file and line)."""


def jsonl_lines(lines: Iterable[bytes | str], require_object: bool = True) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line; a bad line yields a :class:`JsonlLineError` as its value.

    A line is bad when it is not UTF-8, not JSON, or (with ``require_object``) not a JSON object.
    """
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield number, JsonlLineError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})")
                continue
        else:
            text = raw.removeprefix("\ufeff") if number == 1 else raw
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, JsonlLineError(f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if require_object and not isinstance(value, dict):
            yield number, JsonlLineError(f"expected a JSON object, got {type(value).__name__}")
            continue
        yield number, value


def jsonl_objects(lines: Iterable[bytes | str], source: str, error: type[Exception]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every line; the first bad line raises ``error`` naming ``source`` and the line."""
    for number, value in jsonl_lines(lines):
        if isinstance(value, JsonlLineError):
            raise error(f"{source}: line {number}: {value}")
        yield number, value
