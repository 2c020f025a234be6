"""Turn raw source rows (dicts) into :class:`QuestionRecord`s: column detection, answer
extraction, ids, duplicate checks and the raise/skip error policy shared by every reader."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, Iterable, Literal, Mapping

from pydantic import ValidationError

from polya.core.errors import ConfigError, DataError
from polya.data.answers import GSM8K_MARKER, extract_boxed, extract_gsm8k_answer
from polya.data.config import ColumnsConfig
from polya.data.records import QuestionRecord

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
MAX_KEPT_ERRORS = 20

QUESTION_COLUMNS = ("question", "problem", "prompt", "query")
ANSWER_COLUMNS = ("answer", "final_answer", "expected_answer")
SOLUTION_COLUMNS = ("solution",)
ID_COLUMNS = ("id", "unique_id", "uid", "question_id", "problem_id")


@dataclass
class QuestionSet:
    """What a source yielded: the records, and how many rows were skipped and why."""

    records: list[QuestionRecord]
    source: str
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)


class RowError(Exception):
    """One row is malformed; the normalizer adds the file and line."""


def as_columns(columns: ColumnsConfig | Mapping[str, str | None] | None) -> ColumnsConfig:
    """Accept a :class:`ColumnsConfig`, a plain mapping, or ``None`` (auto-detect everything)."""
    if columns is None:
        return ColumnsConfig()
    if isinstance(columns, ColumnsConfig):
        return columns
    try:
        return ColumnsConfig.model_validate(dict(columns))
    except ValidationError as exc:
        raise ConfigError(
            f"invalid column mapping {dict(columns)!r}: valid keys are question, answer, solution, id ({exc})"
        ) from None


@dataclass(frozen=True)
class ResolvedColumns:
    """Column names fixed for one source; ``None`` means the source has no such column."""

    question: str
    answer: str | None
    solution: str | None
    id: str | None

    def mapped(self) -> set[str]:
        return {c for c in (self.question, self.answer, self.solution, self.id) if c is not None}


def resolve_columns(columns: ColumnsConfig, available: Iterable[str]) -> ResolvedColumns:
    """Pick the question/answer/solution/id columns from ``available`` names.

    Explicit names must exist; unset ones are auto-detected. Raises :class:`RowError` when no
    question column, or neither an answer nor a solution column, can be found.
    """
    names = list(available)
    present = set(names)

    def pick(role: str, explicit: str | None, candidates: tuple[str, ...]) -> str | None:
        if explicit is not None:
            if explicit not in present:
                raise RowError(
                    f"column {explicit!r} (data.columns.{role}) is missing; columns present: {', '.join(map(str, names)) or '(none)'}"
                )
            return explicit
        return next((c for c in candidates if c in present), None)

    question = pick("question", columns.question, QUESTION_COLUMNS)
    if question is None:
        raise RowError(
            f"no question column: expected one of {', '.join(QUESTION_COLUMNS)} or set data.columns.question; "
            f"columns present: {', '.join(map(str, names)) or '(none)'}"
        )
    answer = pick("answer", columns.answer, ANSWER_COLUMNS)
    solution = pick("solution", columns.solution, SOLUTION_COLUMNS)
    if answer is None and solution is None:
        raise RowError(
            f"no answer column: expected one of {', '.join(ANSWER_COLUMNS)} (or a solution with \\boxed{{}}), "
            f"or set data.columns.answer; columns present: {', '.join(map(str, names)) or '(none)'}"
        )
    ident = pick("id", columns.id, ID_COLUMNS)
    return ResolvedColumns(question=question, answer=answer, solution=solution, id=ident)


def _scalar_text(value: Any, role: str) -> str | None:
    """A cell as text: strings stripped, numbers without a trailing ``.0``; ``None`` when empty."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise RowError(f"{role} is {value}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")
    raise RowError(f"{role} must be a string or a number, got {type(value).__name__}")


def normalize_answer(value: Any, column: str = "answer") -> tuple[str | None, str | None]:
    """``(answer, solution_from_answer)`` from an answer cell.

    GSM8K's ``... #### 72`` gives ``("72", full text)``; a ``\\boxed{x}`` gives ``x``; plain
    strings and numbers are kept as text (``72.0`` -> ``"72"``).
    """
    text = _scalar_text(value, f"column {column!r}")
    if text is None:
        return None, None
    if GSM8K_MARKER in text:
        try:
            return extract_gsm8k_answer(text), text
        except DataError as exc:
            raise RowError(f"column {column!r}: {exc}") from None
    if "\\boxed" in text or "\\fbox" in text:
        boxed = extract_boxed(text)
        if boxed:
            return boxed, None
    return text, None


