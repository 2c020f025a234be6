"""The benchmark registry: where each evaluation set lives, how its rows read, how it is prompted and judged.

Every entry names its Hugging Face hub id, subset and split, the answer kind the verifier judges
(``math``: math-verify on the final answer; ``code``: HumanEval tests run in the sandbox;
``choice``: multiple choice, MuSR style) and the prompt format. A benchmark is read from the hub
with the ``datasets`` library, or, with no network, from a local file (or ``s3://`` object):
``.jsonl``, ``.json`` (a list of rows), ``.parquet`` or ``.csv``, in the upstream columns or in
others the benchmark's ``columns`` setting names.

Upstream columns, with the role each is read as when its name differs:

| benchmark | hub id (split) | upstream columns (role) |
| --- | --- | --- |
| gsm8k | openai/gsm8k, main (test) | question, answer (a worked solution ending in ``#### <number>``; the number alone also reads) |
| math500 | HuggingFaceH4/MATH-500 (test) | problem (question), solution, answer, subject, level, unique_id (id) |
| aime24 | HuggingFaceH4/aime_2024 (train) | id, problem (question), solution, answer, url, year |
| aime25 | math-ai/aime25 (test) | problem (question), answer, id |
| amc23 | math-ai/amc23 (test) | id, question (or problem), answer (a number, possibly float), url |
| minerva_math | math-ai/minervamath (test) | question, answer |
| olympiadbench | Hothan/OlympiadBench, OE_TO_maths_en_COMP (train) | id, question, final_answer (answer; a list), solution (a list), ... |
| humaneval | openai/openai_humaneval (test) | task_id (id), prompt (question), canonical_solution, test (tests), entry_point |
| musr_* | TAUR-Lab/MuSR (murder_mysteries, object_placements, team_allocation) | narrative (context), question, choices (a Python list, often as its string), answer_index (answer), answer_choice |

Each role is read from the column the benchmark's ``columns`` setting names, else from the first
of the names :attr:`Benchmark.columns` lists that holds a value: the upstream names, then common
alternatives. Math benchmarks take the training data's names
(:mod:`polya.data.sources.normalize`: question, problem, prompt, query; answer, final_answer,
expected_answer; solution; id, unique_id, uid, question_id, problem_id), so the ``{problem,
answer}`` and ``{question, answer}`` rows most evaluation repositories ship load with no setting.
HumanEval also takes question and tests; MuSR context, options, and answer, label or answer_choice
(the correct option's index, letter or text). A missing column is an error naming the row, the
names tried, the columns present and the setting. A math answer that is a list, or the text of a
list of strings, is joined with ``, `` (math-verify compares sets of answers); ``$...$`` around an
answer is dropped.

``synthetic`` is the built-in offline set: GSM8K-style word problems from
:mod:`polya.data.synthetic` with a held-out seed, so ``polya eval`` runs with no data at all (a
file given for it is read like the math benchmarks).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Literal, Mapping

from polya.core.errors import DataError
from polya.core.jsonl import jsonl_objects
from polya.data.answers import GSM8K_MARKER, extract_boxed
from polya.data.sources.normalize import (
    ANSWER_COLUMNS,
    ID_COLUMNS,
    QUESTION_COLUMNS,
    SOLUTION_COLUMNS,
    RowError,
    normalize_answer,
)
from polya.heuristics import HeuristicCatalog, plain_messages

logger = logging.getLogger(__name__)

Kind = Literal["math", "code", "choice"]

SYNTHETIC_EVAL_SEED = 90_210
"""Seed of the synthetic eval set; the training default is seed 0, so the problems differ."""
SYNTHETIC_DEFAULT_COUNT = 16


@dataclass(frozen=True)
class EvalItem:
    """One evaluation question, normalized across benchmarks."""

    id: str
    benchmark: str
    kind: Kind
    question: str
    """What the model is asked: the problem, the HumanEval prompt, or MuSR's question."""
    reference: str | None = None
    """Final answer (math) or the correct option's 0-based index as a string (choice)."""
    options: tuple[str, ...] | None = None
    tests: str | None = None
    entry_point: str | None = None
    context: str | None = None
    """MuSR's narrative, shown before the question."""
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "benchmark": self.benchmark, "kind": self.kind, "question": self.question,
            "reference": self.reference, "options": list(self.options) if self.options else None,
            "tests": self.tests, "entry_point": self.entry_point, "context": self.context, "metadata": self.metadata,
        }


