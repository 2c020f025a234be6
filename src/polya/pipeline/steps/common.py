"""What the pipeline steps share: stage settings from parameters, artifact folders, KFP metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel

from polya.core.config import (
    deep_merge,
    parse_settings_text,
    set_dotted,
    validate_config,
)
from polya.core.digest import short_digest
from polya.core.errors import ConfigError
from polya.core.layout import cache_dir

M = TypeVar("M", bound=BaseModel)

SUMMARY_FILE = "polya-summary.json"
"""Written into every model artifact: the stage's summary (steps, losses, where it came from)."""


def stage_config(model: type[M], config_yaml: str, forced: Mapping[str, Any]) -> M:
    """``model`` from the component's ``config_yaml`` with ``forced`` (artifact paths, given parameters) merged over it."""
    data = deep_merge(parse_settings_text(config_yaml, "config_yaml"), forced)
    return validate_config(model, data, "component config_yaml + pipeline parameters")


def given(forced: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Put each value that was given (not None) at its dotted key (``__`` stands for '.'); 0 and '' count as given."""
    for key, value in values.items():
        if value is not None:
            set_dotted(forced, key.replace("__", "."), value)
    return forced


def split_list(value: str | None) -> list[str] | None:
    """``"a, b"`` or ``"[a, b]"`` -> ``["a", "b"]``; None or empty -> None (not given)."""
    value = (value or "").strip()
    if not value:
        return None
    if value.startswith("["):
        parsed = yaml.safe_load(value)
        if not isinstance(parsed, list):
            raise ConfigError(f"expected a list such as [a, b], got {value!r}")
        return [str(v) for v in parsed]
    return [v.strip() for v in value.split(",") if v.strip()]


def input_digest(stage: str, **inputs: Any) -> str:
    """A short digest naming a step's staging / checkpoint folder: same inputs, same folder."""
    return short_digest({"stage": stage, **inputs})


def work_root(checkpoint_root: str | None) -> str:
    """Where checkpoints go: the given root, else polya's cache (``$POLYA_CACHE_DIR/pipeline``)."""
    return checkpoint_root or str(cache_dir() / "pipeline")


def prepare_output(output_dir: str | Path) -> Path:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_summary(model_dir: str | Path, summary: Mapping[str, Any]) -> None:
    """Write a model artifact's ``polya-summary.json``."""
    (Path(model_dir) / SUMMARY_FILE).write_text(json.dumps(dict(summary), indent=2, default=str), encoding="utf-8")


def read_summary(model_dir: str | None) -> Any:
    """A model artifact's summary (what identifies it), or its file listing; None without an artifact."""
    if not model_dir:
        return None
    path = Path(model_dir) / SUMMARY_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else sorted(p.name for p in Path(model_dir).iterdir())


def scalar_metrics(results: Any, prefix: str = "", depth: int = 3) -> dict[str, float]:
    """Numbers of a results tree as flat ``a/b/c`` keys (what a KFP Metrics artifact can show)."""
    out: dict[str, float] = {}
    if isinstance(results, bool):
        return out
    if isinstance(results, (int, float)):
        return {prefix or "value": float(results)}
    if isinstance(results, dict) and depth > 0:
        for key, value in results.items():
            out.update(scalar_metrics(value, f"{prefix}/{key}" if prefix else str(key), depth - 1))
    return out


def log_metrics(artifact: Any, values: Mapping[str, Any]) -> dict[str, float]:
    """Log each number of ``values`` on a KFP ``Metrics`` artifact and also write them to its file.

    The file makes the artifact a real object in the artifact store (and lets ``kfp.local``'s
    cache, which checks that every output exists, reuse the task).
    """
    numbers = {k: float(v) for k, v in scalar_metrics(dict(values), depth=4).items()}
    for key, value in numbers.items():
        artifact.log_metric(key, value)
    path = Path(artifact.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(numbers, indent=2, sort_keys=True), encoding="utf-8")
    return numbers
