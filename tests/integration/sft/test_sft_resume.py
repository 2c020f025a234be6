"""Kill ``polya sft`` (SIGKILL) right after it saved checkpoint-2, run it again: it resumes there and finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polya.core.manifest import RunManifest
from polya.core.store import LocalStore
from polya.training.checkpoints import last_local_checkpoint

pytestmark = pytest.mark.integration

MAX_STEPS = 6
START_TIMEOUT_S = 600.0


def _command(run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "polya.cli.main", "sft", "--run-dir", str(run_dir), "--max-steps", str(MAX_STEPS),
        "--save-steps", "2", "--save-total-limit", "3", "--batch-size", "2", "--max-seq-length", "256",
        "--learning-rate", "1e-4", "--logging-steps", "1", "--progress", "false",
    ]


def test_a_killed_run_resumes_from_its_last_checkpoint(run_dir_with_dataset: Path, tmp_path: Path) -> None:
    run_dir = run_dir_with_dataset
    out_dir = run_dir / "sft" / "polya"
    first_log = tmp_path / "first.log"
    with first_log.open("wb") as log:
        proc = subprocess.Popen(_command(run_dir), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (out_dir / "checkpoint-2" / "trainer_state.json").is_file():
            if proc.poll() is not None:
                pytest.fail(f"polya sft exited with {proc.returncode} before saving checkpoint-2:\n{first_log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no checkpoint-2 within {START_TIMEOUT_S:.0f}s:\n{first_log.read_text()[-3000:]}")
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # its own process group: the trainer and nothing else
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run was killed, not finished"
    killed_at = last_local_checkpoint(out_dir)
    assert killed_at is not None and killed_at.name == "checkpoint-2"
    assert not (out_dir / "final").exists() and not (out_dir / "summary.json").exists()
    killed = RunManifest.load_or_create(LocalStore(run_dir)).stage("sft/polya")
    assert killed is not None and killed.status == "interrupted" and "killed from outside" in (killed.cause or "")  # its process is gone

    second = subprocess.run(_command(run_dir), capture_output=True, text=True, timeout=1200)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-4000:]
    assert f"resuming from {killed_at}" in second.stderr
    printed = json.loads(second.stdout.strip().splitlines()[-1])
    assert printed["resumed_from"] == "checkpoint-2" and printed["global_step"] == MAX_STEPS

    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["resumed_from"] == "checkpoint-2" and summary["global_step"] == MAX_STEPS and summary["completed"]
    # global_step continued from 2: this process trained steps 3..6 only.
    state = json.loads((out_dir / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS
    assert [h["step"] for h in state["log_history"] if "loss" in h] == list(range(1, MAX_STEPS + 1))
    lines = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "loss" in line] == list(range(1, MAX_STEPS + 1)), "no step logged twice"
    assert summary["session_tokens"] < summary["tokens"], "tokens of steps 1-2 came from the checkpoint's state"
    assert (out_dir / "final" / "model.safetensors").is_file()
    record = RunManifest.load_or_create(LocalStore(run_dir)).stage("sft/polya")
    assert record.status == "done" and record.attempts == 2 and record.outputs["resumed_from"] == "checkpoint-2"
