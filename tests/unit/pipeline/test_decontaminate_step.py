"""The decontaminate component called directly on a questions artifact: the clean questions artifact,
the report, the benchmarks it takes from the eval settings, and the select step carrying the report
into the dataset cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import Dataset, Markdown, Metrics

from polya.core.errors import ConfigError
from polya.core.store import LocalStore
from polya.core.store.shards import ShardWriter
from polya.pipeline.loader import load_component
from polya.pipeline.steps.decontaminate import decontaminate_step
from polya.pipeline.steps.select import select_step

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "decontaminate"
BENCHMARKS = [{"name": "gsm8k", "path": str(FIXTURES / "gsm8k.jsonl")}, {"name": "math500", "path": str(FIXTURES / "math500.jsonl")}]
EVAL_CONFIG = json.dumps({"benchmarks": BENCHMARKS, "sampling": {"preset": "greedy"}})
CLEAN = ["t-stock", "t-clean", "t-short"]


@pytest.fixture()
def questions(tmp_path: Path) -> Dataset:
    artifact = Dataset(name="questions", uri=str(tmp_path / "questions"))
    load_component("data").python_func(questions=artifact, source=str(FIXTURES / "train.jsonl"))
    return artifact


def ids(folder: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (folder / "questions.jsonl").read_text().splitlines()]


def test_the_component_writes_the_clean_questions_and_the_report(tmp_path: Path, questions: Dataset) -> None:
    clean = Dataset(name="clean", uri=str(tmp_path / "clean"))
    metrics = Metrics(name="metrics", uri=str(tmp_path / "metrics"))
    report = Markdown(name="report", uri=str(tmp_path / "report.md"))
    load_component("decontaminate").python_func(questions=questions, clean=clean, metrics=metrics, report=report, eval_config_yaml=EVAL_CONFIG)
    assert ids(tmp_path / "clean") == CLEAN
    stored = json.loads((tmp_path / "clean" / "decontaminate" / "report.json").read_text())
    assert stored["removed"] == ["t-exact", "t-spacing", "t-numbers", "t-paraphrase", "t-latex"]
    assert stored["benchmarks"] == {"gsm8k": 5, "math500": 2}  # the eval settings' benchmarks
    assert "5 of 8 training questions overlap gsm8k, math500" in (tmp_path / "report.md").read_text()
    assert metrics.metadata["removed"] == 5.0 and metrics.metadata["benchmarks/math500"] == 1.0
    assert clean.metadata == {"questions": 8, "contaminated": 5, "removed": 5, "kept": 3, "action": "drop"}
    assert (tmp_path / "clean" / "manifest.json").is_file()


def test_flag_keeps_every_question_and_the_parameters_win(tmp_path: Path, questions: Dataset) -> None:
    flagged = decontaminate_step("", questions.path, str(tmp_path / "flagged"), eval_config_yaml=EVAL_CONFIG, action="flag")
    assert (flagged["contaminated"], flagged["removed"], flagged["kept"]) == (5, 0, 8) and len(ids(tmp_path / "flagged")) == 8
    # The component's own settings win over the eval settings' benchmarks ...
    own = decontaminate_step(json.dumps({"benchmarks": BENCHMARKS[:1]}), questions.path, str(tmp_path / "own"), eval_config_yaml=EVAL_CONFIG)
    assert own["benchmarks"] == {"gsm8k": 4} and own["removed"] == 4
    # ... and the benchmarks parameter (the eval tasks' parameter too) wins over both.
    named = decontaminate_step("", questions.path, str(tmp_path / "named"), eval_config_yaml=EVAL_CONFIG, benchmarks="synthetic")
    assert named["benchmarks"] == {"synthetic": 0} and named["removed"] == 0
    with pytest.raises(ConfigError, match="holds no questions.jsonl"):
        decontaminate_step("", str(tmp_path / "nothing"), str(tmp_path / "out"))


def test_select_puts_the_report_into_the_cards(tmp_path: Path, questions: Dataset) -> None:
    decontaminate_step("", questions.path, str(tmp_path / "clean"), eval_config_yaml=EVAL_CONFIG)
    generations = tmp_path / "generations"
    writer = ShardWriter(LocalStore(generations).child("generate"), "generations/round-01")
    writer.add([{
        "id": "t-clean|working_backward|r1|s0", "question_id": "t-clean", "heuristic": "working_backward", "round": 1, "sample_index": 0,
        "question": "Ana has 12 stickers.", "reference": "8", "completion": "Work backward. The final answer is \\boxed{8}.",
        "finish_reason": "stop", "correct": True, "status": "pass", "extracted_answer": "8", "model": "m",
    }])
    writer.flush()
    select_step("progress: false", str(generations), str(tmp_path / "datasets"), datasets="polya", decontamination_dir=str(tmp_path / "clean"))
    card = (tmp_path / "datasets" / "select" / "polya" / "README.md").read_text()
    assert "5 training questions removed as contaminated with gsm8k, math500" in card
    assert not (generations / "decontaminate").exists()  # the input artifacts are never written to
    with pytest.raises(ConfigError, match="holds no decontaminate/ folder"):
        select_step("", str(generations), str(tmp_path / "again"), decontamination_dir=str(tmp_path / "questions"))
