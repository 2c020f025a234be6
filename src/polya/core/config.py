"""The base of every typed config, its one preset mechanism, and YAML + override loading.

Every stage has one pydantic model (``GenerateConfig``, ``SelectConfig``, ...). Fields carry a
``description`` that becomes the ``--help`` text; unknown keys are rejected (``extra="forbid"``)
and every validation failure is turned into a :class:`ConfigError` that names the field, the bad
value and what is valid, before any model is loaded.

Three class-level declarations give a config its behaviour, each handled once, here:

- ``PRESETS``: named settings laid *under* what the user gives (deep-merged; the user wins). A
  config with presets has a ``preset`` field naming the one to apply (its default applies when
  none is given). Presets nest: a whole-run preset may set a section's own ``preset``.
- ``OPERATIONAL``: fields that do not change what a stage produces (ports, progress bars, where
  a verifier runs); :meth:`StageConfig.identity` leaves them out, recursively, so a resumed
  stage compares only what matters and a new setting is part of the identity by default.
- ``RENAMED``: old key -> new key; an old key still works, with a warning naming the new one.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo

from polya.core.errors import ConfigError

logger = logging.getLogger(__name__)

C = TypeVar("C", bound="StageConfig")
M = TypeVar("M", bound=BaseModel)

SECRET_KEYS = frozenset({"api_key", "auth_token", "token", "password", "secret_key", "hf_token"})
"""Setting names whose values are never printed or recorded (``--print-config``, the manifest, reports)."""


_YAML_WORDS = {True: ("on", "yes", "true"), False: ("off", "no", "false")}


def _literal_words(annotation: Any) -> tuple[str, ...]:
    """The string members of a ``Literal[...]`` annotation (through ``Annotated`` and ``X | None``), else ()."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _literal_words(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return tuple(a for a in typing.get_args(annotation) if isinstance(a, str))
    if origin in (typing.Union, types.UnionType):
        return tuple(w for arg in typing.get_args(annotation) for w in _literal_words(arg))
    return ()


