"""One way for callers (selection, RL reward, eval, ``polya verify``) to judge items, in-process or over HTTP.

- :class:`VerifierClient` talks to a running verifier service (``polya serve-verifier``): it
  splits items into batches, sends a few batches at once, retries transient failures (connection
  errors, timeouts, 408/429/5xx) with exponential backoff and raises :class:`ServerError` with a
  message naming the server and the bad item otherwise.
- :class:`LocalVerifier` judges in this process's own :class:`~polya.verify.pool.JudgePool`.

Both have ``verify(items) -> list[Verdict]`` and ``async averify(items)``, so code written against
one works with the other; :func:`open_verifier` picks one from a config and an optional endpoint.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
import threading
import time
from typing import Any, Callable, Iterable, Protocol, Self, Sequence

import httpx
from pydantic import ValidationError

from polya.core.errors import DataError, ServerError
from polya.verify.config import TOKEN_ENV, VerifierConfig
from polya.verify.protocol import Verdict, VerifyItem

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]
"""Called with the number of items just judged."""

ItemLike = VerifyItem | dict[str, Any]

_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_ITEM_INDEX = re.compile(r"items\[(\d+)\]")


class Verifier(Protocol):
    """What callers need from a verifier, local or remote."""

    def verify(self, items: Sequence[ItemLike], progress: ProgressCallback | None = None) -> list[Verdict]: ...

    async def averify(self, items: Sequence[ItemLike], progress: ProgressCallback | None = None) -> list[Verdict]: ...

    def close(self) -> None: ...


def _as_items(items: Iterable[ItemLike]) -> list[VerifyItem]:
    out = []
    for index, item in enumerate(items):
        if isinstance(item, VerifyItem):
            out.append(item)
            continue
        try:
            out.append(VerifyItem.model_validate(item))
        except ValidationError as exc:
            raise DataError(f"item {index} is not a valid VerifyItem: {first_validation_error(exc)}") from None
    return out


def first_validation_error(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts)


class _Closing:
    """``with`` / ``async with`` for a verifier: :meth:`close` or :meth:`aclose` at the end."""

    def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class VerifierClient(_Closing):
    """Judge items on a verifier service at ``base_url`` (``http://host:8080``, with or without ``/v1``)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        batch_size: int = 64,
        max_retries: int = 3,
        timeout_s: float = 600.0,
        *,
        backoff_s: float = 0.5,
        concurrency: int = 4,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ServerError(f"verifier endpoint must be an http:// or https:// URL such as http://localhost:8080, got {base_url!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        base = base_url.rstrip("/")
        self.base_url = base[: -len("/v1")] if base.endswith("/v1") else base
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.concurrency = max(1, concurrency)
        self._timeout = httpx.Timeout(timeout_s, connect=10.0)
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # ----- public API ------------------------------------------------------------------------------

    def verify(self, items: Sequence[ItemLike], progress: ProgressCallback | None = None) -> list[Verdict]:
        """Judge ``items`` (blocking); verdicts in item order."""
        checked = _as_items(items)
        batches = self._batches(checked)
        if not batches:
            return []
        http = self._sync_client()

        def run(offset: int, batch: list[VerifyItem]) -> list[Verdict]:
            verdicts = self._post_sync(http, offset, batch)
            if progress is not None:
                progress(len(batch))
            return verdicts

        if len(batches) == 1 or self.concurrency == 1:
            results = [run(offset, batch) for offset, batch in batches]
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches))) as pool:
                results = list(pool.map(lambda ob: run(*ob), batches))
        return [v for chunk in results for v in chunk]

    async def averify(self, items: Sequence[ItemLike], progress: ProgressCallback | None = None) -> list[Verdict]:
        """Judge ``items`` without blocking the event loop; verdicts in item order."""
        checked = _as_items(items)
        batches = self._batches(checked)
        if not batches:
            return []
        http = self._async_client()
        gate = asyncio.Semaphore(self.concurrency)

        async def run(offset: int, batch: list[VerifyItem]) -> list[Verdict]:
            async with gate:
                verdicts = await self._post_async(http, offset, batch)
            if progress is not None:
                progress(len(batch))
            return verdicts

        results = await asyncio.gather(*(run(offset, batch) for offset, batch in batches))
        return [v for chunk in results for v in chunk]

    def health(self) -> dict[str, Any]:
        """``GET /health`` as a dict; raises :class:`ServerError` when the service is down or unhealthy."""
        try:
            resp = self._sync_client().get("/health", timeout=10.0)
        except httpx.HTTPError as exc:
            raise ServerError(f"verifier at {self.base_url} is not reachable: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise ServerError(f"verifier at {self.base_url} is unhealthy ({resp.status_code}): {self._error_text(resp, 0)}")
        return resp.json()

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        if self._async is not None:
            client, loop = self._async, self._async_loop
            self._async = None
            if loop is not None and not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(client.aclose())

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None


    # ----- internals -------------------------------------------------------------------------------

    def _batches(self, items: list[VerifyItem]) -> list[tuple[int, list[VerifyItem]]]:
        return [(i, items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(
                    base_url=self.base_url, headers=self._headers, timeout=self._timeout,
                    limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
                )
            return self._sync

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            # An AsyncClient belongs to one event loop; a new loop (a new asyncio.run) gets a new client.
            self._async = httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers, timeout=self._timeout,
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            )
            self._async_loop = loop
        return self._async

    @staticmethod
    def _body(batch: list[VerifyItem]) -> bytes:
        return json.dumps({"items": [item.model_dump(exclude_none=True) for item in batch]}).encode()

    def _post_sync(self, http: httpx.Client, offset: int, batch: list[VerifyItem]) -> list[Verdict]:
        body = self._body(batch)
        attempt = 0
        while True:
            try:
                resp = http.post("/v1/verify", content=body, headers={"content-type": "application/json"})
                reason = self._check(resp, offset, batch)
                if not isinstance(reason, str):
                    return reason
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            attempt = self._next_attempt(attempt, reason, offset, len(batch))
            time.sleep(self.backoff_s * 2 ** (attempt - 1))

    async def _post_async(self, http: httpx.AsyncClient, offset: int, batch: list[VerifyItem]) -> list[Verdict]:
        body = self._body(batch)
        attempt = 0
        while True:
            try:
                resp = await http.post("/v1/verify", content=body, headers={"content-type": "application/json"})
                reason = self._check(resp, offset, batch)
                if not isinstance(reason, str):
                    return reason
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            attempt = self._next_attempt(attempt, reason, offset, len(batch))
            await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))

    def _next_attempt(self, attempt: int, reason: str, offset: int, size: int) -> int:
        if attempt >= self.max_retries:
            raise ServerError(
                f"verifier at {self.base_url} failed {attempt + 1} times in a row on items {offset}..{offset + size - 1} "
                f"(last: {reason}); is it running? Check its /health and log."
            )
        attempt += 1
        logger.warning("verifier request failed (%s); retry %s/%s", reason, attempt, self.max_retries)
        return attempt

    def _check(self, resp: httpx.Response, offset: int, batch: list[VerifyItem]) -> list[Verdict] | str:
        """The verdicts, or a reason string when the request should be retried; raises when it must not be."""
        if resp.status_code == 200:
            try:
                raw = resp.json()["verdicts"]
                verdicts = [Verdict.model_validate(v) for v in raw]
            except (ValueError, KeyError, TypeError, ValidationError) as exc:
                raise ServerError(f"verifier at {self.base_url} sent an answer that is not a verdict list: {exc}") from None
            if len(verdicts) != len(batch):
                raise ServerError(f"verifier at {self.base_url} answered {len(verdicts)} verdicts for {len(batch)} items")
            return verdicts
        if resp.status_code in _RETRY_STATUS:
            return f"status {resp.status_code}: {self._error_text(resp, offset)}"
        message = f"verifier at {self.base_url} rejected items {offset}..{offset + len(batch) - 1} with {resp.status_code}: {self._error_text(resp, offset)}"
        if resp.status_code == 401:
            message += f" (pass token=... or set ${TOKEN_ENV})"
        raise ServerError(message)

    @staticmethod
    def _error_text(resp: httpx.Response, offset: int) -> str:
        """The service's error message, with item indices made relative to the caller's whole list."""
        try:
            error = resp.json()["error"]
            text = str(error.get("message"))
        except (ValueError, KeyError, TypeError, AttributeError):
            text = resp.text[:300]
        if offset:
            text = _ITEM_INDEX.sub(lambda m: f"items[{int(m.group(1)) + offset}]", text)
        return text