Converter = Callable[["BenchmarkRow", int], EvalItem]
"""Turns one upstream row (read by role) and its 0-based index into an :class:`EvalItem`."""


@dataclass(frozen=True)
class Benchmark:
    """A registry entry."""

    name: str
    title: str
    kind: Kind
    hub_id: str | None
    split: str
    subset: str | None
    prompt_format: Literal["math_boxed", "humaneval", "multiple_choice"]
    columns: Mapping[str, tuple[str, ...]]
    """Role (question, answer, ...) -> the column names tried, in order, when ``columns`` maps no column to it;
    the first is the upstream column. The roles are what a benchmark's ``columns`` setting may map."""
    convert: Converter
    size: int | None = None
    """Questions in the full upstream set (for documentation)."""


def _names(*groups: Iterable[str]) -> tuple[str, ...]:
    """Column names in order, each once."""
    return tuple(dict.fromkeys(name for group in groups for name in group))


def _math_columns(question: tuple[str, ...] = (), answer: tuple[str, ...] = (), ident: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """A math benchmark's roles: its upstream names first, then the names training data is auto-detected by."""
    return {
        "question": _names(question, QUESTION_COLUMNS), "answer": _names(answer, ANSWER_COLUMNS),
        "solution": SOLUTION_COLUMNS, "id": _names(ident, ID_COLUMNS),
    }


# ----- rows read by role -----------------------------------------------------------------------


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, float):
        return not math.isnan(value)
    return True


class BenchmarkRow:
    """One upstream row read by role: the column ``columns`` maps to the role, else the first of the benchmark's names present."""

    def __init__(self, data: Mapping[str, Any], bench: Benchmark, columns: Mapping[str, str], where: str):
        self.data = data
        self.bench = bench
        self.columns = columns
        self.where = where

    def present(self) -> str:
        return ", ".join(sorted(map(str, self.data))) or "(none)"

    def column(self, role: str) -> str | None:
        """The column the role is read from in this row, or None when none of its names holds a value."""
        mapped = self.columns.get(role)
        if mapped is not None:
            if mapped not in self.data:
                raise DataError(f"{self.where}: column '{mapped}' (columns.{role}) is missing; columns present: {self.present()}")
            return mapped
        return next((c for c in self.bench.columns.get(role, ()) if _filled(self.data.get(c))), None)

    def get(self, role: str) -> Any:
        """The role's value, or None when it is absent or empty."""
        column = self.column(role)
        value = None if column is None else self.data.get(column)
        return value if _filled(value) else None

    def need(self, role: str, alternative: str = "") -> Any:
        """The role's value; a :class:`DataError` naming the columns tried, the columns present and the setting otherwise."""
        value = self.get(role)
        if value is None:
            raise DataError(self.missing(role, alternative))
        return value

    def missing(self, role: str, alternative: str = "") -> str:
        mapped = self.columns.get(role)
        if mapped is not None:
            return f"{self.where}: column '{mapped}' (columns.{role}) is empty{alternative}; columns present: {self.present()}"
        names = ", ".join(self.bench.columns[role])
        return (
            f"{self.where}: no {role} column: expected one of {names}{alternative}, or name it with "
            f"benchmarks: [{{name: {self.bench.name}, columns: {{{role}: <column>}}}}]; columns present: {self.present()}"
        )


# ----- answer normalization --------------------------------------------------------------------

_NUMBER = re.compile(r"^[-+]?\$?[\d,]*\.?\d+$")


