"""The rollout server actor launches TRL's vLLM server command for trainers (the GPU path; not started here)."""

from __future__ import annotations

from polya.rl.rollout import VLLMRolloutServer


def test_rollout_server_command_is_trls_vllm_serve_for_trainers() -> None:
    command = VLLMRolloutServer("/models/policy", gpus=2, port=8123, gpu_memory_utilization=0.8, max_model_len=4096).command()
    assert command[2:5] == ["vllm.entrypoints.cli.main", "serve", "/models/policy"]
    joined = " ".join(command)
    assert "--tensor-parallel-size 2" in joined and "--port 8123" in joined and "--max-model-len 4096" in joined
    assert "--weight-transfer-config" in command  # TRL's client pushes the updated weights over NCCL
