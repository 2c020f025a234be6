"""Benchmark: the verifier service under hostile load, over HTTP on loopback.

A real ``polya serve-verifier`` (uvicorn subprocess, judge workers, code sandbox) gets ``--items``
items, mostly hostile and some benign, in requests of 1 to ``--max-batch`` items each, from
``--clients`` concurrent async httpx clients. The hostile items are what model output can do on
purpose or by accident:

- **math / choice**: megabyte predictions (one just over ``max_prediction_chars``, one just under
  it with the answer at the very end), 5,000-deep nested ``\\frac{``, a 5,000-deep boxed fraction
  tower, 2,000 nested ``\\left(``, huge powers (``9^{9^{9}}``), a 19 KB final-answer line that
  once made the extraction regex backtrack for minutes, NULs, lone surrogates, bidi controls,
  100 KB of choice letters;
- **code**: infinite loops, fork bombs (plain and ignoring failures), a daemonized grandchild,
  allocating 4 GB at once or growing a list until the limit, writing a 100 MB file, printing
  100 MB, ``kill(-1)``, and *attacks whose test passes only when they succeed*: connecting to a
  TCP listener this script runs on loopback, reading a 0600 file of this script's user, writing
  a file outside the sandbox. A ``pass`` on an attack item, a connection the listener accepted
  or a file that appeared is a sandbox escape.

What is measured and checked (the exit status is non-zero when a check fails):

- every request is answered (HTTP 200) within its **request deadline**: the bound the service's
  settings give a request of ``n`` items when ``--clients`` requests are in flight. The pool
  serves batches round-robin, item by item, so at most ``n x (clients + 1)`` items are handed out
  before the request's last one, plus ``workers x 2`` already waiting in workers' pipes; each
  takes at most the largest item deadline (``item_deadline_s``, or ``code_timeout_s +
  code_deadline_margin_s``) plus a worker restart after a kill::

      request deadline = (ceil((n x (clients + 1) + 2 x workers) / workers) + 1) x (largest item deadline + restart_s)

  (``clients + 1``: the canary's request is in flight too.) A loose bound by design: it is what
  the scheduler guarantees, not what to expect; the run prints how close the slowest request came.

- every verdict's ``latency_s`` is within its **item deadline** (+1 s for the dispatcher's wake-up);
- a **canary** client sends one benign math item at a time throughout: its latency shows how
  long an ordinary caller waits behind the hostile load;
- memory: the server's RSS and the largest judge worker's RSS, sampled every 0.25 s with psutil,
  and the peak RSS of the whole process tree (workers and sandboxed programs); the server's RSS
  at the end vs after warm-up;
- leaks: after the server is stopped (SIGTERM), no process survives from its tree (every pid seen
  while sampling), none carries this run's marker in its environment, and none runs in this
  run's sandbox folder (the server's ``TMPDIR``, where the sandboxes' working directories are).

The code items run in the service's sandbox (namespaces + an unprivileged uid when run as root,
rlimits on memory, processes, CPU, file size); try ``--items 200`` first on a new machine.

    .venv/bin/python benchmarks/verifier_hostile_load.py --items 200                 # about a minute
    .venv/bin/python benchmarks/verifier_hostile_load.py --items 10000 --clients 32 --output benchmarks/results/verifier_hostile_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from polya.core.processes import stop_process, wait_for_http

TOKEN = "hostile-load-" + secrets.token_hex(8)
MARKER_ENV = "POLYA_HOSTILE_LOAD_RUN"
MAX_BODY_BYTES = 6 * 1024 * 1024
"""Requests are packed below this (the service's limit is 8 MiB: a larger body is refused with 413)."""
ITEM_SLACK_S = 1.0
"""An item's latency may exceed its deadline by this much (the dispatcher wakes up, kills, answers)."""

ADD_TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n"
STUCK = "The answer is" + " " * 19_000 + "a" * 300

# ----- workload ----------------------------------------------------------------------------------


def _code(program: str, body: str = "candidate()") -> dict[str, Any]:
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return {"kind": "code", "prediction": program, "tests": f"def check(candidate):\n{lines}\n", "entry_point": "solution"}


def _attack(program_body: str) -> dict[str, Any]:
    """A code item that passes only when ``program_body`` (run inside ``solution``) succeeds."""
    body = "\n".join("    " + line for line in program_body.strip("\n").splitlines())
    return _code(f"import os, socket, sys\n\ndef solution():\n{body}\n")


def hostile_kinds(ctx: dict[str, Any]) -> dict[str, tuple[float, Callable[[random.Random], dict[str, Any]], bool]]:
    """name -> (weight, factory, is_attack). ``ctx``: listener port, secret file, escape folder."""
    limit = ctx["max_prediction_chars"]

    def math_item(prediction: str, reference: str = "4") -> dict[str, Any]:
        return {"kind": "math", "prediction": prediction, "reference": reference}

    return {
        # benign, for contrast (and so most requests mix good and bad)
        "benign-math": (14, lambda r: math_item(f"Adding up, \\boxed{{{(a := r.randint(1, 999))}}}.", str(a if r.random() < 0.6 else a + 1)), False),
        "benign-choice": (4, lambda r: {"kind": "choice", "prediction": "The answer is (B).", "options": ["red", "green", "blue"], "reference": r.choice("AB")}, False),
        "benign-code": (4, lambda r: {**_code("def solution(a, b):\n    return a + b\n", "assert candidate(1, 2) == 3"), "tests": ADD_TESTS}, False),
        # math and choice
        "megabyte-over-limit": (2, lambda r: math_item("x" * (limit + 1 + r.randint(0, 100_000))), False),
        "megabyte-judged": (1, lambda r: math_item("y" * (limit - 20) + " \\boxed{4}"), False),
        "nested-frac-open": (5, lambda r: math_item("\\frac{" * 5000), False),
        "nested-frac-boxed": (5, lambda r: math_item("\\boxed{" + "\\frac{1}{" * 5000 + "2" + "}" * 5000 + "}"), False),
        "nested-left": (4, lambda r: math_item("\\boxed{" + "\\left(" * 2000 + "1" + "\\right)" * 2000 + "}", "1"), False),
        "huge-power": (1, lambda r: math_item(r.choice(["\\boxed{9^{9^{9}}+1}", "\\boxed{10^{10^{10^{10}}}}", "\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "\\boxed{99!!!!}"])), False),
        "backtracking-line": (ctx["stuck_weight"], lambda r: math_item(STUCK, "1"), False),
        "control-chars": (4, lambda r: math_item("\x00\x00 答案 \u202e\ufeff \\boxed{５}\x00" * r.randint(1, 1000), "5"), False),
        "lone-surrogates": (3, lambda r: math_item("\ud800 \\boxed{\ud800\udfff}" * r.randint(1, 100), "1"), False),
        "choice-junk": (4, lambda r: {"kind": "choice", "prediction": "A" * 100_000, "options": ["A", "B"], "reference": "B"}, False),
        # code: resource abuse
        "infinite-loop": (0.5, lambda r: _code("def solution():\n    while True:\n        pass\n"), False),
        "fork-bomb": (1, lambda r: _code("import os\n\ndef solution():\n    while True:\n        os.fork()\n"), False),
        "fork-bomb-ignoring-errors": (0.5, lambda r: _code("import os\n\ndef solution():\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n"), False),
        "daemon-grandchild": (2, lambda r: _code(
            "import os, time\n\ndef solution():\n    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n"
            "            time.sleep(600)\n        os._exit(0)\n    time.sleep(0.1)\n"), False),
        "allocate-4gb": (3, lambda r: _code("def solution():\n    return bytearray(4 << 30)\n"), False),
        "grow-until-limit": (0.5, lambda r: _code("def solution():\n    chunks = []\n    while True:\n        chunks.append(bytearray(64 << 20))\n"), False),
        "write-100mb": (2, lambda r: _code("def solution():\n    with open('big.bin', 'wb') as f:\n        for _ in range(100):\n            f.write(b'x' * (1 << 20))\n"), False),
        "print-100mb": (1, lambda r: _code("import sys\n\ndef solution():\n    for _ in range(100):\n        sys.stdout.write('z' * (1 << 20))\n"), False),
        "kill-everything": (2, lambda r: _code("import os, signal\n\ndef solution():\n    os.kill(-1, signal.SIGKILL)\n"), False),
        "syntax-error": (2, lambda r: _code("def solution(:\n    return 1\n"), False),
        # code: attacks that pass only when they work
        "attack-connect-loopback": (3, lambda r: _attack(f"s = socket.create_connection(('127.0.0.1', {ctx['port']}), timeout=1)\ns.close()"), True),
        "attack-connect-verifier": (1, lambda r: _attack(f"s = socket.create_connection(('127.0.0.1', {ctx['server_port']}), timeout=1)\ns.close()"), True),
        "attack-read-secret": (3, lambda r: _attack(f"assert open({ctx['secret']!r}).read() == {ctx['secret_text']!r}"), True),
        "attack-read-shadow": (2, lambda r: _attack("open('/etc/shadow').read()"), True),
        "attack-write-outside": (3, lambda r: _attack(f"open({ctx['escape_dir']!r} + '/escaped-' + str(os.getpid()), 'w').write('x')"), True),
        "attack-write-root": (1, lambda r: _attack("open('/polya-escaped-' + str(os.getpid()), 'w').write('x')"), True),
        "attack-env-token": (1, lambda r: _attack(f"assert {TOKEN!r} in repr(dict(os.environ)) or {TOKEN!r} in open('/proc/1/environ').read()"), True),
    }


def make_items(count: int, ctx: dict[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    kinds = hostile_kinds(ctx)
    names = list(kinds)
    weights = [kinds[n][0] for n in names]
    rng = random.Random(seed)
    items = []
    for i in range(count):
        name = rng.choices(names, weights)[0]
        items.append({**kinds[name][1](rng), "id": f"{name}#{i}"})
    return items


def make_requests(items: list[dict[str, Any]], max_batch: int, seed: int = 1) -> list[list[dict[str, Any]]]:
    """Items in order, cut into requests of 1..max_batch items whose body stays under MAX_BODY_BYTES."""
    rng = random.Random(seed)
    requests: list[list[dict[str, Any]]] = []
    i = 0
    while i < len(items):
        want = rng.randint(1, max_batch)
        batch: list[dict[str, Any]] = []
        size = 0
        while i < len(items) and len(batch) < want:
            item_size = len(json.dumps(items[i]))
            if batch and size + item_size > MAX_BODY_BYTES:
                break
            batch.append(items[i])
            size += item_size
            i += 1
        requests.append(batch)
    return requests


# ----- the service and what runs beside it ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Listener:
    """A TCP server on loopback that counts the connections it accepts (an attack's target)."""

    def __init__(self) -> None:
        self.accepted = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._server.close()


class Service:
    def __init__(self, args: argparse.Namespace, run_dir: Path, marker: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = run_dir / "verifier.log"
        # The sandboxes' working directories go under the server's TMPDIR: a process found in it later is a leak.
        self.sandbox_tmp = run_dir / "tmp"
        self.sandbox_tmp.mkdir(mode=0o755)
        os.chmod(self.sandbox_tmp, 0o755)  # the sandbox uid must reach its working directory
        env = {**os.environ, "POLYA_VERIFIER_TOKEN": TOKEN, MARKER_ENV: marker, "TMPDIR": str(self.sandbox_tmp)}
        self.settings = {
            "workers": args.workers, "math_timeout_s": args.math_timeout_s, "item_deadline_s": args.item_deadline_s,
            "code_timeout_s": args.code_timeout_s, "code_deadline_margin_s": args.code_deadline_margin_s,
            "code_memory_mb": args.code_memory_mb, "max_prediction_chars": args.max_prediction_chars,
        }
        cmd = [sys.executable, "-m", "polya.cli.main", "--log-level", "warning", "serve-verifier", "--port", str(self.port), "--log-level", "warning"]
        for name, value in self.settings.items():
            cmd += [f"--{name.replace('_', '-')}", str(value)]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        wait_for_http(f"{self.url}/health", self.proc, 180, what="verifier", log=self.log_path)

    def item_deadline_s(self, item: dict[str, Any]) -> float:
        """The pool's wall-clock deadline for this item (``JudgePool.deadline_for``)."""
        if item["kind"] == "code":
            return self.settings["code_timeout_s"] + self.settings["code_deadline_margin_s"]
        return self.settings["item_deadline_s"]

    def largest_item_deadline_s(self) -> float:
        return max(self.settings["item_deadline_s"], self.settings["code_timeout_s"] + self.settings["code_deadline_margin_s"])

    def stop(self) -> int | None:
        stop_process(self.proc, grace_s=30)
        self._log.close()
        return self.proc.returncode


class MemorySampler:
    """Samples the server's process tree every ``interval_s``: RSS peaks and every (pid, start time) seen."""

    def __init__(self, pid: int, interval_s: float = 0.25):
        self.server = psutil.Process(pid)
        self.interval_s = interval_s
        self.seen: dict[int, tuple[float, str]] = {}  # pid -> (create_time, what)
        self.server_rss: list[tuple[float, int]] = []
        self.peak_server_rss = 0
        self.peak_worker_rss = 0
        self.peak_tree_rss = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        try:
            own = self.server.memory_info().rss
            children = self.server.children(recursive=True)
        except psutil.Error:
            return
        tree = own
        for child in children:
            try:
                rss = child.memory_info().rss
                if child.pid not in self.seen:
                    self.seen[child.pid] = (child.create_time(), " ".join(child.cmdline())[:120])
                if child.ppid() == self.server.pid and "spawn_main" in self.seen[child.pid][1]:
                    self.peak_worker_rss = max(self.peak_worker_rss, rss)
            except psutil.Error:
                continue
            tree += rss
        self.server_rss.append((time.monotonic(), own))
        self.peak_server_rss = max(self.peak_server_rss, own)
        self.peak_tree_rss = max(self.peak_tree_rss, tree)
        self.peak_processes = max(self.peak_processes, 1 + len(children))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def survivors(seen: dict[int, tuple[float, str]], marker: str, sandbox_tmp: Path) -> list[str]:
    """Live (not zombie) processes that belong to the stopped service: seen in its tree, or
    carrying its marker in their environment, or running in its sandbox folder."""
    found: dict[int, str] = {}
    for pid, (created, what) in seen.items():
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                found[pid] = f"pid {pid} (seen in the tree): {what}"
        except psutil.Error:
            continue
    folder = str(sandbox_tmp)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid() or proc.pid in found:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            cwd = ""
            try:
                cwd = proc.cwd()
            except psutil.Error:
                pass
            environ = {}
            try:
                environ = proc.environ()
            except psutil.Error:
                pass
            if environ.get(MARKER_ENV) == marker or folder in cmdline or cwd.startswith(folder):
                found[proc.pid] = f"pid {proc.pid}: {cmdline[:120]} (cwd {cwd})"
        except psutil.Error:
            continue
    return sorted(found.values())


# ----- the load -------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def drive(service: Service, requests: list[list[dict[str, Any]]], clients: int, restart_s: float) -> dict[str, Any]:
    workers = service.settings["workers"]
    unit = service.largest_item_deadline_s() + restart_s

    def request_deadline(n: int) -> float:
        return (math.ceil((n * (clients + 1) + 2 * workers) / workers) + 1) * unit

    bodies = [(json.dumps({"items": r}).encode(), r) for r in reversed(requests)]
    results: list[dict[str, Any]] = []
    canary: list[float] = []
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)
    headers = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    progress = {"items": 0, "next": 1000}
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=service.url, headers=headers, limits=limits, timeout=httpx.Timeout(None, connect=30)) as http:

        async def client() -> None:
            while bodies:
                body, items = bodies.pop()
                deadline = request_deadline(len(items))
                t = time.perf_counter()
                error = None
                try:
                    resp = await asyncio.wait_for(http.post("/v1/verify", content=body), timeout=deadline + 60)
                    status, verdicts = resp.status_code, (resp.json().get("verdicts") if resp.status_code == 200 else None)
                    if status != 200:
                        error = resp.text[:300]
                except (httpx.HTTPError, asyncio.TimeoutError) as exc:
                    status, verdicts, error = None, None, f"{type(exc).__name__}: {exc}"[:300]
                latency = time.perf_counter() - t
                results.append({"items": items, "latency_s": latency, "deadline_s": deadline, "status": status, "verdicts": verdicts, "error": error})
                progress["items"] += len(items)
                if progress["items"] >= progress["next"]:
                    progress["next"] += 1000
                    print(f"  {progress['items']} items answered, {time.perf_counter() - started:.0f}s", flush=True)

        async def canary_client() -> None:
            item = {"kind": "math", "prediction": "So \\boxed{7}.", "reference": "7"}
            while not done.is_set():
                t = time.perf_counter()
                resp = await asyncio.wait_for(http.post("/v1/verify", content=json.dumps({"items": [item]}).encode()), timeout=600)
                if resp.status_code == 200 and resp.json()["verdicts"][0]["correct"]:
                    canary.append(time.perf_counter() - t)
                try:
                    await asyncio.wait_for(done.wait(), timeout=1.0)
                except asyncio.TimeoutError:
                    pass

        canary_task = asyncio.ensure_future(canary_client())
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        done.set()
        await canary_task
    return {"results": results, "seconds": elapsed, "canary": canary, "deadline_unit_s": unit}


def check_results(service: Service, run: dict[str, Any], kinds: dict[str, Any]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {}
    late_requests, late_items, failed_requests, escapes = [], [], [], []
    item_latencies: list[float] = []
    for r in run["results"]:
        if r["latency_s"] > r["deadline_s"]:
            late_requests.append(f"{len(r['items'])} items: {r['latency_s']:.1f}s > {r['deadline_s']:.0f}s")
        if r["status"] != 200 or r["verdicts"] is None or len(r["verdicts"]) != len(r["items"]):
            failed_requests.append(f"HTTP {r['status']}: {r['error']}")
            continue
        for item, v in zip(r["items"], r["verdicts"]):
            name = item["id"].split("#")[0]
            statuses[v["status"]] += 1
            by_kind.setdefault(name, Counter())[v["status"]] += 1
            item_latencies.append(v["latency_s"])
            limit = service.item_deadline_s(item)
            if v["latency_s"] > limit + ITEM_SLACK_S:
                late_items.append(f"{item['id']}: {v['latency_s']:.1f}s > {limit:.0f}s")
            if kinds[name][2] and v["status"] == "pass":
                escapes.append(f"{item['id']}: {v['reason']}")
    latencies = [r["latency_s"] for r in run["results"]]
    ratios = [r["latency_s"] / r["deadline_s"] for r in run["results"]]
    return {
        "statuses": statuses, "by_kind": by_kind, "late_requests": late_requests, "late_items": late_items,
        "failed_requests": failed_requests, "escapes": escapes,
        "request_p50_s": _percentile(latencies, 0.5), "request_p99_s": _percentile(latencies, 0.99), "request_max_s": max(latencies, default=0.0),
        "worst_deadline_ratio": max(ratios, default=0.0),
        "item_p50_s": _percentile(item_latencies, 0.5), "item_p99_s": _percentile(item_latencies, 0.99), "item_max_s": max(item_latencies, default=0.0),
    }


def _machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": len(os.sched_getaffinity(0)), "cpu": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "load_average_at_start": round(os.getloadavg()[0], 2),
    }


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000, help="items in all (hostile and benign)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients (plus one canary)")
    parser.add_argument("--max-batch", type=int, default=8, help="items per request: 1 to this many")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="judge workers of the service")
    parser.add_argument("--math-timeout-s", type=float, default=2.0)
    parser.add_argument("--item-deadline-s", type=float, default=10.0)
    parser.add_argument("--code-timeout-s", type=float, default=2.0)
    parser.add_argument("--code-deadline-margin-s", type=float, default=10.0)
    parser.add_argument("--code-memory-mb", type=int, default=1024)
    parser.add_argument("--max-prediction-chars", type=int, default=1_000_000)
    parser.add_argument("--stuck-per-10k", type=float, default=10, help="items per 10,000 that make the extraction regex backtrack (each costs a deadline kill)")
    parser.add_argument("--restart-s", type=float, default=10.0, help="allowance for a judge worker's restart after a kill, in the request deadline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args()

    machine = _machine()
    marker = secrets.token_hex(8)
    listener = Listener()
    run_dir = Path(tempfile.mkdtemp(prefix="polya-hostile-"))
    os.chmod(run_dir, 0o755)
    escape_dir = run_dir / "outside"
    escape_dir.mkdir()
    os.chmod(escape_dir, 0o777)  # writable by anyone: only the sandbox's own walls keep a program out
    secret = run_dir / "secret.txt"
    secret_text = secrets.token_hex(16)
    secret.write_text(secret_text)
    os.chmod(secret, 0o600)
    ok = True
    try:
        service = Service(args, run_dir, marker)
        # The item weights are relative: the backtracking line's weight gives about --stuck-per-10k per 10,000 items.
        ctx = {"port": listener.port, "server_port": service.port, "secret": str(secret), "secret_text": secret_text,
               "escape_dir": str(escape_dir), "max_prediction_chars": args.max_prediction_chars, "stuck_weight": 0.0}
        total_weight = sum(w for w, _f, _a in hostile_kinds(ctx).values())
        ctx["stuck_weight"] = total_weight * args.stuck_per_10k / 10_000
        kinds = hostile_kinds(ctx)
        items = make_items(args.items, ctx, args.seed)
        requests = make_requests(items, args.max_batch)
        sampler = MemorySampler(service.proc.pid)
        try:
            warm = httpx.post(f"{service.url}/v1/verify", json={"items": [{"kind": "math", "prediction": "\\boxed{1}", "reference": "1"}]},
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
            warm.raise_for_status()
            sampler.sample()
            rss_after_warmup = sampler.server_rss[-1][1] if sampler.server_rss else 0
            sampler.start()
            print(f"{len(items)} items in {len(requests)} requests, {args.clients} clients + 1 canary, {args.workers} workers", flush=True)
            run = asyncio.run(drive(service, requests, args.clients, args.restart_s))
            sampler.stop()
            sampler.sample()
            rss_at_end = sampler.server_rss[-1][1] if sampler.server_rss else 0
            metrics = httpx.get(f"{service.url}/metrics", timeout=30).text
        finally:
            sampler.stop()
            exit_code = service.stop()
        time.sleep(3.0)  # let the kernel finish off anything still dying
        leaked = survivors(sampler.seen, marker, service.sandbox_tmp)
        escaped_files = [str(p) for p in escape_dir.iterdir()] + [str(p) for p in Path("/").glob("polya-escaped-*")]
        checked = check_results(service, run, kinds)
    finally:
        listener.close()

    def metric(name: str) -> float:
        for line in metrics.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    settings = service.settings
    print()
    print(f"machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, load average at start {machine['load_average_at_start']}")
    print("service: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    print(f"load: {len(items)} items in {len(requests)} requests of 1-{args.max_batch} items, {args.clients} clients + 1 canary")
    print(f"wall time: {run['seconds']:.1f}s, {len(items) / run['seconds']:.1f} items/s, {len(requests) / run['seconds']:.1f} requests/s")
    print(
        f"requests: p50 {checked['request_p50_s']:.2f}s, p99 {checked['request_p99_s']:.2f}s, max {checked['request_max_s']:.2f}s; "
        f"deadline {run['deadline_unit_s']:.0f}s x (ceil((n x {args.clients + 1} + {2 * args.workers}) / {args.workers}) + 1) "
        f"= {(math.ceil((1 * (args.clients + 1) + 2 * args.workers) / args.workers) + 1) * run['deadline_unit_s']:.0f}s for 1 item .. "
        f"{(math.ceil((args.max_batch * (args.clients + 1) + 2 * args.workers) / args.workers) + 1) * run['deadline_unit_s']:.0f}s for {args.max_batch}; "
        f"worst latency / deadline {checked['worst_deadline_ratio']:.3f}"
    )
    print(f"items: latency p50 {checked['item_p50_s']:.3f}s, p99 {checked['item_p99_s']:.2f}s, max {checked['item_max_s']:.2f}s "
          f"(deadlines: math/choice {settings['item_deadline_s']:g}s, code {settings['code_timeout_s'] + settings['code_deadline_margin_s']:g}s)")
    canary = run["canary"]
    print(f"canary (1 benign item, 1 s apart): {len(canary)} answered, p50 {_percentile(canary, 0.5):.2f}s, p99 {_percentile(canary, 0.99):.2f}s, max {max(canary, default=0):.2f}s")
    print("statuses: " + ", ".join(f"{s} {checked['statuses'][s]}" for s in ("pass", "fail", "timeout", "error")))
    print(f"deadline kills {metric('polya_verifier_deadline_kills_total'):.0f}, worker restarts {metric('polya_verifier_worker_restarts_total'):.0f}, "
          f"worker crashes {metric('polya_verifier_worker_crashes_total'):.0f}")
    print(f"{'kind':<28} {'items':>6} {'pass':>6} {'fail':>6} {'timeout':>7} {'error':>6}")
    for name in kinds:
        c = checked["by_kind"].get(name, Counter())
        print(f"{name:<28} {sum(c.values()):>6} {c['pass']:>6} {c['fail']:>6} {c['timeout']:>7} {c['error']:>6}")
    growth = rss_at_end - rss_after_warmup
    print(f"memory: server RSS after warm-up {_mib(rss_after_warmup)}, peak {_mib(sampler.peak_server_rss)}, at the end {_mib(rss_at_end)} "
          f"({growth / 2**20:+.0f} MiB); largest judge worker peak {_mib(sampler.peak_worker_rss)}; whole tree peak {_mib(sampler.peak_tree_rss)} "
          f"over {sampler.peak_processes} processes at most; {len(sampler.seen)} processes seen in the tree")
    print(f"server exit code after SIGTERM: {exit_code}; processes left after shutdown: {len(leaked)}")
    print(f"sandbox escapes: {len(checked['escapes'])} attack items passed, {listener.accepted} connections accepted by the listener, {len(escaped_files)} files written outside")

    problems = []
    for what, found in (("requests over their deadline", checked["late_requests"]), ("items over their deadline", checked["late_items"]),
                        ("requests not answered with 200", checked["failed_requests"]), ("leaked processes", leaked),
                        ("attack items that passed", checked["escapes"]), ("files written outside", escaped_files)):
        if found:
            problems.append(f"{len(found)} {what}: " + "; ".join(found[:5]))
    if listener.accepted:
        problems.append(f"{listener.accepted} connections from sandboxed programs reached the listener")
    if exit_code != 0:
        problems.append(f"the server exited with {exit_code} after SIGTERM (log: {service.log_path})")
    for p in problems:
        print("FAILED: " + p)
    ok = not problems
    print("all checks passed" if ok else f"{len(problems)} check(s) failed")

    if args.output:
        Path(args.output).write_text(json.dumps({
            "machine": machine, "settings": settings, "items": len(items), "requests": len(requests), "clients": args.clients,
            "max_batch": args.max_batch, "seconds": round(run["seconds"], 1), "items_per_s": round(len(items) / run["seconds"], 2),
            "request_latency_s": {"p50": round(checked["request_p50_s"], 3), "p99": round(checked["request_p99_s"], 3), "max": round(checked["request_max_s"], 3)},
            "worst_request_latency_over_deadline": round(checked["worst_deadline_ratio"], 4),
            "item_latency_s": {"p50": round(checked["item_p50_s"], 4), "p99": round(checked["item_p99_s"], 3), "max": round(checked["item_max_s"], 3)},
            "canary_latency_s": {"count": len(canary), "p50": round(_percentile(canary, 0.5), 3), "p99": round(_percentile(canary, 0.99), 3), "max": round(max(canary, default=0), 3)},
            "statuses": dict(checked["statuses"]), "by_kind": {k: dict(v) for k, v in checked["by_kind"].items()},
            "deadline_kills": metric("polya_verifier_deadline_kills_total"), "worker_restarts": metric("polya_verifier_worker_restarts_total"),
            "memory_mib": {"server_after_warmup": round(rss_after_warmup / 2**20), "server_peak": round(sampler.peak_server_rss / 2**20),
                           "server_at_end": round(rss_at_end / 2**20), "worker_peak": round(sampler.peak_worker_rss / 2**20),
                           "tree_peak": round(sampler.peak_tree_rss / 2**20)},
            "processes_seen": len(sampler.seen), "leaked_processes": leaked, "server_exit_code": exit_code,
            "escapes": {"attack_items_passed": checked["escapes"], "connections_accepted": listener.accepted, "files_written_outside": escaped_files},
            "problems": problems,
        }, indent=2) + "\n")
    if ok:
        shutil.rmtree(run_dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
