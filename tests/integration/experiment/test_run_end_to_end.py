"""`polya run` end to end on the embedded model with tiny budgets: generate -> select -> sft -> rl
-> eval for two arms, ending with the comparison report; then a re-run that skips every stage.

The SFT arm here is ``wrong_answer_sft_rl``, not ``polya_sft_rl``: with a handful of samples the
135M model usually solves no question, which leaves the Pólya dataset empty (``polya run`` then
leaves that arm out, as the second test checks), while the wrong-answer control always has rows.
Both arms go through the same code: only the select dataset differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from polya.core.manifest import RunManifest
from polya.core.store import open_store
from polya.experiment.config import RunConfig
from polya.experiment.run import run as run_job
from support.tiny_run import tiny_run_settings

pytestmark = pytest.mark.integration


def _settings(run_dir: Path, endpoint_url: str, arms: list[str], select_arms: list[str]) -> dict:
    # The run's model is the embedded default, the model the session server serves.
    return tiny_run_settings(run_dir, endpoint_url, arms, select_arms)


def test_run_builds_and_compares_the_arms_then_resumes(vllm_endpoint, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = RunConfig.model_validate(
        _settings(run_dir, vllm_endpoint.base_url, ["base", "wrong_answer_sft_rl"], ["wrong_answer"])
    )
    out = run_job(config)

    assert list(out.stages) == ["decontaminate", "generate", "select", "sft/wrong_answer", "rl/wrong_answer_sft", "eval"]
    assert not out.skipped
    # cpu-demo flags: the synthetic training and eval problems share templates; nothing is removed.
    assert out.stages["decontaminate"]["action"] == "flag" and out.stages["decontaminate"]["removed"] == 0
    assert "## Decontamination" in (run_dir / "select" / "wrong_answer" / "README.md").read_text()
    # The chain: SFT on select/wrong_answer, GRPO from that checkpoint, vLLM serves the result in eval.
    assert (run_dir / "sft" / "wrong_answer" / "final" / "config.json").is_file()
    rl_final = run_dir / "rl" / "wrong_answer_sft" / "final"
    assert (rl_final / "config.json").is_file()
    rl_summary = json.loads((run_dir / "rl" / "wrong_answer_sft" / "summary.json").read_text())
    assert rl_summary["model"].endswith("sft/wrong_answer/final")
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert set(results["arms"]) == {"base", "wrong_answer_sft_rl"}
    assert results["arms"]["wrong_answer_sft_rl"]["model"] == str(rl_final)
    for arm in ("base", "wrong_answer_sft_rl"):
        samples = (run_dir / "eval" / arm / "synthetic" / "samples.jsonl").read_text().splitlines()
        assert len(samples) == 2 * 2
        assert set(results["arms"][arm]["benchmarks"]["synthetic"]["pass_at_k"]) == {"1", "2"}
    report = (run_dir / "eval" / "report.md").read_text()
    assert "base" in report and "wrong_answer_sft_rl" in report
    assert list((run_dir / "eval" / "plots").glob("*.png"))
    manifest = RunManifest.load_or_create(open_store(str(run_dir)))
    for stage in ("decontaminate", "generate", "select", "sft/wrong_answer", "rl/wrong_answer_sft", "eval"):
        assert manifest.stage(stage).status == "done", stage  # type: ignore[union-attr]
    select_attempts = manifest.stage("select").attempts  # type: ignore[union-attr]

    def snapshot() -> dict[str, bytes]:
        kept = list((run_dir / "generate" / "generations").rglob("*.jsonl")) + list((run_dir / "eval").rglob("*.jsonl"))
        kept += [run_dir / "sft" / "wrong_answer" / "summary.json"]
        files = {str(path): path.read_bytes() for path in kept}
        # The report is written again; only the cost table's wall time may grow (the re-check is
        # an attempt of generate, and every attempt counts).
        report = (run_dir / "eval" / "report.md").read_text()
        head, _, costs = report.partition("## What each arm cost")
        files["report"] = (head + re.sub(r"\| [0-9.]+ (s|min|h) \|", "| <wall time> |", costs)).encode()
        return files

    before = snapshot()
    # Run again with a dead model endpoint: everything is stored, so nothing is asked of it and
    # nothing is redone (generate and eval re-check their parts; the trainers find final/).
    dead = _settings(run_dir, "http://127.0.0.1:9/v1", ["base", "wrong_answer_sft_rl"], ["wrong_answer"])
    again = run_job(RunConfig.model_validate(dead))
    assert again.report_uri == out.report_uri
    assert snapshot() == before
    manifest = RunManifest.load_or_create(open_store(str(run_dir)))
    assert manifest.stage("select").attempts == select_attempts  # type: ignore[union-attr]
    assert again.stages["rl/wrong_answer_sft"]["global_step"] == rl_summary["global_step"]


def test_an_arm_with_nothing_to_learn_is_left_out_with_the_reason(vllm_endpoint, tmp_path: Path) -> None:
    """generate and select for real, then stop: a select dataset with no rows is reported, not trained on."""
    run_dir = tmp_path / "run"
    settings = _settings(run_dir, vllm_endpoint.base_url, ["base", "polya_sft"], ["polya"])
    settings["generate"]["bootstrap"] = {"rounds": 1, "samples": 1}
    settings["generate"]["sampling"] = {"max_tokens": 4}  # no room to reach an answer: nothing is correct
    settings["stages"] = ["generate", "select", "sft"]
    out = run_job(RunConfig.model_validate(settings))
    assert out.stages["generate"]["correct_samples"] == 0
    assert set(out.skipped) == {"polya_sft"}
    assert "select/polya holds no examples" in out.skipped["polya_sft"]
    assert not (run_dir / "sft").exists()
