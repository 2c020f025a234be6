"""Benchmark loaders on fixture files in the upstream column formats, and prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polya.core.errors import DataError
from polya.eval.benchmarks import (
    BENCHMARKS,
    SYNTHETIC_EVAL_SEED,
    build_prompt,
    load_benchmark,
    read_rows,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "eval"


def fixture(name: str, suffix: str = ".jsonl") -> str:
    return str(FIXTURES / f"{name}{suffix}")


def test_every_registered_benchmark_has_a_fixture_that_loads() -> None:
    for name, bench in BENCHMARKS.items():
        if name == "synthetic":
            continue
        items = load_benchmark(name, path=fixture(name))
        assert items, name
        assert all(i.kind == bench.kind and i.benchmark == name for i in items)
        assert len({i.id for i in items}) == len(items)
        assert bench.hub_id and bench.split


def test_gsm8k_answers_come_from_the_marker() -> None:
    items = load_benchmark("gsm8k", path=fixture("gsm8k"))
    assert [i.reference for i in items] == ["22", "80", "1325"]
    assert items[0].question.startswith("A baker fills 6 trays")
    assert [i.id for i in items] == ["gsm8k-0", "gsm8k-1", "gsm8k-2"]


def test_math_style_benchmarks() -> None:
    math500 = load_benchmark("math500", path=fixture("math500"))
    assert math500[0].reference == "\\frac{11}{12}" and math500[0].id == "math500-test/prealgebra/9001.json"
    assert math500[0].metadata["level"] == 2
    aime24 = load_benchmark("aime24", path=fixture("aime24"))
    assert [(i.id, i.reference) for i in aime24] == [("aime24-60", "401"), ("aime24-61", "16")]
    aime25 = load_benchmark("aime25", path=fixture("aime25"))
    assert [i.reference for i in aime25] == ["80", "986"]
    amc = load_benchmark("amc23", path=fixture("amc23"))
    assert [i.reference for i in amc] == ["7", "54"]  # upstream floats 7.0 / 54.0
    minerva = load_benchmark("minerva_math", path=fixture("minerva_math"))
    assert [i.reference for i in minerva] == ["4", "9"]
    olympiad = load_benchmark("olympiadbench", path=fixture("olympiadbench"))
    assert [i.reference for i in olympiad] == ["\\frac{1}{4}", "3, -3"]


def test_humaneval_and_musr() -> None:
    he = load_benchmark("humaneval", path=fixture("humaneval"))
    assert he[0].id == "HumanEval/0" and he[0].entry_point == "sum_of_evens" and "def check" in (he[0].tests or "")
    murder = load_benchmark("musr_murder_mysteries", path=fixture("musr_murder_mysteries"))
    assert murder[0].options == ("Mara", "Felix") and murder[0].reference == "0"
    assert murder[1].reference == "1" and murder[0].context and "archivist" in murder[0].context
    placements = load_benchmark("musr_object_placements", path=fixture("musr_object_placements"))
    assert placements[0].options == ("blue bowl", "kitchen drawer", "coat pocket")
    from_csv = load_benchmark("musr_team_allocation", path=fixture("musr_team_allocation", ".csv"))
    from_jsonl = load_benchmark("musr_team_allocation", path=fixture("musr_team_allocation"))
    assert from_csv == from_jsonl


def test_json_and_parquet_files_read_like_jsonl(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = read_rows(fixture("math500"))
    (tmp_path / "m.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
    expected = load_benchmark("math500", path=fixture("math500"))
    assert load_benchmark("math500", path=str(tmp_path / "m.json")) == expected
    assert load_benchmark("math500", path=str(tmp_path / "m.parquet")) == expected


def test_limit_and_synthetic_offline() -> None:
    assert len(load_benchmark("gsm8k", path=fixture("gsm8k"), limit=2)) == 2
    synth = load_benchmark("synthetic", limit=5)
    assert len(synth) == 5 and all(i.kind == "math" and i.reference for i in synth)
    assert synth == load_benchmark("synthetic", limit=5)
    assert synth[0].id == f"synthetic-{SYNTHETIC_EVAL_SEED}-0"
    from polya.data.synthetic import generate_word_problems

    train = {r.question for r in generate_word_problems(50, seed=0)}
    assert not train & {i.question for i in synth}


def test_errors_name_file_row_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "gsm8k.jsonl"
    bad.write_text(json.dumps({"question": "q?", "answer": "no marker"}) + "\n")
    with pytest.raises(DataError, match=r"gsm8k.jsonl row 0: .*####"):
        load_benchmark("gsm8k", path=str(bad))
    bad.write_text(json.dumps({"problem": "q?"}) + "\n")
    with pytest.raises(DataError, match=r"row 0: no answer column: expected one of answer, .*columns: \{answer: <column>\}.*; columns present: problem$"):
        load_benchmark("gsm8k", path=str(bad))
    dup = tmp_path / "aime.jsonl"
    dup.write_text("".join(json.dumps({"id": 1, "problem": "p", "answer": "1"}) + "\n" for _ in range(2)))
    with pytest.raises(DataError, match="duplicate id 'aime24-1'"):
        load_benchmark("aime24", path=str(dup))
    with pytest.raises(DataError, match="unknown benchmark 'gsm9k'; valid: synthetic, gsm8k"):
        load_benchmark("gsm9k")
    with pytest.raises(DataError, match="unknown suffix .txt"):
        load_benchmark("gsm8k", path=str(tmp_path / "x.txt"))
    with pytest.raises(DataError, match="benchmark file not found"):
        load_benchmark("gsm8k", path=str(tmp_path / "missing.jsonl"))
    musr = tmp_path / "musr.jsonl"
    musr.write_text(json.dumps({"narrative": "n", "question": "q", "choices": "['a', 'b']", "answer_index": 2}) + "\n")
    with pytest.raises(DataError, match="'answer_index' 2 is outside the 2 choices"):
        load_benchmark("musr_murder_mysteries", path=str(musr))


def test_hub_failure_suggests_a_local_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(*_a: object, **_k: object) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"openai/gsm8k.*subset='main'.*split='test'.*path: path/to/gsm8k.jsonl"):
        load_benchmark("gsm8k")


def test_prompts_per_kind() -> None:
    math = build_prompt(load_benchmark("math500", path=fixture("math500"))[0])
    assert math[0]["role"] == "system" and math[-1]["role"] == "user"
    assert "Problem: What is the value" in math[-1]["content"] and "\\boxed" in math[-1]["content"]
    code = build_prompt(load_benchmark("humaneval", path=fixture("humaneval"))[0])
    assert len(code) == 1 and "```python\nfrom typing import List" in code[0]["content"]
    choice = build_prompt(load_benchmark("musr_murder_mysteries", path=fixture("musr_murder_mysteries"))[0], system_prompt="Be brief.")
    assert choice[0] == {"role": "system", "content": "Be brief."}
    assert "(A) Mara\n(B) Felix" in choice[1]["content"] and choice[1]["content"].startswith("On a stormy night")
