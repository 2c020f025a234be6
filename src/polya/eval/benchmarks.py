"""The benchmark registry: where each evaluation set lives, how its rows read, how it is prompted and judged.

Every entry names its Hugging Face hub id, subset and split, the answer kind the verifier judges
(``math``: math-verify on the final answer; ``code``: HumanEval tests run in the sandbox;
``choice``: multiple choice, MuSR style) and the prompt format. A benchmark is read from the hub
with the ``datasets`` library, or, with no network, from a local file (or ``s3://`` object) in
the upstream column format: ``.jsonl``, ``.json`` (a list of rows), ``.parquet`` or ``.csv``.

Upstream columns (what the converters read):

| benchmark | hub id (split) | columns |
| --- | --- | --- |
| gsm8k | openai/gsm8k, main (test) | question, answer (worked solution ending in ``#### <number>``) |
| math500 | HuggingFaceH4/MATH-500 (test) | problem, solution, answer, subject, level, unique_id |
| aime24 | HuggingFaceH4/aime_2024 (train) | id, problem, solution, answer, url, year |
| aime25 | math-ai/aime25 (test) | problem, answer, id |
| amc23 | math-ai/amc23 (test) | id, question (or problem), answer (a number, possibly float), url |
| minerva_math | math-ai/minervamath (test) | question, answer |
| olympiadbench | Hothan/OlympiadBench, OE_TO_maths_en_COMP (train) | id, question, final_answer (list), solution, ... |
| humaneval | openai/openai_humaneval (test) | task_id, prompt, canonical_solution, test, entry_point |
| musr_* | TAUR-Lab/MuSR (murder_mysteries, object_placements, team_allocation) | narrative, question, choices (a Python list, often as its string), answer_index, answer_choice |

``synthetic`` is the built-in offline set: GSM8K-style word problems from
:mod:`polya.data.synthetic` with a held-out seed, so ``polya eval`` runs with no data at all.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Literal

from polya.core.errors import DataError
from polya.core.jsonl import jsonl_objects
from polya.data.answers import extract_boxed, extract_gsm8k_answer
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


Converter = Callable[[dict[str, Any], int, str], EvalItem]


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
    columns: tuple[str, ...]
    """Upstream columns the converter needs (checked with a clear error)."""
    convert: Converter
    size: int | None = None
    """Questions in the full upstream set (for documentation)."""


# ----- answer normalization --------------------------------------------------------------------

_DOLLARS = re.compile(r"^\$+|\$+$")


def _number_text(value: Any) -> str:
    """``27.0`` -> ``27``; other values as stripped text."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _strip_math_dollars(text: str) -> str:
    return _DOLLARS.sub("", text.strip()).strip()


def _need(row: dict[str, Any], column: str, where: str) -> Any:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: column '{column}' is missing or empty; columns present: {', '.join(sorted(row)) or '(none)'}")
    return value


def _first(row: dict[str, Any], columns: Iterable[str], where: str) -> Any:
    cols = list(columns)
    for column in cols:
        value = row.get(column)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return value
    raise DataError(f"{where}: none of the columns {cols} is present and non-empty; columns present: {', '.join(sorted(row)) or '(none)'}")


def _row_id(row: dict[str, Any], name: str, index: int, *columns: str) -> str:
    for column in columns:
        value = row.get(column)
        if value is not None and str(value).strip():
            return f"{name}-{str(value).strip()}"
    return f"{name}-{index}"


# ----- converters ------------------------------------------------------------------------------


def _gsm8k(row: dict[str, Any], index: int, where: str) -> EvalItem:
    solution = str(_need(row, "answer", where))
    try:
        answer = extract_gsm8k_answer(solution)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    return EvalItem(
        id=_row_id(row, "gsm8k", index, "id"), benchmark="gsm8k", kind="math",
        question=str(_need(row, "question", where)), reference=answer, metadata={"solution": solution},
    )


def _math_row(name: str, question_columns: tuple[str, ...], id_columns: tuple[str, ...]) -> Converter:
    def convert(row: dict[str, Any], index: int, where: str) -> EvalItem:
        question = str(_first(row, question_columns, where))
        answer = row.get("answer")
        if answer is None or not str(answer).strip():
            boxed = extract_boxed(str(row.get("solution") or ""))
            if boxed is None:
                raise DataError(f"{where}: no 'answer' column and no \\boxed{{}} answer in 'solution'")
            answer = boxed
        meta = {k: row[k] for k in ("subject", "level", "year", "url", "type") if row.get(k) is not None}
        return EvalItem(
            id=_row_id(row, name, index, *id_columns), benchmark=name, kind="math", question=question,
            reference=_number_text(answer), metadata=meta,
        )

    return convert


def _olympiadbench(row: dict[str, Any], index: int, where: str) -> EvalItem:
    question = str(_first(row, ("question", "problem"), where))
    final = _need(row, "final_answer", where)
    if isinstance(final, str):
        try:
            parsed = ast.literal_eval(final)
            final = parsed if isinstance(parsed, list) else [final]
        except (ValueError, SyntaxError):
            final = [final]
    answers = [_strip_math_dollars(str(a)) for a in final if str(a).strip()]
    if not answers:
        raise DataError(f"{where}: 'final_answer' holds no answer")
    meta = {k: row[k] for k in ("subfield", "answer_type", "unit", "is_multiple_answer") if row.get(k) is not None}
    return EvalItem(
        id=_row_id(row, "olympiadbench", index, "id"), benchmark="olympiadbench", kind="math", question=question,
        reference=", ".join(answers), metadata=meta,
    )


