"""`polya eval` end to end against the session vLLM server on the embedded model: samples, verdicts,
pass@k, Vendi, the composition judge, JSON + Markdown + PNG, manifest, and resume."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from polya.core.manifest import RunManifest
from polya.core.store import open_store
from polya.eval.config import EvalConfig
from polya.eval.stage import run
from polya.metrics import pass_at_k

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "eval"
BENCHMARKS = {"synthetic": 2, "gsm8k": 1, "humaneval": 1, "musr_murder_mysteries": 1}


def _settings(run_dir: Path, endpoint_url: str, judge_url: str, judge_model: str) -> dict:
    return {
        "run_dir": str(run_dir),
        "endpoint": endpoint_url,
        "benchmarks": [
            {"name": "synthetic", "limit": 2},
            {"name": "gsm8k", "path": str(FIXTURES / "gsm8k.jsonl"), "limit": 1},
            {"name": "humaneval", "path": str(FIXTURES / "humaneval.jsonl"), "limit": 1},
            {"name": "musr_murder_mysteries", "path": str(FIXTURES / "musr_murder_mysteries.jsonl"), "limit": 1},
        ],
        "sampling": {"preset": "custom", "n": 2, "temperature": 1.0, "max_tokens": 48, "per_request_seed": "off"},
        "concurrency": 4,
        "judge_workers": 1,
        "judge": {
            "enabled": True, "endpoint": judge_url, "model": judge_model, "benchmarks": ["synthetic"],
            "only_correct": False, "max_solutions": 2, "max_tokens": 24,
        },
        "progress": False,
    }


def test_eval_end_to_end_and_resume(vllm_endpoint, tmp_path: Path, free_tcp_port: int) -> None:
    run_dir = tmp_path / "run"
    config = EvalConfig.model_validate(_settings(run_dir, vllm_endpoint.base_url, vllm_endpoint.base_url, vllm_endpoint.model))
    out = run(config)
    stage = run_dir / "eval"

    for name, questions in BENCHMARKS.items():
        samples = [json.loads(line) for line in (stage / "base" / name / "samples.jsonl").read_text().splitlines()]
        assert len(samples) == questions * 2, name
        assert all(s["completion"] and s["status"] in ("pass", "fail", "timeout", "error") for s in samples)
        assert all(s["completion_tokens"] > 0 and s["finish_reason"] in ("stop", "length") for s in samples)
        # pass@k in results.json is recomputed from the stored verdicts, not made up
        by_q: dict[str, list[bool]] = defaultdict(list)
        for s in samples:
            by_q[s["question_id"]].append(s["correct"])
        res = out.results["arms"]["base"]["benchmarks"][name]
        assert res["questions"] == questions and res["samples_per_question"] == 2
        for k in ("1", "2"):
            expected = sum(pass_at_k(len(v), sum(v), int(k)) for v in by_q.values()) / len(by_q)
            assert res["pass_at_k"][k] == pytest.approx(expected, abs=1e-4)
        assert res["vendi_per_question"] is not None and 1.0 <= res["vendi_per_question"] <= 2.0
    code = [json.loads(line) for line in (stage / "base" / "humaneval" / "samples.jsonl").read_text().splitlines()]
    assert all(s["status"] in ("pass", "fail", "error", "timeout") and s["judge_reason"] for s in code)

    composition = [json.loads(line) for line in (stage / "base" / "synthetic" / "composition.jsonl").read_text().splitlines()]
    assert len(composition) == 2 and all(c["reply"] for c in composition)
    comp = out.results["arms"]["base"]["benchmarks"]["synthetic"]["composition"]
    assert comp["solutions"] == 2 and comp["labelled"] + comp["unparseable"] == 2

    results = json.loads((stage / "results.json").read_text())
    assert results["ks"] == [1, 2] and set(results["arms"]["base"]["benchmarks"]) == set(BENCHMARKS)
    assert results["peak_rss_mib"] > 50
    report = (stage / "report.md").read_text()
    assert "| arm | synthetic | gsm8k | humaneval | musr_murder_mysteries | average |" in report
    for png in ["pass_at_k.png", "pass_at_k_average.png"] + [f"pass_at_k_{b}.png" for b in BENCHMARKS]:
        assert (stage / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    manifest = RunManifest.load_or_create(open_store(str(run_dir)))
    record = manifest.stage("eval")
    assert record is not None and record.status == "done"
    assert "eval/results.json" in record.artifacts and "eval/base/gsm8k/samples.jsonl" in record.artifacts

    # Resume: every part is finished, so no model server or judge is contacted (both point at a dead port now).
    before = {p: p.read_bytes() for p in stage.glob("base/*/*.jsonl")}
    dead = f"http://127.0.0.1:{free_tcp_port}/v1"
    again = run(EvalConfig.model_validate(_settings(run_dir, dead, dead, vllm_endpoint.model)))
    assert {p: p.read_bytes() for p in stage.glob("base/*/*.jsonl")} == before
    assert again.results["arms"]["base"]["benchmarks"] == out.results["arms"]["base"]["benchmarks"]

    # A changed setting for one part evaluates that part again (and only it needs the server).
    changed = _settings(run_dir, vllm_endpoint.base_url, dead, vllm_endpoint.model)
    changed["benchmarks"][1]["limit"] = 2
    changed["judge"]["enabled"] = False
    third = run(EvalConfig.model_validate(changed))
    assert third.results["arms"]["base"]["benchmarks"]["gsm8k"]["questions"] == 2
    assert (stage / "base" / "synthetic" / "samples.jsonl").read_bytes() == before[stage / "base" / "synthetic" / "samples.jsonl"]