def _strip_math_dollars(text: str) -> str:
    """``$\\frac{1}{4}$`` -> ``\\frac{1}{4}``; text not wrapped in dollars as it is."""
    text = text.strip()
    if len(text) > 1 and text.startswith("$") and text.endswith("$"):
        return text.strip("$").strip()
    return text


def _text_list(text: str) -> list[str] | None:
    """The strings of ``"['$3$', '$-3$']"`` (a list stored as its text, as CSV files do), else None."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def _math_reference(value: Any, column: str, where: str) -> str:
    """A math answer cell as the reference answer.

    Numbers as text (``27.0`` -> ``27``), GSM8K's ``#### x`` and ``\\boxed{x}`` extracted (as for
    training data), surrounding ``$`` dropped. A list of answers (OlympiadBench's
    ``final_answer``, or the text of a list of strings) is joined with ``, ``: math-verify compares
    sets of answers. A list of numbers in text (``[0, 1]``, an interval) stays as it is.
    """
    if isinstance(value, str):
        value = _text_list(value) or value
    parts = list(value) if isinstance(value, (list, tuple)) else [value]
    answers = []
    for part in parts:
        try:
            text, _solution = normalize_answer(part, column)
        except RowError as exc:
            raise DataError(f"{where}: {exc}") from None
        if text and _strip_math_dollars(text):
            answers.append(_strip_math_dollars(text))
    if not answers:
        raise DataError(f"{where}: column '{column}' holds no answer: {str(value)[:80]!r}")
    return ", ".join(answers)


def _row_id(row: BenchmarkRow, prefix: str | None, index: int) -> str:
    value = row.get("id")
    if value is None:
        return f"{prefix or row.bench.name}-{index}"
    return f"{prefix}-{str(value).strip()}" if prefix else str(value).strip()


# ----- converters ------------------------------------------------------------------------------


def _math(metadata: tuple[str, ...] = ("subject", "level", "year", "url", "type")) -> Converter:
    """Questions with a final answer; with no answer, the ``\\boxed{}`` answer of the solution."""

    def convert(row: BenchmarkRow, index: int) -> EvalItem:
        name = row.bench.name
        question = str(row.need("question"))
        answer = row.get("answer")
        if answer is not None:
            column = row.column("answer")
            assert column is not None
            reference = _math_reference(answer, column, row.where)
        else:
            solution = row.get("solution")
            if isinstance(solution, (list, tuple)):  # OlympiadBench's solutions
                solution = "\n".join(map(str, solution))
            boxed = extract_boxed(str(solution)) if solution is not None else None
            if not boxed:
                raise DataError(row.missing("answer", " (or a solution with a \\boxed{} answer)"))
            reference = boxed
        meta = {k: row.data[k] for k in metadata if _filled(row.data.get(k))}
        return EvalItem(id=_row_id(row, name, index), benchmark=name, kind="math", question=question, reference=reference, metadata=meta)

    return convert


def _gsm8k(row: BenchmarkRow, index: int) -> EvalItem:
    """GSM8K's worked solution ending in ``#### <number>``, or the number alone (the layout of many evaluation repositories)."""
    raw = row.need("answer")
    column = row.column("answer")
    assert column is not None
    worked = isinstance(raw, str) and GSM8K_MARKER in raw
    reference = _math_reference(raw, column, row.where)
    if not worked and not _NUMBER.match(reference):
        raise DataError(
            f"{row.where}: column '{column}' holds neither a worked solution ending in '{GSM8K_MARKER} <number>' nor a number: {str(raw)[:80]!r}"
        )
    return EvalItem(
        id=_row_id(row, "gsm8k", index), benchmark="gsm8k", kind="math", question=str(row.need("question")),
        reference=reference, metadata={"solution": raw} if worked else {},
    )


def _humaneval(row: BenchmarkRow, index: int) -> EvalItem:
    return EvalItem(
        id=_row_id(row, None, index), benchmark="humaneval", kind="code",
        question=str(row.need("question")), tests=str(row.need("tests")),
        entry_point=str(row.need("entry_point")).strip(),
        metadata={"canonical_solution": row.data.get("canonical_solution")},
    )


