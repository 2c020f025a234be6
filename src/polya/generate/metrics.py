"""Prometheus metrics of the generation stage (served when ``metrics_port`` is set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SAMPLES = Counter("polya_generate_samples_total", "Samples generated", ["heuristic", "correct"])
COMPLETION_TOKENS = Counter("polya_generate_completion_tokens_total", "Completion tokens generated")
REQUEST_RETRIES = Counter("polya_generate_request_retries_total", "Requests retried after a transient failure")
ENDPOINT_REQUESTS = Counter(
    "polya_generate_endpoint_requests_total",
    "Requests per model server of server.endpoints, by outcome (ok: answered; failed: given up there and sent to another)",
    ["endpoint", "outcome"],
)
INFLIGHT = Gauge("polya_generate_inflight_requests", "Requests waiting for the model server")
ROUND = Gauge("polya_generate_round", "Bootstrap round in progress")
