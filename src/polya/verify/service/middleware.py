"""Pure-ASGI middleware of the verifier service: request metrics, bearer auth, body-size limit.

Auth and the size limit run before the body is read, so an unauthenticated or oversized request
costs the server nothing; both answer with the service's error schema.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Awaitable, Callable

from polya.verify.service.errors import ServiceError, error_bytes
from polya.verify.service.metrics import VerifierMetrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBE_PATHS = frozenset({"/health", "/metrics"})
"""Never counted in request metrics, never behind auth."""


async def _send_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_bytes(status, message)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + (headers or []),
    })
    await send({"type": "http.response.body", "body": body})


class RequestMetricsMiddleware:
    """Counts requests by method, path and status and times them; probes are left out."""

    def __init__(self, app: ASGIApp, metrics: VerifierMetrics, known_paths: frozenset[str]):
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in self.known_paths else "other"
        status = {"code": 500}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.metrics.requests_in_flight.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.requests_in_flight.dec()
            self.metrics.request_latency.labels(scope["method"], path).observe(time.perf_counter() - start)
            self.metrics.requests.labels(scope["method"], path, str(status["code"])).inc()


class BearerAuthMiddleware:
    """Requires ``Authorization: Bearer <token>`` on every path except the probes."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        scheme, _, credential = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credential.strip(), self.token):
            message = "missing bearer token: send 'Authorization: Bearer <token>'" if not given else "invalid bearer token"
            await _send_error(send, 401, message, [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """Rejects bodies over ``max_bytes`` with 413: at once from Content-Length, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: str) -> str:
        return (
            f"request body {size} the limit of {self.max_bytes} bytes (max_request_bytes): "
            "send fewer items per request (VerifierClient batch_size) or shorter predictions"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_error(send, 400, f"invalid Content-Length header: {value[:40]!r}")
                    return
                if declared > self.max_bytes:
                    await _send_error(send, 413, self._message(f"of {declared} bytes exceeds"), [(b"connection", b"close")])
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTP exceptions raised while it reads the body; the app's
                    # handler then answers with the error schema.
                    raise ServiceError(413, self._message("exceeds"), headers={"connection": "close"})
            return message

        await self.app(scope, limited_receive, send)