def parse_choices(value: Any, where: str) -> list[str]:
    """MuSR's ``choices``: a list, or the string of a Python list (as the upstream CSV stores it)."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise DataError(f"{where}: 'choices' is not a list nor the text of a Python list: {value[:80]!r}") from None
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise DataError(f"{where}: 'choices' must hold at least 2 options, got {value!r}")
    return [str(v) for v in value]


_OPTION_LETTER = re.compile(r"^\(?([A-Za-z])\)?\.?$")


def _option_index(value: Any, options: list[str], column: str, where: str) -> int:
    """The 0-based index of the correct option: ``value`` is the index (MuSR's ``answer_index``), else its letter, else its text."""
    index: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        index = value
    elif isinstance(value, float) and value.is_integer():
        index = int(value)
    elif isinstance(value, str):
        text = value.strip()
        letter = _OPTION_LETTER.match(text)
        if text.lstrip("-").isdigit():
            index = int(text)
        elif letter:
            index = ord(letter.group(1).upper()) - ord("A")
        elif text in options:
            index = options.index(text)
    if index is None:
        raise DataError(
            f"{where}: column '{column}' must be the correct option's 0-based index, its letter or its text, got {value!r}; options: {options}"
        )
    if not 0 <= index < len(options):
        raise DataError(f"{where}: '{column}' {index} is outside the {len(options)} choices")
    return index


def _musr(split: str) -> Converter:
    name = f"musr_{split}"

    def convert(row: BenchmarkRow, index: int) -> EvalItem:
        options = parse_choices(row.need("choices"), row.where)
        column = row.column("answer")
        answer_index = _option_index(row.need("answer"), options, column or "answer", row.where)
        return EvalItem(
            id=_row_id(row, name, index), benchmark=name, kind="choice",
            question=str(row.need("question")), context=str(row.need("context")),
            options=tuple(options), reference=str(answer_index),
            metadata={"answer_choice": row.data.get("answer_choice")},
        )

    return convert


_HUMANEVAL_COLUMNS = {"question": ("prompt", "question"), "tests": ("test", "tests"), "entry_point": ("entry_point",), "id": ("task_id", "id")}
_MUSR_COLUMNS = {
    "context": ("narrative", "context"), "question": ("question",), "choices": ("choices", "options"),
    "answer": ("answer_index", "answer", "label", "answer_choice"), "id": ("id",),
}

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        # A local file for "synthetic" is read like GSM8K-shaped rows (question + answer or solution).
        Benchmark("synthetic", "Synthetic word problems (offline)", "math", None, "test", None, "math_boxed", _math_columns(), _math()),
        Benchmark("gsm8k", "GSM8K", "math", "openai/gsm8k", "test", "main", "math_boxed",
                  {"question": QUESTION_COLUMNS, "answer": ANSWER_COLUMNS, "id": ID_COLUMNS}, _gsm8k, 1319),
        Benchmark("math500", "MATH-500", "math", "HuggingFaceH4/MATH-500", "test", None, "math_boxed",
                  _math_columns(("problem",), ident=("unique_id",)), _math(), 500),
        Benchmark("aime24", "AIME 2024", "math", "HuggingFaceH4/aime_2024", "train", None, "math_boxed",
                  _math_columns(("problem", "Problem"), ("answer", "Answer"), ("id", "ID")), _math(), 30),
        Benchmark("aime25", "AIME 2025", "math", "math-ai/aime25", "test", None, "math_boxed", _math_columns(("problem",)), _math(), 30),
        Benchmark("amc23", "AMC 2023", "math", "math-ai/amc23", "test", None, "math_boxed", _math_columns(), _math(), 40),
        Benchmark("minerva_math", "Minerva-Math", "math", "math-ai/minervamath", "test", None, "math_boxed",
                  _math_columns(ident=("id", "idx")), _math(), 272),
        Benchmark("olympiadbench", "OlympiadBench (maths, English, open-ended)", "math", "Hothan/OlympiadBench", "train",
                  "OE_TO_maths_en_COMP", "math_boxed", _math_columns(answer=("final_answer",)),
                  _math(("subfield", "answer_type", "unit", "is_multiple_answer")), 674),
        Benchmark("humaneval", "HumanEval", "code", "openai/openai_humaneval", "test", None, "humaneval", _HUMANEVAL_COLUMNS, _humaneval, 164),
        Benchmark("musr_murder_mysteries", "MuSR murder mysteries", "choice", "TAUR-Lab/MuSR", "murder_mysteries", None,
                  "multiple_choice", _MUSR_COLUMNS, _musr("murder_mysteries"), 250),
        Benchmark("musr_object_placements", "MuSR object placements", "choice", "TAUR-Lab/MuSR", "object_placements", None,
                  "multiple_choice", _MUSR_COLUMNS, _musr("object_placements"), 256),
        Benchmark("musr_team_allocation", "MuSR team allocation", "choice", "TAUR-Lab/MuSR", "team_allocation", None,
                  "multiple_choice", _MUSR_COLUMNS, _musr("team_allocation"), 250),
    )
}
"""Every known benchmark by name."""

