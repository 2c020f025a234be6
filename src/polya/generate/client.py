"""An async OpenAI-compatible chat client with bounded retries, used by generation.

Transient failures (connection errors, timeouts, 429 and 5xx answers) are retried with
exponential backoff, at most ``max_retries`` times; a request that still fails raises
:class:`ServerError`, which stops the stage (finished samples are already saved).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import httpx

from polya.errors import ServerError
from polya.serving.vllm_server import Endpoint

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class ChatClient:
    """POST /v1/chat/completions with retries; one pooled HTTP connection set per client."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout_s: float = 900.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_connections: int = 256,
        on_retry: Callable[[str], None] | None = None,
    ):
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.on_retry = on_retry
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(
            base_url=endpoint.base_url, headers=endpoint.headers(), timeout=httpx.Timeout(timeout_s, connect=10.0), limits=limits
        )

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one chat completion request and return the decoded JSON answer."""
        attempt = 0
        while True:
            try:
                resp = await self._http.post("/chat/completions", json=body)
                if resp.status_code == 200:
                    return resp.json()
                if resp.status_code not in _RETRY_STATUS:
                    raise ServerError(
                        f"model server {self.endpoint.base_url} rejected a request with {resp.status_code}: {resp.text[:300]}"
                    )
                reason = f"status {resp.status_code}"
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt >= self.max_retries:
                raise ServerError(
                    f"model server {self.endpoint.base_url} failed {attempt + 1} times in a row (last: {reason}); "
                    "is it still running? Finished samples are saved: run the same command again to resume."
                )
            delay = self.backoff_s * (2**attempt)
            attempt += 1
            logger.warning("request failed (%s); retry %s/%s in %.1fs", reason, attempt, self.max_retries, delay)
            if self.on_retry:
                self.on_retry(reason)
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        await self._http.aclose()