def _humaneval(row: dict[str, Any], index: int, where: str) -> EvalItem:
    return EvalItem(
        id=str(_need(row, "task_id", where)), benchmark="humaneval", kind="code",
        question=str(_need(row, "prompt", where)), tests=str(_need(row, "test", where)),
        entry_point=str(_need(row, "entry_point", where)).strip(),
        metadata={"canonical_solution": row.get("canonical_solution")},
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


def _musr(split: str) -> Converter:
    name = f"musr_{split}"

    def convert(row: dict[str, Any], index: int, where: str) -> EvalItem:
        options = parse_choices(_need(row, "choices", where), where)
        raw_index = _need(row, "answer_index", where)
        try:
            answer_index = int(raw_index)
        except (TypeError, ValueError):
            raise DataError(f"{where}: 'answer_index' must be an integer, got {raw_index!r}") from None
        if not 0 <= answer_index < len(options):
            raise DataError(f"{where}: 'answer_index' {answer_index} is outside the {len(options)} choices")
        return EvalItem(
            id=_row_id(row, name, index, "id"), benchmark=name, kind="choice",
            question=str(_need(row, "question", where)), context=str(_need(row, "narrative", where)),
            options=tuple(options), reference=str(answer_index),
            metadata={"answer_choice": row.get("answer_choice")},
        )

    return convert


def _synthetic_file(row: dict[str, Any], index: int, where: str) -> EvalItem:
    # Synthetic rows come from polya.data.synthetic, already as QuestionRecords; a local file for
    # "synthetic" is read like GSM8K-shaped rows (question + answer or solution).
    question = str(_first(row, ("question", "problem"), where))
    answer = row.get("answer")
    if answer is not None and GSM8K_MARK in str(answer):
        answer = extract_gsm8k_answer(str(answer))
    if answer is None:
        raise DataError(f"{where}: column 'answer' is missing")
    return EvalItem(id=_row_id(row, "synthetic", index, "id"), benchmark="synthetic", kind="math", question=question, reference=_number_text(answer))


GSM8K_MARK = "####"

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("synthetic", "Synthetic word problems (offline)", "math", None, "test", None, "math_boxed", ("question", "answer"), _synthetic_file),
        Benchmark("gsm8k", "GSM8K", "math", "openai/gsm8k", "test", "main", "math_boxed", ("question", "answer"), _gsm8k, 1319),
        Benchmark("math500", "MATH-500", "math", "HuggingFaceH4/MATH-500", "test", None, "math_boxed", ("problem", "answer"),
                  _math_row("math500", ("problem",), ("unique_id",)), 500),
        Benchmark("aime24", "AIME 2024", "math", "HuggingFaceH4/aime_2024", "train", None, "math_boxed", ("problem", "answer"),
                  _math_row("aime24", ("problem", "Problem"), ("id", "ID")), 30),
        Benchmark("aime25", "AIME 2025", "math", "math-ai/aime25", "test", None, "math_boxed", ("problem", "answer"),
                  _math_row("aime25", ("problem", "question"), ("id",)), 30),
        Benchmark("amc23", "AMC 2023", "math", "math-ai/amc23", "test", None, "math_boxed", ("question", "answer"),
                  _math_row("amc23", ("question", "problem"), ("id",)), 40),
        Benchmark("minerva_math", "Minerva-Math", "math", "math-ai/minervamath", "test", None, "math_boxed", ("question", "answer"),
                  _math_row("minerva_math", ("question", "problem"), ("id", "idx")), 272),
        Benchmark("olympiadbench", "OlympiadBench (maths, English, open-ended)", "math", "Hothan/OlympiadBench", "train",
                  "OE_TO_maths_en_COMP", "math_boxed", ("question", "final_answer"), _olympiadbench, 674),
        Benchmark("humaneval", "HumanEval", "code", "openai/openai_humaneval", "test", None, "humaneval",
                  ("task_id", "prompt", "test", "entry_point"), _humaneval, 164),
        Benchmark("musr_murder_mysteries", "MuSR murder mysteries", "choice", "TAUR-Lab/MuSR", "murder_mysteries", None,
                  "multiple_choice", ("narrative", "question", "choices", "answer_index"), _musr("murder_mysteries"), 250),
        Benchmark("musr_object_placements", "MuSR object placements", "choice", "TAUR-Lab/MuSR", "object_placements", None,
                  "multiple_choice", ("narrative", "question", "choices", "answer_index"), _musr("object_placements"), 256),
        Benchmark("musr_team_allocation", "MuSR team allocation", "choice", "TAUR-Lab/MuSR", "team_allocation", None,
                  "multiple_choice", ("narrative", "question", "choices", "answer_index"), _musr("team_allocation"), 250),
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
            f"benchmarks: [{{name: {bench.name}, path: path/to/{bench.name}.jsonl}}] (columns: {', '.join(bench.columns)})"
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
) -> list[EvalItem]:
    """The questions of benchmark ``name``: from ``path`` when given, else from the hub (or the synthetic generator).

    ``limit`` keeps the first questions in file order. Duplicate ids are an error (they would
    merge two questions' samples in pass@k).
    """
    bench = get_benchmark(name)
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
        item = bench.convert(row, index, where)
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
