"""The real verifier service: ``python -m polya.cli.main serve-verifier`` in a subprocess on a free
port, exercised over HTTP: judging, the one error schema, limits, auth, metrics, concurrency,
hostile inputs, worker kills, and the Python clients (VerifierClient, LocalVerifier)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import psutil
import pytest

from polya.core.errors import ServerError
from polya.verify import LocalVerifier, VerifierClient, VerifierConfig, VerifyItem

pytestmark = pytest.mark.integration

TOKEN = "test-token-123"
DEADLINE_S = 6.0
CODE_TIMEOUT_S = 3.0

STUCK = "The answer is" + " " * 19_000 + "a" * 300
"""Real model output that made the final-answer regex backtrack for minutes when this test was
written: a deadline kill inside the service. Should extraction become linear, the item is a plain
'fail' and the test still holds (the pool's kill-and-replace is covered in test_judge_pool)."""

ADD_TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, start_verifier: Any) -> Iterator[Any]:
    log = tmp_path_factory.mktemp("verifier") / "verifier.log"
    proc = start_verifier(
        log, "--workers", "2", "--math-timeout-s", "2", "--item-deadline-s", str(DEADLINE_S),
        "--code-timeout-s", str(CODE_TIMEOUT_S), "--max-prediction-chars", "3000000",
        env={"POLYA_VERIFIER_TOKEN": TOKEN},
    )
    yield proc
    proc.stop()


@pytest.fixture()
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
        yield client


def math(i: int, right: bool = True, **extra: Any) -> dict[str, Any]:
    return {"id": f"m{i}", "kind": "math", "prediction": f"Thus \\boxed{{{i}}}.", "reference": str(i if right else i + 1), **extra}


