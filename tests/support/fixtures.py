"""Paths of the files under tests/fixtures (vendored samples of the public data sets, CRDs, ...)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATA = FIXTURES / "data"
GSM8K_SAMPLE = DATA / "gsm8k_train_sample.jsonl"
"""Rows of GSM8K train as the hub serves them."""
MATH500_SAMPLE = DATA / "math500_test_sample.jsonl"
"""Rows of MATH-500 test as the hub serves them."""
