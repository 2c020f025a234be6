"""The generate stage checking answers through the real verifier service (the cluster setup)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
import pytest

from polya.core.errors import ServerError
from polya.core.outputs import iter_generations
from polya.core.store import open_store
from polya.generate.config import GenerateConfig
from polya.generate.stage import run
from polya.verify.math_judge import judge_math

pytestmark = pytest.mark.integration


def _config(run_dir: Path, verifier_endpoint: str) -> GenerateConfig:
    return GenerateConfig.model_validate(
        {
            "run_dir": str(run_dir),
            "data": {"source": "synthetic", "synthetic": {"count": 3, "difficulties": [1]}},
            "heuristics": ["working_backward", "look_for_pattern"],
            "plain": False,  # counts the heuristic pairs exactly
            "num_exemplars": 1,
            "sampling": {"max_tokens": 96},
            "bootstrap": {"rounds": 1, "samples": 2},
            "verifier_endpoint": verifier_endpoint,
            "progress": False,
        }
    )


def _math_items_judged(metrics_text: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("polya_verifier_items_total") and 'kind="math"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_generate_judges_through_the_verifier_service(vllm_endpoint, verifier_service, tmp_path: Path) -> None:
    before = _math_items_judged(httpx.get(f"{verifier_service.url}/metrics").text)
    run(_config(tmp_path / "run", verifier_service.url), endpoint=vllm_endpoint)
    records = list(iter_generations(open_store(str(tmp_path / "run"))))
    assert len(records) == 3 * 2 * 2
    after = _math_items_judged(httpx.get(f"{verifier_service.url}/metrics").text)
    assert after - before == len(records), "every sample must be judged by the service"
    for rec in records:  # the service's verdict is the library's verdict: one judging code path
        assert rec["correct"] == judge_math(rec["completion"], rec["reference"]).correct


def test_unreachable_verifier_fails_before_any_model_server_starts(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = _config(tmp_path / "run", dead)
    with pytest.raises(ServerError, match=re.escape(dead)):
        run(config)  # no endpoint given: a model server would be started if the check came later
    assert not (tmp_path / "run" / "logs" / "vllm-server.log").exists()
