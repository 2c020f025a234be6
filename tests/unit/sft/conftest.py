"""Chat datasets as ``polya select`` writes them, and the embedded model's checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture()
def chat_jsonl(tmp_path: Path, write_chat_dataset: Any) -> Path:
    """A 16-row chat dataset at <tmp>/run/select/polya/train.jsonl (the default location for run_dir <tmp>/run)."""
    return write_chat_dataset(tmp_path / "run" / "select" / "polya" / "train.jsonl")

