"""The service's one error schema, ``{"error": {"type", "message", "field"}}``, and the handlers
that give every failure (validation, HTTP errors, unexpected exceptions) that shape."""

from __future__ import annotations

import json
import logging
from typing import Any, Iterable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

logger = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "bad_request",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}

_SHOWN_ERRORS = 5


class ServiceError(StarletteHTTPException):
    """An HTTP error that can name the request field it is about."""

    def __init__(self, status_code: int, message: str, *, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.field = field


def error_body(status_code: int, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"type": ERROR_TYPES.get(status_code, "error"), "message": message, "field": field}}


def error_response(status_code: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status_code, message, field), status_code=status_code, headers=headers)


def error_bytes(status_code: int, message: str, field: str | None = None) -> bytes:
    """The error body as bytes, for middleware that answers before the app runs."""
    return json.dumps(error_body(status_code, message, field)).encode()


def field_path(loc: Sequence[Any]) -> str | None:
    """``("body", "items", 3, "kind")`` -> ``items[3].kind``; None for the body as a whole."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or None


def _describe(error: dict[str, Any]) -> tuple[str | None, str]:
    kind = error.get("type")
    loc = tuple(error.get("loc", ()))
    if kind == "json_invalid":
        position = loc[1] if len(loc) > 1 else "?"
        detail = (error.get("ctx") or {}).get("error", "invalid JSON")
        return None, f"request body is not valid JSON: {detail} at character {position}"
    path = field_path(loc)
    message = str(error.get("msg", "invalid value"))
    if kind == "missing" and path is None:
        return None, 'request body is missing: send {"items": [...]}'
    if path is None and kind in ("model_attributes_type", "dict_type", "model_type"):
        return None, 'request body must be a JSON object {"items": [...]} sent with Content-Type: application/json'
    if kind == "extra_forbidden":
        message = "unknown field"
    return path, f"{path}: {message}" if path else message


def validation_message(errors: Iterable[dict[str, Any]]) -> tuple[str, str | None]:
    """One message naming every bad field (the first few), and the first field's path."""
    described = [_describe(e) for e in errors]
    if not described:
        return "invalid request", None
    lines = [message for _path, message in described[:_SHOWN_ERRORS]]
    if len(described) > _SHOWN_ERRORS:
        lines.append(f"... and {len(described) - _SHOWN_ERRORS} more errors")
    return "; ".join(lines), described[0][0]


async def _validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, field = validation_message(exc.errors())
    return error_response(422, message, field)


async def _http_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {_request.method} {_request.url.path} (endpoints: POST /v1/verify, GET /health, GET /metrics)"
    elif exc.status_code == 405 and message == "Method Not Allowed":
        message = f"{_request.method} is not allowed on {_request.url.path}"
    return error_response(exc.status_code, message, getattr(exc, "field", None), headers=getattr(exc, "headers", None))


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}; see the service log")


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure answer with the one error schema."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
