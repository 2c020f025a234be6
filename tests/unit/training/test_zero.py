"""The DeepSpeed ZeRO presets in configs/deepspeed/, validated by DeepSpeed itself.

Each file's ``auto`` values are filled the way the HF Trainer fills them (from real
``TrainingArguments``), then DeepSpeed's own config classes parse the result.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from polya.core.errors import ConfigError
from polya.sft.config import SftConfig
from polya.training import zero
from polya.training.config import DEEPSPEED_PRESETS

REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "deepspeed"
HIDDEN_SIZE = 576  # SmolLM2-135M



def check(path: Path, config: SftConfig, **kwargs: object) -> dict:
    """``zero.check_config`` with the SFT stage's per-device batch and accumulation."""
    return zero.check_config(path, config, per_device_batch=config.batch_size, grad_accumulation=config.grad_accumulation, **kwargs)  # type: ignore[arg-type]


def _training_args(config: SftConfig, bf16: bool):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir="unused", per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accumulation,
        learning_rate=config.learning_rate, weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        warmup_steps=config.warmup_ratio, bf16=bf16, use_cpu=True, report_to=[],
    )


def test_every_preset_is_in_the_repo() -> None:
    assert sorted(p.stem for p in REPO_CONFIGS.glob("*.json")) == sorted(DEEPSPEED_PRESETS)
    for name in DEEPSPEED_PRESETS:
        # Resolved from the package (so an installed wheel has them); the repo's folder links there.
        assert zero.resolve_path(name) == (REPO_CONFIGS / f"{name}.json").resolve()


@pytest.mark.parametrize("name", DEEPSPEED_PRESETS)
@pytest.mark.parametrize("bf16", [True, False])
def test_presets_filled_like_the_hf_trainer_pass_deepspeed_validation(name: str, bf16: bool) -> None:
    from deepspeed.runtime.config import DeepSpeedConfig
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    config = SftConfig(batch_size=4, grad_accumulation=8, learning_rate=2e-5)
    path = REPO_CONFIGS / f"{name}.json"
    raw = json.loads(path.read_text())
    assert "auto" in json.dumps(raw), "presets leave batch sizes and precision to the trainer"

    # The trainer's own filling, from real TrainingArguments ...
    hf = HfTrainerDeepSpeedConfig(str(path))
    hf.trainer_config_process(_training_args(config, bf16))
    hf.trainer_config_finalize(_training_args(config, bf16), types.SimpleNamespace(config=types.SimpleNamespace(hidden_size=HIDDEN_SIZE)), 100)
    # ... equals polya's preflight filling from the stage config.
    filled = check(path, config, hidden_size=HIDDEN_SIZE, num_training_steps=100, bf16=bf16, world_size=1)
    assert filled == hf.config

    ds = DeepSpeedConfig(filled)
    stage = raw["zero_optimization"]["stage"]
    assert ds.zero_optimization_stage == stage == (2 if name == "zero2" else 3)
    assert ds.train_micro_batch_size_per_gpu == 4 and ds.gradient_accumulation_steps == 8 and ds.train_batch_size == 32
    assert ds.gradient_clipping == 1.0
    assert ds.bfloat16_config.enabled is bf16
    zero_config = DeepSpeedZeroConfig(**filled["zero_optimization"])
    assert zero_config.stage == stage
    assert isinstance(zero_config.reduce_bucket_size, int) and zero_config.reduce_bucket_size == HIDDEN_SIZE * HIDDEN_SIZE
    if stage == 3:
        assert zero_config.gather_16bit_weights_on_model_save, "save_model must write whole weights under ZeRO-3"
    if name == "zero3_offload":
        assert zero_config.offload_optimizer.device == "cpu" and zero_config.offload_param.device == "cpu"
        assert filled["optimizer"]["params"]["lr"] == 2e-5  # the CPU Adam gets the stage's learning rate
    else:
        assert zero_config.offload_optimizer is None and zero_config.offload_param is None


def test_world_size_enters_the_global_batch() -> None:
    filled = check(
        zero.resolve_path("zero2"), SftConfig(batch_size=2, grad_accumulation=4), hidden_size=HIDDEN_SIZE,
        num_training_steps=10, bf16=True, world_size=8,
    )
    assert filled["train_batch_size"] == 64


def test_deepspeed_rejects_a_bad_file_and_the_error_names_it(tmp_path: Path) -> None:
    config = SftConfig()
    bad_stage = tmp_path / "stage7.json"
    bad_stage.write_text(json.dumps({"zero_optimization": {"stage": 7}}))
    with pytest.raises(ConfigError, match="zero_optimization.stage to 0, 1, 2 or 3"):
        check(bad_stage, config, hidden_size=HIDDEN_SIZE, num_training_steps=10, bf16=False)
    unknown_key = tmp_path / "typo.json"
    unknown_key.write_text(json.dumps({"train_micro_batch_size_per_gpu": "auto", "zero_optimization": {"stage": 2, "overlap_com": True}}))
    with pytest.raises(ConfigError) as info:
        check(unknown_key, config, hidden_size=HIDDEN_SIZE, num_training_steps=10, bf16=False)
    assert str(unknown_key) in str(info.value) and "overlap_com" in str(info.value) and "DeepSpeed rejects" in str(info.value)
    not_json = tmp_path / "broken.json"
    not_json.write_text('{"zero_optimization": {"stage": 2,}')
    with pytest.raises(ConfigError, match="not valid JSON .line 1"):
        check(not_json, config, hidden_size=HIDDEN_SIZE, num_training_steps=10, bf16=False)
    mismatch = tmp_path / "mismatch.json"
    mismatch.write_text(json.dumps({"train_micro_batch_size_per_gpu": 16, "zero_optimization": {"stage": 2}}))
    with pytest.raises(ConfigError, match="disagrees with the stage settings"):
        check(mismatch, SftConfig(batch_size=2), hidden_size=HIDDEN_SIZE, num_training_steps=10, bf16=False)


def test_unknown_preset_file_names_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zero, "preset_dirs", lambda: [tmp_path])
    with pytest.raises(ConfigError, match="preset 'zero3' not found"):
        zero.resolve_path("zero3")
