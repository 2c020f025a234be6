"""The comparison report: Markdown tables, merged JSON and PNG pass@k plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polya.core.errors import DataError
from polya.eval.report import markdown_report, merge_results, write_comparison


def _bench(title: str, kind: str, values: dict[str, float], composition: dict | None = None) -> dict:
    return {
        "title": title, "kind": kind, "questions": 10, "samples": 40, "samples_per_question": 4, "accuracy": values["1"],
        "pass_at_k": values, "questions_solved": 5, "vendi_per_question": 2.5, "vendi_per_question_correct": None,
        "completion_tokens_mean": 120.0, "finish_reasons": {"stop": 30, "length": 10}, "judge_status": {"pass": 20, "fail": 20},
        "composition": composition,
    }


def results_of(arms: dict[str, tuple[float, float]]) -> dict:
    out = {"ks": [1, 2, 4], "sampling": {"n": 4, "temperature": 1.0, "top_p": 1.0, "max_tokens": 256, "preset": "cpu-demo"},
           "benchmarks": ["math500", "humaneval"], "arms": {}}
    for arm, (math1, code1) in arms.items():
        math = {"1": math1, "2": min(1.0, math1 * 1.5), "4": min(1.0, math1 * 2)}
        code = {"1": code1, "2": min(1.0, code1 * 1.5), "4": min(1.0, code1 * 2)}
        comp = {"solutions": 8, "labelled": 6, "unparseable": 2, "none": 1, "single": 2, "multiple": 3, "share_multiple": 0.5,
                "mean_heuristics": 1.5, "per_heuristic": {"decomposition": 5}}
        out["arms"][arm] = {
            "model": f"model-{arm}",
            "benchmarks": {"math500": _bench("MATH-500", "math", math, comp), "humaneval": _bench("HumanEval", "code", code)},
            "average": {"benchmarks": 2, "pass_at_k": {k: (math[k] + code[k]) / 2 for k in math}},
        }
    return out


def test_markdown_tables_show_every_arm_and_benchmark() -> None:
    text = markdown_report(results_of({"base": (0.2, 0.1), "polya": (0.3, 0.15)}))
    assert "## pass@4" in text and "## pass@1" in text
    assert "| arm | math500 | humaneval | average |" in text
    assert "| base | 20.00 | 10.00 | 15.00 |" in text  # pass@1 row
    assert "| polya | 60.00 | 30.00 | 45.00 |" in text  # pass@4 row
    assert "### MATH-500 (`math500`)" in text and "| arm | pass@1 | pass@2 | pass@4 |" in text
    assert "## Composition (LLM judge)" in text and "| base | math500 | 8 | 6 | 50.00 |" in text
    assert "2.50 / –" in text and "stop 30, length 10" in text


def test_write_comparison_writes_json_markdown_and_pngs(tmp_path: Path) -> None:
    out = write_comparison(results_of({"base": (0.2, 0.1), "polya": (0.3, 0.15)}), str(tmp_path / "cmp"))
    assert Path(out["report"]).read_text().startswith("# Evaluation report")
    assert set(json.loads(Path(out["results"]).read_text())["arms"]) == {"base", "polya"}
    names = sorted(Path(p).name for p in out["plots"])
    assert names == ["pass_at_k.png", "pass_at_k_average.png", "pass_at_k_humaneval.png", "pass_at_k_math500.png"]
    from PIL import Image

    for p in out["plots"]:
        data = Path(p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(p) as img:
            assert img.size[0] > 200 and img.size[1] > 150


def test_merge_several_evaluations_by_label(tmp_path: Path) -> None:
    one = tmp_path / "run1" / "eval"
    one.mkdir(parents=True)
    (one / "results.json").write_text(json.dumps(results_of({"base": (0.2, 0.1)})))
    two = results_of({"x": (0.4, 0.2), "y": (0.5, 0.3)})
    merged = merge_results({"baseline": str(one), "sweep": two})
    assert list(merged["arms"]) == ["baseline", "sweep/x", "sweep/y"]
    assert merged["ks"] == [1, 2, 4] and merged["benchmarks"] == ["math500", "humaneval"]
    assert merge_results(str(one / "results.json"))["arms"].keys() == {"base"}
    out = write_comparison({"baseline": str(one / "results.json"), "sweep": two}, str(tmp_path / "report"))
    assert "| sweep/y |" in Path(out["report"]).read_text()
    with pytest.raises(DataError, match="no eval results at"):
        merge_results(str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="two evaluations give arm 'a/z'"):
        merge_results({"a": results_of({"z": (0.1, 0.1), "w": (0.2, 0.2)}), "a/z": results_of({"q": (0.1, 0.1)})})
