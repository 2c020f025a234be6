"""Request and response bodies of the verifier service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from polya.verify.protocol import Verdict, VerifyItem


class VerifyRequest(BaseModel):
    """``POST /v1/verify``: the items to judge."""

    model_config = ConfigDict(extra="forbid")

    items: list[VerifyItem] = Field(description="Items to judge; at most max_batch_items per request.")


class VerifyResponse(BaseModel):
    """The verdicts, one per item, in the order of the request's items."""

    verdicts: list[Verdict]


class HealthResponse(BaseModel):
    """``GET /health`` while the judge workers are up."""

    status: Literal["ok"] = "ok"
    workers: int = Field(description="Judge worker processes alive.")


class ErrorDetail(BaseModel):
    type: str = Field(description="invalid_request, authentication_error, request_too_large, not_found, method_not_allowed, service_unavailable, internal_error.")
    message: str = Field(description="What went wrong and what would be valid.")
    field: str | None = Field(default=None, description="The offending request field, e.g. items[3].kind; null when not about a field.")


class ErrorResponse(BaseModel):
    """Every failure of the service (4xx and 5xx) has this body."""

    error: ErrorDetail
