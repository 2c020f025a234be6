"""``VerifierConfig``: every setting of the verifier (``polya serve-verifier --help``, ``polya verify --help``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from polya.core.config import StageConfig, http_url
from polya.verify.math_judge import REL_TOL

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
        default_factory=_usable_cpus, ge=1, le=512, json_schema_extra={"docs_default": "usable CPUs"},
        description="Judge worker processes (default: the CPUs this process may use). Each judges one item at a time.",
    )
    math_timeout_s: float = Field(
        default=5.0, gt=0, le=300,
        description=(
            "CPU seconds one math item may spend being parsed and compared (CPU time, so a loaded machine gives the same verdicts); "
            "past it the verdict is status 'timeout': undecided, never 'fail'."
        ),
    )
    math_rel_tol: float = Field(
        default=REL_TOL, gt=0, lt=1,
        description="Relative tolerance between two numbers (|a-b| <= tol x max(|a|,|b|)): 5e-7 means about seven significant digits; 1e-19 is not 2e-19.",
    )
    max_item_timeout_s: float = Field(
        default=120.0, gt=0, le=3600,
        description="Largest timeout_s one item may ask for (a re-judge with a longer limit); larger: the request is refused.",
    )
    code_timeout_s: float = Field(default=10.0, gt=0, le=600, description="Seconds one code item's program + tests may run.")
    code_memory_mb: int = Field(default=1024, ge=64, le=65536, description="Memory limit in MiB for one code item's program.")
    item_deadline_s: float = Field(
        default=60.0, gt=0, le=3600,
        description=(
            "Wall-clock backstop in seconds on judging one math or choice item (scaled up for an item with a longer timeout_s): "
            "a worker still busy after it is killed and replaced, and the item's verdict is status 'timeout'. Keep it well above "
            "math_timeout_s: CPU time is what judges are limited by, and on a loaded machine wall time runs several times faster. "
            "Code items get their timeout + code_deadline_margin_s instead."
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


def judge_deadline_s(math_timeout_s: float) -> float:
    """Wall-clock backstop on judging one math item when a stage sets only the CPU-time limit: ten
    times that limit plus 10 s, so that only a stuck judge (not a loaded machine) reaches it."""
    return 10 * math_timeout_s + 10


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
    judge_timeout_s: float = Field(
        default=5.0, gt=0, le=120,
        description=(
            "CPU seconds a judge may spend on one answer; past it the verdict is 'timeout' (undecided, never wrong). "
            "A judge still busy after 10 x this + 10 s of wall time is killed and replaced."
        ),
    )
    rejudge_timeout_s: float = Field(
        default=30.0, ge=0, le=600,
        description=(
            "Items whose verdict is undecided (timeout or error) are judged once more with this many CPU seconds; "
            "0: no second try. Those still undecided are counted as such, never as wrong."
        ),
    )

    def verifier_config(self, **settings: Any) -> VerifierConfig:
        """The :class:`VerifierConfig` of the in-process judges (``settings`` adds e.g. code_timeout_s)."""
        return VerifierConfig(
            workers=self.judge_workers, math_timeout_s=self.judge_timeout_s, item_deadline_s=judge_deadline_s(self.judge_timeout_s),
            max_item_timeout_s=max(120.0, self.rejudge_timeout_s), **settings,
        )

    def open_verifier(self, **settings: Any) -> "Verifier":
        """The stage's verifier: a client of ``verifier_endpoint``, else an in-process judge pool.

        Use it as ``with`` / ``async with`` so it is closed (its judge processes stopped) at the end.
        """
        from polya.verify.client import open_verifier

        return open_verifier(self.verifier_config(**settings), endpoint=self.verifier_endpoint, rejudge_timeout_s=self.rejudge_timeout_s)

    def check_verifier(self) -> None:
        """Fail before any server starts when ``verifier_endpoint`` does not answer ``/health``."""
        if self.verifier_endpoint:
            from polya.verify.client import VerifierClient

            with VerifierClient(self.verifier_endpoint) as probe:
                probe.health()
