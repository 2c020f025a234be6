"""GPU path (opt-in: pytest -m gpu): vLLM rollouts colocated in the learner, the final policy served by vLLM.

Needs one NVIDIA GPU and vllm. With POLYA_TEST_RAY_ADDRESS set (a Ray cluster with GPUs, e.g. a
KubeRay head's ray://host:10001) the same run goes to that cluster instead of a local one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_gpu() -> None:
    import torch

    if not torch.cuda.is_available() and not os.environ.get("POLYA_TEST_RAY_ADDRESS"):
        pytest.skip("needs a CUDA GPU (or POLYA_TEST_RAY_ADDRESS pointing at a Ray cluster with GPUs)")


def test_grpo_on_gpu_with_vllm_rollouts(tmp_path: Path) -> None:
    from polya.rl.config import RlConfig
    from polya.rl.stage import run

    config = RlConfig(
        run_dir=str(tmp_path / "run"), data={"synthetic": {"count": 16, "difficulties": [1]}}, group_size=4, batch_size=8,
        max_completion_length=64, max_steps=2, save_steps=1, num_workers=1, use_gpu=True, bf16="on",
        rollout={"engine": "vllm", "vllm_mode": "colocate", "gpu_memory_utilization": 0.3},
        ray_address=os.environ.get("POLYA_TEST_RAY_ADDRESS"), progress=False,
    )
    out = run(config)
    assert out.summary["global_step"] == 2 and out.summary["rollout_engine"] == "vllm"
    records = [json.loads(line) for line in (tmp_path / "run" / "rl" / "base" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["verifier"]["verdicts"] == 8 for r in records)

    from vllm import LLM, SamplingParams

    llm = LLM(model=str(tmp_path / "run" / "rl" / "base" / "final"), gpu_memory_utilization=0.3, max_model_len=512)
    text = llm.generate(["What is 2 + 3?"], SamplingParams(max_tokens=8))[0].outputs[0].text
    assert isinstance(text, str)


def test_grpo_with_deepspeed_zero2_learner(tmp_path: Path) -> None:
    from polya.rl.config import RlConfig
    from polya.rl.stage import run

    config = RlConfig(
        run_dir=str(tmp_path / "run"), data={"synthetic": {"count": 16, "difficulties": [1]}}, group_size=4, batch_size=8,
        max_completion_length=32, max_steps=2, save_steps=2, num_workers=1, use_gpu=True, bf16="on", deepspeed="zero2",
        rollout={"engine": "hf"}, ray_address=os.environ.get("POLYA_TEST_RAY_ADDRESS"), progress=False,
    )
    out = run(config)
    assert out.summary["global_step"] == 2
    assert (tmp_path / "run" / "rl" / "base" / "final" / "config.json").is_file()
