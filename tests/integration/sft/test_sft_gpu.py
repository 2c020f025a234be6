"""``polya sft`` on NVIDIA GPUs: bf16 on one GPU, and the DeepSpeed ZeRO presets through each documented launcher.

Opt-in: ``pytest -m gpu tests/integration/sft`` on a machine with CUDA GPUs (all visible GPUs are
used by the launcher tests). zero3_offload builds DeepSpeed's CPU Adam on first use (a C++
compiler is needed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from polya.sft.config import SftConfig
from polya.sft.stage import run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU"),
]

STEPS = 4


def _gpus() -> int:
    return torch.cuda.device_count()


def _changed_fraction(base_dir: str, final_dir: Path) -> float:
    base = load_file(str(Path(base_dir) / "model.safetensors"))
    final = load_file(str(final_dir / "model.safetensors"))
    assert set(final) == set(base)
    return sum(not torch.equal(base[k].float(), final[k].float().cpu()) for k in base) / len(base)


def test_one_gpu_bf16_with_packing(run_dir_with_dataset: Path, embedded_checkpoint: str) -> None:
    out = run(
        SftConfig(
            run_dir=str(run_dir_with_dataset), max_steps=STEPS, batch_size=2, max_seq_length=256, learning_rate=1e-4,
            packing=True, logging_steps=1, save_steps=2, progress=False,
        )
    )
    summary = out.summary
    assert summary["device"].startswith("cuda") and summary["bf16"] is True
    assert summary["global_step"] == STEPS and summary["peak_gpu_mib"] > 0
    assert summary["last_loss"] < summary["first_loss"]
    assert _changed_fraction(embedded_checkpoint, Path(out.final_uri)) > 0.9


def _launcher(kind: str, gpus: int) -> list[str]:
    if kind == "accelerate":
        return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus), "--num_machines", "1", "-m", "polya.cli.main"]
    if kind == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus), "-m", "polya.cli.main"]
    beside = Path(sys.executable).parent / "deepspeed"
    deepspeed = str(beside) if beside.is_file() else shutil.which("deepspeed")
    if deepspeed is None:
        pytest.skip("the deepspeed launcher script is not on PATH")
    return [deepspeed, "--num_gpus", str(gpus), "--no_local_rank", "--module", "polya.cli.main"]


@pytest.mark.parametrize(
    ("preset", "launcher"), [("zero2", "accelerate"), ("zero3", "torchrun"), ("zero3_offload", "deepspeed")]
)
def test_deepspeed_presets_train_through_the_documented_launchers(
    preset: str, launcher: str, run_dir_with_dataset: Path, embedded_checkpoint: str, tmp_path: Path
) -> None:
    gpus = _gpus()
    command = _launcher(launcher, gpus) + [
        "sft", "--run-dir", str(run_dir_with_dataset), "--deepspeed", preset, "--max-steps", str(STEPS),
        "--batch-size", "2", "--max-seq-length", "256", "--learning-rate", "1e-4", "--logging-steps", "1",
        "--save-steps", "2", "--progress", "false",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500, env=env, cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    out_dir = run_dir_with_dataset / "sft" / "polya"
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["deepspeed"].endswith(f"{preset}.json") and summary["world_size"] == gpus
    assert summary["global_step"] == STEPS and summary["bf16"] is True
    assert (out_dir / "checkpoint-2" / "trainer_state.json").is_file() or (out_dir / f"checkpoint-{STEPS}").is_dir()
    assert _changed_fraction(embedded_checkpoint, out_dir / "final") > 0.9

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out_dir / "final")
    assert model.config.hidden_size == 576

    # Killed or not, a second launch resumes from the last checkpoint rather than starting over.
    (out_dir / "summary.json").unlink()
    again = subprocess.run(command, capture_output=True, text=True, timeout=1500, env=env, cwd=Path(__file__).resolve().parents[3])
    assert again.returncode == 0, again.stderr[-6000:]
    assert json.loads((out_dir / "summary.json").read_text())["resumed_from"] == f"checkpoint-{STEPS}"