MATH_BENCHMARKS = ("math500", "aime24", "aime25", "amc23", "minerva_math", "olympiadbench")
"""The paper's six math benchmarks (GSM8K is the in-distribution companion)."""
PAPER_BENCHMARKS = MATH_BENCHMARKS + ("humaneval", "musr_murder_mysteries", "musr_team_allocation")


def get_benchmark(name: str) -> Benchmark:
    """The registry entry ``name``; a :class:`DataError` lists the valid names otherwise."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise DataError(f"unknown benchmark '{name}'; valid: {', '.join(BENCHMARKS)}") from None


# ----- reading rows ----------------------------------------------------------------------------

ROW_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv")


def _read_bytes(path: str) -> bytes:
    if path.startswith("s3://"):
        from polya.core.store import open_store
        from polya.data.sources.s3 import split_s3_uri

        bucket, key = split_s3_uri(path)
        return open_store(f"s3://{bucket}").read_bytes(key)
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"benchmark file not found: {path}")
    return p.read_bytes()


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows of a local (or s3://) ``.jsonl``, ``.json``, ``.parquet`` or ``.csv`` file, as dicts."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix not in ROW_SUFFIXES:
        raise DataError(f"benchmark file {path}: unknown suffix {suffix or '(none)'}; valid suffixes: {', '.join(ROW_SUFFIXES)}")
    data = _read_bytes(path)
    if suffix in (".jsonl", ".ndjson"):
        return [row for _n, row in jsonl_objects(data.splitlines(), path, DataError)]
    if suffix == ".json":
        try:
            obj = json.loads(data.decode("utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(obj, dict) and isinstance(obj.get("data"), list):
            obj = obj["data"]
        if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
            raise DataError(f"{path}: a .json benchmark file must hold a list of row objects")
        return obj
    if suffix == ".csv":
        return [dict(r) for r in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))]
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(data)).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


def _hub_rows(bench: Benchmark, hub_id: str, subset: str | None, split: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"benchmark '{bench.name}' from the hub needs the datasets library (pip install 'polya[data]'); "
            f"or give a local file: benchmarks: [{{name: {bench.name}, path: path/to/{bench.name}.jsonl}}]"
        ) from None
    try:
        dataset = datasets.load_dataset(hub_id, name=subset, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, missing dataset, bad subset/split
        raise DataError(
            f"could not load benchmark '{bench.name}' from the hub ({hub_id}, subset={subset!r}, split={split!r}): "
            f"{type(exc).__name__}: {str(exc)[:300]}. Without network give a local file in the upstream format: "
            f"benchmarks: [{{name: {bench.name}, path: path/to/{bench.name}.jsonl}}] "
            f"(columns: {', '.join(names[0] for names in bench.columns.values())}, or others named with columns: {{role: column}})"
        ) from None
    return [dict(r) for r in dataset]


def load_benchmark(
    name: str,
    *,
    path: str | None = None,
    hub_id: str | None = None,
    subset: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    seed: int = SYNTHETIC_EVAL_SEED,
    columns: Mapping[str, str] | None = None,
) -> list[EvalItem]:
    """The questions of benchmark ``name``: from ``path`` when given, else from the hub (or the synthetic generator).

    ``columns`` maps roles (question, answer, ...: the keys of the benchmark's
    :attr:`Benchmark.columns`) to the columns that hold them; a role not mapped is read from the
    first of the benchmark's names present in the row. ``limit`` keeps the first questions in file
    order. Duplicate ids are an error (they would merge two questions' samples in pass@k).
    """
    bench = get_benchmark(name)
    mapping = {role: column for role, column in (columns or {}).items() if column is not None}
    unknown = sorted(set(mapping) - set(bench.columns))
    if unknown:
        raise DataError(f"benchmark '{name}' has no column roles {unknown}; its roles: {', '.join(bench.columns)}")
    if name == "synthetic" and path is None:
        from polya.data.synthetic import generate_word_problems

        records = generate_word_problems(limit or SYNTHETIC_DEFAULT_COUNT, seed=seed, difficulties=[1])
        return [
            EvalItem(id=r.id, benchmark="synthetic", kind="math", question=r.question, reference=r.answer,
                     metadata=dict(r.metadata))
            for r in records
        ]
    if path is not None:
        rows = read_rows(path)
        label = path
    else:
        if bench.hub_id is None and hub_id is None:
            raise DataError(f"benchmark '{name}' has no hub id; give a local file with path")
        target = hub_id or bench.hub_id
        assert target is not None
        rows = _hub_rows(bench, target, subset if subset is not None else bench.subset, split or bench.split)
        label = f"{target} ({split or bench.split})"
    if limit is not None:
        rows = rows[:limit]
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        where = f"{label} row {index}"
        item = bench.convert(BenchmarkRow(row, bench, mapping, where), index)
        if item.id in seen:
            raise DataError(f"{where}: duplicate id '{item.id}' (also row {seen[item.id]})")
        seen[item.id] = index
        items.append(item)
    if not items:
        raise DataError(f"benchmark '{name}' from {label} has no questions")
    logger.info("benchmark %s: %s questions from %s", name, len(items), label)
    return items


# ----- prompts ---------------------------------------------------------------------------------

CODE_INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function (with its imports) "
    "in a single ```python code block."
)
CHOICE_INSTRUCTION = "Think it through step by step, then finish with a line of the form \"Answer: (X)\" naming one option."


def option_letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"option {index + 1}"


def build_prompt(item: EvalItem, catalog: HeuristicCatalog | None = None, *, system_prompt: str | None = None) -> list[dict[str, str]]:
    """Chat messages for ``item``: the plain math prompt of ``catalog`` (default: the packaged one), HumanEval's, or MuSR's.

    Math uses exactly the plain (no heuristic, zero-shot) prompt of :func:`polya.heuristics.plain_messages`,
    so evaluation asks the way generation did, minus the heuristic instruction, and the way RL trains.
    """
    if item.kind == "math":
        return plain_messages(item.question, catalog or HeuristicCatalog.load(), system_prompt=system_prompt)
    messages: list[dict[str, str]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt.strip()})
    if item.kind == "code":
        user = f"{CODE_INSTRUCTION}\n\n```python\n{item.question.rstrip()}\n```"
    else:
        assert item.options is not None
        listing = "\n".join(f"({option_letter(i)}) {opt}" for i, opt in enumerate(item.options))
        parts = [item.context.strip()] if item.context else []
        parts += [item.question.strip(), f"Options:\n{listing}", CHOICE_INSTRUCTION]
        user = "\n\n".join(parts)
    messages.append({"role": "user", "content": user})
    return messages
