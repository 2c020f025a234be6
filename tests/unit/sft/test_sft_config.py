"""SftConfig: defaults, help text on every field, and validation errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from polya.cli.main import cli
from polya.core.config import load_config
from polya.core.errors import ConfigError
from polya.models.embedded import EMBEDDED_MODEL
from polya.sft.config import LoraConfig, SftConfig
from polya.training.config import DEEPSPEED_PRESETS


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    out = [model]
    for field in model.model_fields.values():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(_models(ann))
    return out


def _error(overrides: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(SftConfig, overrides=overrides)
    return str(info.value)


def test_every_field_has_help_text() -> None:
    for model in _models(SftConfig):
        for name, field in model.model_fields.items():
            assert field.description and len(field.description) > 10, f"{model.__name__}.{name} has no help text"


def test_defaults_point_into_the_run_directory() -> None:
    config = SftConfig()
    assert config.model == EMBEDDED_MODEL
    assert config.output_uri == "runs/polya/sft/polya"
    assert config.manifest_stage == "sft/polya"
    assert config.default_data_files() == ["runs/polya/select/polya/train.jsonl", "runs/polya/select/polya/train.parquet"]
    assert config.lora.enabled is False and config.lora.target_modules
    assert config.resume == "auto" and config.bf16 == "auto" and config.deepspeed is None


def test_dataset_and_output_shortcuts() -> None:
    config = SftConfig(run_dir="s3://bucket/runs/x/", dataset="star")
    assert config.output_uri == "s3://bucket/runs/x/sft/star"
    assert config.default_data_files()[0] == "s3://bucket/runs/x/select/star/train.jsonl"
    assert SftConfig(output="/data/out").output_uri == "/data/out"


@pytest.mark.parametrize(
    ("overrides", "field", "hint"),
    [
        ({"lora": {"target_modules": []}}, "lora.target_modules", "at least one module"),
        ({"lora": {"target_modules": ["  "]}}, "lora.target_modules", "at least one module"),
        ({"lora": {"r": 0}}, "lora.r", "greater than or equal to 1"),
        ({"lora": {"dropout": 1.5}}, "lora.dropout", "less than 1"),
        ({"deepspeed": "zero9"}, "deepspeed", ", ".join(DEEPSPEED_PRESETS)),
        ({"data_file": "data/train.csv"}, "data_file_format", "jsonl or parquet"),
        ({"data_file_format": "csv"}, "data_file_format", "'auto', 'jsonl' or 'parquet'"),
        ({"dataset": "data/train.jsonl"}, "dataset", "data_file"),
        ({"batch_size": 0}, "batch_size", "greater than or equal to 1"),
        ({"max_seq_length": 8}, "max_seq_length", "greater than or equal to 32"),
        ({"epochs": 0}, "epochs", "greater than 0"),
        ({"bf16": "yes"}, "bf16", "'auto', 'on' or 'off'"),
        ({"resume": "always"}, "resume", "'auto' or 'off'"),
        ({"loss_mask": "all"}, "loss_mask", "generation_markers"),
        ({"dataset": "../escape"}, "dataset", "data_file"),
        ({"local_dir": "s3://b/x"}, "local_dir", "local folder"),
        ({"learning_rate": 0}, "learning_rate", "greater than 0"),
    ],
)
def test_invalid_values_name_the_field_and_what_is_valid(overrides: dict[str, Any], field: str, hint: str) -> None:
    message = _error(overrides)
    assert field in message
    assert hint in message


def test_unknown_keys_are_rejected_with_a_suggestion() -> None:
    message = _error({"lora": {"rank": 8}})
    assert "lora.rank: unknown key" in message and "valid keys here" in message
    assert "did you mean 'epochs'" in _error({"epoch": 2})


def test_identity_ignores_operational_settings() -> None:
    base = SftConfig()
    assert base.identity() == SftConfig(save_steps=7, logging_steps=3, metrics_port=9100, progress=False, resume="off").identity()
    assert base.identity() != SftConfig(learning_rate=3e-5).identity()
    assert base.identity() != SftConfig(lora=LoraConfig(enabled=True)).identity()


def test_cli_prints_the_resolved_config() -> None:
    result = CliRunner().invoke(
        cli, ["sft", "--print-config", "--dataset", "star", "--lora.enabled", "true", "--lora.target-modules", "[q_proj, v_proj]", "--set", "packing=true"]
    )
    assert result.exit_code == 0, result.output
    assert "dataset: star" in result.output and "packing: true" in result.output
    assert "- q_proj" in result.output and "- v_proj" in result.output


def test_cli_help_documents_every_setting() -> None:
    result = CliRunner().invoke(cli, ["sft", "--help"])
    assert result.exit_code == 0
    for option in ("--dataset", "--data-file", "--max-steps", "--lora.target-modules", "--deepspeed", "--packing", "--resume", "--metrics-port"):
        assert option in result.output
