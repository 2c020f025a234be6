"""Settings of a tiny `polya run` on the embedded model (seconds per stage on 2 cores).

Used by the end-to-end run tests and the chaos test: generation and the base arm's evaluation go
to the session's vLLM server at ``endpoint``; the trained arms are served by vLLM servers polya
starts on their checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HEURISTICS = ["decomposition", "working_backward"]


def tiny_run_settings(
    run_dir: Path, endpoint: str, arms: list[str], datasets: list[str], *,
    questions: int = 2, samples: int = 2, sft: dict[str, Any] | None = None, rl: dict[str, Any] | None = None,
    generate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A RunConfig mapping for ``arms`` trained on the select ``datasets``; ``sft``/``rl``/``generate`` override keys."""
    return {
        "run_dir": str(run_dir),
        "arms": arms,
        "generate": {
            "server": {"endpoint": endpoint},
            "data": {"source": "synthetic", "synthetic": {"count": questions, "difficulties": [1]}},
            "heuristics": HEURISTICS, "sampling": {"max_tokens": 48}, "bootstrap": {"rounds": 1, "samples": samples},
            # No plain prompt: the arms here train on heuristic datasets, and the tests count the heuristic requests.
            "plain": False, "progress": False, **(generate or {}),
        },
        "select": {"datasets": datasets, "progress": False},
        "sft": {"max_steps": 2, "batch_size": 2, "save_steps": 2, "logging_steps": 1, "max_seq_length": 256, "progress": False, **(sft or {})},
        "rl": {
            "data": {"source": "synthetic", "seed": 1, "synthetic": {"count": 4, "difficulties": [1]}},
            "group_size": 2, "batch_size": 4, "max_steps": 1, "save_steps": 1, "max_completion_length": 16,
            "num_workers": 2, "progress": False, **(rl or {}),
        },
        "eval": {
            "endpoints": {"base": endpoint},
            "benchmarks": [{"name": "synthetic", "limit": 2}],
            "sampling": {"preset": "custom", "n": 2, "temperature": 1.0, "max_tokens": 32, "per_request_seed": "off"},
            "server": {"extra_args": ["--enforce-eager"], "max_model_len": 1024, "cpu_kv_cache_gib": 1},
            "progress": False,
        },
    }
