"""The endpoints: ``POST /v1/verify``, ``GET /health``, ``GET /metrics``."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic_core import PydanticSerializationError

from polya.verify.service.errors import ServiceError
from polya.verify.service.protocol import (
    ErrorResponse,
    HealthResponse,
    VerifyRequest,
    VerifyResponse,
)
from polya.verify.service.serving import VerifierServing

router = APIRouter()

_ERRORS = {code: {"model": ErrorResponse} for code in (401, 413, 422, 500, 503)}


def _serving(request: Request) -> VerifierServing:
    serving = getattr(request.app.state, "serving", None)
    if serving is None:
        raise ServiceError(503, "the verifier is starting: judge workers are not ready yet")
    return serving


@router.post("/v1/verify", response_model=VerifyResponse, responses=_ERRORS)
async def verify(body: VerifyRequest, request: Request) -> Response:
    """Judge a batch of items; the verdicts come back in the items' order."""
    result = await _serving(request).verify(body)
    try:
        content = result.model_dump_json()
    except PydanticSerializationError:  # a caller's id with a lone surrogate: escape it as JSON allows
        content = json.dumps(result.model_dump(mode="python"), ensure_ascii=True)
    return Response(content=content, media_type="application/json")


@router.get("/health", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
async def health(request: Request) -> HealthResponse:
    """200 while judge workers are alive; 503 once the pool is dead (restart the service)."""
    return _serving(request).health()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
