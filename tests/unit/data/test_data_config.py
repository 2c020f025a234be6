"""DataConfig: defaults, help text on every field, and validation messages that name the field."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from polya.core.config import field_paths, load_config
from polya.core.errors import ConfigError
from polya.data.config import ColumnsConfig, DataConfig, SyntheticConfig, resolve_format
from polya.data.synthetic import template_names


def test_defaults() -> None:
    cfg = DataConfig()
    assert cfg.source == "synthetic" and cfg.resolved_format() == "synthetic"
    assert cfg.split == "train" and cfg.on_error == "raise" and cfg.limit is None
    assert cfg.synthetic.count == 200 and cfg.synthetic.difficulties == [1, 2, 3]
    assert cfg.columns == ColumnsConfig()


@pytest.mark.parametrize("model", [DataConfig, ColumnsConfig, SyntheticConfig])
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.description and len(field.description) > 10, f"{model.__name__}.{name}"


def test_field_paths_reach_nested_settings() -> None:
    paths = field_paths(DataConfig)
    assert {"columns.question", "synthetic.count", "synthetic.templates", "on_error"} <= set(paths)


def test_yaml_and_overrides(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  source: questions.parquet\n  columns:\n    question: prompt\n  limit: 10\n")
    cfg = load_config(DataConfig, path, overrides={"shuffle": True}, section="data")
    assert cfg.resolved_format() == "parquet"
    assert cfg.columns.question == "prompt" and cfg.limit == 10 and cfg.shuffle


def _error(**data) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(DataConfig, overrides=data)
    return str(info.value)


def test_unknown_key_suggests_and_lists_valid_keys() -> None:
    msg = _error(shufle=True)
    assert "shufle: unknown key (did you mean 'shuffle'?)" in msg
    assert "valid keys here:" in msg and "on_error" in msg


def test_unknown_nested_key() -> None:
    msg = _error(columns={"questoin": "q"})
    assert "columns.questoin: unknown key (did you mean 'question'?)" in msg


def test_bad_on_error_names_valid_values() -> None:
    msg = _error(on_error="ignore")
    assert "on_error" in msg and "'raise' or 'skip'" in msg and "ignore" in msg


def test_bad_format_names_valid_values() -> None:
    msg = _error(format="csv")
    assert "format" in msg and "'auto', 'jsonl', 'parquet' or 'hf'" in msg


@pytest.mark.parametrize("limit", [0, -5])
def test_limit_must_be_positive(limit: int) -> None:
    assert "limit" in _error(limit=limit)


def test_unknown_template_lists_real_names() -> None:
    msg = _error(synthetic={"templates": ["shopping_change", "dragons"]})
    assert "synthetic.templates" in msg and "dragons" in msg
    assert all(name in msg for name in template_names())


def test_bad_difficulty() -> None:
    msg = _error(synthetic={"difficulties": [0, 2]})
    assert "synthetic.difficulties" in msg and "valid values: [1, 2, 3]" in msg


def test_synthetic_count_positive() -> None:
    assert "synthetic.count" in _error(synthetic={"count": 0})


def test_source_without_known_suffix() -> None:
    msg = _error(source="questions.csv")
    assert "source/format" in msg and ".jsonl" in msg and ".parquet" in msg and "format" in msg


def test_synthetic_with_explicit_format_is_rejected() -> None:
    assert "format must be 'auto' when source is 'synthetic'" in _error(format="jsonl")


@pytest.mark.parametrize(
    ("source", "fmt", "expected"),
    [
        ("synthetic", "auto", "synthetic"),
        ("data/train.jsonl", "auto", "jsonl"),
        ("data/train.NDJSON", "auto", "jsonl"),
        ("data/train.parquet", "auto", "parquet"),
        ("s3://bucket/q/train.parquet", "auto", "parquet"),
        ("s3://bucket/q/train.jsonl", "auto", "jsonl"),
        ("hf:openai/gsm8k", "auto", "hf"),
        ("openai/gsm8k", "hf", "hf"),
        ("data/train.json", "hf", "hf"),
        ("data/no_suffix", "jsonl", "jsonl"),
        # refused, with what the error says
        ("", "auto", ValueError("must not be empty")),
        ("hf:", "auto", ValueError("needs a hub id")),
        ("hf:openai/gsm8k", "jsonl", ValueError("'auto' or 'hf'")),
        ("s3://bucket/q.jsonl", "hf", ValueError("cannot read s3")),
        ("data/train.json", "auto", ValueError("cannot tell the format")),
    ],
)
def test_resolve_format(source: str, fmt: str, expected: str | ValueError) -> None:
    if isinstance(expected, ValueError):
        with pytest.raises(ValueError, match=str(expected)):
            resolve_format(source, fmt)
    else:
        assert resolve_format(source, fmt) == expected
