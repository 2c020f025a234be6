"""Base class for every stage config, and YAML + override loading.

Every stage has one pydantic model (``GenerateConfig``, ``SelectConfig``, ...). Fields carry a
``description`` that becomes the ``--help`` text; unknown keys are rejected (``extra="forbid"``)
and every validation failure is turned into a :class:`ConfigError` that names the field, the bad
value and what is valid, before any model is loaded.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from polya.errors import ConfigError

C = TypeVar("C", bound="StageConfig")


class StageConfig(BaseModel):
    """Base for all configs: strict keys, validated on assignment, frozen-free."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            paths.extend(_field_paths(ann, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


def _submodel(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        ann = current.model_fields[part].annotation
        current = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return current


def format_validation_error(model: type[BaseModel], err: ValidationError, source: str) -> str:
    """Turn a pydantic error into lines naming each bad field, its value and what is valid."""
    lines = [f"invalid {model.__name__} ({source}):"]
    for e in err.errors():
        loc = tuple(e.get("loc", ()))
        dotted = ".".join(str(p) for p in loc) or "<root>"
        if e.get("type") == "extra_forbidden":
            parent = _submodel(model, loc[:-1])
            valid = sorted(parent.model_fields) if parent else []
            hint = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            msg = f"  {dotted}: unknown key"
            if hint:
                msg += f" (did you mean '{hint[0]}'?)"
            msg += f"; valid keys here: {', '.join(valid)}"
            lines.append(msg)
            continue
        value = e.get("input")
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"  {dotted}: {e.get('msg')} (got {shown})")
    return "\n".join(lines)


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` recursively; ``extra`` wins. Neither input is modified."""
    out: dict[str, Any] = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``key.sub=value`` strings; values are read as YAML (``true``, ``3``, ``[a, b]``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override '{pair}' must look like key=value (for example sampling.temperature=0.7)")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override '{pair}' has an empty key")
        _set_dotted(out, key, parse_value(raw))
    return out


def parse_value(raw: str) -> Any:
    """Read one CLI value as YAML so that numbers, booleans and lists keep their type."""
    try:
        return yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file and the line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of settings, got {type(data).__name__}")
    return data


def load_config(
    model: type[C],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    section: str | None = None,
) -> C:
    """Build ``model`` from embedded defaults, then a YAML file, then overrides (last wins).

    ``section`` picks a sub-mapping of the file (a whole-run file holds one section per stage);
    a file without that section is used as a whole.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        raw = read_yaml(path)
        if section and section in raw and isinstance(raw[section], dict):
            raw = raw[section]
        data = raw
        source = str(path)
    if overrides:
        data = deep_merge(data, overrides)
        source += " + overrides"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(model, exc, source)) from None


def field_paths(model: type[BaseModel]) -> list[str]:
    """All leaf field paths of a config model, dotted (``sampling.temperature``)."""
    return _field_paths(model)