class RowNormalizer:
    """Feed raw rows in order; collects records, skipped rows and errors for one source.

    ``label`` names the source in messages (a path or URI), ``id_prefix`` is used for
    ``<prefix>-<row index>`` ids when the source has no id column.
    """

    def __init__(
        self,
        label: str,
        *,
        id_prefix: str,
        columns: ColumnsConfig | Mapping[str, str | None] | None = None,
        on_error: OnError = "raise",
        source_name: str | None = None,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.label = label
        self.id_prefix = id_prefix
        self.columns = as_columns(columns)
        self.on_error = on_error
        self.source_name = source_name or label
        self.resolved: ResolvedColumns | None = None
        self.records: list[QuestionRecord] = []
        self.skipped = 0
        self.errors: list[str] = []
        self._seen: dict[str, str] = {}

    def fail(self, where: str, reason: str) -> None:
        """Raise, or count and remember, a problem with one row."""
        message = f"{self.label}: {where}: {reason}"
        if self.on_error == "raise":
            raise DataError(message)
        self.skipped += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(message)
        logger.debug("skipped %s", message)

    def resolve(self, available: Iterable[str]) -> ResolvedColumns:
        """Fix the columns from a schema up front (Parquet, datasets); raises on failure."""
        try:
            self.resolved = resolve_columns(self.columns, available)
        except RowError as exc:
            raise DataError(f"{self.label}: {exc}") from None
        return self.resolved

    def add(self, row: Any, index: int, where: str) -> QuestionRecord | None:
        """Normalize one row; ``index`` is its 0-based position, ``where`` its place in messages."""
        try:
            record = self._build(row, index)
        except RowError as exc:
            self.fail(where, str(exc))
            return None
        first = self._seen.get(record.id)
        if first is not None:
            self.fail(where, f"duplicate id {record.id!r} (first seen at {first})")
            return None
        self._seen[record.id] = where
        self.records.append(record)
        return record

    def result(self) -> QuestionSet:
        return QuestionSet(records=self.records, source=self.source_name, skipped=self.skipped, errors=self.errors)

    def _build(self, row: Any, index: int) -> QuestionRecord:
        if not isinstance(row, Mapping):
            raise RowError(f"expected a JSON object with question/answer fields, got {type(row).__name__}")
        cols = self.resolved
        if cols is None:
            cols = resolve_columns(self.columns, row.keys())
            self.resolved = cols
        if cols.question not in row:
            raise RowError(f"missing column {cols.question!r}")
        question = row[cols.question]
        if not isinstance(question, str) or not question.strip():
            raise RowError(f"column {cols.question!r} must be a non-empty string, got {question!r:.60}")

        answer: str | None = None
        solution: str | None = None
        if cols.answer is not None:
            if cols.answer not in row and cols.solution is None:
                raise RowError(f"missing column {cols.answer!r}")
            answer, solution = normalize_answer(row.get(cols.answer), cols.answer)
        if cols.solution is not None and row.get(cols.solution) is not None:
            value = row[cols.solution]
            if not isinstance(value, str):
                raise RowError(f"column {cols.solution!r} must be a string, got {type(value).__name__}")
            solution = value
        if answer is None and solution:
            if GSM8K_MARKER in solution:
                try:
                    answer = extract_gsm8k_answer(solution)
                except DataError:
                    answer = None
            if answer is None:
                answer = extract_boxed(solution) or None
        if answer is None:
            what = f"column {cols.answer!r} is empty or missing" if cols.answer else "no answer column"
            if cols.solution:
                what += f" and column {cols.solution!r} has no \\boxed{{}} answer"
            raise RowError(what)

        if cols.id is not None and row.get(cols.id) is not None:
            ident = _scalar_text(row[cols.id], f"column {cols.id!r}")
            if ident is None:
                raise RowError(f"column {cols.id!r} is empty")
        elif cols.id is not None and self.columns.id is not None:
            raise RowError(f"missing id column {cols.id!r}")
        else:
            ident = f"{self.id_prefix}-{index}"

        metadata = {k: v for k, v in row.items() if k not in cols.mapped()}
        return QuestionRecord(
            id=ident,
            question=question.strip(),
            answer=answer,
            solution=solution,
            source=self.source_name,
            metadata=metadata,
        )


def stem_of(location: str) -> str:
    """``data/gsm8k/train.jsonl`` -> ``train``; ``s3://b/x/test.parquet`` -> ``test``."""
    return PurePosixPath(location.replace("\\", "/").rstrip("/")).stem or "row"
