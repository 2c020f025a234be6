"""The generate stage against a real vLLM server on the embedded model: kill, resume, records."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil
import pytest
import yaml

from polya.core.manifest import RunManifest
from polya.core.outputs import iter_generations
from polya.core.store import open_store
from polya.generate.config import GenerateConfig
from polya.generate.stage import run
from polya.verify.math_judge import judge_math

pytestmark = pytest.mark.integration

HEURISTICS = ["working_backward", "decomposition", "step_by_step_justification"]


def _settings(run_dir: Path, endpoint_url: str | None, **extra: object) -> dict:
    settings = {
        "run_dir": str(run_dir),
        "data": {"source": "synthetic", "synthetic": {"count": 4, "difficulties": [1]}, "seed": 3},
        "heuristics": HEURISTICS,
        "plain": False,  # counts the heuristic pairs exactly; the plain condition: tests/unit/generate/test_generate_plain_condition.py
        "num_exemplars": 1,
        "sampling": {"temperature": 0.9, "max_tokens": 96, "seed": 7, "per_request_seed": "off"},
        "bootstrap": {"rounds": 2, "samples": 2, "growth": 2.0},
        "concurrency": 4,
        "flush_every": 2,
        "flush_interval_s": 0.5,
        "progress": False,
    }
    if endpoint_url:
        settings["server"] = {"endpoint": endpoint_url}
    settings.update(extra)
    return settings


def _shard_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "generate" / "generations").rglob("part-*.jsonl"))


def _records_by_id(run_dir: Path) -> dict[str, str]:
    out = {}
    for shard in _shard_files(run_dir):
        for line in shard.read_text().splitlines():
            rec = json.loads(line)
            out[rec["id"]] = hashlib.sha256(line.encode()).hexdigest()
    return out


def _start_cli(config_file: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "polya.cli.main", "generate", "--config", str(config_file)],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait_for(predicate, timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"polya generate exited early ({proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"condition not reached within {timeout_s}s:\n{log.read_text()[-3000:]}")


def test_generate_kill_resume_and_records(vllm_endpoint, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    settings = _settings(run_dir, vllm_endpoint.base_url)
    config_file = tmp_path / "generate.yaml"
    config_file.write_text(yaml.safe_dump(settings))

    # 1. Start the CLI, let it write a few shards, then kill it hard (no chance to clean up).
    log = tmp_path / "first.log"
    proc = _start_cli(config_file, log)
    _wait_for(lambda: len(_shard_files(run_dir)) >= 2, 600, proc, log)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _records_by_id(run_dir)
    assert before, "the killed run left no finished records"
    killed = RunManifest.read(open_store(str(run_dir))).stage("generate")
    assert killed is not None and killed.status == "interrupted" and "killed from outside" in killed.cause

    # 2. Resume in-process through the same run() the CLI calls.
    config = GenerateConfig.model_validate(settings)
    out = run(config)

    after = _records_by_id(run_dir)
    for rid, digest in before.items():
        assert after.get(rid) == digest, f"record {rid} written before the kill was lost or changed"
    ids = [json.loads(line)["id"] for shard in _shard_files(run_dir) for line in shard.read_text().splitlines()]
    assert len(ids) == len(set(ids)), "a sample was generated twice"

    records = list(iter_generations(open_store(str(run_dir))))
    questions = [json.loads(l) for l in (run_dir / "generate" / "questions.jsonl").read_text().splitlines()]
    assert len(questions) == 4
    by_round: dict[int, dict[tuple[str, str], list[dict]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        by_round[rec["round"]][(rec["question_id"], rec["heuristic"])].append(rec)

    # Round 1: every (question, heuristic) pair, 2 samples each.
    pairs = {(q["id"], h) for q in questions for h in HEURISTICS}
    assert set(by_round[1]) == pairs
    assert all(sorted(r["sample_index"] for r in recs) == [0, 1] for recs in by_round[1].values())
    # Round 2: exactly the pairs with no correct sample in round 1, with 4 samples each.
    unsolved = {pair for pair, recs in by_round[1].items() if not any(r["correct"] for r in recs)}
    assert set(by_round.get(2, {})) == unsolved
    assert all(sorted(r["sample_index"] for r in recs) == [0, 1, 2, 3] for recs in by_round.get(2, {}).values())

    for rec in records:
        assert rec["finish_reason"] in {"stop", "length"}
        assert 0 < rec["completion_tokens"] <= 96
        assert rec["sampling"]["max_tokens"] == 96 and rec["sampling"]["temperature"] == 0.9
        assert rec["sampling"]["n"] == (2 if rec["round"] == 1 else 4)
        assert rec["prompt_tokens"] > 0
        # The stored verdict is the judge's verdict on the stored text.
        verdict = judge_math(rec["completion"], rec["reference"])
        assert (rec["correct"], rec["status"]) == (verdict.correct, verdict.status)

    summary = json.loads((run_dir / "generate" / "summary.json").read_text())
    assert summary["samples"] == len(records) == out.summary["samples"]
    assert summary["correct_samples"] == sum(r["correct"] for r in records)
    assert summary["undecided_samples"] == sum(r["status"] in ("timeout", "error") for r in records)
    assert summary["pairs"] == 12
    assert summary["peak_rss_mib"] > 50
    manifest = RunManifest.load_or_create(open_store(run_dir))
    stage = manifest.stage("generate")
    assert stage is not None and stage.status == "done" and stage.attempts == 2 and stage.cause is None
    assert manifest.is_done("generate", config.model_dump(mode="json"))

    # 3. A third run has nothing left to do: it must not need a server at all.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    again = run(GenerateConfig.model_validate(_settings(run_dir, None)))
    assert again.summary["samples"] == len(records)
    assert _records_by_id(run_dir) == after

    # 4. Changing what is generated in the same run dir is refused, naming the field.
    changed = GenerateConfig.model_validate(_settings(run_dir, dead, sampling={"temperature": 0.5, "max_tokens": 96, "seed": 7, "per_request_seed": "off"}))
    with pytest.raises(Exception, match="sampling"):
        run(changed)


def _vllm_processes(port: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if "vllm.entrypoints.openai.api_server" in " ".join(cmd) and str(port) in cmd:
            found.append(proc)
    return found


def test_generate_owns_server_stops_it_and_survives_its_death(tmp_path: Path) -> None:
    """polya starts its own server; when that server dies mid-run the stage fails clearly and keeps
    its records; on SIGTERM polya stops the server it started."""
    run_dir = tmp_path / "run"
    port = None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = _settings(
        run_dir, None, server={"port": port, "max_num_seqs": 8}, bootstrap={"rounds": 1, "samples": 4},
        data={"source": "synthetic", "synthetic": {"count": 12, "difficulties": [1]}}, max_retries=2, retry_backoff_s=0.5,
    )
    config_file = tmp_path / "generate.yaml"
    config_file.write_text(yaml.safe_dump(settings))

    # The server dies mid-run: polya fails with a message that says what happened, records stay.
    log = tmp_path / "dies.log"
    proc = _start_cli(config_file, log)
    _wait_for(lambda: len(_shard_files(run_dir)) >= 1, 900, proc, log)
    servers = _vllm_processes(port)
    assert servers, "no vLLM server process found for the run"
    for server in servers:
        os.killpg(server.pid, signal.SIGKILL)
    assert proc.wait(timeout=180) == 2
    text = log.read_text()
    assert "failed" in text and "resume" in text, text[-2000:]
    kept = _records_by_id(run_dir)
    assert kept

    # Restart, then SIGTERM polya while it generates: it exits and takes its server down.
    log2 = tmp_path / "sigterm.log"
    proc = _start_cli(config_file, log2)
    _wait_for(lambda: len(_records_by_id(run_dir)) > len(kept), 900, proc, log2)
    assert _vllm_processes(port), "the resumed run started no server"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    deadline = time.monotonic() + 30
    while _vllm_processes(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _vllm_processes(port), "polya left its vLLM server running after SIGTERM"
    after = _records_by_id(run_dir)
    assert all(after.get(k) == v for k, v in kept.items())