def _yaml_words(cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads ``off``/``on``/``no``/``yes`` as booleans (``--bf16 off``, ``memory_check: off`` in a
    file): a boolean given for a field whose choices are words becomes the word it was written as."""
    changed = None
    for name, value in data.items():
        field = cls.model_fields.get(name)
        if not isinstance(value, bool) or field is None:
            continue
        words = _literal_words(field.annotation)
        word = next((w for w in _YAML_WORDS[value] if w in words), None)
        if word is not None:
            changed = changed if changed is not None else dict(data)
            changed[name] = word
    return changed if changed is not None else data


class StageConfig(BaseModel):
    """Base for all configs: strict keys, validated on assignment, presets, identity, renamed keys."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """Preset name -> settings laid under the user's (needs a ``preset`` field)."""
    OPERATIONAL: ClassVar[frozenset[str]] = frozenset()
    """Fields left out of :meth:`identity`: they may change between a run and its resumption."""
    RENAMED: ClassVar[Mapping[str, str]] = {}
    """Old key -> new key, accepted with a warning."""

    @model_validator(mode="before")
    @classmethod
    def _renamed_and_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if cls.RENAMED:
            data = dict(data)
            for old, new in cls.RENAMED.items():
                if old not in data:
                    continue
                if new in data:
                    raise ValueError(f"'{old}' was renamed to '{new}'; give only '{new}'")
                logger.warning("setting '%s' of %s was renamed to '%s'; please update your config", old, cls.__name__, new)
                data[new] = data.pop(old)
        if cls.PRESETS and "preset" in cls.model_fields:
            name = data.get("preset", cls.model_fields["preset"].default)
            if name in cls.PRESETS:  # an unknown name is reported by the field's own check
                data = deep_merge(cls.PRESETS[name], data)
        return _yaml_words(cls, data)

    def identity(self) -> dict[str, Any]:
        """The settings that decide what the stage produces: every field but ``OPERATIONAL`` ones, recursively."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            if name in self.OPERATIONAL:
                continue
            value = getattr(self, name)
            out[name] = value.identity() if isinstance(value, StageConfig) else self.model_dump(mode="json", include={name})[name]
        return out


def with_default(base: type[BaseModel], name: str, default: Any = ..., *, description: str | None = None) -> Any:
    """Field ``name`` of ``base`` with another default (and optionally a longer description).

    For a subclass whose stage needs a different default: the field's bounds and help text stay
    defined once, in ``base``::

        class RlConfig(TrainingConfig):
            learning_rate: float = with_default(TrainingConfig, "learning_rate", 1e-6)
    """
    parent = base.model_fields[name]
    extra: dict[str, Any] = {"default": default}
    if description is not None:
        extra["description"] = description
    return FieldInfo.merge_field_infos(parent, **extra)


def not_empty(message: str) -> AfterValidator:
    """A field check for ``Annotated[list[...], not_empty("...")]``: an empty value fails with ``message``."""

    def check(value: Any) -> Any:
        if not value:
            raise ValueError(message)
        return value

    return AfterValidator(check)


def location(what: str) -> AfterValidator:
    """A check for ``Annotated[str | None, location("a path or an s3:// URI")]``: unset or non-blank, no trailing slash."""

    def check(value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(f"must be {what}, or unset (null) for the default")
        return value.rstrip("/") if value else value

    return AfterValidator(check)


def http_url(example: str) -> AfterValidator:
    """A check for ``Annotated[str | None, http_url("http://host:8080")]``: an http(s) URL, no trailing slash.

    A blank value counts as unset (an empty string from an environment variable or a pipeline parameter).
    """

    def check(value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL such as {example}, got {value!r}")
        return value.rstrip("/")

    return AfterValidator(check)


# ----- errors ---------------------------------------------------------------------------------


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            paths.extend(_field_paths(ann, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


def field_paths(model: type[BaseModel]) -> list[str]:
    """All leaf field paths of a config model, dotted (``sampling.temperature``)."""
    return _field_paths(model)


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


# ----- settings as data -----------------------------------------------------------------------


def set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested mapping, creating the levels that are missing."""
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


def mask_secrets(tree: Any) -> Any:
    """A copy of a settings tree with the values of :data:`SECRET_KEYS` replaced by ``***``."""
    if isinstance(tree, Mapping):
        return {k: ("***" if v and k in SECRET_KEYS else mask_secrets(v)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [mask_secrets(v) for v in tree]
    return tree


def parse_value(raw: str) -> Any:
    """Read one CLI value as YAML so that numbers, booleans and lists keep their type."""
    try:
        return yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        return raw


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
        set_dotted(out, key, parse_value(raw))
    return out


def parse_settings_text(text: str | None, what: str = "settings") -> dict[str, Any]:
    """A mapping of settings given as YAML or JSON text (empty text: ``{}``); errors name ``what``.

    JSON is read as JSON first: YAML would turn the surrogate pair ``json.dumps`` writes for a
    character beyond U+FFFF (an emoji in a prompt) into two broken characters.
    """
    if not text or not text.strip():
        return {}
    data: Any = None
    if text.lstrip().startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            data = json.loads(text)
    try:
        data = yaml.safe_load(text) if data is None else data
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must hold a mapping of settings, got {type(data).__name__}: {text[:60]!r}")
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file and the line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    return parse_settings_text(p.read_text(encoding="utf-8"), f"config file {p}")


def packaged_yaml(relative: str) -> dict[str, Any]:
    """A YAML mapping shipped inside the package (``polya/configs/<relative>``)."""
    return read_yaml(Path(__file__).resolve().parents[1] / "configs" / relative)


def validate_config(model: type[M], data: Mapping[str, Any], source: str) -> M:
    """``model`` from ``data``; a validation failure becomes a :class:`ConfigError` naming each bad field."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(model, exc, source)) from None


def load_config(
    model: type[M],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    section: str | None = None,
) -> M:
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
    return validate_config(model, data, source)
