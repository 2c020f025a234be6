"""Benchmark column mapping (``benchmarks: [{name, path, columns: {role: column}}]``) and auto-detection of common layouts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from polya.core.config import load_config
from polya.core.errors import ConfigError, DataError
from polya.eval.benchmarks import BENCHMARKS, load_benchmark, read_rows
from polya.eval.config import BenchmarkSpec, EvalConfig
from polya.eval.stage import EvaluationStage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "eval"


def write_rows(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_olympiadbench_as_problem_answer_rows_loads_with_no_mapping(tmp_path: Path) -> None:
    rows = [
        {"problem": "Find the maximum of $ab$ when $a+b=1$.", "answer": "$\\frac{1}{4}$"},
        {"problem": "Find all real $x$ with $x^2 = 9$.", "answer": ["$3$", "$-3$"]},
        {"problem": "Solve $x^2 = 4$.", "answer": "['2', '-2']"},  # a list stored as its text
    ]
    items = load_benchmark("olympiadbench", path=write_rows(tmp_path / "olympiad.jsonl", rows))
    assert [i.question for i in items] == [r["problem"] for r in rows]
    assert [i.reference for i in items] == ["\\frac{1}{4}", "3, -3", "2, -2"]
    assert [i.id for i in items] == ["olympiadbench-0", "olympiadbench-1", "olympiadbench-2"]


def test_a_list_valued_answer_is_joined_in_every_math_benchmark(tmp_path: Path) -> None:
    rows = [
        {"question": "Roots of $x^2-1$?", "answer": ["1", "-1"]},
        {"question": "Interval where $x^2 \\le x$?", "answer": "[0, 1]"},  # text of numbers: an interval, kept
        {"question": "How many?", "answer": 27.0},
    ]
    path = write_rows(tmp_path / "rows.jsonl", rows)
    for name in ("math500", "aime24", "aime25", "amc23", "minerva_math", "olympiadbench", "synthetic"):
        assert [i.reference for i in load_benchmark(name, path=path)] == ["1, -1", "[0, 1]", "27"], name


def _renamed(rows: list[dict[str, Any]], name: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rows with every column the benchmark reads renamed to ``my_<column>``, and the mapping that reads them."""
    bench = BENCHMARKS[name]
    mapping: dict[str, str] = {}
    for role, names in bench.columns.items():
        found = next((c for c in names if rows[0].get(c) not in (None, "")), None)
        if found is not None:
            mapping[role] = f"my_{found}"
    renamed = [{(f"my_{k}" if f"my_{k}" in mapping.values() else k): v for k, v in row.items()} for row in rows]
    return renamed, mapping


@pytest.mark.parametrize("name", [n for n in BENCHMARKS if n != "synthetic"])
def test_every_benchmark_reads_its_columns_under_other_names(tmp_path: Path, name: str) -> None:
    fixture = FIXTURES / f"{name}.jsonl"
    rows, mapping = _renamed(read_rows(str(fixture)), name)
    assert {"question", "answer"} & set(mapping) or name == "humaneval"
    path = write_rows(tmp_path / f"{name}.jsonl", rows)
    spec = BenchmarkSpec(name=name, path=path, columns=mapping)
    assert load_benchmark(name, path=path, columns=spec.columns.mapped()) == load_benchmark(name, path=str(fixture))
    with pytest.raises(DataError, match=r"columns present: .*my_"):
        load_benchmark(name, path=path)  # without the mapping the renamed columns are not found


def test_the_stage_reads_a_benchmark_through_its_columns_setting(tmp_path: Path) -> None:
    rows = [{"Frage": "What is 6 x 7?", "Antwort": "42", "Nummer": "q1"}]
    path = write_rows(tmp_path / "de.jsonl", rows)
    config = load_config(
        EvalConfig,
        overrides={"run_dir": str(tmp_path / "run"), "benchmarks": [{"name": "gsm8k", "path": path, "columns": {"question": "Frage", "answer": "Antwort", "id": "Nummer"}}]},
    )
    stage = EvaluationStage(config)
    [item] = stage.items(config.benchmarks[0])
    assert (item.id, item.question, item.reference) == ("gsm8k-q1", "What is 6 x 7?", "42")


