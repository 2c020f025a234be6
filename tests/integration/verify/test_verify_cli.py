"""``polya verify --input items.jsonl --output verdicts.jsonl``: the real command in a subprocess,
in-process and against a running service, and its errors for malformed input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

ADD_TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n"

ITEMS: list[dict[str, Any]] = [
    {"id": "m1", "kind": "math", "prediction": "So \\boxed{\\frac{3}{4}}.", "reference": "0.75", "question": "q1"},
    {"id": "m2", "kind": "math", "prediction": "#### 10", "reference": "11", "heuristic": "working_backward"},
    {"id": "c1", "kind": "choice", "prediction": "The answer is (C).", "options": ["1", "2", "3"], "reference": "C"},
    {"id": "c2", "kind": "choice", "prediction": "Answer: 1", "options": ["1", "2", "3"], "reference": "2"},
    {"id": "p1", "kind": "code", "prompt": "def add(a, b):\n", "prediction": "    return a + b\n", "tests": ADD_TESTS, "entry_point": "add"},
    {"id": "p2", "kind": "code", "prediction": "def add(a, b):\n    return 0\n", "tests": ADD_TESTS, "entry_point": "add"},
]
EXPECTED = {"m1": ("pass", True), "m2": ("fail", False), "c1": ("pass", True), "c2": ("fail", False), "p1": ("pass", True), "p2": ("fail", False)}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def polya(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "polya.cli.main", *args], capture_output=True, text=True, timeout=timeout)


def write_items(path: Path, items: list[dict[str, Any]], blank_lines: bool = False) -> Path:
    lines = [json.dumps(item) for item in items]
    path.write_text(("\n\n" if blank_lines else "\n").join(lines) + "\n", encoding="utf-8")
    return path


def check_output(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [i["id"] for i in ITEMS]
    for row, item in zip(rows, ITEMS):
        assert {k: row[k] for k in item} == item  # the input record, kept as it was (extra keys too)
        assert (row["status"], row["correct"]) == EXPECTED[row["id"]], row
        assert {"extracted", "reason", "latency_s"} <= set(row)
    by_id = {r["id"]: r for r in rows}
    assert by_id["m1"]["extracted"] == "\\frac{3}{4}" and by_id["c1"]["extracted"] == "C"
    assert by_id["p2"]["reason"].startswith("AssertionError")


def test_verify_file_in_process(tmp_path: Path) -> None:
    src = write_items(tmp_path / "items.jsonl", ITEMS, blank_lines=True)
    out = tmp_path / "out" / "verdicts.jsonl"
    result = polya("verify", "--input", str(src), "--output", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr
    check_output(out)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"items": 6, "correct": 3, "pass": 3, "fail": 3, "timeout": 0, "error": 0, "undecided": 0, "output": str(out)}
    assert "verify: 100%" in result.stderr  # the progress bar
    assert [p.name for p in out.parent.iterdir()] == ["verdicts.jsonl"]  # no temporary file left


def test_verify_file_through_a_service(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "verifier.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "polya.cli.main", "serve-verifier", "--port", str(port), "--workers", "1", "--auth-token", "tok"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "verifier.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        src = write_items(tmp_path / "items.jsonl", ITEMS)
        out = tmp_path / "verdicts.jsonl"
        result = polya("verify", "--input", str(src), "--output", str(out), "--endpoint", url, "--auth-token", "tok", "--batch-size", "4")
        assert result.returncode == 0, result.stderr
        check_output(out)
        wrong = polya("verify", "--input", str(src), "--output", str(tmp_path / "x.jsonl"), "--endpoint", url, "--auth-token", "bad")
        assert wrong.returncode == 2 and "401" in wrong.stderr and "Traceback" not in wrong.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"kind": "math", "prediction": "1"', "not valid JSON"),
        ('["not", "an", "object"]', "expected a JSON object, got list"),
        ('{"kind": "math", "prediction": "1"}', "kind 'math' needs 'reference'"),
        ('{"kind": "essay", "prediction": "1"}', "kind: Input should be 'math', 'code' or 'choice'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps(ITEMS[1]) + "\n" + line + "\n", encoding="utf-8")
    out = tmp_path / "verdicts.jsonl"
    result = polya("verify", "--input", str(src), "--output", str(out), "--workers", "1", "--no-progress", timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"{src}: line 3:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_missing_input_file(tmp_path: Path) -> None:
    result = polya("verify", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o.jsonl"), timeout=120)
    assert result.returncode == 2 and "input file not found" in result.stderr
