"""``VerifierConfig``: every setting of the verifier (``polya serve-verifier --help``, ``polya verify --help``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from polya.core.config import StageConfig, http_url

if TYPE_CHECKING:
    from polya.verify.client import Verifier

TOKEN_ENV = "POLYA_VERIFIER_TOKEN"
"""Environment variable holding the bearer token, used when ``auth_token`` is unset."""


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class VerifierConfig(StageConfig):
    """The verifier: a pool of judge processes behind an HTTP service, or used in-process by ``polya verify``."""

    host: str = Field(default="127.0.0.1", description="Address the service binds to (0.0.0.0 inside a container).")
    port: int = Field(default=8080, ge=0, le=65535, description="Port the service listens on.")
    workers: int = Field(
        default_factory=_usable_cpus, ge=1, le=512,
        description="Judge worker processes (default: the CPUs this process may use). Each judges one item at a time.",
    )
    math_timeout_s: int = Field(
        default=5, ge=1, le=300,
        description="Seconds math-verify may spend on each parse / comparison step of one math item (whole seconds: signal.alarm).",
    )
    code_timeout_s: float = Field(default=10.0, gt=0, le=600, description="Seconds one code item's program + tests may run.")
    code_memory_mb: int = Field(default=1024, ge=64, le=65536, description="Memory limit in MiB for one code item's program.")
    item_deadline_s: float = Field(
        default=30.0, gt=0, le=3600,
        description=(
            "Hard limit in seconds on judging one math or choice item: a worker still busy after it is killed and replaced, "
            "and the item's verdict is status 'timeout'. Code items get code_timeout_s + code_deadline_margin_s instead."
        ),
    )
    code_deadline_margin_s: float = Field(
        default=10.0, gt=0, le=600,
        description="Seconds on top of code_timeout_s before a worker judging a code item is killed (process start-up, test harness).",
    )
    worker_crash_limit: int = Field(
        default=8, ge=0, le=10_000,
        description=(
            "Workers that die on their own (a crash, the OOM killer, an operator's kill) are replaced, at most this many "
            "within 60 s; past that the pool is declared dead and /health answers 503 so the orchestrator restarts the service. "
            "Workers killed for exceeding the deadline are always replaced."
        ),
    )
    max_batch_items: int = Field(default=1024, ge=1, le=1_000_000, description="Most items one POST /v1/verify may carry (larger: 422).")
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, le=1 << 31, description="Largest request body in bytes (larger: 413)."
    )
    max_prediction_chars: int = Field(
        default=1_000_000, ge=1,
        description="Predictions longer than this are not judged: verdict status 'fail', reason 'prediction longer than N characters'.",
    )
    auth_token: str | None = Field(
        default=None,
        description=f"Bearer token every /v1 request must carry (also read from ${TOKEN_ENV}); unset: no authentication. /health and /metrics stay open.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="Log level of the service.")
    startup_timeout_s: float = Field(
        default=120.0, gt=0, description="Seconds the workers may take to start (import math-verify, warm up) before start-up fails."
    )

    @model_validator(mode="after")
    def _deadline_covers_math_timeout(self) -> "VerifierConfig":
        if self.item_deadline_s <= self.math_timeout_s:
            raise ValueError(
                f"item_deadline_s ({self.item_deadline_s}) must be greater than math_timeout_s ({self.math_timeout_s}): "
                "the deadline is the backstop for a judge that overruns its own timeout"
            )
        return self

    def resolved_token(self) -> str | None:
        """The bearer token to require / send: ``auth_token``, else ``$POLYA_VERIFIER_TOKEN``, else None."""
        token = self.auth_token if self.auth_token is not None else os.environ.get(TOKEN_ENV)
        return token or None

    def code_deadline_s(self) -> float:
        """Hard limit on judging one code item: its own timeout plus the margin."""
        return self.code_timeout_s + self.code_deadline_margin_s


def judge_deadline_s(math_timeout_s: float) -> float:
    """Hard limit on judging one math item when a stage sets only math-verify's own timeout: twice
    that timeout (math-verify times parsing and comparing separately) plus 5 s of start-up slack."""
    return 2 * math_timeout_s + 5


class JudgeSettings(StageConfig):
    """How a stage judges answers: the verifier service at ``verifier_endpoint``, or in-process judges.

    Mixed into the configs of every stage that judges (generate, select, eval), so the judges a
    stage opens are configured one way everywhere.
    """

    verifier_endpoint: Annotated[str | None, http_url("http://polya-verifier:8080")] = Field(
        default=None,
        description="URL of a running verifier service (polya serve-verifier), e.g. http://polya-verifier:8080; unset: the same judges run in-process.",
    )
    judge_workers: int = Field(default=2, ge=1, le=64, description="In-process judge worker processes (ignored with verifier_endpoint).")
    judge_timeout_s: int = Field(
        default=5, ge=1, le=120,
        description="Seconds math-verify may spend on one answer; a judge still busy after 2 x this + 5 s is killed and replaced.",
    )

    def verifier_config(self, **settings: Any) -> VerifierConfig:
        """The :class:`VerifierConfig` of the in-process judges (``settings`` adds e.g. code_timeout_s)."""
        return VerifierConfig(
            workers=self.judge_workers, math_timeout_s=self.judge_timeout_s, item_deadline_s=judge_deadline_s(self.judge_timeout_s), **settings,
        )

    def open_verifier(self, **settings: Any) -> "Verifier":
        """The stage's verifier: a client of ``verifier_endpoint``, else an in-process judge pool.

        Use it as ``with`` / ``async with`` so it is closed (its judge processes stopped) at the end.
        """
        from polya.verify.client import open_verifier

        return open_verifier(self.verifier_config(**settings), endpoint=self.verifier_endpoint)

    def check_verifier(self) -> None:
        """Fail before any server starts when ``verifier_endpoint`` does not answer ``/health``."""
        if self.verifier_endpoint:
            from polya.verify.client import VerifierClient

            with VerifierClient(self.verifier_endpoint) as probe:
                probe.health()
