"""``RunConfig``: the whole experiment (``polya run``), one section per stage.

The embedded defaults are the ``cpu-demo`` preset: the embedded SmolLM2-135M model, offline
synthetic questions and budgets that finish on a 2-core CPU box.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from polya.config.base import StageConfig
from polya.data.config import DataConfig, SyntheticConfig
from polya.generate.config import BootstrapConfig, GenerateConfig, SamplingConfig
from polya.select.config import SelectConfig
from polya.sft.config import SftConfig

BUILT_STAGES = ("generate", "select", "sft")
"""Stages ``polya run`` can execute today, in pipeline order."""
DEFAULT_STAGES = ("generate", "select")
"""What ``polya run`` does without --stages. sft is opt-in until the demo reliably yields a
non-empty training set: the 135M model solves only a few percent of the synthetic pairs."""
PLANNED_STAGES = ("rl", "eval")


def _demo_generate() -> GenerateConfig:
    return GenerateConfig(
        data=DataConfig(source="synthetic", synthetic=SyntheticConfig(count=8, difficulties=[1])),
        sampling=SamplingConfig(max_tokens=192),
        bootstrap=BootstrapConfig(rounds=2, samples=2, growth=1.5),
        num_exemplars=1,
    )


class RunConfig(StageConfig):
    """Run the experiment stage by stage in one run directory; a re-run resumes where it stopped."""

    run_dir: str = Field(default="runs/demo", description="Run directory (local path or s3:// URI) shared by every stage.")
    stages: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STAGES),
        description=f"Stages to run, in order. Built: {', '.join(BUILT_STAGES)}; planned: {', '.join(PLANNED_STAGES)}.",
    )
    generate: GenerateConfig = Field(default_factory=_demo_generate, description="Settings of the generate stage.")
    select: SelectConfig = Field(default_factory=SelectConfig, description="Settings of the select stage (datasets for SFT).")
    sft: SftConfig = Field(
        default_factory=lambda: SftConfig(max_steps=20),
        description="Settings of the sft stage (mid-training on select/<arm>/). Add sft to --stages to run it.",
    )

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: list[str]) -> list[str]:
        for stage in value:
            if stage in PLANNED_STAGES:
                raise ValueError(f"stage '{stage}' is not built yet; built stages: {', '.join(BUILT_STAGES)}")
            if stage not in BUILT_STAGES:
                raise ValueError(f"unknown stage '{stage}'; valid: {', '.join(BUILT_STAGES + PLANNED_STAGES)}")
        if not value:
            raise ValueError(f"stages must name at least one of: {', '.join(BUILT_STAGES)}")
        return value

    @model_validator(mode="after")
    def _share_run_dir(self) -> "RunConfig":
        # Every stage writes into the run's directory; a stage-level run_dir is ignored here.
        for section in (self.generate, self.select, self.sft):
            if section.run_dir != self.run_dir:
                object.__setattr__(section, "run_dir", self.run_dir)
        return self
