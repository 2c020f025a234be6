"""The checkpoint ``polya sft`` saved loads in the vLLM server and answers a chat request (about 2 minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from polya.serving.config import ServerConfig
from polya.serving.vllm_server import VLLMServer

pytestmark = pytest.mark.integration


def test_the_final_checkpoint_serves_in_vllm(trained_run: Any, tmp_path: Path) -> None:
    final = trained_run.outputs.final_uri
    server = VLLMServer(ServerConfig(model=final, max_num_seqs=4, max_model_len=1024), tmp_path)
    with server as endpoint:
        models = httpx.get(f"{endpoint.base_url}/models", timeout=30).json()
        assert any(m.get("root") == final or m.get("id") == endpoint.model for m in models["data"]), models
        response = httpx.post(
            f"{endpoint.base_url}/chat/completions",
            json={
                "model": endpoint.model,
                "messages": [{"role": "user", "content": "Tom has 5 apples and buys 10 more. How many apples does he have?"}],
                "max_tokens": 48,
                "temperature": 0.0,
            },
            timeout=300,
        )
    assert response.status_code == 200, response.text
    text = response.json()["choices"][0]["message"]["content"]
    # The served weights are the fine-tuned ones: the answer takes the trained form.
    assert "\\boxed{" in text, text
