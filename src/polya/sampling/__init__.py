"""The sampling layer: what generation and evaluation share to ask a model server for samples.

- :mod:`polya.sampling.config`: ``SamplingParams`` (per request) and ``RequestSettings`` (in flight, retries).
- :mod:`polya.sampling.client`: ``ChatClient``, an async OpenAI-compatible client with bounded retries.
- :mod:`polya.sampling.pool`: ``EndpointPool``, requests spread over several servers of one model, with failover.
- :mod:`polya.sampling.requests`: request bodies, per-choice results, the bounded async fan-out.

Seeds come from :func:`polya.core.digest.seed_from`; answers are judged through
:mod:`polya.verify` (``JudgeSettings.open_verifier``).
"""

from polya.sampling.client import ChatClient
from polya.sampling.config import RequestSettings, SamplingParams
from polya.sampling.pool import EndpointPool, open_endpoints
from polya.sampling.requests import (
    Choice,
    chat_body,
    fan_out,
    parse_choices,
    worker_count,
)

__all__ = ["ChatClient", "Choice", "EndpointPool", "RequestSettings", "SamplingParams", "chat_body", "fan_out", "open_endpoints", "parse_choices", "worker_count"]