def test_multiple_choice_answers_by_index_letter_or_text(tmp_path: Path) -> None:
    base = {"story": "Mara had the keys.", "ask": "Who did it?", "opts": ["Mara", "Felix"]}
    rows = [{**base, "gold": 1}, {**base, "gold": "B"}, {**base, "gold": "(a)"}, {**base, "gold": "Felix"}, {**base, "gold": "1"}]
    mapping = {"context": "story", "question": "ask", "choices": "opts", "answer": "gold"}
    items = load_benchmark("musr_murder_mysteries", path=write_rows(tmp_path / "mc.jsonl", rows), columns=mapping)
    assert [i.reference for i in items] == ["1", "1", "0", "1", "1"]
    assert items[0].context == "Mara had the keys." and items[0].options == ("Mara", "Felix")
    bad = write_rows(tmp_path / "bad.jsonl", [{**base, "gold": "Nobody"}])
    with pytest.raises(DataError, match=r"column 'gold' must be the correct option's 0-based index, its letter or its text, got 'Nobody'"):
        load_benchmark("musr_murder_mysteries", path=bad, columns=mapping)


def test_humaneval_under_other_names(tmp_path: Path) -> None:
    rows = [{"name": "T/1", "code": "def f():\n", "checks": "def check(c):\n    assert c() == 1\n", "fn": "f"}]
    mapping = {"id": "name", "question": "code", "tests": "checks", "entry_point": "fn"}
    [item] = load_benchmark("humaneval", path=write_rows(tmp_path / "he.jsonl", rows), columns=mapping)
    assert (item.id, item.question, item.tests, item.entry_point) == ("T/1", "def f():\n", rows[0]["checks"], "f")


def test_gsm8k_takes_a_worked_solution_or_a_bare_number(tmp_path: Path) -> None:
    rows = [{"question": "a?", "answer": "3 + 4 = 7\n#### 7"}, {"question": "b?", "answer": "1,325"}, {"question": "c?", "answer": 18}]
    assert [i.reference for i in load_benchmark("gsm8k", path=write_rows(tmp_path / "g.jsonl", rows))] == ["7", "1,325", "18"]
    prose = write_rows(tmp_path / "prose.jsonl", [{"question": "d?", "answer": "She pays 3 + 4 = 7 dollars."}])
    with pytest.raises(DataError, match=r"holds neither a worked solution ending in '#### <number>' nor a number"):
        load_benchmark("gsm8k", path=prose)


def test_missing_columns_name_the_columns_present_and_the_setting(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "o.jsonl", [{"text": "Find x.", "solution_text": "x = 2"}])
    with pytest.raises(DataError) as err:
        load_benchmark("olympiadbench", path=path)
    assert str(err.value) == (
        f"{path} row 0: no question column: expected one of question, problem, prompt, query, or name it with "
        "benchmarks: [{name: olympiadbench, columns: {question: <column>}}]; columns present: solution_text, text"
    )
    with pytest.raises(DataError, match=r"no answer column: expected one of final_answer, answer, expected_answer \(or a solution with a \\boxed\{\} answer\), or name it with .*columns present: solution_text, text"):
        load_benchmark("olympiadbench", path=path, columns={"question": "text"})
    with pytest.raises(DataError, match=r"row 0: column 'final' \(columns.answer\) is missing; columns present: solution_text, text"):
        load_benchmark("olympiadbench", path=path, columns={"question": "text", "answer": "final"})
    with pytest.raises(DataError, match=r"benchmark 'gsm8k' has no column roles \['choices'\]; its roles: question, answer, id"):
        load_benchmark("gsm8k", path=path, columns={"choices": "opts"})


def test_the_columns_setting_is_checked_against_the_benchmark() -> None:
    with pytest.raises(ConfigError, match=r"columns \['tests'\] do not apply to benchmark 'math500'; its columns: question, answer, solution, id"):
        load_config(EvalConfig, overrides={"benchmarks": [{"name": "math500", "columns": {"tests": "t"}}]})
    with pytest.raises(ConfigError, match="anwser"):
        load_config(EvalConfig, overrides={"benchmarks": [{"name": "math500", "columns": {"anwser": "a"}}]})


def test_a_benchmark_without_a_mapping_keeps_its_identity() -> None:
    """Questions and parts stored before the setting existed stay valid; a mapping is part of the identity."""
    plain = BenchmarkSpec(name="math500", path="m.jsonl")
    assert "columns" not in plain.identity()
    mapped = BenchmarkSpec(name="math500", path="m.jsonl", columns={"answer": "final"})
    assert mapped.identity()["columns"]["answer"] == "final"
