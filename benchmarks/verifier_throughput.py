"""Benchmark: math items/s through the verifier service vs ``judge_math`` called directly.

The same items (a mix of right, wrong and unanswered solutions: integers, fractions, decimals,
radicals, GSM8K ``####`` answers, "the answer is", ~1 KB of reasoning before the answer) are judged

- **direct**: ``judge_math`` in a loop in one process (one core, no IPC, no HTTP), and, for
  ``--workers 2``, the same loop in N processes at once, each on its share of the items (the
  ceiling N cores can reach; on a shared box it is lower than N x one process);
- **service**: a real ``polya serve-verifier`` (uvicorn subprocess) with 1 and 2 judge workers,
  driven over HTTP at batch sizes 1, 8, 32 and 128, with ``2 x workers`` requests in flight so
  the pool never waits for the client. Bodies are encoded before the clock starts.

How the ratio is made fair on a small box: the service run has the judge workers **plus** the
server process (event loop, dispatcher thread) **plus** this client competing for the same cores;
the direct run has one bare process per worker. So we report

    per-worker efficiency = service items/s / (workers x direct items/s of one process)
    vs-parallel           = service items/s / direct items/s of N processes at once   (N = workers)

and the target (service overhead <= 20% at batch >= 32) is per-worker efficiency >= 0.8 with one
worker (one judge core, the server's own work on the spare core), and vs-parallel >= 0.8 with N
workers when the machine has more than N cores. With N = cores the server's own process has no
core left, so the 2-worker line on a 2-core box shows that contention rather than the overhead.
The direct single-process rate is measured before and after the service runs and averaged (other
load on the box moves it). Latency: p50 / p99 of the HTTP request (client side) and of one item's
judging (inside the worker) for the service, of one ``judge_math`` call for direct.

    .venv/bin/python benchmarks/verifier_throughput.py                # about a minute
    .venv/bin/python benchmarks/verifier_throughput.py --items 4096 --workers 1 2 4 --output out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from polya.core.processes import stop_process, wait_for_http
from polya.verify.math_judge import judge_math

# ----- workload ----------------------------------------------------------------------------------

_FILLER = (
    "Let us restate the problem and look at what is unknown. We try a simpler related problem first, "
    "then work backwards from the goal, checking each step against the conditions. "
)


def make_items(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Deterministic math items: about 60% right, 30% wrong, 10% without a final answer."""
    rng = random.Random(seed)
    items = []
    for i in range(count):
        a, b = rng.randint(1, 999), rng.randint(2, 99)
        shape = i % 8
        if shape == 0:
            answer, reference = str(a), str(a)
        elif shape == 1:
            answer, reference = f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}"
        elif shape == 2:
            answer, reference = f"{a / 4:g}", f"\\frac{{{a}}}{{4}}"
        elif shape == 3:
            answer, reference = f"{b}\\sqrt{{2}}", f"\\sqrt{{{2 * b * b}}}"
        elif shape == 4:
            answer, reference = f"x = {a}", str(a)
        else:
            answer, reference = str(a), str(a)
        roll = rng.random()
        if roll < 0.3:
            reference = str(a + 1)  # a wrong answer
        reasoning = _FILLER * rng.randint(1, 8)
        if roll > 0.9:
            prediction = reasoning + "I could not finish."
        elif shape == 5:
            prediction = f"{reasoning}\n#### {answer}"
        elif shape == 6:
            prediction = f"{reasoning} So the answer is {answer}."
        else:
            prediction = f"{reasoning} Therefore the result is $\\boxed{{{answer}}}$."
        items.append({"id": str(i), "kind": "math", "prediction": prediction, "reference": reference})
    return items


# ----- direct -----------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def direct_run(items: list[dict[str, Any]], math_timeout_s: int) -> dict[str, Any]:
    """judge_math over every item in this process (main thread)."""
    latencies = []
    correct = 0
    cpu = time.process_time()
    start = time.perf_counter()
    for item in items:
        t = time.perf_counter()
        correct += judge_math(item["prediction"], item["reference"], timeout_s=math_timeout_s).correct
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    return {
        "items_per_s": len(items) / elapsed, "seconds": elapsed, "correct": correct,
        "cpu_ms_per_item": 1000 * (time.process_time() - cpu) / len(items),
        "item_p50_ms": 1000 * _percentile(latencies, 0.5), "item_p99_ms": 1000 * _percentile(latencies, 0.99),
    }


