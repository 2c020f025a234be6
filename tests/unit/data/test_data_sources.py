"""Question sources: JSONL, Parquet, Hugging Face (local files, and the hub failing offline), S3.

Fixtures are small files in the real GSM8K and MATH-500 layouts (tests/fixtures/data).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polya.core.errors import ConfigError, DataError
from polya.data.sources import (
    MAX_KEPT_ERRORS,
    load_hf,
    load_jsonl,
    load_parquet,
    load_s3,
    split_s3_uri,
)
from polya.data.sources.normalize import normalize_answer
from support.fixtures import DATA as FIXTURES
from support.fixtures import GSM8K_SAMPLE as GSM8K
from support.fixtures import MATH500_SAMPLE as MATH500

MATH500_HF = FIXTURES / "math500_hf_sample.jsonl"
MATH_ORIGINAL = FIXTURES / "math_solution_only_sample.jsonl"

GSM8K_ANSWERS = ["72", "10", "5", "1080", "850000"]
MATH500_ANSWERS = [r"\left( 3, \frac{\pi}{2} \right)", r"\frac{14}{3}", "9", "42", r"90^\circ"]


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def to_parquet(src: Path, dest: Path) -> Path:
    pq.write_table(pa.Table.from_pylist(rows_of(src)), dest)
    return dest


def comparable(records: list) -> list[dict[str, Any]]:
    """Records without ``source``, to compare readers (files share a stem, so ids match)."""
    return [r.model_dump(exclude={"source"}) for r in records]


# --- JSONL, in the real layouts ------------------------------------------------------------------


def test_gsm8k_jsonl() -> None:
    qs = load_jsonl(GSM8K)
    assert [r.answer for r in qs.records] == GSM8K_ANSWERS
    first = qs.records[0]
    raw = rows_of(GSM8K)[0]
    assert first.question == raw["question"]
    assert first.solution == raw["answer"]  # the full worked solution is kept
    assert first.id == "gsm8k_train_sample-0"
    assert first.source == str(GSM8K)
    assert first.metadata == {}
    assert qs.skipped == 0 and qs.errors == []
    assert len({r.id for r in qs.records}) == 5


def test_math500_jsonl() -> None:
    qs = load_jsonl(MATH500)
    assert [r.answer for r in qs.records] == MATH500_ANSWERS
    assert all(r.solution is None for r in qs.records)
    assert qs.records[2].question == "How many positive whole-number divisors does 196 have?"


def test_math500_hub_layout_uses_unique_id_and_keeps_metadata() -> None:
    qs = load_jsonl(MATH500_HF)
    assert [r.answer for r in qs.records] == MATH500_ANSWERS
    assert qs.records[0].id == "test/precalculus/807.json"
    assert qs.records[0].metadata == {"subject": "Precalculus", "level": 2}
    assert qs.records[2].solution is not None and r"\boxed{9}" in qs.records[2].solution


def test_original_math_layout_takes_the_boxed_answer_from_the_solution() -> None:
    qs = load_jsonl(MATH_ORIGINAL)
    assert [r.answer for r in qs.records] == [r"\frac{5}{6}", "4", r"\{0, 1\}"]
    assert qs.records[0].metadata == {"level": "Level 1", "type": "Prealgebra"}


def test_missing_file() -> None:
    with pytest.raises(DataError, match="question file not found: .*nope.jsonl"):
        load_jsonl("/no/such/dir/nope.jsonl")


# --- malformed rows ------------------------------------------------------------------------------

GOOD = json.dumps({"question": "1+1?", "answer": "#### 2"})


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('{"question": "unterminated', "not valid JSON"),
        ('["question", "answer"]', "expected a JSON object .* got list"),
        ('"just a string"', "expected a JSON object .* got str"),
        ('{"question": "2+2?"}', "missing column 'answer'"),
        ('{"answer": "#### 4", "text": "2+2?"}', "missing column 'question'"),
        ('{"question": "", "answer": "4"}', "non-empty string"),
        ('{"question": "2+2?", "answer": null}', "empty or missing"),
        ('{"question": "2+2?", "answer": "no marker ####"}', "nothing after its last '####'"),
        ('{"question": "2+2?", "answer": [4]}', "string or a number, got list"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, reason: str) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [GOOD, "", bad_line, GOOD.replace("1+1", "3+3")])
    with pytest.raises(DataError, match=rf"{tmp_path / 'q.jsonl'}: line 3: .*{reason}"):
        load_jsonl(path)


def test_invalid_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + b'{"question": "\xff\xfe", "answer": "1"}\n')
    with pytest.raises(DataError, match="line 2: not valid UTF-8"):
        load_jsonl(path)


def test_no_question_column_anywhere_lists_candidates(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [json.dumps({"text": "hi", "answer": "1"})])
    with pytest.raises(DataError, match="line 1: no question column: expected one of question, problem.*columns present: text, answer"):
        load_jsonl(path)


def test_skip_mode_counts_and_keeps_reasons(tmp_path: Path) -> None:
    lines = [GOOD, "not json", "[1]", json.dumps({"question": "q2", "answer": "#### 7"}), '{"question": "q3"}']
    qs = load_jsonl(write_jsonl(tmp_path / "q.jsonl", lines), on_error="skip")
    assert [r.answer for r in qs.records] == ["2", "7"]
    assert qs.skipped == 3
    assert len(qs.errors) == 3
    assert "line 2: not valid JSON" in qs.errors[0]
    assert "line 3: expected a JSON object" in qs.errors[1]
    assert "line 5: missing column 'answer'" in qs.errors[2]
    # Row indices count every data line, so ids stay stable when rows are skipped.
    assert [r.id for r in qs.records] == ["q-0", "q-3"]


def test_skip_mode_keeps_only_the_first_errors(tmp_path: Path) -> None:
    lines = [GOOD] + ["{bad"] * (MAX_KEPT_ERRORS + 15)
    qs = load_jsonl(write_jsonl(tmp_path / "q.jsonl", lines), on_error="skip")
    assert qs.skipped == MAX_KEPT_ERRORS + 15
    assert len(qs.errors) == MAX_KEPT_ERRORS
    assert "line 2:" in qs.errors[0]


def test_skip_mode_first_row_bad_then_columns_detected_from_a_later_row(tmp_path: Path) -> None:
    lines = ['{"text": "no question column"}', json.dumps({"problem": "p", "answer": 3})]
    qs = load_jsonl(write_jsonl(tmp_path / "q.jsonl", lines), on_error="skip")
    assert [(r.question, r.answer) for r in qs.records] == [("p", "3")]
    assert qs.skipped == 1


def test_bad_on_error_value() -> None:
    with pytest.raises(ConfigError, match="on_error must be 'raise' or 'skip'"):
        load_jsonl(GSM8K, on_error="ignore")  # type: ignore[arg-type]


# --- ids -----------------------------------------------------------------------------------------


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "question": "q1", "answer": "1"}),
        json.dumps({"id": "b", "question": "q2", "answer": "2"}),
        json.dumps({"id": "a", "question": "q3", "answer": "3"}),
    ]
    path = write_jsonl(tmp_path / "q.jsonl", lines)
    with pytest.raises(DataError, match=r"line 3: duplicate id 'a' \(first seen at line 1\)"):
        load_jsonl(path)
    qs = load_jsonl(path, on_error="skip")
    assert [r.question for r in qs.records] == ["q1", "q2"]
    assert qs.skipped == 1 and "duplicate id 'a'" in qs.errors[0]


def test_numeric_ids_become_strings(tmp_path: Path) -> None:
    lines = [json.dumps({"id": 7, "question": "q", "answer": "1"}), json.dumps({"id": 8.0, "question": "r", "answer": "2"})]
    qs = load_jsonl(write_jsonl(tmp_path / "q.jsonl", lines))
    assert [r.id for r in qs.records] == ["7", "8"]


# --- column mapping and answer normalisation -----------------------------------------------------


def test_explicit_column_mapping(tmp_path: Path) -> None:
    lines = [
        json.dumps({"key": "k1", "prompt_text": "What is 6*7?", "gold": 42, "work": "6*7=42", "topic": "arith"}),
        json.dumps({"key": "k2", "prompt_text": "Half of 1?", "gold": 0.5, "work": "1/2", "topic": "arith"}),
    ]
    qs = load_jsonl(
        write_jsonl(tmp_path / "custom.jsonl", lines),
        columns={"question": "prompt_text", "answer": "gold", "solution": "work", "id": "key"},
    )
    assert [(r.id, r.question, r.answer, r.solution) for r in qs.records] == [
        ("k1", "What is 6*7?", "42", "6*7=42"),
        ("k2", "Half of 1?", "0.5", "1/2"),
    ]
    assert qs.records[0].metadata == {"topic": "arith"}


def test_mapped_column_missing_names_the_setting(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", [GOOD])
    with pytest.raises(DataError, match=r"column 'prompt_text' \(data.columns.question\) is missing; columns present: question, answer"):
        load_jsonl(path, columns={"question": "prompt_text"})


def test_mapped_id_column_missing_in_a_row(tmp_path: Path) -> None:
    lines = [json.dumps({"key": "k1", "question": "q", "answer": "1"}), json.dumps({"question": "r", "answer": "2"})]
    with pytest.raises(DataError, match="line 2: missing id column 'key'"):
        load_jsonl(write_jsonl(tmp_path / "q.jsonl", lines), columns={"id": "key"})


def test_unknown_column_mapping_key() -> None:
    with pytest.raises(ConfigError, match="valid keys are question, answer, solution, id"):
        load_jsonl(GSM8K, columns={"questoin": "q"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Step.\n#### 1,234", ("1234", "Step.\n#### 1,234")),
        (r"$\boxed{\frac{1}{2}}$", (r"\frac{1}{2}", None)),
        ("  x + 1 ", ("x + 1", None)),
        (72, ("72", None)),
        (72.0, ("72", None)),
        (0.25, ("0.25", None)),
        (-3.0, ("-3", None)),
        (None, (None, None)),
        ("", (None, None)),
    ],
)
def test_normalize_answer(value: Any, expected: tuple[str | None, str | None]) -> None:
    assert normalize_answer(value) == expected


# --- Parquet -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", [GSM8K, MATH500, MATH500_HF, MATH_ORIGINAL])
def test_parquet_matches_jsonl(tmp_path: Path, fixture: Path) -> None:
    parquet = to_parquet(fixture, tmp_path / f"{fixture.stem}.parquet")
    assert comparable(load_parquet(parquet).records) == comparable(load_jsonl(fixture).records)


def test_parquet_bad_row_names_the_row(tmp_path: Path) -> None:
    rows = [{"question": "q0", "answer": "1"}, {"question": "q1", "answer": "2"}, {"question": None, "answer": "3"}]
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError, match=rf"{path}: row 2: column 'question' must be a non-empty string"):
        load_parquet(path)
    qs = load_parquet(path, on_error="skip")
    assert len(qs.records) == 2 and qs.skipped == 1 and "row 2" in qs.errors[0]


def test_parquet_missing_column_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    path = tmp_path / "noq.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "q", "answer": "1"}]), path)
    with pytest.raises(DataError, match="no question column.*columns present: text, answer"):
        load_parquet(path, on_error="skip")


def test_parquet_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_pylist([{"unique_id": "x", "problem": "p", "answer": "1"}] * 2), path)
    with pytest.raises(DataError, match=r"row 1: duplicate id 'x' \(first seen at row 0\)"):
        load_parquet(path)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("hello")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_parquet(path)


# --- Hugging Face datasets -----------------------------------------------------------------------


@pytest.fixture()
def hf_cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


@pytest.mark.parametrize("fixture", [GSM8K, MATH500_HF])
def test_hf_local_jsonl_and_parquet(tmp_path: Path, hf_cache: Path, fixture: Path) -> None:
    expected = comparable(load_jsonl(fixture).records)
    via_json = load_hf(str(fixture), split="test", cache_dir=hf_cache)
    assert comparable(via_json.records) == expected
    parquet = to_parquet(fixture, tmp_path / f"{fixture.stem}.parquet")
    via_parquet = load_hf(f"hf:{parquet}", cache_dir=hf_cache)
    assert comparable(via_parquet.records) == expected


def test_hf_hub_offline_is_a_clear_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls: list[tuple[tuple, dict]] = []

    def offline(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"could not load Hugging Face dataset 'openai/gsm8k'.*unreachable.*Pass local files instead"):
        load_hf("hf:openai/gsm8k", subset="main", split="test")
    assert calls == [(("openai/gsm8k",), {"name": "main", "split": "test"})]


def test_hf_hub_success_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def fake_hub(path: str, name: str | None = None, split: str | None = None) -> Any:
        assert (path, name, split) == ("HuggingFaceH4/MATH-500", None, "test")
        return datasets.Dataset.from_list(rows_of(MATH500_HF))

    monkeypatch.setattr(datasets, "load_dataset", fake_hub)
    qs = load_hf("hf:HuggingFaceH4/MATH-500", split="test")
    assert [r.answer for r in qs.records] == MATH500_ANSWERS
    assert {r.source for r in qs.records} == {"hf:HuggingFaceH4/MATH-500"}
    assert qs.records[0].id == "test/precalculus/807.json"


def test_hf_hub_ids_without_id_column(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_list(rows_of(GSM8K)))
    qs = load_hf("hf:openai/gsm8k", subset="main", split="train")
    assert qs.records[1].id == "gsm8k-train-1"
    assert qs.records[1].answer == "10"


def test_hf_missing_local_file() -> None:
    with pytest.raises(DataError, match="question file not found: ./nope.jsonl"):
        load_hf("hf:./nope.jsonl")


# --- S3 ------------------------------------------------------------------------------------------


class FakeStore:
    """Stands in for ``polya.core.store.open_store(...)``: serves files from a local folder."""

    opened: list[str] = []

    def __init__(self, uri: str, folder: Path) -> None:
        self.uri, self.folder = uri, folder

    def download_file(self, path: str, local_path: str | Path) -> None:
        shutil.copyfile(self.folder / path, local_path)

    def read_bytes(self, path: str) -> bytes:
        return (self.folder / path).read_bytes()


@pytest.fixture()
def fake_s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    import polya.core.store

    folder = tmp_path / "bucket-dir"
    folder.mkdir()
    shutil.copyfile(GSM8K, folder / "gsm8k.jsonl")
    to_parquet(MATH500_HF, folder / "math500.parquet")
    (folder / "broken.jsonl").write_text(GOOD + "\n{oops\n")
    opened: list[str] = []

    def open_store(uri: str, **_: Any) -> FakeStore:
        opened.append(uri)
        return FakeStore(uri, folder)

    monkeypatch.setattr(polya.core.store, "open_store", open_store)
    return opened


def test_s3_jsonl_and_parquet(fake_s3: list[str]) -> None:
    qs = load_s3("s3://bucket/dir/gsm8k.jsonl")
    assert [r.answer for r in qs.records] == GSM8K_ANSWERS
    assert qs.source == "s3://bucket/dir/gsm8k.jsonl"
    assert {r.source for r in qs.records} == {"s3://bucket/dir/gsm8k.jsonl"}
    assert qs.records[0].id == "gsm8k-0"
    qp = load_s3("s3://bucket/dir/math500.parquet")
    assert [r.answer for r in qp.records] == MATH500_ANSWERS
    assert fake_s3 == ["s3://bucket/dir", "s3://bucket/dir"]


def test_s3_errors_name_the_uri(fake_s3: list[str]) -> None:
    with pytest.raises(DataError, match=r"^s3://bucket/dir/broken.jsonl: line 2: not valid JSON"):
        load_s3("s3://bucket/dir/broken.jsonl")


def test_s3_download_failure(fake_s3: list[str]) -> None:
    with pytest.raises(DataError, match="could not download s3://bucket/dir/missing.jsonl"):
        load_s3("s3://bucket/dir/missing.jsonl")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://b/q.jsonl", ("s3://b", "q.jsonl")), ("s3://b/x/y/q.parquet", ("s3://b/x/y", "q.parquet"))],
)
def test_split_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert split_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3://bucket", "s3:///q.jsonl"])
def test_split_s3_uri_needs_bucket_and_key(uri: str) -> None:
    with pytest.raises(DataError, match="must name a bucket and a file"):
        split_s3_uri(uri)
