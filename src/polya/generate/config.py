"""``GenerateConfig``: every setting of the generation stage (``polya generate --help``)."""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from polya.core.config import StageConfig, with_default
from polya.data.config import DataConfig
from polya.data.sharding import QuestionShard
from polya.heuristics.catalog import NONE, HeuristicIds
from polya.sampling.config import RequestSettings, SamplingParams
from polya.serving.config import ServerConfig
from polya.verify.config import JudgeSettings


class SamplingConfig(SamplingParams):
    """Sampling parameters sent with every generation request (the seed is derived per question, heuristic and round)."""


class BootstrapConfig(StageConfig):
    """Bootstrap rounds: (question, heuristic) pairs still unsolved are tried again with more samples."""

    rounds: int = Field(default=2, ge=1, le=32, description="Number of rounds; round r retries the pairs with no correct sample yet.")
    samples: int = Field(default=2, ge=1, le=1024, description="Samples per (question, heuristic) in round 1.")
    growth: float = Field(default=2.0, ge=1.0, le=16.0, description="Factor by which the samples per pair grow each round.")
    max_samples: int = Field(default=16, ge=1, le=1024, description="Upper bound on the samples per pair in any one round.")
    token_budget: int | None = Field(
        default=None, ge=1, description="Stop issuing new requests once this many completion tokens were generated (all rounds, resumed runs included)."
    )

    @model_validator(mode="after")
    def _cap_above_start(self) -> "BootstrapConfig":
        if self.max_samples < self.samples:
            raise ValueError(f"bootstrap.max_samples ({self.max_samples}) must be >= bootstrap.samples ({self.samples})")
        return self

    def samples_in_round(self, round_index: int) -> int:
        """Samples per pair in 1-based ``round_index``."""
        return min(self.max_samples, math.ceil(self.samples * self.growth ** (round_index - 1)))


class RationalizationConfig(StageConfig):
    """Rationalization (STaR, Zelikman et al. 2022): questions the plain prompt never solved are asked again with the answer as a hint."""

    enabled: bool = Field(
        default=True,
        description=(
            "After the bootstrap rounds, ask every question without a correct plain solution once more with the plain prompt plus "
            "its reference answer as a hint (needs plain). Correct answers are stored with rationalized: true and train without the hint."
        ),
    )
    samples: int = Field(default=2, ge=1, le=1024, description="Samples per rationalization request (one request per unsolved question).")


class GenerateConfig(RequestSettings, JudgeSettings):
    """Generate several solutions per question per Pólya heuristic (and with a plain prompt) on an OpenAI-compatible server."""

    run_dir: str = Field(default="runs/polya", description="Run directory: a local path or an s3://bucket/prefix URI. Output goes to <run_dir>/generate/.")
    data: DataConfig = Field(default_factory=DataConfig, description="Where the training questions come from.")
    shard: QuestionShard = Field(
        default_factory=QuestionShard,
        description=(
            "Ask only shard index of count disjoint parts of the questions (polya.data.sharding: by a hash of the question id), "
            "so count runs on count servers share the work; the KFP pipeline's generate.shards runs one task per shard and merges "
            "their generations before select. The token budget applies to each shard."
        ),
    )
    server: ServerConfig = Field(default_factory=ServerConfig, description="The model server (started by polya, or an existing endpoint).")
    heuristics: HeuristicIds = Field(
        default_factory=lambda: ["all"], description="Heuristic ids from the catalog to use, [all], or [none] (the plain prompt only; needs plain)."
    )
    catalog: str | None = Field(default=None, description="Path to a heuristic catalog YAML; default: the packaged Pólya catalog.")
    plain: bool = Field(
        default=True,
        description=(
            "Also generate with the plain step-by-step prompt (no heuristic; the catalog's plain exemplars), in the same rounds, "
            "recorded as heuristic 'plain': the condition select's star, breadth and depth draw from (baseline_source plain)."
        ),
    )
    rationalization: RationalizationConfig = Field(
        default_factory=RationalizationConfig, description="Rationalization of the plain condition (STaR's hinted second pass)."
    )
    num_exemplars: int = Field(default=1, ge=0, le=8, description="Few-shot exemplars of each heuristic (and of the plain prompt) placed in the prompt.")
    system_prompt: str | None = Field(default=None, description="Override the catalog's system prompt.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="Sampling parameters.")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig, description="Bootstrap rounds and budgets.")
    flush_every: int = Field(default=32, ge=1, description="Write a shard of records once this many samples are buffered.")
    flush_interval_s: float = Field(default=5.0, gt=0, description="...or once this many seconds passed since the last shard.")
    judge_workers: int = with_default(JudgeSettings, "judge_workers", 1)
    """One judge process: generation shares the machine with the model server."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port while running (unset: off).")
    progress: bool = Field(default=True, description="Show a progress bar with throughput.")

    @model_validator(mode="after")
    def _some_condition(self) -> "GenerateConfig":
        if self.heuristics == [NONE] and not self.plain:
            raise ValueError("heuristics [none] with plain false leaves nothing to generate: name heuristics, or set plain true")
        return self

    def identity(self) -> dict[str, object]:
        """The settings that decide *what* is generated; a resumed run must keep them unchanged (the shard only when the
        questions are split: an unsplit run's identity is what it was before shards existed)."""
        return {
            "data": self.data.model_dump(mode="json"),
            "model": self.server.model,
            "heuristics": self.heuristics,
            "plain": self.plain,
            "rationalization.enabled": self.plain and self.rationalization.enabled,
            "rationalization.samples": self.rationalization.samples,
            "catalog": self.catalog,
            "num_exemplars": self.num_exemplars,
            "system_prompt": self.system_prompt,
            "sampling": self.sampling.model_dump(mode="json"),
            "bootstrap.samples": self.bootstrap.samples,
            "bootstrap.growth": self.bootstrap.growth,
            "bootstrap.max_samples": self.bootstrap.max_samples,
            **({"shard": self.shard.model_dump(mode="json")} if self.shard.count > 1 else {}),
        }
