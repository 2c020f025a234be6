"""Fixtures that start real services as separate processes on this machine."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from polya.core.processes import stop_process, wait_for_http
from polya.core.store import S3Store

S3_SERVER_START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def free_tcp_port() -> int:
    """A local TCP port nothing listens on (for a server to start on, or as a dead endpoint)."""
    return free_port()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-protocol server (moto, in its own process) on a free local port; yields its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("s3-server") / "moto.log"
    with log.open("wb") as log_handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:  # any HTTP answer means the server is up
        wait_for_http(url, process, S3_SERVER_START_TIMEOUT_S, what="S3 server", log=log, ready=lambda status: True)
        yield url
    finally:
        stop_process(process)


_S3_ENV_VARS = (
    "POLYA_S3_ENDPOINT",
    "POLYA_S3_INSECURE",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "MINIO_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


@pytest.fixture()
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the environment at the test S3 server with dummy credentials; return its URL."""
    for name in _S3_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POLYA_S3_ENDPOINT", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "polya-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "polya-test-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return s3_server


@pytest.fixture()
def bucket(s3_env: str) -> str:
    """A fresh, empty bucket."""
    name = f"polya-test-{secrets.token_hex(4)}"
    S3Store(name, create_bucket=True)
    return name


VERIFIER_START_TIMEOUT_S = 180.0


class VerifierProcess:
    """``polya serve-verifier`` in a subprocess; ``url`` once /health answers 200."""

    def __init__(self, log: Path, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "polya.cli.main", "serve-verifier", "--port", str(self.port), *args]
        with log.open("wb") as handle:
            self.proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            wait_for_http(f"{self.url}/health", self.proc, VERIFIER_START_TIMEOUT_S, what="verifier", log=log)
        except BaseException:
            self.stop()
            raise

    def worker_processes(self) -> list[psutil.Process]:
        """The judge workers: spawned children of the server (not multiprocessing's resource tracker)."""
        out = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    out.append(child)
            except psutil.Error:
                pass
        return out

    def stop(self) -> int:
        stop_process(self.proc, grace_s=30)
        return self.proc.returncode


@pytest.fixture(scope="session")
def start_verifier() -> type[VerifierProcess]:
    """Start ``polya serve-verifier`` with extra arguments: ``start_verifier(log_path, "--workers", "2")``."""
    return VerifierProcess


@pytest.fixture(scope="module")
def verifier_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerifierProcess]:
    """A real ``polya serve-verifier`` (2 workers, no auth) on a free port."""
    proc = VerifierProcess(tmp_path_factory.mktemp("verifier") / "verifier.log", "--workers", "2")
    yield proc
    proc.stop()
