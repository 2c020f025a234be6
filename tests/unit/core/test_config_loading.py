"""Config loading: defaults < YAML file < overrides, and error messages that name the field, value and file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, ValidationError

from polya.core.config import (
    StageConfig,
    deep_merge,
    field_paths,
    format_validation_error,
    load_config,
    parse_overrides,
    parse_value,
    read_yaml,
)
from polya.core.errors import ConfigError
from polya.generate.config import GenerateConfig, SamplingConfig


class Inner(StageConfig):
    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    max_tokens: int = Field(default=384, ge=1)
    stop: list[str] = Field(default_factory=list)


class Outer(StageConfig):
    name: str = "demo"
    rounds: int = Field(default=2, ge=1)
    inner: Inner = Field(default_factory=Inner)


def config_error(model: type, overrides: dict) -> str:
    """The message of the ConfigError that loading ``model`` with ``overrides`` raises."""
    with pytest.raises(ConfigError) as info:
        load_config(model, overrides=overrides)
    return str(info.value)


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----- precedence -------------------------------------------------------------------------


def test_defaults_when_no_file_and_no_overrides() -> None:
    cfg = load_config(Outer)
    assert cfg == Outer()
    assert cfg.inner.temperature == 0.8


def test_file_overrides_defaults_and_overrides_beat_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: from-file\nrounds: 5\ninner:\n  temperature: 0.1\n  max_tokens: 100\n")
    cfg = load_config(Outer, path, overrides={"rounds": 7, "inner": {"temperature": 0.3}})
    assert cfg.name == "from-file"  # file only
    assert cfg.rounds == 7  # override beats file
    assert cfg.inner.temperature == 0.3  # nested override beats file
    assert cfg.inner.max_tokens == 100  # nested file value kept next to the override (deep merge)
    assert cfg.inner.stop == []  # default


def test_overrides_from_strings_apply_with_their_yaml_types(tmp_path: Path) -> None:
    path = _write(tmp_path, "inner:\n  max_tokens: 100\n")
    cfg = load_config(Outer, path, overrides=parse_overrides(["inner.max_tokens=3", "inner.stop=[a, b]"]))
    assert cfg.inner.max_tokens == 3
    assert cfg.inner.stop == ["a", "b"]


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(Outer, _write(tmp_path, "")) == Outer()
    assert load_config(Outer, _write(tmp_path, "# only a comment\n", "c.yaml")) == Outer()


def test_real_generate_config_from_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "sampling:\n  temperature: 0.2\nbootstrap:\n  rounds: 3\nheuristics: [analogy]\n")
    cfg = load_config(GenerateConfig, path, overrides={"bootstrap": {"samples": 4}})
    assert cfg.sampling.temperature == 0.2
    assert cfg.sampling.top_p == GenerateConfig().sampling.top_p
    assert cfg.bootstrap.rounds == 3 and cfg.bootstrap.samples == 4
    assert cfg.heuristics == ["analogy"]


# ----- section -----------------------------------------------------------------------------


def test_section_picks_the_sub_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "outer:\n  rounds: 9\n  inner:\n    temperature: 1.5\nother_stage:\n  whatever: 1\n")
    cfg = load_config(Outer, path, section="outer")
    assert cfg.rounds == 9 and cfg.inner.temperature == 1.5


def test_section_missing_from_file_uses_whole_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "rounds: 4\n")
    assert load_config(Outer, path, section="outer").rounds == 4


def test_section_overrides_still_win(tmp_path: Path) -> None:
    path = _write(tmp_path, "outer:\n  rounds: 9\n")
    assert load_config(Outer, path, overrides={"rounds": 1}, section="outer").rounds == 1


def test_without_section_a_whole_run_file_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "outer:\n  rounds: 9\n")
    with pytest.raises(ConfigError, match=r"outer: unknown key"):
        load_config(Outer, path)


# ----- error messages ------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_and_lists_valid_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "rounds: 2\nroundz: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    msg = str(info.value)
    assert str(path) in msg  # the source is named
    assert "roundz: unknown key" in msg
    assert "did you mean 'rounds'?" in msg
    assert "valid keys here: inner, name, rounds" in msg


def test_unknown_nested_key_names_dotted_path_and_the_nested_valid_keys() -> None:
    msg = config_error(Outer, {"inner": {"temprature": 0.5}})
    assert "inner.temprature: unknown key" in msg
    assert "did you mean 'temperature'?" in msg
    assert "valid keys here: max_tokens, stop, temperature" in msg
    assert "defaults + overrides" in msg


def test_unknown_key_without_a_close_match_has_no_suggestion() -> None:
    msg = config_error(Outer, {"zzzzzz": 1})
    assert "zzzzzz: unknown key" in msg
    assert "did you mean" not in msg
    assert "valid keys here: inner, name, rounds" in msg


def test_unknown_key_in_real_generate_config() -> None:
    msg = config_error(GenerateConfig, {"sampling": {"max_token": 3}})
    assert "invalid GenerateConfig" in msg
    assert "sampling.max_token: unknown key (did you mean 'max_tokens'?)" in msg
    assert "valid keys here: " + ", ".join(sorted(SamplingConfig.model_fields)) in msg


def test_bad_value_names_dotted_field_and_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "inner:\n  temperature: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    msg = str(info.value)
    assert "invalid Outer" in msg and str(path) in msg
    assert "inner.temperature:" in msg
    assert "less than or equal to 2" in msg
    assert "(got 5)" in msg


def test_wrong_type_names_field_and_value() -> None:
    msg = config_error(Outer, {"rounds": "many"})
    assert "rounds:" in msg and "(got 'many')" in msg


def test_every_bad_field_is_reported_at_once() -> None:
    msg = config_error(Outer, {"rounds": 0, "inner": {"max_tokens": 0, "typo": 1}})
    assert "rounds:" in msg
    assert "inner.max_tokens:" in msg
    assert "inner.typo: unknown key" in msg


def test_real_generate_config_bad_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"sampling\.temperature: .*less than or equal to 2.*\(got 5\)"):
        load_config(GenerateConfig, overrides=parse_overrides(["sampling.temperature=5"]))
    with pytest.raises(ConfigError, match=r"heuristics: .*at least one heuristic"):
        load_config(GenerateConfig, overrides={"heuristics": []})


def test_format_validation_error_truncates_long_values() -> None:
    with pytest.raises(ValidationError) as info:
        Outer.model_validate({"rounds": "x" * 500})
    text = format_validation_error(Outer, info.value, "somewhere.yaml")
    lines = text.splitlines()
    assert lines[0] == "invalid Outer (somewhere.yaml):"
    assert lines[1].startswith("  rounds: ")
    assert lines[1].endswith("...)")
    assert len(lines[1]) < 200


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "inner:\n  temperature: [0.1\nrounds: 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    msg = str(info.value)
    assert str(path) in msg and "is not valid YAML" in msg
    assert "line" in msg  # PyYAML's mark names the line


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "list"), ("just a string\n", "str"), ("42\n", "int")])
def test_non_mapping_yaml_is_rejected(tmp_path: Path, text: str, kind: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    msg = str(info.value)
    assert str(path) in msg
    assert f"must hold a mapping of settings, got {kind}" in msg


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config.yaml"
    with pytest.raises(ConfigError, match=r"config file not found: .*nope/config\.yaml"):
        load_config(Outer, missing)


def test_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        read_yaml(tmp_path)


# ----- override parsing --------------------------------------------------------------------


def test_parse_overrides_types_and_nesting() -> None:
    out = parse_overrides(["a.b=3", "a.c=0.5", "x=true", "y=false", "l=[a, b]", "n=null", "s=hello", "t=3.0e-2"])
    assert out == {"a": {"b": 3, "c": 0.5}, "x": True, "y": False, "l": ["a", "b"], "n": None, "s": "hello", "t": 0.03}
    assert isinstance(out["a"]["b"], int)


def test_parse_overrides_keeps_equals_signs_in_the_value_and_strips_the_key() -> None:
    assert parse_overrides([" a.b =x=y"]) == {"a": {"b": "x=y"}}


def test_parse_overrides_empty_value_is_empty_string() -> None:
    assert parse_overrides(["system_prompt="]) == {"system_prompt": ""}


def test_parse_overrides_later_wins_and_nested_replaces_scalar() -> None:
    assert parse_overrides(["a=1", "a=2"]) == {"a": 2}
    assert parse_overrides(["a=1", "a.b=2"]) == {"a": {"b": 2}}


def test_parse_overrides_invalid_yaml_value_stays_a_string() -> None:
    assert parse_overrides(["p=[unclosed"]) == {"p": "[unclosed"}
    assert parse_value("{a: 1}") == {"a": 1}


def test_parse_overrides_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_overrides(["sampling.temperature"])
    msg = str(info.value)
    assert "'sampling.temperature'" in msg and "key=value" in msg


def test_parse_overrides_empty_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="empty key"):
        parse_overrides(["=3"])


def test_parse_overrides_of_nothing() -> None:
    assert parse_overrides([]) == {}
    assert parse_overrides(()) == {}


# ----- deep_merge and field paths ------------------------------------------------------------


def test_deep_merge_is_recursive_and_does_not_modify_inputs() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 1}
    extra = {"a": {"c": 3, "z": 4}, "d": [9], "e": {"now": "a mapping"}}
    merged = deep_merge(base, extra)
    assert merged == {"a": {"b": 1, "c": 3, "z": 4}, "d": [9], "e": {"now": "a mapping"}}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 1}
    assert extra == {"a": {"c": 3, "z": 4}, "d": [9], "e": {"now": "a mapping"}}
    merged["a"]["b"] = 100
    assert base["a"]["b"] == 1


def test_deep_merge_mapping_replaced_by_scalar() -> None:
    assert deep_merge({"a": {"b": 1}}, {"a": None}) == {"a": None}


def test_field_paths_are_dotted_leaves() -> None:
    assert field_paths(Outer) == ["name", "rounds", "inner.temperature", "inner.max_tokens", "inner.stop"]
    paths = field_paths(GenerateConfig)
    assert "sampling.max_tokens" in paths and "data.synthetic.count" in paths and "server.model" in paths
    assert "sampling" not in paths


def test_validate_assignment_is_on() -> None:
    cfg = Outer()
    with pytest.raises(ValidationError):
        cfg.rounds = 0


def test_settings_text_reads_json_as_json_and_yaml_as_yaml() -> None:
    """json.dumps writes an emoji as a surrogate pair (\\ud83d\\ude42); read as YAML that became two broken characters."""
    import json

    from polya.core.config import parse_settings_text

    prompt = 'Use $\\boxed{}$, "quotes" and Pólya 🙂'
    assert parse_settings_text(json.dumps({"system_prompt": prompt}))["system_prompt"] == prompt
    assert parse_settings_text("{max_seq_length: 256, lora: {enabled: true}}") == {"max_seq_length": 256, "lora": {"enabled": True}}
    assert parse_settings_text("system_prompt: 'Pólya 🙂'\n") == {"system_prompt": "Pólya 🙂"}
    with pytest.raises(ConfigError, match="must hold a mapping"):
        parse_settings_text("[1, 2]", "rl_config")
