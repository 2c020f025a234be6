"""The work behind ``POST /v1/verify`` and ``GET /health``: a judge pool built at start-up."""

from __future__ import annotations

import logging

from polya.verify.config import VerifierConfig
from polya.verify.pool import ItemRefused, JudgePool, JudgePoolError
from polya.verify.service.errors import ServiceError
from polya.verify.service.metrics import VerifierMetrics
from polya.verify.service.protocol import HealthResponse, VerifyRequest, VerifyResponse

logger = logging.getLogger(__name__)


def pool_from_config(config: VerifierConfig) -> JudgePool:
    """A :class:`JudgePool` with the config's workers, timeouts and limits (starts the workers)."""
    return JudgePool(
        config.workers,
        config.item_deadline_s,
        math_timeout_s=config.math_timeout_s,
        math_rel_tol=config.math_rel_tol,
        max_item_timeout_s=config.max_item_timeout_s,
        code_timeout_s=config.code_timeout_s,
        code_memory_mb=config.code_memory_mb,
        code_deadline_margin_s=config.code_deadline_margin_s,
        max_prediction_chars=config.max_prediction_chars,
        crash_limit=config.worker_crash_limit,
        startup_timeout_s=config.startup_timeout_s,
    )


class VerifierServing:
    """Judges requests on the pool and records what happened in the metrics."""

    def __init__(self, config: VerifierConfig, pool: JudgePool, metrics: VerifierMetrics):
        self.config = config
        self.pool = pool
        self.metrics = metrics

    def _unavailable(self, reason: str | None) -> ServiceError:
        return ServiceError(503, f"judge pool is dead: {reason or 'no worker alive'}; the service must be restarted")

    async def verify(self, request: VerifyRequest) -> VerifyResponse:
        count = len(request.items)
        if count > self.config.max_batch_items:
            raise ServiceError(
                422, f"items: {count} items in one request, the limit is {self.config.max_batch_items} (max_batch_items); "
                "split the batch (VerifierClient does this with batch_size)", field="items",
            )
        if not self.pool.alive():
            raise self._unavailable(self.pool.dead_reason)
        try:
            verdicts = await self.pool.judge(request.items)
        except ItemRefused as exc:  # an item asks for more time than max_item_timeout_s
            raise ServiceError(422, str(exc), field=exc.field) from None
        except JudgePoolError as exc:
            raise ServiceError(503, f"{exc}; the service must be restarted") from None
        self.metrics.observe_verdicts(verdicts)
        return VerifyResponse(verdicts=verdicts)

    def health(self) -> HealthResponse:
        if not self.pool.alive():
            raise self._unavailable(self.pool.dead_reason)
        return HealthResponse(workers=self.pool.stats().workers_alive)