class LocalVerifier(_Closing):
    """Judge items in this process's own judge pool (started on first use, stopped by :meth:`close`)."""

    def __init__(self, config: VerifierConfig | None = None, **overrides: Any):
        base = config or VerifierConfig()
        self.config = VerifierConfig.model_validate({**base.model_dump(), **overrides}) if overrides else base
        self._pool: Any = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> Any:
        """The :class:`~polya.verify.pool.JudgePool`, started and warmed up on first use."""
        with self._lock:
            if self._pool is None:
                from polya.verify.service.serving import pool_from_config

                pool = pool_from_config(self.config)
                try:
                    pool.wait_ready(self.config.startup_timeout_s)
                except BaseException:
                    pool.close()
                    raise
                self._pool = pool
            return self._pool

    def verify(self, items: Sequence[ItemLike], progress: ProgressCallback | None = None) -> list[Verdict]:
        checked = _as_items(items)
        return self.pool.judge_sync(checked, on_progress=progress) if checked else []

    async def averify(self, items: Sequence[ItemLike], progress: ProgressCallback | None = None) -> list[Verdict]:
        checked = _as_items(items)
        if not checked:
            return []
        pool = self.pool if self._pool is not None else await asyncio.to_thread(lambda: self.pool)
        return await pool.judge(checked, on_progress=progress)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _undecided(items: list[VerifyItem], verdicts: list[Verdict], timeout_s: float) -> tuple[list[int], list[VerifyItem]]:
    """Indices of undecided verdicts whose item may get more time, and those items with ``timeout_s``."""
    indices = [i for i, v in enumerate(verdicts) if not v.decided and (items[i].timeout_s or 0) < timeout_s]
    return indices, [items[i].model_copy(update={"timeout_s": timeout_s}) for i in indices]