def _direct_child(items: list[dict[str, Any]], math_timeout_s: int, start_at: float, out: Any) -> None:
    judge_math("\\boxed{1}", "1", timeout_s=math_timeout_s)  # import + warm-up before the clock
    while time.time() < start_at:
        time.sleep(0.001)
    begin = time.time()
    for item in items:
        judge_math(item["prediction"], item["reference"], timeout_s=math_timeout_s)
    out.put((begin, time.time()))


def direct_parallel(items: list[dict[str, Any]], processes: int, math_timeout_s: int) -> float:
    """items/s of ``processes`` bare processes judging their share of the items at the same time."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 5.0
    shares = [items[i::processes] for i in range(processes)]
    procs = [ctx.Process(target=_direct_child, args=(share, math_timeout_s, start_at, out)) for share in shares]
    for p in procs:
        p.start()
    spans = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return len(items) / (max(end for _b, end in spans) - min(begin for begin, _e in spans))


# ----- service ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    def __init__(self, workers: int, math_timeout_s: int, log: Path):
        self.url = f"http://127.0.0.1:{_free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "polya.cli.main", "--log-level", "warning", "serve-verifier", "--port", port,
             "--workers", str(workers), "--math-timeout-s", str(math_timeout_s), "--log-level", "warning"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_for_http(f"{self.url}/health", self.proc, 180, what="verifier", log=log)

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds used so far by the server process itself and by its judge workers."""
        import psutil

        server = psutil.Process(self.proc.pid)
        own = sum(server.cpu_times()[:2])
        workers = 0.0
        for child in server.children():
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    workers += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return own, workers

    def stop(self) -> None:
        stop_process(self.proc, grace_s=30)
        self._log.close()


