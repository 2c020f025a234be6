"""The estimate is above (and within 1.5x of) the real peak of a small SFT step on the embedded model.

The step runs in a fresh process (peak ``ru_maxrss`` is per process): the model as SFTTrainer
loads it (float32, sdpa), TRL's fused LM head, AdamW, two optimizer steps on packed rows.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from polya.models.memory import ModelShape
from polya.training.memory import TrainingSetup, training_estimate

pytestmark = pytest.mark.integration

STEP = r"""
import json, resource, sys
import torch
from transformers import AutoModelForCausalLM
from trl.trainer.utils import add_fused_lm_head
path, rows, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
ids = torch.randint(10, 40000, (rows, length))
positions = torch.arange(length).remainder(128).repeat(rows, 1)  # packed rows: examples of 128 tokens
for _ in range(2):
    model(input_ids=ids, labels=ids, position_ids=positions, fused_lm_head=True, use_cache=False).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_the_estimate_is_above_a_real_peak(embedded_checkpoint: str) -> None:
    rows, length = 1, 512
    done = subprocess.run([sys.executable, "-c", STEP, embedded_checkpoint, str(rows), str(length)],
                          capture_output=True, text=True, timeout=300, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"] * 2**20
    estimate = training_estimate(ModelShape.read(embedded_checkpoint), TrainingSetup(rows=rows, seq_len=length)).total
    assert measured < estimate < 1.5 * measured, f"estimate {estimate / 2**20:.0f} MiB, measured {measured / 2**20:.0f} MiB"
