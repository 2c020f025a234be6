"""A sample whose verdict stayed undecided (judge timeout or error) is neither right nor wrong in eval's numbers."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from polya.eval.config import BenchmarkSpec, EvalConfig
from polya.eval.report import markdown_report
from polya.eval.stage import EvaluationStage
from polya.metrics import pass_at_k

SPEC = BenchmarkSpec(name="synthetic", limit=3)


def sample(question: str, index: int, status: str) -> dict[str, Any]:
    return {
        "id": f"{question}|s{index}", "arm": "base", "benchmark": SPEC.name, "question_id": question, "sample_index": index,
        "completion": f"answer {index} to {question}", "finish_reason": "stop", "completion_tokens": 10,
        "correct": status == "pass", "status": status,
    }


def test_pass_at_k_counts_decided_samples_only(tmp_path: Path) -> None:
    stage = EvaluationStage(EvalConfig(
        run_dir=str(tmp_path), arms={"base": "m"}, benchmarks=[SPEC], progress=False, sampling={"n": 4, "ks": [1, 2, 4]},
    ))
    statuses = {
        "q1": ["pass", "fail", "fail", "fail"],
        "q2": ["pass", "timeout", "fail", "error"],  # 2 decided samples, 1 right
        "q3": ["fail", "timeout", "timeout", "timeout"],  # 1 decided sample
    }
    stage.store.write_jsonl(
        stage.paths.samples("base", SPEC.name),
        [sample(q, i, status) for q, row in statuses.items() for i, status in enumerate(row)],
    )
    bench = stage.results().arms["base"].benchmarks[SPEC.name]
    assert bench.undecided == 5
    assert bench.accuracy == round(2 / 7, 4)  # 2 right of 7 decided; counting timeouts as wrong would give 2 / 12
    assert bench.pass_at_k_questions == {"1": 3, "2": 2, "4": 1}
    assert bench.pass_at_k["1"] == round((pass_at_k(4, 1, 1) + pass_at_k(2, 1, 1) + pass_at_k(1, 0, 1)) / 3, 4)
    assert bench.pass_at_k["2"] == round((pass_at_k(4, 1, 2) + pass_at_k(2, 1, 2)) / 2, 4)
    assert bench.pass_at_k["4"] == 1.0

    report = markdown_report(stage.results().dump())
    assert "**5 sample(s) stayed undecided**" in report
    assert "(2 of 3 questions)" in report and "(1 of 3 questions)" in report


def test_repeats_pool_their_samples_and_report_the_spread(tmp_path: Path) -> None:
    stage = EvaluationStage(EvalConfig(
        run_dir=str(tmp_path), arms={"base": "m"}, benchmarks=[SPEC], progress=False, sampling={"n": 2, "repeats": 3, "ks": [1, 2]},
    ))
    right = {("q1", 0): [True, False], ("q1", 1): [False, False], ("q1", 2): [True, True], ("q2", 0): [False, False], ("q2", 1): [False, False], ("q2", 2): [False, True]}
    rows = []
    for (question, repeat), outcome in right.items():
        for index, ok in enumerate(outcome):
            rows.append({**sample(question, index, "pass" if ok else "fail"), "id": f"{question}|r{repeat}|s{index}", "repeat": repeat})
    stage.store.write_jsonl(stage.paths.samples("base", SPEC.name), rows)
    bench = stage.results().arms["base"].benchmarks[SPEC.name].model_dump()
    assert bench["per_question"] == {"q1": [6, 3], "q2": [6, 1]}  # the repeats pooled
    assert bench["pass_at_k"]["1"] == round((3 / 6 + 1 / 6) / 2, 4)
    per_repeat = bench["pass_at_k_per_repeat"]
    assert per_repeat == {"0": {"1": 0.25, "2": 0.5}, "1": {"1": 0.0, "2": 0.0}, "2": {"1": 0.75, "2": 1.0}}
    assert bench["pass_at_k_repeat_sd"]["2"] == round(statistics.stdev([0.5, 0.0, 1.0]), 4)

    item = stage.items(SPEC)[0]
    endpoint = type("E", (), {"model": "m", "cpu_backend": False})()
    seeds = {stage._body(endpoint, item, repeat).get("seed") for repeat in range(3)}  # type: ignore[arg-type]
    assert len(seeds) == 3  # each repeat draws with its own seed
