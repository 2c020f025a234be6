"""Shared fixtures: a real vLLM server on the embedded model (started once per test session), the
embedded checkpoint, and small chat datasets as ``polya select`` writes them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

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


def chat_rows(n: int = 16) -> list[dict[str, Any]]:
    """``n`` short word problems with a worked answer ending in \\boxed{...}, as ``polya select`` writes them."""
    rows = []
    for i in range(n):
        a, b = i + 2, 3 * i + 1
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"Tom has {a} apples and buys {b} more. How many apples does he have?"},
                    {"role": "assistant", "content": f"Tom starts with {a} apples and buys {b} more, so he has {a}+{b}={a + b} apples. The answer is \\boxed{{{a + b}}}."},
                ],
                "question_id": f"q{i}",
                "heuristic": "decomposition",
                "score": 1.0,
                "round": 1,
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def sft_chat_rows() -> Callable[..., list[dict[str, Any]]]:
    """``sft_chat_rows(n=16)``: chat rows as ``polya select`` writes them."""
    return chat_rows


@pytest.fixture(scope="session")
def write_chat_dataset() -> Callable[..., Path]:
    """``write_chat_dataset(path, n=16)`` or ``write_chat_dataset(path, rows=[...])``: a JSONL chat dataset."""

    def write(path: Path, n: int = 16, rows: list[Any] | None = None) -> Path:
        return write_jsonl(Path(path), chat_rows(n) if rows is None else rows)

    return write


@pytest.fixture(scope="session")
def embedded_checkpoint() -> str:
    """The embedded SmolLM2-135M model as an HF checkpoint directory (converted once, then cached)."""
    from polya.models import EMBEDDED_MODEL, resolve_model

    return resolve_model(EMBEDDED_MODEL)


def check_round_trips(store: Any) -> None:
    """What every ArtifactStore must do: bytes, text, JSON and JSON Lines come back as written."""
    store.write_bytes("raw.bin", b"\x00\xff")
    store.write_text("t.txt", "Pólya ∑")
    store.write_json("d/c.json", {"z": 1, "a": [1, 2]})
    store.write_jsonl("d/rows.jsonl", ({"i": i, "s": "é"} for i in range(3)))
    assert store.read_bytes("raw.bin") == b"\x00\xff"
    assert store.read_text("t.txt") == "Pólya ∑"
    assert store.read_json("d/c.json") == {"z": 1, "a": [1, 2]}
    assert store.read_text("d/c.json") == '{\n  "z": 1,\n  "a": [\n    1,\n    2\n  ]\n}\n'
    assert store.read_jsonl("d/rows.jsonl") == [{"i": 0, "s": "é"}, {"i": 1, "s": "é"}, {"i": 2, "s": "é"}]


@pytest.fixture(scope="session")
def store_round_trips() -> Callable[[Any], None]:
    """:func:`check_round_trips`, for the local and the S3 store tests alike."""
    return check_round_trips
