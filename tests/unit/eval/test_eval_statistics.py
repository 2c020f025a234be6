"""Intervals and paired comparisons in eval results and the report, on cases whose answer is known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polya.eval.report import markdown_report, write_comparison
from polya.eval.statistics import compare_arms, pass_at_k_intervals
from polya.metrics import mean_pass_at_k


def bench(per_question: dict[str, list[int]], ks: list[int]) -> dict[str, Any]:
    counts = [(n, c) for n, c in per_question.values()]
    return {
        "questions": len(per_question), "samples": sum(n for n, _c in counts), "accuracy": 0.0,
        "pass_at_k": {str(k): round(v, 4) for k, v in mean_pass_at_k(counts, ks).items()},
        "pass_at_k_interval": pass_at_k_intervals(per_question, ks),
        "per_question": per_question,
    }


def results(arms: dict[str, dict[str, dict[str, list[int]]]], ks: list[int]) -> dict[str, Any]:
    return {
        "ks": ks, "benchmarks": sorted({b for a in arms.values() for b in a}),
        "arms": {arm: {"model": arm, "benchmarks": {b: bench(pq, ks) for b, pq in benches.items()}} for arm, benches in arms.items()},
    }


STRONG = {f"q{i}": [4, 3 if i < 30 else 0] for i in range(40)}  # 30 of 40 questions mostly right
WEAK = {f"q{i}": [4, 1 if i < 10 else 0] for i in range(40)}  # 10 of 40, and fewer samples right
TINY_BASE = {f"t{i}": [4, 0] for i in range(16)}  # the cpu-demo: nothing right ...
TINY_RL = {f"t{i}": [4, 1 if i == 3 else 0] for i in range(16)}  # ... and one sample right


def by_pair(rows: list[dict[str, Any]], benchmark: str, k: int) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["a"], r["b"]): r for r in rows if r["benchmark"] == benchmark and r["k"] == k}


def test_a_clear_difference_is_significant_and_noise_is_not() -> None:
    data = results({"strong": {"math": STRONG, "demo": TINY_RL}, "weak": {"math": WEAK, "demo": TINY_BASE}, "copy": {"math": WEAK, "demo": TINY_BASE}}, [1, 4])
    rows = compare_arms(data)
    assert {(r["benchmark"], r["k"]) for r in rows} == {(b, k) for b in ("math", "demo", "average") for k in (1, 4)}

    math1 = by_pair(rows, "math", 1)
    strong_weak = math1[("strong", "weak")]
    assert strong_weak["difference"] == pytest.approx((30 * 0.75 - 10 * 0.25) / 40, abs=1e-4)
    assert strong_weak["interval"][0] > 0 and strong_weak["significant"]
    assert strong_weak["verdict"] == "strong > weak"
    assert math1[("weak", "copy")]["verdict"] == "no difference: the arms agree on every question"
    assert math1[("weak", "copy")]["p_value"] == 1.0 and not math1[("weak", "copy")]["significant"]

    demo4 = by_pair(rows, "demo", 4)[("strong", "weak")]  # 12.50 vs 0.00 pass@4 from one right sample
    assert demo4["difference"] == pytest.approx(1 / 16, abs=1e-4)
    assert demo4["differing"] == 1 and not demo4["decidable"] and not demo4["significant"]
    assert demo4["verdict"] == "too few questions to tell (1 differ)"
    # Holm within one benchmark and k: adjusted p-values are never below the raw ones.
    assert all(r["p_holm"] >= r["p_value"] for r in rows)


def test_the_report_and_results_show_intervals_and_verdicts(tmp_path: Path) -> None:
    data = results({"rl": {"synthetic": TINY_RL}, "base": {"synthetic": TINY_BASE}}, [1, 2, 4])
    written = write_comparison(data, str(tmp_path))
    report = (tmp_path / "report.md").read_text()
    assert "## Verdict" in report
    assert "None of the 2 paired comparisons is significant" in report
    assert "Too few questions to tell on synthetic" in report
    low, high = data["arms"]["rl"]["benchmarks"]["synthetic"]["pass_at_k_interval"]["4"]
    assert low == 0.0 and 0.0 < high < 0.3
    assert f"6.25 [{100 * low:.1f}, {100 * high:.1f}]" in report  # pass@4 of rl: 1/16 of questions, with its interval
    assert "| synthetic | 4 | rl - base | 16 | +6.25 [" in report
    import json

    stored = json.loads((tmp_path / "results.json").read_text())
    assert len(stored["comparisons"]) == 2 and written["plots"]


def test_old_results_without_per_question_counts_still_report() -> None:
    data = results({"a": {"m": STRONG}, "b": {"m": WEAK}}, [1])
    for arm in data["arms"].values():
        for b in arm["benchmarks"].values():
            del b["per_question"], b["pass_at_k_interval"]
    assert compare_arms(data) == []
    assert "## Verdict" not in markdown_report(data)
