"""An arm's cost and provenance are read back from the training outputs its model came from."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from polya.core.manifest import RunManifest, installed_versions
from polya.core.store import LocalStore
from polya.eval.accounting import arm_accounting
from polya.eval.report import markdown_report


def record(manifest: RunManifest, name: str, seconds: float, attempts: int = 1) -> None:
    for _ in range(attempts):
        with manifest.recording(name, {"same": "settings"}):
            time.sleep(seconds)


def training_output(folder: Path, stage: str, model: str, run_dir: Path, tokens: int, gpus: int, **extra: Any) -> Path:
    (folder / "final").mkdir(parents=True)
    LocalStore(folder).write_json("summary.json", {
        "model": model, "global_step": 3, "final": str(folder / "final"), "identity_sha256": "ab" * 32, "completed": True,
        "tokens": tokens, "stage": stage, "seed": 7, "run_dir": str(run_dir), "manifest_stage": f"{stage}/{folder.name}",
        "packages": {"torch": "2.13.0"}, "gpus": gpus, **extra,
    })
    return folder / "final"


def test_the_chain_rl_sft_base_is_followed_back(tmp_path: Path) -> None:
    run = tmp_path / "run"
    store = LocalStore(run)
    manifest = RunManifest.load_or_create(store)
    record(manifest, "generate", 0.2)
    record(manifest, "select", 0.05)
    record(manifest, "sft/polya", 0.1, attempts=2)  # interrupted once and resumed: both attempts count
    record(manifest, "rl/polya_sft", 0.1)
    store.write_json("generate/summary.json", {
        "questions": 4, "heuristics": ["a"], "pairs": 4, "pairs_solved": 1, "questions_solved": 1, "samples": 8,
        "correct_samples": 1, "completion_tokens": 1234,
    })
    sft_final = training_output(run / "sft" / "polya", "sft", "embedded:smollm2", run, tokens=500, gpus=0, dataset="polya", dataset_sha256="d" * 64)
    rl_final = training_output(run / "rl" / "polya_sft", "rl", str(sft_final), run, tokens=9000, gpus=2, prompts_sha256="p" * 64)

    out = arm_accounting(str(rl_final))
    compute = out["compute"]
    stages = RunManifest.read(store).stages  # type: ignore[union-attr]
    assert stages["sft/polya"].total_duration_s > stages["sft/polya"].duration_s  # two attempts added up
    assert compute["generation_tokens"] == 1234
    assert (compute["sft_tokens"], compute["rl_tokens"]) == (500, 9000)
    assert list(compute["stages"]) == ["generate", "select", "sft/polya", "rl/polya_sft"]
    expected_wall = sum(round(stages[s].total_duration_s, 1) for s in compute["stages"])
    assert abs(compute["wall_s"] - expected_wall) < 0.2
    assert compute["gpu_hours"] == round(2 * round(stages["rl/polya_sft"].total_duration_s, 1) / 3600, 4)
    assert [p["stage"] for p in out["provenance"]] == ["sft/polya", "rl/polya_sft"]
    assert out["provenance"][0]["data_sha256"] == "d" * 64 and out["provenance"][1]["data_sha256"] == "p" * 64
    assert out["provenance"][1]["started_from"] == str(sft_final) and out["provenance"][0]["seed"] == 7

    sft_only = arm_accounting(str(sft_final))["compute"]
    assert (sft_only["sft_tokens"], sft_only["rl_tokens"], sft_only["gpu_hours"]) == (500, None, 0.0)
    assert stages["generate"].packages == installed_versions()


def test_a_model_with_no_training_output_has_unknown_cost(tmp_path: Path) -> None:
    for model in ("embedded:smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", str(tmp_path / "nowhere" / "final")):
        out = arm_accounting(model)
        assert out["provenance"] == [] and out["compute"]["wall_s"] is None and out["compute"]["sft_tokens"] is None


def test_the_report_has_a_cost_column_per_arm() -> None:
    results = {"arms": {
        "polya_sft_rl": {"model": "m", "benchmarks": {}, "compute": {"generation_tokens": 1234, "sft_tokens": 500, "rl_tokens": 9000, "wall_s": 5400, "gpu_hours": 3.0}},
        "base": {"model": "b", "benchmarks": {}, "compute": {"generation_tokens": None, "sft_tokens": None, "rl_tokens": None, "wall_s": None, "gpu_hours": None}},
    }}
    report = markdown_report(results)
    assert "| polya_sft_rl | 1,234 | 500 | 9,000 | 1.5 h | 3.00 |" in report
    assert "| base | – | – | – | – | – |" in report


def test_a_distill_arm_counts_the_teachers_generation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    LocalStore(run).write_json("generate/summary.json", {
        "questions": 4, "heuristics": ["a"], "pairs": 4, "pairs_solved": 1, "questions_solved": 1, "samples": 8,
        "correct_samples": 1, "completion_tokens": 1234,
    })
    LocalStore(run / "distill").write_json("generate/summary.json", {
        "questions": 4, "heuristics": ["a"], "pairs": 4, "pairs_solved": 4, "questions_solved": 4, "samples": 8,
        "correct_samples": 8, "completion_tokens": 777,
    })
    final = training_output(run / "sft" / "distill", "sft", "embedded:smollm2", run, tokens=50, gpus=0,
                            dataset="distill", data_file=str(run / "distill" / "select" / "distill" / "train.jsonl"))
    assert arm_accounting(str(final))["compute"]["generation_tokens"] == 777