async def service_run(url: str, items: list[dict[str, Any]], batch: int, in_flight: int) -> dict[str, Any]:
    bodies = [json.dumps({"items": items[i : i + batch]}).encode() for i in range(0, len(items), batch)]
    queue = list(reversed(bodies))
    request_latencies: list[float] = []
    item_latencies: list[float] = []
    correct = 0
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:

        async def client() -> None:
            nonlocal correct
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                resp = await http.post("/v1/verify", content=body, headers={"content-type": "application/json"})
                request_latencies.append(time.perf_counter() - t)
                resp.raise_for_status()
                for v in resp.json()["verdicts"]:
                    correct += v["correct"]
                    item_latencies.append(v["latency_s"])

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(in_flight)))
        elapsed = time.perf_counter() - start
    return {
        "items_per_s": len(items) / elapsed, "seconds": elapsed, "correct": correct,
        "request_p50_ms": 1000 * _percentile(request_latencies, 0.5), "request_p99_ms": 1000 * _percentile(request_latencies, 0.99),
        "item_p50_ms": 1000 * _percentile(item_latencies, 0.5), "item_p99_ms": 1000 * _percentile(item_latencies, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1024, help="items per run")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--math-timeout-s", type=int, default=5)
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args()

    items = make_items(args.items)
    judge_math("\\boxed{1}", "1")  # import + warm-up
    direct_before = direct_run(items, args.math_timeout_s)
    parallel = {n: direct_parallel(items, n, args.math_timeout_s) for n in args.workers if n > 1}
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            service = Service(workers, args.math_timeout_s, Path(tmp) / f"verifier-{workers}.log")
            try:
                asyncio.run(service_run(service.url, items[:256], 32, 2 * workers))  # warm-up
                for batch in args.batch_sizes:
                    own0, work0 = service.cpu_seconds()
                    result = asyncio.run(service_run(service.url, items, batch, 2 * workers))
                    own1, work1 = service.cpu_seconds()
                    result["server_cpu_ms_per_item"] = 1000 * (own1 - own0) / len(items)
                    result["worker_cpu_ms_per_item"] = 1000 * (work1 - work0) / len(items)
                    assert result["correct"] == direct_before["correct"], "service and direct disagree"
                    runs.append({"workers": workers, "batch": batch, **result})
            finally:
                service.stop()
    direct_after = direct_run(items, args.math_timeout_s)
    direct_1 = (direct_before["items_per_s"] + direct_after["items_per_s"]) / 2
    direct_cpu = (direct_before["cpu_ms_per_item"] + direct_after["cpu_ms_per_item"]) / 2

    print(f"machine: {platform.machine()}, usable cores: {len(os.sched_getaffinity(0))}, load average now: {os.getloadavg()[0]:.1f}")
    print(f"items: {len(items)} math ({direct_before['correct']} correct); service: {', '.join(map(str, args.workers))} workers, 2 x workers requests in flight")
    print(
        f"direct judge_math, 1 process: {direct_1:.0f} items/s (runs: {direct_before['items_per_s']:.0f}, {direct_after['items_per_s']:.0f}), "
        f"{direct_cpu:.2f} CPU ms/item; item p50 {direct_before['item_p50_ms']:.2f} ms, p99 {direct_before['item_p99_ms']:.2f} ms"
    )
    for n, rate in parallel.items():
        print(f"direct judge_math, {n} processes at once: {rate:.0f} items/s ({rate / direct_1:.2f} x one process)")
    print(
        f"{'workers':>7} {'batch':>5} {'items/s':>8} {'per-worker':>10} {'vs par.':>7} {'req p50':>8} {'req p99':>8} "
        f"{'item p50':>8} {'item p99':>8} {'srv CPU':>7} {'wrk CPU':>7} {'CPU ovh':>7}"
    )
    print(f"{'':>7} {'':>5} {'':>8} {'eff.':>10} {'':>7} {'ms':>8} {'ms':>8} {'ms':>8} {'ms':>8} {'ms/it':>7} {'ms/it':>7} {'':>7}")
    for r in runs:
        eff = r["items_per_s"] / (r["workers"] * direct_1)
        vs_parallel = r["items_per_s"] / parallel[r["workers"]] if r["workers"] in parallel else eff
        cpu_overhead = (r["server_cpu_ms_per_item"] + r["worker_cpu_ms_per_item"]) / direct_cpu - 1
        r.update(per_worker_efficiency=round(eff, 3), vs_direct_parallel=round(vs_parallel, 3), cpu_overhead=round(cpu_overhead, 3))
        print(
            f"{r['workers']:>7} {r['batch']:>5} {r['items_per_s']:>8.0f} {eff:>10.2f} {vs_parallel:>7.2f} "
            f"{r['request_p50_ms']:>8.1f} {r['request_p99_ms']:>8.1f} {r['item_p50_ms']:>8.2f} {r['item_p99_ms']:>8.2f} "
            f"{r['server_cpu_ms_per_item']:>7.2f} {r['worker_cpu_ms_per_item']:>7.2f} {cpu_overhead:>+7.0%}"
        )
    single = [r for r in runs if r["workers"] == 1 and r["batch"] >= 32]
    if single:
        worst = min(r["per_worker_efficiency"] for r in single)
        worst_cpu = max(r["cpu_overhead"] for r in single)
        print(
            f"overhead target, 1 worker, batch >= 32: items/s >= 0.8 x direct -> worst {worst:.2f} ({'met' if worst >= 0.8 else 'NOT met'}); "
            f"CPU (server + worker) per item <= 1.2 x direct -> worst {1 + worst_cpu:.2f} ({'met' if worst_cpu <= 0.2 else 'NOT met'})"
        )
    if args.output:
        Path(args.output).write_text(json.dumps({
            "machine": {"cores": len(os.sched_getaffinity(0)), "arch": platform.machine()},
            "items": len(items), "direct_items_per_s": round(direct_1, 1), "direct_cpu_ms_per_item": round(direct_cpu, 3),
            "direct_parallel_items_per_s": {str(k): round(v, 1) for k, v in parallel.items()},
            "direct_item_p50_ms": direct_before["item_p50_ms"], "direct_item_p99_ms": direct_before["item_p99_ms"],
            "service": runs,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
