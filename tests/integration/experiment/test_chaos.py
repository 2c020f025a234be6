"""Kill it anywhere: `polya run` SIGKILLed inside every stage, then run again to the end.

A real ``polya run`` subprocess on the embedded model with tiny budgets (generation and the base
arm's evaluation use the session's vLLM server; polya starts its own vLLM server to evaluate the
trained arm, and a local Ray cluster for GRPO). It is killed with SIGKILL as soon as each stage
has done part of its work: generate (a shard of records stored), select (started), sft and rl (a
checkpoint saved), eval (one arm evaluated, the next arm's vLLM server starting). After every
kill no process it started may survive; the last run must end normally with nothing lost,
nothing duplicated, the manifest consistent, and the select datasets equal to a fresh selection
from the same generations (the deterministic stage).
"""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import psutil
import pytest
import yaml

from polya.core.manifest import RunManifest
from polya.core.store import LocalStore
from support.tiny_run import HEURISTICS, tiny_run_settings

pytestmark = pytest.mark.integration

QUESTIONS, SAMPLES = 2, 2


def settings(run_dir: Path, endpoint: str) -> dict:
    return tiny_run_settings(
        run_dir, endpoint, ["base", "wrong_answer_sft_rl"], ["wrong_answer"], questions=QUESTIONS, samples=SAMPLES,
        generate={"concurrency": 1}, sft={"save_steps": 1}, rl={"max_steps": 2, "num_workers": 1},
    )


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "polya.cli.main", "run", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT)


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout_s: float) -> list[psutil.Process] | None:
    """SIGKILL ``proc`` once ``ready()``; return the processes it had started (None when it ended first)."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and not ready():
        assert time.monotonic() < deadline, "the stage did not get there in time"
        time.sleep(0.1)
    if proc.poll() is not None:
        return None
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return descendants


def _survivors(processes: list[psutil.Process], within_s: float = 45.0) -> list[str]:
    end = time.monotonic() + within_s
    alive = processes
    while alive and time.monotonic() < end:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.5)
    return [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in alive if p.is_running()]


def test_killed_in_every_stage_then_resumed(vllm_endpoint, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(settings(run_dir, vllm_endpoint.base_url)), encoding="utf-8")
    log = tmp_path / "polya.log"

    def shards() -> bool:
        return any((run_dir / "generate" / "generations").rglob("*.jsonl")) if (run_dir / "generate").exists() else False

    kill_points: list[tuple[str, Callable[[], bool], float]] = [
        ("generate", shards, 600),
        ("select", lambda: (run_dir / "select").exists(), 600),
        ("sft", lambda: any((run_dir / "sft" / "wrong_answer").glob("checkpoint-*")), 900),
        ("rl", lambda: any((run_dir / "rl" / "wrong_answer_sft").glob("checkpoint-*")), 900),
        ("eval", lambda: (run_dir / "eval" / "base" / "synthetic" / "part.json").is_file(), 900),
    ]
    killed = []
    stored_before_kill: set[str] = set()
    for stage, ready, timeout_s in kill_points:
        proc = _start(config, log)
        started = _kill_when(proc, ready, timeout_s)
        if started is None:
            assert proc.returncode == 0, log.read_text()[-3000:]
            break  # the run finished before this kill point
        killed.append(stage)
        survivors = _survivors(started)
        assert survivors == [], f"killed in {stage}; still running:\n" + "\n".join(survivors)
        generations = run_dir / "generate" / "generations"
        if generations.exists():
            stored_before_kill |= {json.loads(line)["id"] for f in generations.rglob("*.jsonl") for line in f.read_text().splitlines() if line.strip()}
    assert len(killed) >= 3, f"only killed in {killed}: the stages ran faster than the kill points"

    final = _start(config, log)
    assert final.wait(timeout=1800) == 0, log.read_text()[-5000:]

    manifest = RunManifest.read(LocalStore(run_dir))
    assert manifest is not None
    for stage in ("generate", "select", "sft/wrong_answer", "rl/wrong_answer_sft", "eval"):
        record = manifest.stage(stage)
        assert record is not None and record.status == "done", stage
    ids = [json.loads(line)["id"] for f in (run_dir / "generate" / "generations").rglob("*.jsonl") for line in f.read_text().splitlines() if line.strip()]
    assert len(ids) == len(set(ids)) == QUESTIONS * len(HEURISTICS) * SAMPLES  # nothing duplicated, nothing missing
    assert stored_before_kill <= set(ids)  # nothing stored before a kill was lost
    sft = json.loads((run_dir / "sft" / "wrong_answer" / "summary.json").read_text())
    rl = json.loads((run_dir / "rl" / "wrong_answer_sft" / "summary.json").read_text())
    assert sft["global_step"] == 2 and rl["global_step"] == 2
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    for arm in ("base", "wrong_answer_sft_rl"):
        rows = (run_dir / "eval" / arm / "synthetic" / "samples.jsonl").read_text().splitlines()
        assert len(rows) == 2 * 2 and len({json.loads(r)["id"] for r in rows}) == 4
        assert results["arms"][arm]["benchmarks"]["synthetic"]["samples"] == 4

    # select is deterministic: the same generations selected afresh give the same datasets.
    fresh = tmp_path / "fresh"
    (fresh / "generate").mkdir(parents=True)
    os.symlink(run_dir / "generate" / "generations", fresh / "generate" / "generations")
    for name in ("questions.jsonl", "config.json"):
        if (run_dir / "generate" / name).exists():
            (fresh / "generate" / name).write_bytes((run_dir / "generate" / name).read_bytes())
    from polya.select.config import SelectConfig
    from polya.select.stage import run as run_select

    run_select(SelectConfig(run_dir=str(fresh), datasets=["wrong_answer"], progress=False))
    assert filecmp.cmp(run_dir / "select" / "wrong_answer" / "train.jsonl", fresh / "select" / "wrong_answer" / "train.jsonl", shallow=False)
