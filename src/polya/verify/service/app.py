"""``build_app(config)``: the verifier's FastAPI app; its judge pool is built at start-up.

Run it with ``polya serve-verifier`` (uvicorn), or in a test with any ASGI server.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from polya import __version__
from polya.verify.config import VerifierConfig
from polya.verify.service.errors import install_error_handlers
from polya.verify.service.metrics import VerifierMetrics
from polya.verify.service.middleware import (
    BearerAuthMiddleware,
    BodySizeLimitMiddleware,
    RequestMetricsMiddleware,
)
from polya.verify.service.router import router
from polya.verify.service.serving import VerifierServing, pool_from_config

logger = logging.getLogger(__name__)


def build_app(config: VerifierConfig | None = None) -> FastAPI:
    """The verifier app: ``POST /v1/verify``, ``GET /health``, ``GET /metrics``.

    The judge pool starts when the app starts (lifespan) and the app reports ready only once
    every worker has warmed up; it is closed on shutdown.
    """
    config = config or VerifierConfig()
    token = config.resolved_token()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = pool_from_config(config)
        try:
            await asyncio.to_thread(pool.wait_ready, config.startup_timeout_s)
        except BaseException:
            await asyncio.to_thread(pool.close)
            raise
        app.state.pool = pool
        app.state.serving = VerifierServing(config, pool, app.state.metrics)
        logger.info(
            "verifier ready: %s judge workers, item deadline %.0fs, auth %s",
            config.workers, config.item_deadline_s, "on" if token else "off",
        )
        try:
            yield
        finally:
            app.state.serving = None
            await asyncio.to_thread(pool.close)
            app.state.pool = None

    app = FastAPI(
        title="polya verifier",
        version=__version__,
        summary="Judges math, code and multiple-choice answers: POST /v1/verify.",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.pool = None
    app.state.serving = None
    app.state.metrics = VerifierMetrics(lambda: app.state.pool)
    app.include_router(router)
    install_error_handlers(app)
    known = frozenset(getattr(r, "path", "") for r in app.routes)
    # Starlette wraps in reverse order of adding: metrics see every answer, auth runs before the size check.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.max_request_bytes)
    if token:
        app.add_middleware(BearerAuthMiddleware, token=token)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics, known_paths=known)
    return app
