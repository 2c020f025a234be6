"""load_questions: dispatch, shuffle/limit determinism, the questions.jsonl artifact round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polya.core.errors import DataError
from polya.data import (
    DataConfig,
    QuestionRecord,
    load_questions,
    read_questions,
    write_questions,
)
from support.fixtures import GSM8K_SAMPLE as GSM8K



def test_synthetic_default_source() -> None:
    qs = load_questions(DataConfig(synthetic={"count": 25}, seed=4))
    assert len(qs.records) == 25 and qs.source == "synthetic" and qs.skipped == 0
    assert qs.records[0].id == "synthetic-4-0"


def test_synthetic_settings_are_passed_through() -> None:
    qs = load_questions(DataConfig(synthetic={"count": 6, "difficulties": [3], "templates": ["ages"]}))
    assert {(r.metadata["template"], r.metadata["difficulty"]) for r in qs.records} == {("ages", 3)}


def test_limit_without_shuffle_keeps_source_order() -> None:
    qs = load_questions(DataConfig(source=str(GSM8K), limit=3))
    assert [r.id for r in qs.records] == ["gsm8k_train_sample-0", "gsm8k_train_sample-1", "gsm8k_train_sample-2"]


def test_shuffle_is_deterministic_and_seeded() -> None:
    def ids(seed: int) -> list[str]:
        return [r.id for r in load_questions(DataConfig(synthetic={"count": 40}, shuffle=True, seed=seed, limit=15)).records]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)
    assert len(ids(1)) == 15
    unshuffled = [r.id for r in load_questions(DataConfig(synthetic={"count": 40}, seed=1)).records]
    assert ids(1) != unshuffled[:15]
    assert set(ids(1)) <= set(unshuffled)


def test_shuffle_then_limit_on_a_file() -> None:
    a = load_questions(DataConfig(source=str(GSM8K), shuffle=True, seed=3, limit=2))
    b = load_questions(DataConfig(source=str(GSM8K), shuffle=True, seed=3))
    assert [r.id for r in a.records] == [r.id for r in b.records][:2]


def test_file_source_with_skip_reports_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(GSM8K.read_text() + "{broken\n")
    qs = load_questions(DataConfig(source=str(path), on_error="skip"))
    assert len(qs.records) == 5 and qs.skipped == 1 and "line 6" in qs.errors[0]
    with pytest.raises(DataError, match="line 6"):
        load_questions(DataConfig(source=str(path)))


def test_parquet_and_hf_formats_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()]
    parquet = tmp_path / "gsm8k.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    assert [r.answer for r in load_questions(DataConfig(source=str(parquet))).records][-1] == "850000"

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    qs = load_questions(DataConfig(source=str(GSM8K), format="hf", split="test", columns={"id": None}))
    assert len(qs.records) == 5


def test_columns_from_config(tmp_path: Path) -> None:
    path = tmp_path / "custom.jsonl"
    path.write_text(json.dumps({"q": "What is 2+3?", "a": 5}) + "\n")
    qs = load_questions(DataConfig(source=str(path), columns={"question": "q", "answer": "a"}))
    assert (qs.records[0].question, qs.records[0].answer) == ("What is 2+3?", "5")


def test_all_rows_skipped_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("{x\n[1]\n")
    with pytest.raises(DataError, match="yielded no questions; all 2 rows were skipped"):
        load_questions(DataConfig(source=str(path), on_error="skip"))


def test_write_and_read_questions_round_trip(tmp_path: Path) -> None:
    records = load_questions(DataConfig(synthetic={"count": 12})).records
    records.append(
        QuestionRecord(id="m1", question="Find $x$.", answer=r"\frac{1}{2}", source="x.jsonl", metadata={"level": 5, "é": "ü"})
    )
    path = tmp_path / "out" / "questions.jsonl"
    assert write_questions(records, path) == 13
    assert read_questions(path) == records
    assert len(path.read_text(encoding="utf-8").splitlines()) == 13
    assert not list(path.parent.glob("*.tmp"))


def test_read_questions_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "questions.jsonl"
    good = QuestionRecord(id="a", question="q", answer="1", source="s").model_dump_json()
    path.write_text(good + "\n" + json.dumps({"id": "b", "question": "q"}) + "\n")
    with pytest.raises(DataError, match=r"questions.jsonl: line 2: not a question record \(answer: Field required"):
        read_questions(path)
    with pytest.raises(DataError, match="questions file not found"):
        read_questions(tmp_path / "missing.jsonl")
