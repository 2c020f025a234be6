"""EndpointPool against real local HTTP servers: least-loaded choice, per-endpoint cap, failover, all dead."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from polya.core.errors import ServerError
from polya.sampling.client import ChatClient
from polya.sampling.pool import EndpointPool, open_endpoints
from polya.serving.config import ServerConfig
from polya.serving.vllm_server import Endpoint
from tests.support.local_http import JsonHandler, LocalServer


class ChatServer(LocalServer):
    """A tiny OpenAI-compatible server: answers each chat request after ``delay_s`` with the request's tag.

    ``status`` other than 200 answers every request with it; ``die_after`` drops the connection of
    every request after that many answers (a server killed mid-run).
    """

    def __init__(self, delay_s: float = 0.0, status: int = 200, die_after: int | None = None, model: str = "tiny") -> None:
        self.delay_s, self.status, self.die_after, self.model = delay_s, status, die_after, model
        self.answered: list[str] = []
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def _handler(self) -> type[JsonHandler]:
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_json(200, {"data": [{"id": server.model}]})

            def do_POST(self) -> None:  # noqa: N802
                body = self.read_json()
                with server.lock:
                    dying = server.die_after is not None and len(server.answered) >= server.die_after
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    time.sleep(server.delay_s)
                    if dying:
                        self.close_connection = True  # no answer at all: the client sees the connection drop
                        return
                    if server.status != 200:
                        return self.send_json(server.status, {"error": "nope"})
                    tag = body["messages"][0]["content"]
                    with server.lock:
                        server.answered.append(tag)
                    self.send_json(200, {"choices": [{"index": 0, "message": {"content": tag}, "finish_reason": "stop"}]})
                finally:
                    with server.lock:
                        server.inflight -= 1

        return Handler


def _pool(servers: list[ChatServer], per_endpoint: int, retries: int = 1, **kwargs: Any) -> EndpointPool:
    clients = [ChatClient(Endpoint(s.base_url, "tiny"), max_retries=retries, backoff_s=0.01, timeout_s=10) for s in servers]
    return EndpointPool(clients, per_endpoint, **kwargs)


def _ask(pool: EndpointPool, count: int, workers: int) -> list[str | None]:
    async def go() -> list[str | None]:
        sem = asyncio.Semaphore(workers)

        async def one(i: int) -> str | None:
            async with sem:
                return await pool.chat_text({"model": "tiny", "messages": [{"role": "user", "content": f"q{i}"}]})

        try:
            return await asyncio.gather(*(one(i) for i in range(count)))
        finally:
            await pool.aclose()

    return asyncio.run(go())


def test_requests_go_to_the_least_busy_endpoint_up_to_its_cap() -> None:
    with ChatServer(delay_s=0.2) as a, ChatServer(delay_s=0.2) as b:
        pool = _pool([a, b], per_endpoint=2)
        answers = _ask(pool, 8, workers=8)  # more callers than capacity: they queue for a free slot
    assert answers == [f"q{i}" for i in range(8)]
    assert a.max_inflight == b.max_inflight == 2
    assert len(a.answered) == len(b.answered) == 4
    assert pool.stats() == {
        a.base_url: {"requests": 4, "failures": 0, "dead": False},
        b.base_url: {"requests": 4, "failures": 0, "dead": False},
    }


def test_a_faster_endpoint_takes_more_requests() -> None:
    with ChatServer(delay_s=0.3) as slow, ChatServer(delay_s=0.01) as fast:
        pool = _pool([slow, fast], per_endpoint=1)
        _ask(pool, 12, workers=2)
    assert len(fast.answered) > 2 * len(slow.answered) >= 2


@pytest.mark.parametrize("broken", ["status 503", "connection refused", "dies mid-run"])
def test_a_dead_endpoint_is_dropped_and_its_requests_answered_elsewhere_once(broken: str, caplog: pytest.LogCaptureFixture) -> None:
    bad_settings = {"status 503": {"status": 503}, "connection refused": {}, "dies mid-run": {"die_after": 2, "delay_s": 0.05}}[broken]
    outcomes: list[tuple[str, str]] = []
    with ChatServer(**bad_settings) as bad, ChatServer(delay_s=0.05) as good:
        if broken == "connection refused":
            bad.__exit__()  # nothing listens there any more
        pool = _pool([bad, good], per_endpoint=3, on_result=lambda url, outcome: outcomes.append((url, outcome)))
        answers = _ask(pool, 12, workers=6)
    assert answers == [f"q{i}" for i in range(12)]
    answered = bad.answered + good.answered
    assert sorted(answered) == sorted(f"q{i}" for i in range(12))  # each request answered exactly once
    stats = pool.stats()
    assert stats[bad.base_url]["dead"] and stats[bad.base_url]["failures"] >= 1
    assert stats[bad.base_url]["requests"] == len(bad.answered) and stats[good.base_url]["requests"] == len(good.answered)
    assert not stats[good.base_url]["dead"] and stats[good.base_url]["failures"] == 0
    assert outcomes.count((bad.base_url, "failed")) == stats[bad.base_url]["failures"]
    assert f"model server {bad.base_url} is dead" in caplog.text


def test_every_endpoint_dead_fails_with_the_resume_hint() -> None:
    with ChatServer(status=502) as a, ChatServer(status=503) as b:
        pool = _pool([a, b], per_endpoint=2)
        with pytest.raises(ServerError, match="every one of the 2 server.endpoints failed.*run the same command again to resume"):
            _ask(pool, 4, workers=4)
    assert all(s["dead"] for s in pool.stats().values())


def test_a_refused_request_does_not_kill_the_endpoint() -> None:
    with ChatServer(status=400) as a, ChatServer(status=400) as b:
        pool = _pool([a, b], per_endpoint=1)
        assert _ask(pool, 2, workers=2) == [None, None]
    assert [s["dead"] for s in pool.stats().values()] == [False, False]


def test_open_endpoints_leaves_out_unreachable_servers_and_checks_the_model() -> None:
    with ChatServer() as a, ChatServer() as b, ChatServer(model="other") as c, ChatServer() as gone:
        gone.__exit__()
        found = open_endpoints(ServerConfig(endpoints=[a.base_url, gone.base_url, b.base_url]))
        assert [e.base_url for e in found] == [a.base_url, b.base_url] and {e.model for e in found} == {"tiny"}
        with pytest.raises(Exception, match="serve different models"):
            open_endpoints(ServerConfig(endpoints=[a.base_url, c.base_url]))
        with pytest.raises(ServerError, match="none of server.endpoints can be reached"):
            open_endpoints(ServerConfig(endpoints=[gone.base_url, gone.base_url + "/x"]))