def _second_verdicts(verdicts: list[Verdict], indices: list[int], second: list[Verdict], timeout_s: float) -> int:
    for index, verdict in zip(indices, second):
        first = verdicts[index]
        verdicts[index] = verdict.model_copy(update={
            "reason": f"{verdict.reason} (judged again with {timeout_s:g}s after: {first.reason})",
            "latency_s": first.latency_s + verdict.latency_s,
        })
    return len(indices)


def rejudge_undecided(verifier: Verifier, items: Sequence[ItemLike], verdicts: list[Verdict], timeout_s: float) -> int:
    """Judge every undecided item (status ``timeout`` / ``error``) once more with ``timeout_s``;
    replace its verdict in ``verdicts`` by the second one (the reason says so) and return how many were re-judged."""
    checked = _as_items(items)
    indices, again = _undecided(checked, verdicts, timeout_s)
    if not again:
        return 0
    logger.info("judging %s undecided item(s) again with %gs", len(again), timeout_s)
    return _second_verdicts(verdicts, indices, verifier.verify(again), timeout_s)


async def arejudge_undecided(verifier: Verifier, items: Sequence[ItemLike], verdicts: list[Verdict], timeout_s: float) -> int:
    """:func:`rejudge_undecided` without blocking the event loop."""
    checked = _as_items(items)
    indices, again = _undecided(checked, verdicts, timeout_s)
    if not again:
        return 0
    logger.info("judging %s undecided item(s) again with %gs", len(again), timeout_s)
    return _second_verdicts(verdicts, indices, await verifier.averify(again), timeout_s)


class RejudgingVerifier(_Closing):
    """A verifier whose undecided verdicts get a second try with ``timeout_s`` (:func:`rejudge_undecided`).

    Whatever is still undecided stays ``timeout`` / ``error``. ``rejudged`` and ``undecided`` count
    the items judged again and those that stayed undecided, over the verifier's life.
    """

    def __init__(self, inner: Any, timeout_s: float):
        self.inner = inner
        self.timeout_s = timeout_s
        self.rejudged = 0
        self.undecided = 0

    def _count(self, verdicts: list[Verdict], rejudged: int) -> list[Verdict]:
        self.rejudged += rejudged
        self.undecided += sum(1 for v in verdicts if not v.decided)
        return verdicts

    def verify(self, items: Sequence[ItemLike], progress: ProgressCallback | None = None) -> list[Verdict]:
        checked = _as_items(items)
        verdicts = list(self.inner.verify(checked, progress))
        return self._count(verdicts, rejudge_undecided(self.inner, checked, verdicts, self.timeout_s))

    async def averify(self, items: Sequence[ItemLike], progress: ProgressCallback | None = None) -> list[Verdict]:
        checked = _as_items(items)
        verdicts = list(await self.inner.averify(checked, progress))
        return self._count(verdicts, await arejudge_undecided(self.inner, checked, verdicts, self.timeout_s))

    def health(self) -> dict[str, Any]:
        return self.inner.health()

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


def open_verifier(
    config: VerifierConfig | None = None, endpoint: str | None = None, *, rejudge_timeout_s: float = 0, **client_options: Any
) -> Verifier:
    """A :class:`VerifierClient` for ``endpoint`` when given, else a :class:`LocalVerifier` for ``config``;
    with ``rejudge_timeout_s`` > 0 wrapped in a :class:`RejudgingVerifier`."""
    config = config or VerifierConfig()
    inner: Any = VerifierClient(endpoint, token=config.resolved_token(), **client_options) if endpoint else LocalVerifier(config)
    return RejudgingVerifier(inner, rejudge_timeout_s) if rejudge_timeout_s > 0 else inner
