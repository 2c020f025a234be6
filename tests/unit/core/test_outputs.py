"""Stage outputs are typed models, each read through one function, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from polya.core.errors import DataError
from polya.core.layout import RunLayout
from polya.core.outputs import (
    EvalResults,
    SelectReport,
    iter_generations,
    read_eval_results,
    read_select_report,
    read_training_summary,
)
from polya.core.store import LocalStore
from polya.core.store.shards import ShardWriter


def test_select_report_round_trip_and_empty_reason(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert read_select_report(store) is None
    report = SelectReport(run_id="r", datasets={
        "polya": {"path": "select/polya/train.jsonl", "card": "select/polya/README.md", "examples": 0, "questions": 0,
                  "rejections": {"incorrect": 7}, "per_heuristic": {}},
        "star": {"path": "select/star/train.jsonl", "card": "select/star/README.md", "examples": 3, "questions": 3},
    }, extra_key={"kept": True})
    store.write_json(RunLayout.select.report, report.dump())
    back = read_select_report(store)
    assert back is not None and back.datasets["star"].examples == 3 and back.dump()["extra_key"] == {"kept": True}
    assert back.empty_reason("polya") == "select/polya holds no examples (7 incorrect)"
    assert back.empty_reason("star") is None and "no generations" in (back.empty_reason("depth") or "")


def test_a_malformed_output_is_a_clear_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_json("sft/polya/summary.json", {"global_step": "many"})
    with pytest.raises(DataError, match=r"sft/polya/summary.json is not a valid TrainingSummary \((model|global_step)"):
        read_training_summary(store, RunLayout.sft("polya"))


def test_eval_results_pass_at_k_table(tmp_path: Path) -> None:
    results = EvalResults(ks=[1], benchmarks=["gsm8k"], arms={
        "base": {"model": "m", "benchmarks": {"gsm8k": {"questions": 2, "samples": 4, "accuracy": 0.25, "pass_at_k": {"1": 0.25}}}},
    })
    store = LocalStore(tmp_path)
    store.write_json(RunLayout.eval.results, results.dump())
    back = read_eval_results(store)
    assert back is not None and back.pass_at_k() == {"base": {"gsm8k": {"1": 0.25}}}


def test_generation_records_are_deduplicated_and_checked(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    writer = ShardWriter(store, RunLayout.generate.round(1))
    record = {"id": "q|h|r1|s0", "question_id": "q", "heuristic": "h", "completion": "x", "correct": False}
    writer.add([record, dict(record)])
    writer.flush()
    assert [r["id"] for r in iter_generations(store)] == ["q|h|r1|s0"]
    writer.add([{"id": "broken"}])
    writer.flush()
    with pytest.raises(DataError, match="'broken'.*lacks question_id"):
        list(iter_generations(store))
