"""The verifier HTTP service: ``build_app(config)`` gives a FastAPI app serving ``POST /v1/verify``,
``GET /health`` and ``GET /metrics`` over a :class:`~polya.verify.pool.JudgePool`.

Layout (as in vLLM's entrypoints): ``protocol`` (request / response models), ``serving`` (the
work behind the endpoints), ``router`` (the endpoints), ``errors`` (the one error schema),
``middleware`` (auth, body-size limit, request metrics), ``metrics`` (Prometheus), ``app`` (the
factory that wires them and builds the pool at start-up).
"""

from polya.verify.service.app import build_app

__all__ = ["build_app"]
