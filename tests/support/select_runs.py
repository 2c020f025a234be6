"""Run the select stage on a run directory and read what it wrote (the select unit tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from polya.select.config import SelectConfig
from polya.select.stage import run


def select(run_dir: Path, **settings: Any) -> Any:
    """``polya select`` on ``run_dir`` with ``settings`` (no progress bars)."""
    return run(SelectConfig.model_validate({"run_dir": str(run_dir), "progress": False, **settings}))


def rows(run_dir: Path, dataset: str) -> list[dict[str, Any]]:
    """The rows of ``select/<dataset>/train.jsonl``."""
    path = run_dir / "select" / dataset / "train.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ids(run_dir: Path, dataset: str) -> list[str]:
    """The generation ids of a dataset's rows, in order."""
    return [r["generation_id"] for r in rows(run_dir, dataset)]
