"""Data-parallel sampling: one stage's requests spread over several servers of the same model.

:class:`EndpointPool` has the :class:`ChatClient` verbs (``chat``, ``chat_text``, ``aclose``) and
one client per endpoint. Each request goes to the live endpoint with the fewest requests in flight,
at most ``per_endpoint`` each, so a fast server takes more work than a slow one. A request that an
endpoint fails for good (its client ran out of bounded retries: connection errors, timeouts, 5xx)
marks that endpoint dead, with a warning naming it, and is sent again to the others; a request
that got an answer is never sent twice. Only when every endpoint is dead does a request raise
:class:`ServerError` (finished samples are saved; running again resumes).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from polya.core.errors import ConfigError, ServerError
from polya.sampling.client import ChatClient, RequestRejected
from polya.sampling.config import RequestSettings
from polya.serving.config import ServerConfig
from polya.serving.vllm_server import Endpoint, ExternalEndpoint

logger = logging.getLogger(__name__)


def open_endpoints(config: ServerConfig) -> list[Endpoint]:
    """The reachable servers of ``config.endpoints``, each checked like ``server.endpoint``.

    A server that cannot be reached is left out with a warning; none reachable, or servers that
    serve different model names, is an error.
    """
    found: list[Endpoint] = []
    errors: list[str] = []
    for url in config.endpoints:
        try:
            found.append(ExternalEndpoint(config.model_copy(update={"endpoint": url, "endpoints": []})).start())
        except ServerError as exc:
            logger.warning("leaving out %s (server.endpoints): %s", url, exc)
            errors.append(str(exc))
    if not found:
        raise ServerError(f"none of server.endpoints can be reached: {'; '.join(errors)}")
    models = sorted({e.model for e in found})
    if len(models) > 1:
        raise ConfigError(
            f"server.endpoints serve different models ({', '.join(f'{e.base_url}: {e.model}' for e in found)}); "
            "list servers of one model, or set server.served_model_name"
        )
    return found


@dataclass
class EndpointStats:
    """What one endpoint did: requests it answered, requests it failed (sent on to another), whether it is dead."""

    requests: int = 0
    failures: int = 0
    dead: bool = False


@dataclass
class _Member:
    client: ChatClient
    inflight: int = 0
    stats: EndpointStats = field(default_factory=EndpointStats)

    @property
    def url(self) -> str:
        return self.client.endpoint.base_url


class EndpointPool:
    """Several :class:`ChatClient` s used as one: least-loaded choice, failover, per-endpoint counts.

    ``per_endpoint`` caps the requests in flight on each endpoint (a caller may change it between
    batches, e.g. when the samples per request change); ``capacity`` is the cap times the live
    endpoints, the number of requests worth sending at once. ``on_result(url, outcome)`` is called
    with outcome ``ok`` or ``failed`` after every request an endpoint answered or gave up on.
    """

    def __init__(self, clients: Sequence[ChatClient], per_endpoint: int = 1, on_result: Callable[[str, str], None] | None = None):
        if not clients:
            raise ValueError("an endpoint pool needs at least one client")
        self._members = [_Member(c) for c in clients]
        self.per_endpoint = max(1, per_endpoint)
        self.on_result = on_result
        self._changed = asyncio.Condition()
        self._last_error: ServerError | None = None

    @classmethod
    def from_settings(
        cls, endpoints: Sequence[Endpoint], settings: RequestSettings, per_endpoint: int = 1,
        on_retry: Callable[[str], None] | None = None, on_result: Callable[[str, str], None] | None = None,
    ) -> "EndpointPool":
        """A pool of one client per endpoint, each with a stage's request settings."""
        return cls([ChatClient.from_settings(e, settings, on_retry) for e in endpoints], per_endpoint, on_result)

    @property
    def endpoints(self) -> list[Endpoint]:
        return [m.client.endpoint for m in self._members]

    @property
    def live(self) -> int:
        return sum(not m.stats.dead for m in self._members)

    @property
    def capacity(self) -> int:
        return max(1, self.live) * self.per_endpoint

    def stats(self) -> dict[str, dict[str, Any]]:
        """``{url: {requests, failures, dead}}`` for every endpoint, in the order given."""
        return {m.url: {"requests": m.stats.requests, "failures": m.stats.failures, "dead": m.stats.dead} for m in self._members}

    async def _acquire(self) -> _Member:
        async with self._changed:
            while True:
                live = [m for m in self._members if not m.stats.dead]
                if not live:
                    assert self._last_error is not None
                    raise ServerError(f"every one of the {len(self._members)} server.endpoints failed; the last: {self._last_error}")
                free = [m for m in live if m.inflight < self.per_endpoint]
                if free:  # fewest in flight, then fewest sent so far, then the order given
                    chosen = min(free, key=lambda m: (m.inflight, m.stats.requests + m.stats.failures))
                    chosen.inflight += 1
                    return chosen
                await self._changed.wait()

    async def _release(self, member: _Member) -> None:
        async with self._changed:
            member.inflight -= 1
            self._changed.notify_all()

    def _report(self, member: _Member, outcome: str) -> None:
        if self.on_result:
            self.on_result(member.url, outcome)

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """:meth:`ChatClient.chat` on the least busy live endpoint, sent again elsewhere if that endpoint dies."""
        while True:
            member = await self._acquire()
            try:
                resp = await member.client.chat(body)
            except RequestRejected:  # an answer about this request, not a dead server
                member.stats.requests += 1
                self._report(member, "ok")
                raise
            except ServerError as exc:
                member.stats.failures += 1
                self._report(member, "failed")
                self._last_error = exc
                if not member.stats.dead:
                    member.stats.dead = True
                    logger.warning(
                        "model server %s is dead (%s); %s of %s endpoints left", member.url, exc, self.live, len(self._members)
                    )
                continue
            finally:
                await self._release(member)
            member.stats.requests += 1
            self._report(member, "ok")
            return resp

    chat_text = ChatClient.chat_text

    async def aclose(self) -> None:
        await asyncio.gather(*(m.client.aclose() for m in self._members))
