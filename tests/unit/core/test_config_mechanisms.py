"""The config base's one preset mechanism, identity without operational fields, renamed keys, secrets."""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

import pytest
from pydantic import Field

from polya.core.config import StageConfig, load_config, mask_secrets, with_default
from polya.core.errors import ConfigError


class Inner(StageConfig):
    OPERATIONAL: ClassVar[frozenset[str]] = frozenset({"port"})

    weight: float = Field(default=1.0, description="Counts.")
    port: int = Field(default=0, description="Does not count.")


class WithPresets(StageConfig):
    PRESETS = {"small": {"steps": 2, "inner": {"weight": 0.5}}, "big": {"steps": 200, "name": "big"}}
    OPERATIONAL: ClassVar[frozenset[str]] = frozenset({"progress"})
    RENAMED = {"old_steps": "steps"}

    preset: Literal["small", "big"] = "small"
    steps: int = Field(default=10, ge=1)
    name: str = "default"
    inner: Inner = Field(default_factory=Inner)
    progress: bool = True


def test_the_default_preset_lies_under_the_field_defaults() -> None:
    config = WithPresets()
    assert (config.steps, config.name, config.inner.weight) == (2, "default", 0.5)


def test_a_preset_is_deep_merged_under_the_users_settings() -> None:
    config = WithPresets(preset="small", inner={"port": 9})
    assert (config.steps, config.inner.weight, config.inner.port) == (2, 0.5, 9)  # the preset's weight survives a sibling setting
    assert WithPresets(preset="big", steps=3).model_dump(include={"steps", "name"}) == {"steps": 3, "name": "big"}


def test_an_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="preset.*'small' or 'big'"):
        load_config(WithPresets, overrides={"preset": "huge"})


def test_identity_leaves_out_operational_fields_recursively() -> None:
    base = WithPresets()
    assert base.identity() == {"preset": "small", "steps": 2, "name": "default", "inner": {"weight": 0.5}}
    assert WithPresets(progress=False, inner={"port": 7}).identity() == base.identity()
    assert WithPresets(inner={"weight": 2.0}).identity() != base.identity()


def test_a_renamed_key_still_works_with_a_warning_and_both_keys_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert WithPresets.model_validate({"old_steps": 7}).steps == 7
    assert "'old_steps' of WithPresets was renamed to 'steps'" in caplog.text
    with pytest.raises(ConfigError, match="'old_steps' was renamed to 'steps'; give only 'steps'"):
        load_config(WithPresets, overrides={"old_steps": 7, "steps": 8})


def test_with_default_keeps_the_fields_bounds_and_help() -> None:
    class Child(WithPresets):
        steps: int = with_default(WithPresets, "steps", 5)

    field = Child.model_fields["steps"]
    assert field.default == 5 and Child.model_fields["steps"].metadata == WithPresets.model_fields["steps"].metadata
    with pytest.raises(ConfigError, match="steps"):
        load_config(Child, overrides={"preset": "big", "steps": 0})


def test_secrets_are_masked_wherever_they_are() -> None:
    tree = {"api_key": "k", "nested": [{"token": "t", "auth_token": None}], "password": "", "hf_token": "h", "model": "m"}
    assert mask_secrets(tree) == {"api_key": "***", "nested": [{"token": "***", "auth_token": None}], "password": "", "hf_token": "***", "model": "m"}


def test_yaml_booleans_become_the_words_they_were_written_as() -> None:
    """YAML 1.1 reads off/on/no/yes as booleans: `--bf16 off` or `memory_check: off` in a file must still work."""
    from typing import Literal

    import yaml

    from polya.core.config import StageConfig

    class Switches(StageConfig):
        bf16: Literal["auto", "on", "off"] = "auto"
        check: Literal["error", "warn", "off"] | None = "error"
        answer: Literal["yes", "no"] = "no"
        flag: bool = False

    loaded = Switches.model_validate(yaml.safe_load("bf16: on\ncheck: off\nanswer: yes\nflag: off"))
    assert (loaded.bf16, loaded.check, loaded.answer, loaded.flag) == ("on", "off", "yes", False)
    with pytest.raises(ValueError, match="bf16"):
        Switches.model_validate({"bf16": 3})
