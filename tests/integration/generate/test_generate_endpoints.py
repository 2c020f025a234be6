"""The generate stage over two endpoints (server.endpoints): the session vLLM server and a real proxy
process in front of it. Both take requests; the proxy is SIGKILLed mid-run and the run ends on the
other, with every request stored exactly once and the dead endpoint in the summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from polya.core.outputs import iter_generations
from polya.core.store import open_store
from polya.generate.config import GenerateConfig
from polya.generate.stage import run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
HEURISTICS = ["working_backward", "decomposition", "step_by_step_justification"]
KILL_AFTER = 2
"""Chat answers the proxy passes on before it is killed."""


class Proxy:
    """``python -m tests.support.http_proxy`` in front of ``target``, SIGKILLed after ``kill_after`` chat answers."""

    def __init__(self, target: str, kill_after: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.http_proxy", target], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        assert first[:1] == ["listening"], f"the proxy did not start: {first}"
        self.base_url = f"http://127.0.0.1:{first[1]}/v1"
        self.answered = 0
        self.killed = threading.Event()
        self.kill_after = kill_after
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _watch(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("answered POST") and "chat/completions" in line:
                self.answered += 1
                if self.answered >= self.kill_after and not self.killed.is_set():
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.killed.set()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def test_generate_over_two_endpoints_survives_one_dying(vllm_endpoint, tmp_path: Path) -> None:
    proxy = Proxy(vllm_endpoint.base_url, KILL_AFTER)
    try:
        config = GenerateConfig.model_validate(
            {
                "run_dir": str(tmp_path / "run"),
                "data": {"source": "synthetic", "synthetic": {"count": 4, "difficulties": [1]}, "seed": 3},
                "heuristics": HEURISTICS,
                "plain": False,
                "num_exemplars": 1,
                "sampling": {"temperature": 0.9, "max_tokens": 64, "seed": 7, "per_request_seed": "off"},
                "bootstrap": {"rounds": 1, "samples": 2},
                "concurrency": 4,  # 2 requests of 2 samples in flight per endpoint
                "max_retries": 1,
                "retry_backoff_s": 0.2,
                "flush_every": 2,
                "flush_interval_s": 0.5,
                "progress": False,
                "server": {"endpoints": [proxy.base_url, vllm_endpoint.base_url]},
            }
        )
        out = run(config)
    finally:
        proxy.close()
    assert proxy.killed.is_set(), f"the proxy answered only {proxy.answered} chat requests: the run ended before it was killed"

    records = list(iter_generations(open_store(config.run_dir)))
    requests = Counter((r["question_id"], r["heuristic"], r["round"]) for r in records)
    questions = [json.loads(line)["id"] for line in (tmp_path / "run" / "generate" / "questions.jsonl").read_text().splitlines()]
    assert set(requests) == {(q, h, 1) for q in questions for h in HEURISTICS}
    assert set(requests.values()) == {2}, "a request was stored twice or lost samples"
    assert len({r["id"] for r in records}) == len(records)

    endpoints = out.summary["endpoints"]
    assert list(endpoints) == [proxy.base_url, vllm_endpoint.base_url]
    dead, live = endpoints[proxy.base_url], endpoints[vllm_endpoint.base_url]
    assert dead["dead"] and dead["failures"] >= 1 and dead["requests"] >= KILL_AFTER - 1
    assert not live["dead"] and live["failures"] == 0 and live["requests"] >= 1
    assert dead["requests"] + live["requests"] == len(requests) == out.summary["rounds"]["1"]["requests"]
