"""VerifierConfig: defaults, validation that names the field, the token from the environment, and
the CLI commands built from it (--help text, --print-config, overrides)."""

from __future__ import annotations

import os

import pytest
import yaml
from click.testing import CliRunner

from polya.cli.main import cli
from polya.core.config import load_config
from polya.core.errors import ConfigError
from polya.verify.config import TOKEN_ENV, VerifierConfig


def test_defaults() -> None:
    config = VerifierConfig()
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert config.workers == len(os.sched_getaffinity(0))
    assert config.max_batch_items == 1024 and config.max_request_bytes == 8 * 1024 * 1024
    assert config.auth_token is None and config.log_level == "info"
    assert config.item_deadline_s > config.math_timeout_s


def test_every_field_has_help_text() -> None:
    missing = [name for name, field in VerifierConfig.model_fields.items() if not (field.description or "").strip()]
    assert missing == []


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"workers": 0}, "workers"),
        ({"port": 70000}, "port"),
        ({"math_timeout_s": 0}, "math_timeout_s"),
        ({"code_timeout_s": -1}, "code_timeout_s"),
        ({"item_deadline_s": 0}, "item_deadline_s"),
        ({"max_batch_items": 0}, "max_batch_items"),
        ({"log_level": "loud"}, "log_level"),
        ({"wokers": 2}, "wokers"),
    ],
)
def test_bad_values_name_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config(VerifierConfig, overrides=overrides)


def test_unknown_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'workers'"):
        load_config(VerifierConfig, overrides={"wokers": 2})


def test_deadline_must_exceed_math_timeout() -> None:
    with pytest.raises(ConfigError, match=r"item_deadline_s \(5.0\) must be greater than math_timeout_s \(5.0\)"):
        load_config(VerifierConfig, overrides={"item_deadline_s": 5, "math_timeout_s": 5})


def test_token_from_config_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert VerifierConfig().resolved_token() is None
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert VerifierConfig().resolved_token() == "from-env"
    assert VerifierConfig(auth_token="explicit").resolved_token() == "explicit"
    monkeypatch.setenv(TOKEN_ENV, "")
    assert VerifierConfig().resolved_token() is None


def test_yaml_file_and_overrides(tmp_path) -> None:
    path = tmp_path / "verifier.yaml"
    path.write_text(yaml.safe_dump({"workers": 3, "port": 9000, "math_timeout_s": 2}))
    config = load_config(VerifierConfig, path, overrides={"port": 9100})
    assert (config.workers, config.port, config.math_timeout_s) == (3, 9100, 2)


@pytest.mark.parametrize("command", ["serve-verifier", "verify"])
def test_cli_help_documents_the_settings(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--workers", "--math-timeout-s", "--item-deadline-s", "--max-prediction-chars", "--config", "--set"):
        assert flag in result.output
    if command == "verify":
        for flag in ("--input", "--output", "--endpoint"):
            assert flag in result.output


def test_serve_verifier_print_config_applies_options(tmp_path) -> None:
    result = CliRunner().invoke(
        cli, ["serve-verifier", "--workers", "3", "--port", "9999", "--set", "max_batch_items=16", "--print-config"]
    )
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert (printed["workers"], printed["port"], printed["max_batch_items"]) == (3, 9999, 16)


def test_verify_print_config() -> None:
    result = CliRunner().invoke(cli, ["verify", "--input", "x.jsonl", "--output", "y.jsonl", "--workers", "1", "--print-config"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["workers"] == 1
