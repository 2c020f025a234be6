"""A real GRPO run: the embedded SmolLM2-135M on CPU, 2 Ray Train workers in a local Ray cluster.

The run is killed (SIGKILL to the whole process group) once its first checkpoint is complete, then
run again: it must resume from that checkpoint and finish. Rewards must be the verifier's (the
reward worker's counters match the metrics and the rewards), the weights must have changed, and
the checkpoint and the final model must load with transformers.

The questions are one-digit additions that ask for "The answer is \\boxed{N}", so the 135M model
gets some right and some wrong within 16 tokens: groups with mixed rewards, hence real gradients.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

STEPS = 3
BATCH = 8
GROUP = 4
FORMAT_WEIGHT = 0.1
KILL_TIMEOUT_S = 600.0


def write_questions(path: Path) -> Path:
    pairs = [(2, 3), (4, 5), (1, 6), (3, 3), (2, 2), (5, 1), (4, 4), (3, 6)]
    rows = [
        {"id": f"add-{i}", "question": f"What is {a} + {b}? Reply only with: The answer is \\boxed{{N}}.", "answer": str(a + b)}
        for i, (a, b) in enumerate(pairs)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def settings(run_dir: Path, questions: Path) -> dict:
    return {
        "run_dir": str(run_dir), "data": {"source": str(questions)}, "system_prompt": "", "answer_format": "",
        "group_size": GROUP, "batch_size": BATCH, "max_completion_length": 16, "max_steps": STEPS, "save_steps": 1,
        "learning_rate": 1e-5, "reward": {"format": FORMAT_WEIGHT}, "num_workers": 2, "progress": False,
    }


def start_and_kill_after_first_checkpoint(run_dir: Path, questions: Path, log: Path) -> None:
    """``polya rl`` in its own session; SIGKILL it (and every process it started) once checkpoint-1 is complete."""
    s = settings(run_dir, questions)
    cmd = [sys.executable, "-m", "polya.cli.main", "rl", "--config", str(run_dir.parent / "rl.yaml")]
    (run_dir.parent / "rl.yaml").write_text(json.dumps(s), encoding="utf-8")
    with log.open("wb") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    state = run_dir / "rl" / "base" / "checkpoint-1" / "trainer_state.json"
    deadline = time.monotonic() + KILL_TIMEOUT_S
    try:
        while not state.is_file():
            if proc.poll() is not None:
                pytest.fail(f"polya rl exited with {proc.returncode} before checkpoint-1:\n{log.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no checkpoint-1 within {KILL_TIMEOUT_S:.0f}s:\n{log.read_text()[-5000:]}")
            time.sleep(0.2)
        time.sleep(0.5)  # let the trainer finish writing the checkpoint's other files
    finally:
        family = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)] if proc.poll() is None else [proc.pid]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in family:  # Ray's own processes may have left the process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()


def test_grpo_run_is_killed_resumes_and_learns_from_the_verifier(tmp_path: Path, embedded_checkpoint: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from polya.core.manifest import RunManifest
    from polya.core.store import open_store
    from polya.rl.config import RlConfig
    from polya.rl.stage import run

    run_dir = tmp_path / "run"
    questions = write_questions(tmp_path / "questions.jsonl")
    start_and_kill_after_first_checkpoint(run_dir, questions, tmp_path / "killed.log")
    out_dir = run_dir / "rl" / "base"
    assert not (out_dir / "summary.json").exists(), "the killed run must not have finished"

    config = RlConfig.model_validate(settings(run_dir, questions))
    outputs = run(config)
    summary = outputs.summary

    # Resumed from the checkpoint the killed run left, and finished all steps.
    assert summary["resumed_from"] is not None and summary["resumed_from"].startswith("checkpoint-")
    assert summary["global_step"] == STEPS and summary["world_size"] == 2
    assert summary["peak_rss_mib"] > 50 and summary["peak_rss_mib_learner0"] > 50  # the driver's and the learner worker's peaks

    # Every step's rewards came from the verifier: one call per worker, one verdict per completion, and
    # the reward TRL trained on equals what the verdicts imply (correct: 1, answer found: +0.1).
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    for record in records:
        verifier = record["verifier"]
        assert verifier["verdicts"] == BATCH and verifier["verifier_calls"] == 2
        expected = (verifier["correct"] * 1.0 + verifier["answer_found"] * FORMAT_WEIGHT) / BATCH
        assert record["reward_mean"] == pytest.approx(expected, abs=1e-5)
        assert record["accuracy"] == verifier["correct"] / BATCH
        for key in ("reward_std", "entropy", "response_length", "clip_fraction", "tokens_per_s", "step_s", "rollout_s", "learner_s"):
            assert record[key] is not None, key
        assert record["kl"] is None  # beta 0: no KL term, no reference model
    assert "LocalVerifier" in summary["reward_source"]
    assert "reference" not in summary["topology"]
    assert sum(r["verifier"]["correct"] for r in records) > 0  # the task gives some reward signal

    # The weights changed, and the checkpoint and the final model load with transformers.
    final = AutoModelForCausalLM.from_pretrained(out_dir / "final")
    base = AutoModelForCausalLM.from_pretrained(embedded_checkpoint)
    delta = max((p - q).abs().max().item() for p, q in zip(final.state_dict().values(), base.state_dict().values()))
    assert delta > 0.0
    checkpoint = AutoModelForCausalLM.from_pretrained(out_dir / f"checkpoint-{STEPS}")
    assert all(torch.equal(p, q) for p, q in zip(final.state_dict().values(), checkpoint.state_dict().values()))
    assert json.loads((out_dir / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())["global_step"] == STEPS

    manifest = RunManifest.load_or_create(open_store(str(run_dir)))
    assert manifest.stage("rl/base").status == "done" and manifest.stage("rl/base").attempts == 2

    # The same command again finds the finished run and trains nothing.
    started = time.monotonic()
    again = run(config)
    assert again.summary["identity_sha256"] == summary["identity_sha256"]
    assert time.monotonic() - started < 60
