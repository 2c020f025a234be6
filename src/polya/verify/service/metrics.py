"""Prometheus metrics of the verifier service, in a registry of the app's own.

Each app gets its own :class:`CollectorRegistry`, so several apps in one process (tests) do not
clash. Pool figures (queue depth, restarts, deadline kills) are read from the pool at scrape time.
"""

from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from polya.verify.pool import JudgePool
from polya.verify.protocol import Verdict

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class PoolCollector(Collector):
    """Reads the pool's counters and gauges at scrape time (the pool exists only after start-up)."""

    def __init__(self, get_pool: Callable[[], JudgePool | None]):
        self._get_pool = get_pool

    def collect(self) -> Iterable[Metric]:
        pool = self._get_pool()
        if pool is None:
            return []
        s = pool.stats()
        families: list[Metric] = []
        for family, name, documentation, value in (
            (CounterMetricFamily, "polya_verifier_worker_restarts", "Judge workers replaced (deadline kills and crashes)", s.restarts),
            (CounterMetricFamily, "polya_verifier_deadline_kills", "Items past their hard deadline: their worker was killed and replaced", s.deadline_kills),
            (CounterMetricFamily, "polya_verifier_worker_crashes", "Judge workers that died on their own", s.crashes),
            (GaugeMetricFamily, "polya_verifier_queue_depth", "Items waiting for a judge worker", s.queue_depth),
            (GaugeMetricFamily, "polya_verifier_items_in_progress", "Items being judged right now (busy workers)", s.in_progress),
            (GaugeMetricFamily, "polya_verifier_workers_alive", "Judge worker processes alive", s.workers_alive),
            (GaugeMetricFamily, "polya_verifier_pool_up", "1 while the judge pool can judge, 0 once it is dead", 1 if s.alive else 0),
        ):
            metric = family(name, documentation)
            metric.add_metric([], value)
            families.append(metric)
        return families


class VerifierMetrics:
    """The service's metrics; ``registry`` is what /metrics exposes."""

    def __init__(self, get_pool: Callable[[], JudgePool | None]):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.requests = Counter("polya_verifier_requests", "HTTP requests answered (probes excluded)", ["method", "path", "status"], registry=r)
        self.request_latency = Histogram(
            "polya_verifier_request_duration_seconds", "HTTP request latency (probes excluded)", ["method", "path"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.requests_in_flight = Gauge("polya_verifier_requests_in_flight", "HTTP requests being served (probes excluded)", registry=r)
        self.items = Counter("polya_verifier_items", "Items judged, by kind and verdict status", ["kind", "status"], registry=r)
        self.item_latency = Histogram(
            "polya_verifier_item_latency_seconds", "Seconds spent judging one item, by kind", ["kind"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.timeouts = Counter("polya_verifier_item_timeouts", "Items whose verdict is status timeout, by kind", ["kind"], registry=r)
        self.batch_items = Histogram(
            "polya_verifier_batch_items", "Items per /v1/verify request", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
            registry=r,
        )
        r.register(PoolCollector(get_pool))

    def observe_verdicts(self, verdicts: list[Verdict]) -> None:
        self.batch_items.observe(len(verdicts))
        for v in verdicts:
            self.items.labels(v.kind, v.status).inc()
            self.item_latency.labels(v.kind).observe(v.latency_s)
            if v.status == "timeout":
                self.timeouts.labels(v.kind).inc()
