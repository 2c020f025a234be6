"""A packed SFT run at max_seq_length 2048 on the embedded model stays within polya's memory estimate and the machine.

Packed rows keep their examples apart with position ids that restart at each example (no
seq x seq attention of their own: transformers' block-diagonal causal mask, sdpa's CPU flash
kernel) and TRL's fused LM head scores the vocabulary in tiles, so memory grows with the tokens,
not with the square of the row. The run is ``polya sft`` in a process of its own, so its summary's
``peak_rss_mib`` is that run's alone; the estimate is the one its preflight checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polya.models.memory import memory_limit

pytestmark = pytest.mark.integration

WORDS = "first we add the two numbers then we check the sum against the question and write the answer".split()


def _long_rows(count: int) -> list[dict]:
    """Chat rows of about 300 tokens each: several of them fill a 2048-token packed row."""
    rows = []
    for i in range(count):
        solution = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(220)) + f" The final answer is \\boxed{{{i}}}."
        rows.append({"messages": [{"role": "user", "content": f"What is {i} plus {i}? Explain every step."},
                                  {"role": "assistant", "content": solution}]})
    return rows


def test_packed_2048_stays_within_the_estimate_and_the_machine(tmp_path: Path, embedded_checkpoint: str, write_chat_dataset) -> None:
    data = write_chat_dataset(tmp_path / "long.jsonl", rows=_long_rows(24))
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "polya.cli.main", "sft", "--run-dir", str(run_dir), "--data-file", str(data),
        "--packing", "true", "--max-seq-length", "2048", "--batch-size", "1", "--max-steps", "2",
        "--save-steps", "100", "--logging-steps", "1", "--progress", "false",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "sft" / "polya" / "summary.json").read_text())
    assert summary["packing"] is True and summary["global_step"] == 2
    assert summary["tokens"] > 2 * 1500  # two steps of (nearly) full 2048-token packed rows
    peak, estimate = summary["peak_rss_mib"], summary["memory_estimate_mib"]
    assert estimate is not None and peak < estimate, f"peak {peak} MiB above the estimate {estimate} MiB"
    assert peak * 2**20 < memory_limit().bytes
