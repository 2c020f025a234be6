"""Turn a stage's pydantic config into click options, so ``--help`` documents every field.

Each leaf field becomes ``--<dotted.path>`` (``--sampling.temperature 0.7``); values are read as
YAML so lists and booleans work (``--heuristics '[analogy, working_backward]'``). Precedence:
embedded defaults < ``--config FILE`` < ``--set key=value`` < ``--<field>`` options.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Callable, TypeVar

import click
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from polya.core.config import (
    deep_merge,
    load_config,
    mask_secrets,
    parse_overrides,
    parse_value,
    set_dotted,
)

C = TypeVar("C", bound=BaseModel)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _is_str(annotation: Any) -> bool:
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args == [str]
    return False


class _MachineDefault(str):
    """A default that depends on the machine (``json_schema_extra={"docs_default": "..."}``), shown as its description."""


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any, str, Any]]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if _is_model(ann):
            out.extend(_leaf_fields(ann, f"{prefix}{name}."))
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "docs_default" in extra:  # a default that depends on the machine: its description
            default = _MachineDefault(extra["docs_default"])
        elif field.default is not PydanticUndefined:
            default = field.default
        elif field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        else:
            default = None
        out.append((f"{prefix}{name}", ann, field.description or "", default))
    return out


def _starting_values(model: type[BaseModel]) -> dict[str, Any] | None:
    """The settings a config starts from (its default preset applied), or None when it has required fields."""
    try:
        return model().model_dump(mode="json")
    except Exception:  # noqa: BLE001 - a config with required fields has no starting values
        return None


def _at(tree: dict[str, Any], dotted: str, fallback: Any) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return fallback
        node = node[part]
    return node


def config_options(model: type[BaseModel], skip: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding ``--config``, ``--set`` and one option per config field.

    The default shown for each option is the value the config really starts from: the field's
    default with the config's default preset laid under it (``polya rl --help`` shows GRPO's
    learning rate, not the training base's).
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        params: list[click.Parameter] = []
        starting = _starting_values(model)
        for path, ann, desc, default in _leaf_fields(model):
            if path in skip:
                continue
            if starting is not None:
                default = _at(starting, path, default)
            shown = yaml.safe_dump(default, default_flow_style=True, width=10_000).strip()
            if shown.endswith("\n..."):
                shown = shown[: -len("\n...")]
            shown = shown.removesuffix("...").strip()
            help_text = f"{desc} [{_type_name(ann)}; default: {shown}]"
            flags = [f"--{path.replace('_', '-')}"]
            if "_" in path:
                flags.append(f"--{path}")  # the YAML spelling works too
            params.append(click.Option(flags + ["field__" + path.replace(".", "__")], default=None, metavar="VALUE", help=help_text))
        params.append(
            click.Option(
                ["--set", "set_pairs"], multiple=True, metavar="KEY=VALUE",
                help="Override any setting by its dotted path (repeatable), e.g. --set sampling.temperature=0.7.",
            )
        )
        params.append(click.Option(["--config", "config_path"], type=click.Path(dir_okay=False), help="YAML file with settings (same keys as the options)."))
        params.append(click.Option(["--print-config"], is_flag=True, help="Print the resolved settings as YAML and exit."))
        func.__click_params__ = getattr(func, "__click_params__", []) + params[::-1]  # type: ignore[attr-defined]
        return func

    return decorate


def resolve_config(model: type[C], kwargs: dict[str, Any], section: str | None = None) -> tuple[C, bool]:
    """Build the config from the options click parsed; return it and whether to only print it."""
    types_by_path = {path: ann for path, ann, _d, _x in _leaf_fields(model)}
    overrides = parse_overrides(kwargs.pop("set_pairs", ()) or ())
    direct: dict[str, Any] = {}
    for key in list(kwargs):
        if not key.startswith("field__"):
            continue
        raw = kwargs.pop(key)
        if raw is None:
            continue
        path = key[len("field__"):].replace("__", ".")
        ann = types_by_path.get(path)
        if _is_str(ann):
            # Text stays text; for optional text fields `null` (or `~`) unsets the value.
            value = None if raw in ("null", "~") and ann is not str else raw
        else:
            value = parse_value(raw)
        set_dotted(direct, path, value)
    config = load_config(model, kwargs.pop("config_path", None), deep_merge(overrides, direct), section=section)
    return config, bool(kwargs.pop("print_config", False))


def print_config(config: BaseModel, notes: tuple[str, Any] | None = None) -> None:
    """Print resolved settings as YAML, with tokens and keys masked.

    ``notes`` (a heading and a settings tree) is printed after them as YAML comments, so the output
    still loads as a config (``--print-config > run.yaml`` then ``--config run.yaml``).
    """
    click.echo(yaml.safe_dump(mask_secrets(config.model_dump(mode="json")), sort_keys=False), nl=False)
    if notes is not None:
        heading, tree = notes
        body = yaml.safe_dump(mask_secrets(tree), sort_keys=False)
        click.echo("\n".join([f"# {heading}", *(f"# {line}" if line else "#" for line in body.splitlines())]))


def settings_table(model: type[BaseModel]) -> str:
    """The Markdown table of every setting of ``model``: dotted name, type, the value it starts from, help.

    The docs embed it between ``<!-- settings: <module>.<Class> -->`` and ``<!-- /settings -->``
    (``python scripts/docs_settings.py`` rewrites them; a test keeps them in step with the code).
    """
    starting = _starting_values(model)

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")

    rows = ["| setting | type | default | what it does |", "| --- | --- | --- | --- |"]
    for path, ann, desc, default in _leaf_fields(model):
        if isinstance(default, _MachineDefault):
            shown = cell(default)
        else:
            if starting is not None:
                default = _at(starting, path, default)
            shown = "`" + yaml.safe_dump(default, default_flow_style=True, width=10_000).strip().removesuffix("...").strip() + "`"
        rows.append(f"| `{path}` | {cell(_type_name(ann).replace('|', ' | '))} | {shown} | {cell(desc)} |")
    return "\n".join(rows) + "\n"
