"""The run directory's paths are spelled in one place; fingerprints are computed one way."""

from __future__ import annotations

from pathlib import Path

from polya.core.digest import (
    canonical_json,
    digest,
    seed_from,
    seeded_order,
    short_digest,
)
from polya.core.layout import RunLayout, TrainingLayout, join_uri


def test_run_layout_paths() -> None:
    layout = RunLayout("s3://bucket/runs/exp")
    assert layout.uri(layout.manifest) == "s3://bucket/runs/exp/manifest.json"
    assert layout.generate.round(3) == "generate/generations/round-03"
    assert layout.select.data_file("star", "parquet") == "select/star/train.parquet"
    assert layout.select.data_files("polya") == ["select/polya/train.jsonl", "select/polya/train.parquet"]
    assert layout.eval.samples("polya_sft", "gsm8k") == "eval/polya_sft/gsm8k/samples.jsonl"
    assert RunLayout.sft("polya").final == "sft/polya/final" and RunLayout.rl("base").summary == "rl/base/summary.json"
    assert TrainingLayout().final == "final" and TrainingLayout().checkpoint(4) == "checkpoint-4"
    assert layout.log_dir() == Path.cwd() / "polya-logs"
    assert RunLayout("runs/demo").log_dir() == Path("runs/demo/logs")
    assert layout.relative("s3://bucket/runs/exp/sft/polya") == "sft/polya" and layout.relative("s3://other/x") is None


def test_join_uri() -> None:
    assert join_uri("s3://b/p/", "sft", "/polya/") == "s3://b/p/sft/polya"
    assert join_uri("runs/x", "") == "runs/x" and join_uri("", "a", "b") == "a/b" and join_uri("/", "x") == "/x"


def test_digests_are_canonical() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1}) != digest({"a": 1, "b": 3})
    assert len(short_digest("x")) == 16 and short_digest("x") == digest("x")[:16]
    assert seed_from(0, "q1", "analogy", 1) == seed_from(0, "q1", "analogy", 1) != seed_from(0, "q1", "analogy", 2)
    assert 0 <= seed_from("anything") < 2**31
    assert seeded_order(["a", "b", "c"], 1) == seeded_order(["c", "b", "a"], 1)
