"""An async OpenAI-compatible chat client with bounded retries, used by generation and evaluation.

Transient failures (connection errors, timeouts, 429 and 5xx answers) are retried with
exponential backoff, at most ``max_retries`` times; a request that still fails raises
:class:`ServerError`, which stops the stage (finished samples are already saved).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import httpx

from polya.core.errors import ServerError
from polya.sampling.config import RequestSettings
from polya.serving.vllm_server import Endpoint

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
ITEM_STATUS = frozenset({400, 413, 422})
"""Statuses that reject one request (a prompt over the context length, say), not the server."""


class RequestRejected(ServerError):
    """The server refused one request with a status that retrying cannot fix (4xx other than 408/429)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status

    @property
    def item_only(self) -> bool:
        """Whether the refusal is about this request alone (its prompt), so other requests may go on."""
        return self.status in ITEM_STATUS


class ChatClient:
    """POST /v1/chat/completions with retries; one pooled HTTP connection set per client.

    ``what`` names the server in errors ("model server", "LLM judge"); ``saved`` says what a
    caller keeps when the server is lost (the stage resumes from it).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout_s: float = 900.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_connections: int = 256,
        on_retry: Callable[[str], None] | None = None,
        what: str = "model server",
        saved: str = "Finished samples are saved",
    ):
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.on_retry = on_retry
        self.what = what
        self.saved = saved
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.AsyncClient(
            base_url=endpoint.base_url, headers=endpoint.headers(), timeout=httpx.Timeout(timeout_s, connect=10.0), limits=limits
        )

    @classmethod
    def from_settings(cls, endpoint: Endpoint, settings: RequestSettings, on_retry: Callable[[str], None] | None = None) -> "ChatClient":
        """A client for ``endpoint`` with a stage's request settings (timeouts, retries, connections)."""
        return cls(
            endpoint, timeout_s=settings.request_timeout_s, max_retries=settings.max_retries, backoff_s=settings.retry_backoff_s,
            max_connections=max(8, settings.concurrency), on_retry=on_retry,
        )

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one chat completion request and return the decoded JSON answer.

        Transient failures are retried; a refusal that retrying cannot fix raises :class:`RequestRejected`.
        """
        attempt = 0
        where = f"{self.what} {self.endpoint.base_url}"
        while True:
            try:
                resp = await self._http.post("/chat/completions", json=body)
                if resp.status_code == 200:
                    return resp.json()
                if resp.status_code not in _RETRY_STATUS:
                    hint = " (check the API key)" if resp.status_code in (401, 403) else ""
                    raise RequestRejected(f"{where} rejected a request with {resp.status_code}{hint}: {resp.text[:300]}", resp.status_code)
                reason = f"status {resp.status_code}"
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt >= self.max_retries:
                raise ServerError(
                    f"{where} failed {attempt + 1} times in a row (last: {reason}); "
                    f"is it still running? {self.saved}: run the same command again to resume."
                )
            delay = self.backoff_s * (2**attempt)
            attempt += 1
            logger.warning("request to %s failed (%s); retry %s/%s in %.1fs", where, reason, attempt, self.max_retries, delay)
            if self.on_retry:
                self.on_retry(reason)
            await asyncio.sleep(delay)

    async def chat_text(self, body: dict[str, Any]) -> str | None:
        """The first choice's text; None when the server refuses this one request (:attr:`RequestRejected.item_only`)."""
        try:
            resp = await self.chat(body)
        except RequestRejected as exc:
            if not exc.item_only:
                raise
            logger.debug("%s", exc)
            return None
        choices = resp.get("choices") or [{}]
        return ((choices[0].get("message") or {}).get("content")) or ""

    async def aclose(self) -> None:
        await self._http.aclose()
