"""Shared fixtures: a real vLLM server on the embedded model, started once per test session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def vllm_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator["object"]:
    """A real ``python -m vllm.entrypoints.openai.api_server`` on SmolLM2-135M (about 2 minutes to start).

    Set ``POLYA_TEST_ENDPOINT`` to reuse an already running server instead.
    """
    from polya.serving import ServerConfig
    from polya.serving.vllm_server import ExternalEndpoint, VLLMServer

    external = os.environ.get("POLYA_TEST_ENDPOINT")
    if external:
        yield ExternalEndpoint(ServerConfig(endpoint=external)).start()
        return
    log_dir = Path(tmp_path_factory.mktemp("vllm-server"))
    server = VLLMServer(ServerConfig(max_num_seqs=64), log_dir)
    with server as endpoint:
        yield endpoint