def assert_error(resp: httpx.Response, status: int, error_type: str, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message", "field"}, body
    assert body["error"]["type"] == error_type, body
    assert body["error"]["field"] == field, body
    assert body["error"]["message"]
    return body["error"]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


# ----- judging ----------------------------------------------------------------------------------


def test_health(server: Any) -> None:
    resp = httpx.get(f"{server.url}/health", timeout=10)  # no token needed
    assert resp.status_code == 200 and resp.json() == {"status": "ok", "workers": 2}


def test_mixed_batch(http: httpx.Client) -> None:
    items = [
        math(1),
        math(2, right=False),
        {"id": "none", "kind": "math", "prediction": "no idea", "reference": "3"},
        {"id": "frac", "kind": "math", "prediction": "\\boxed{\\frac{1}{2}}", "reference": "0.5"},
        {"id": "c1", "kind": "choice", "prediction": "The answer is (B).", "options": ["red", "green", "blue"], "reference": "B"},
        {"id": "c2", "kind": "choice", "prediction": "I pick blue.", "options": ["red", "green", "blue"], "reference": "1"},
        {"id": "p1", "kind": "code", "prediction": "    return a + b\n", "prompt": "def add(a, b):\n", "tests": ADD_TESTS, "entry_point": "add"},
        {"id": "p2", "kind": "code", "prediction": "def add(a, b):\n    return a * b\n", "tests": ADD_TESTS, "entry_point": "add"},
        {"id": "p3", "kind": "code", "prediction": "def add(a, b):\n    while True:\n        pass\n", "tests": ADD_TESTS, "entry_point": "add"},
    ]
    resp = http.post("/v1/verify", json={"items": items})
    assert resp.status_code == 200, resp.text
    verdicts = resp.json()["verdicts"]
    assert [v["id"] for v in verdicts] == [i["id"] for i in items]
    got = {v["id"]: (v["status"], v["correct"]) for v in verdicts}
    assert got == {
        "m1": ("pass", True), "m2": ("fail", False), "none": ("fail", False), "frac": ("pass", True),
        "c1": ("pass", True), "c2": ("fail", False),
        "p1": ("pass", True), "p2": ("fail", False), "p3": ("timeout", False),
    }
    by_id = {v["id"]: v for v in verdicts}
    assert by_id["m1"]["extracted"] == "1" and by_id["none"]["reason"] == "no final answer found"
    assert by_id["p3"]["latency_s"] < CODE_TIMEOUT_S + 5
    assert all(set(v) == {"id", "kind", "correct", "status", "extracted", "reason", "latency_s"} for v in verdicts)


def test_an_item_sets_its_own_time_limit(http: httpx.Client) -> None:
    slow = {"kind": "math", "prediction": r"\boxed{(x+1)^{120}(x-1)^{120}}", "reference": r"(x^2-1)^{120}"}  # ~0.9 s of CPU
    resp = http.post("/v1/verify", json={"items": [{**slow, "id": "short", "timeout_s": 0.2}, {**slow, "id": "default"}]})
    assert resp.status_code == 200, resp.text
    got = {v["id"]: (v["status"], v["correct"]) for v in resp.json()["verdicts"]}
    assert got == {"short": ("timeout", False), "default": ("pass", True)}
    error = assert_error(
        http.post("/v1/verify", json={"items": [math(1), math(2, timeout_s=500)]}), 422, "invalid_request", "items[1].timeout_s"
    )
    assert "at most 120 (max_item_timeout_s)" in error["message"]


def test_empty_batch(http: httpx.Client) -> None:
    resp = http.post("/v1/verify", json={"items": []})
    assert resp.status_code == 200 and resp.json() == {"verdicts": []}


# ----- the error schema -----------------------------------------------------------------------


def test_malformed_json_is_422(http: httpx.Client) -> None:
    resp = http.post("/v1/verify", content=b'{"items": [{"kind": "math"', headers={"content-type": "application/json"})
    error = assert_error(resp, 422, "invalid_request")
    assert "not valid JSON" in error["message"]


def test_missing_field_names_its_path(http: httpx.Client) -> None:
    items = [math(0), math(1), math(2), {"kind": "math", "reference": "1"}]
    error = assert_error(http.post("/v1/verify", json={"items": items}), 422, "invalid_request", "items[3].prediction")
    assert error["message"].startswith("items[3].prediction: Field required")


def test_bad_kind_names_its_path(http: httpx.Client) -> None:
    items = [math(0), math(1), math(2), {"kind": "poetry", "prediction": "x"}]
    error = assert_error(http.post("/v1/verify", json={"items": items}), 422, "invalid_request", "items[3].kind")
    assert "'math', 'code' or 'choice'" in error["message"]


def test_kind_specific_field_missing(http: httpx.Client) -> None:
    items = [{"kind": "choice", "prediction": "A", "reference": "A"}]
    error = assert_error(http.post("/v1/verify", json={"items": items}), 422, "invalid_request", "items[0]")
    assert "options" in error["message"]


def test_unknown_field_and_wrong_body_shape(http: httpx.Client) -> None:
    error = assert_error(http.post("/v1/verify", json={"items": [math(1, colour="red")]}), 422, "invalid_request", "items[0].colour")
    assert "unknown field" in error["message"]
    assert_error(http.post("/v1/verify", json=[math(1)]), 422, "invalid_request")
    assert_error(http.post("/v1/verify", json={}), 422, "invalid_request", "items")
    assert_error(http.post("/v1/verify"), 422, "invalid_request")


def test_too_many_items(http: httpx.Client) -> None:
    items = [{"kind": "math", "prediction": "1", "reference": "1"}] * 1025
    error = assert_error(http.post("/v1/verify", json={"items": items}), 422, "invalid_request", "items")
    assert "1025 items" in error["message"] and "1024" in error["message"]


def test_unknown_path_and_method(http: httpx.Client) -> None:
    assert_error(http.get("/v2/nothing"), 404, "not_found")
    assert_error(http.get("/v1/verify"), 405, "method_not_allowed")


def test_oversize_body_by_content_length(http: httpx.Client) -> None:
    body = json.dumps({"items": [{"kind": "math", "prediction": "x" * (9 * 1024 * 1024), "reference": "1"}]}).encode()
    error = assert_error(http.post("/v1/verify", content=body, headers={"content-type": "application/json"}), 413, "request_too_large")
    assert "8388608" in error["message"]


def test_oversize_body_while_streaming(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        yield b'{"items": [{"kind": "math", "reference": "1", "prediction": "'
        for _ in range(10):
            yield b"x" * (1024 * 1024)
        yield b'"}]}'

    resp = http.post("/v1/verify", content=chunks(), headers={"content-type": "application/json"})
    assert_error(resp, 413, "request_too_large")


def test_auth(server: Any) -> None:
    body = {"items": [math(1)]}
    resp = httpx.post(f"{server.url}/v1/verify", json=body, timeout=30)
    error = assert_error(resp, 401, "authentication_error")
    assert "Authorization: Bearer" in error["message"] and resp.headers["www-authenticate"] == "Bearer"
    resp = httpx.post(f"{server.url}/v1/verify", json=body, headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert_error(resp, 401, "authentication_error")
    resp = httpx.post(f"{server.url}/v1/verify", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert resp.status_code == 200
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 200


# ----- concurrency and hostile input -----------------------------------------------------------


def test_concurrent_clients(server: Any) -> None:
    clients, rounds, batch = 16, 3, 32

    async def one_client(c: int) -> int:
        checked = 0
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
            for r in range(rounds):
                items = [math(10_000 * c + 100 * r + i, right=(c + i) % 2 == 0) for i in range(batch)]
                resp = await client.post("/v1/verify", json={"items": items})
                assert resp.status_code == 200, resp.text
                verdicts = resp.json()["verdicts"]
                assert [v["id"] for v in verdicts] == [i["id"] for i in items]
                assert [v["correct"] for v in verdicts] == [(c + i) % 2 == 0 for i in range(batch)]
                checked += len(verdicts)
        return checked

    async def main() -> list[int]:
        return await asyncio.gather(*(one_client(c) for c in range(clients)))

    assert sum(asyncio.run(main())) == clients * rounds * batch


def test_adversarial_inputs_are_answered_within_their_deadline(server: Any, http: httpx.Client) -> None:
    before = http.get("/metrics").text
    nested = "\\frac{" * 5000
    items = [
        {"id": "stuck", "kind": "math", "prediction": STUCK, "reference": "1"},
        {"id": "frac-open", "kind": "math", "prediction": nested, "reference": "1"},
        {"id": "frac-boxed", "kind": "math", "prediction": "\\boxed{" + "\\frac{1}{" * 5000 + "2" + "}" * 5000 + "}", "reference": "1"},
        {"id": "big", "kind": "math", "prediction": "x" * 2_000_000 + " so \\boxed{4}", "reference": "4"},
        {"id": "too-big", "kind": "math", "prediction": "y" * 3_500_000, "reference": "4"},
        {"id": "box-in-box", "kind": "math", "prediction": "\\boxed{\\boxed{\\boxed{3}}}", "reference": "3"},
        {"id": "unicode", "kind": "math", "prediction": "\x00\x00 答案 \u202e\ufeff \\boxed{５}\x00", "reference": "5"},
        {"id": "surrogate", "kind": "math", "prediction": "\ud800 \\boxed{\ud800\udfff}", "reference": "1"},
        {"id": "huge-power", "kind": "math", "prediction": "\\boxed{9^{9^{9}}+1}", "reference": "5"},
        {"id": "null-code", "kind": "code", "prediction": "def add(a, b):\n    return a + b\n\x00", "tests": ADD_TESTS, "entry_point": "add"},
        {"id": "choice-junk", "kind": "choice", "prediction": "A" * 100_000, "options": ["A", "B"], "reference": "B"},
    ]
    body = json.dumps({"items": items}).encode()  # ensure_ascii: lone surrogates travel as \ud800

    # While the hostile batch is judged, ordinary requests keep being answered.
    async def main() -> tuple[httpx.Response, list[float]]:
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
            hostile = asyncio.ensure_future(client.post("/v1/verify", content=body, headers={"content-type": "application/json"}))
            waits = []
            while not hostile.done():
                start = time.monotonic()
                resp = await client.post("/v1/verify", json={"items": [math(7)]})
                assert resp.status_code == 200 and resp.json()["verdicts"][0]["correct"]
                waits.append(time.monotonic() - start)
                await asyncio.sleep(0.2)
            return await hostile, waits

    start = time.monotonic()
    resp, waits = asyncio.run(main())
    elapsed = time.monotonic() - start
    assert resp.status_code == 200, resp.text
    verdicts = {v["id"]: v for v in resp.json()["verdicts"]}
    assert list(verdicts) == [i["id"] for i in items]
    for v in verdicts.values():
        limit = CODE_TIMEOUT_S + 10 if v["kind"] == "code" else DEADLINE_S
        assert v["latency_s"] <= limit + 1.0, v
        assert v["status"] in ("pass", "fail", "timeout") or v["id"] == "null-code", v  # the code judge calls a syntax error 'error'
    stuck = verdicts["stuck"]
    assert (stuck["status"], stuck["reason"]) == ("timeout", "deadline exceeded") or stuck["status"] == "fail", stuck
    # A deadline kill replaces the worker; an item over its CPU-time budget is a timeout too, judged
    # in its worker (which way 'huge-power' or 'frac-open' goes depends on the sympy version).
    killed = sum(v["reason"] == "deadline exceeded" for v in verdicts.values())
    timeouts = sum(v["status"] == "timeout" for v in verdicts.values() if v["kind"] == "math")
    assert verdicts["big"]["status"] == "pass"  # 2 MB of reasoning, answer at the end
    assert verdicts["too-big"]["reason"] == "prediction longer than 3000000 characters"
    assert verdicts["frac-boxed"]["status"] == "fail"
    assert verdicts["choice-junk"]["correct"] is False
    assert verdicts["null-code"]["correct"] is False
    assert elapsed < DEADLINE_S + 30
    # The other worker kept serving: small requests were answered while the hostile batch was judged.
    assert len(waits) >= 2 and max(waits) < 2 * DEADLINE_S, waits
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    after = http.get("/metrics").text
    assert metric(after, "polya_verifier_deadline_kills_total") == metric(before, "polya_verifier_deadline_kills_total") + killed
    assert metric(after, "polya_verifier_worker_restarts_total") == metric(before, "polya_verifier_worker_restarts_total") + killed
    assert metric(after, "polya_verifier_item_timeouts_total", kind="math") == metric(before, "polya_verifier_item_timeouts_total", kind="math") + timeouts


# ----- metrics ---------------------------------------------------------------------------------


def test_metrics_after_requests(server: Any, http: httpx.Client) -> None:
    before = http.get("/metrics").text
    assert http.post("/v1/verify", json={"items": [math(1), math(2, right=False)]}).status_code == 200
    assert http.post("/v1/verify", json={"items": [{"kind": "poetry"}]}).status_code == 422
    assert httpx.post(f"{server.url}/v1/verify", json={"items": []}, timeout=10).status_code == 401
    for _ in range(3):
        http.get("/health")
    resp = http.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text

    def delta(name: str, **labels: str) -> float:
        return metric(text, name, **labels) - metric(before, name, **labels)

    assert delta("polya_verifier_requests_total", method="POST", path="/v1/verify", status="200") == 1
    assert delta("polya_verifier_requests_total", method="POST", path="/v1/verify", status="422") == 1
    assert delta("polya_verifier_requests_total", method="POST", path="/v1/verify", status="401") == 1
    assert delta("polya_verifier_items_total", kind="math", status="pass") == 1
    assert delta("polya_verifier_items_total", kind="math", status="fail") == 1
    assert delta("polya_verifier_item_latency_seconds_count", kind="math") == 2
    assert delta("polya_verifier_request_duration_seconds_count", method="POST", path="/v1/verify") == 3
    # probes are not counted as requests
    assert 'path="/health"' not in text and 'path="/metrics"' not in text
    for name in (
        "polya_verifier_queue_depth", "polya_verifier_requests_in_flight", "polya_verifier_items_in_progress",
        "polya_verifier_worker_restarts_total", "polya_verifier_deadline_kills_total", "polya_verifier_workers_alive",
        "polya_verifier_pool_up", "process_resident_memory_bytes",
    ):
        assert re.search(rf"^{name}(\{{[^}}]*\}})? ", text, re.M), name
    assert metric(text, "polya_verifier_workers_alive") == 2
    assert metric(text, "polya_verifier_pool_up") == 1
    assert metric(text, "polya_verifier_queue_depth") == 0


# ----- the Python clients ----------------------------------------------------------------------


def test_verifier_client_batches_and_keeps_order(server: Any) -> None:
    items = [VerifyItem(**math(i, right=i % 4 != 0)) for i in range(50)]
    done: list[int] = []
    with VerifierClient(server.url, token=TOKEN, batch_size=7) as client:
        verdicts = client.verify(items, progress=done.append)
    assert [v.id for v in verdicts] == [i.id for i in items]
    assert [v.correct for v in verdicts] == [i % 4 != 0 for i in range(50)]
    assert sum(done) == 50 and len(done) == 8


def test_verifier_client_async_and_token_from_env(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYA_VERIFIER_TOKEN", TOKEN)
    client = VerifierClient(server.url + "/v1", batch_size=16)  # a /v1 suffix is accepted

    async def main() -> list[Any]:
        async with client:
            return await client.averify([math(i) for i in range(40)])

    verdicts = asyncio.run(main())
    assert len(verdicts) == 40 and all(v.correct for v in verdicts)


def test_verifier_client_errors(server: Any, monkeypatch: pytest.MonkeyPatch, free_tcp_port: int) -> None:
    monkeypatch.delenv("POLYA_VERIFIER_TOKEN", raising=False)
    with VerifierClient(server.url) as client, pytest.raises(ServerError, match=r"401.*POLYA_VERIFIER_TOKEN"):
        client.verify([math(1)])
    too_big = VerifierClient(server.url, token=TOKEN, batch_size=5000, max_retries=0)
    with too_big, pytest.raises(ServerError, match=r"rejected items 0\.\.1099 with 422: items: 1100 items"):
        too_big.verify([math(i) for i in range(1100)])
    dead = VerifierClient(f"http://127.0.0.1:{free_tcp_port}", max_retries=2, backoff_s=0.01)
    with dead, pytest.raises(ServerError, match="failed 3 times in a row"):
        dead.verify([math(1)])


def test_local_verifier_gives_the_same_verdicts(server: Any) -> None:
    items = [math(1), math(2, right=False), {"kind": "choice", "prediction": "B", "options": ["x", "y"], "reference": "y"}]
    with VerifierClient(server.url, token=TOKEN) as remote:
        over_http = remote.verify(items)
    with LocalVerifier(VerifierConfig(workers=1, math_timeout_s=2, item_deadline_s=DEADLINE_S)) as local:
        in_process = local.verify(items)
        again = asyncio.run(local.averify(items))
    strip = lambda vs: [v.model_dump(exclude={"latency_s"}) for v in vs]  # noqa: E731
    assert strip(over_http) == strip(in_process) == strip(again)


# ----- worker processes --------------------------------------------------------------------------


def test_killed_worker_is_replaced(server: Any, http: httpx.Client) -> None:
    before = http.get("/metrics").text
    workers = server.worker_processes()
    assert len(workers) == 2
    workers[0].kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = {p.pid for p in server.worker_processes()}
        if len(pids) == 2 and workers[0].pid not in pids and http.get("/health").status_code == 200:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the killed worker was not replaced")
    after = http.get("/metrics").text
    assert metric(after, "polya_verifier_worker_crashes_total") == metric(before, "polya_verifier_worker_crashes_total") + 1
    resp = http.post("/v1/verify", json={"items": [math(i) for i in range(10)]})
    assert resp.status_code == 200 and all(v["correct"] for v in resp.json()["verdicts"])


def test_health_is_503_once_workers_are_killed(tmp_path: Path, start_verifier: Any) -> None:
    server = start_verifier(tmp_path / "verifier.log", "--workers", "2", "--worker-crash-limit", "0")
    try:
        workers = server.worker_processes()
        assert len(workers) == 2
        for proc in workers:
            proc.kill()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            resp = httpx.get(f"{server.url}/health", timeout=10)
            if resp.status_code == 503:
                break
            time.sleep(0.1)
        error = assert_error(resp, 503, "service_unavailable")
        assert "judge pool is dead" in error["message"]
        error = assert_error(httpx.post(f"{server.url}/v1/verify", json={"items": [math(1)]}, timeout=10), 503, "service_unavailable")
        assert "restarted" in error["message"]
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert metric(text, "polya_verifier_pool_up") == 0
        assert server.worker_processes() == []
    finally:
        code = server.stop()
    assert code == 0, server.log.read_text()


def test_sigterm_stops_the_server_and_its_workers(tmp_path: Path, start_verifier: Any) -> None:
    server = start_verifier(tmp_path / "verifier.log", "--workers", "2")
    pids = [p.pid for p in server.worker_processes()]
    assert len(pids) == 2
    assert server.stop() == 0, server.log.read_text()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids):
        time.sleep(0.1)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
