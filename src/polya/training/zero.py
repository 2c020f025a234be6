"""DeepSpeed ZeRO configs: find the repo's presets, fill their ``auto`` values, let DeepSpeed check them.

The presets in ``configs/deepspeed/`` leave batch sizes, clipping, precision and bucket sizes as
``"auto"``; the HF Trainer fills them from the training arguments at start-up. :func:`check_config`
does the same filling with the stage's settings and hands the result to DeepSpeed's own config
classes, so a bad file fails before any model loads, with the file and DeepSpeed's message.
"""

from __future__ import annotations

import json
import math
import os
import types
from pathlib import Path
from typing import Any

from polya.core.errors import ConfigError
from polya.training.config import DEEPSPEED_PRESETS, TrainingConfig

ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8


def preset_dirs() -> list[Path]:
    """Folders searched for ``<preset>.json``: the installed package's ``polya/configs/deepspeed``
    (the repo's ``configs/deepspeed`` links to it), then ``./configs/deepspeed``."""
    packaged = Path(__file__).resolve().parents[1] / "configs" / "deepspeed"
    return [packaged, Path.cwd() / "configs" / "deepspeed"]


def resolve_path(value: str) -> Path:
    """The JSON file ``deepspeed`` names (a preset name or a path); a missing file raises :class:`ConfigError`."""
    if value in DEEPSPEED_PRESETS:
        for folder in preset_dirs():
            candidate = folder / f"{value}.json"
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(d) for d in preset_dirs())
        raise ConfigError(
            f"deepspeed: preset {value!r} not found (looked for {value}.json in {searched}); "
            "reinstall polya (the presets are package data) or give the path of a DeepSpeed JSON file"
        )
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"deepspeed: config file {path} does not exist; use one of {', '.join(DEEPSPEED_PRESETS)} or a path to a JSON file")
    return path.resolve()


def read_config(path: Path) -> dict[str, Any]:
    """Parse the file as a JSON object, with errors naming the file and the line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"deepspeed: {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except OSError as exc:
        raise ConfigError(f"deepspeed: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"deepspeed: {path} must hold a JSON object, got {type(data).__name__}")
    stage = (data.get("zero_optimization") or {}).get("stage") if isinstance(data.get("zero_optimization"), dict) else None
    if stage not in (0, 1, 2, 3):
        raise ConfigError(f"deepspeed: {path} must set zero_optimization.stage to 0, 1, 2 or 3 (got {stage!r})")
    return data


def training_args_view(config: TrainingConfig, *, per_device_batch: int, grad_accumulation: int, world_size: int, bf16: bool) -> Any:
    """The attributes of ``TrainingArguments`` that the HF DeepSpeed integration reads to fill ``auto``."""
    args = types.SimpleNamespace(
        world_size=world_size,
        per_device_train_batch_size=per_device_batch,
        gradient_accumulation_steps=grad_accumulation,
        max_grad_norm=config.max_grad_norm,
        learning_rate=config.learning_rate,
        adam_beta1=ADAM_BETAS[0],
        adam_beta2=ADAM_BETAS[1],
        adam_epsilon=ADAM_EPSILON,
        weight_decay=config.weight_decay,
        save_on_each_node=False,
        fp16=False,
        fp16_full_eval=False,
        bf16=bf16,
        bf16_full_eval=False,
    )
    args.get_warmup_steps = lambda steps: math.ceil(steps * config.warmup_ratio)
    return args


def fill_auto(
    path: Path, config: TrainingConfig, *, per_device_batch: int, grad_accumulation: int = 1, hidden_size: int,
    num_training_steps: int, bf16: bool, world_size: int | None = None,
) -> dict[str, Any]:
    """The config with every ``auto`` value filled the way the HF Trainer fills it."""
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    world = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1"))
    hf_config = HfTrainerDeepSpeedConfig(read_config(path))
    args = training_args_view(config, per_device_batch=per_device_batch, grad_accumulation=grad_accumulation, world_size=world, bf16=bf16)
    try:
        hf_config.trainer_config_process(args)
        model = types.SimpleNamespace(config=types.SimpleNamespace(hidden_size=hidden_size))
        hf_config.trainer_config_finalize(args, model, num_training_steps)
    except ValueError as exc:
        raise ConfigError(f"deepspeed: {path} disagrees with the stage settings: {exc}") from None
    return hf_config.config


def check_config(
    path: Path, config: TrainingConfig, *, per_device_batch: int, grad_accumulation: int = 1, hidden_size: int,
    num_training_steps: int, bf16: bool, world_size: int | None = None,
) -> dict[str, Any]:
    """Fill ``auto`` values and validate with ``deepspeed.runtime.config.DeepSpeedConfig``; return the filled config."""
    filled = fill_auto(
        path, config, per_device_batch=per_device_batch, grad_accumulation=grad_accumulation, hidden_size=hidden_size,
        num_training_steps=num_training_steps, bf16=bf16, world_size=world_size,
    )
    leftover = sorted(_auto_keys(filled))
    if leftover:
        raise ConfigError(f"deepspeed: {path} keeps 'auto' values polya cannot fill: {', '.join(leftover)}")
    try:
        from deepspeed.runtime.config import DeepSpeedConfig
    except ImportError as exc:
        raise ConfigError(f"deepspeed is set but the deepspeed package cannot be imported ({exc}); pip install 'polya[train]'") from None
    world = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1"))
    checked = json.loads(json.dumps(filled))
    if world > 1 and isinstance(checked.get("train_batch_size"), int):
        # Before the process group exists DeepSpeed counts one process: check the per-process share.
        checked["train_batch_size"] //= world
    try:
        DeepSpeedConfig(checked)
    except Exception as exc:  # noqa: BLE001 - DeepSpeed raises pydantic, assertion and value errors alike
        message = str(exc).strip().splitlines()
        raise ConfigError(f"deepspeed: DeepSpeed rejects {path}: {type(exc).__name__}: {' '.join(m.strip() for m in message[:6])}") from None
    return filled


def _auto_keys(tree: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.extend(_auto_keys(value, f"{prefix}{key}."))
    elif tree == "auto":
        out.append(prefix.rstrip("."))
    return out
