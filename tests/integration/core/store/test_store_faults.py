"""Store faults: an S3 endpoint that goes away mid-stage and comes back, one that stays away, a full disk.

The S3 server is real (moto); its outage is a TCP proxy in front of it that stops accepting and
drops every connection, then listens again (moto keeps its objects in memory, so stopping moto
itself would also lose the data a restarted MinIO keeps on its volume).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from polya.core.errors import StoreError
from polya.core.store import LocalStore, S3Store

pytestmark = pytest.mark.integration


class TcpProxy:
    """127.0.0.1:<port> -> the S3 server; ``down()`` refuses and cuts connections, ``up()`` listens again."""

    def __init__(self, target: str):
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", int(parts.port or 80))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone leaves it listening
            except OSError:
                pass
            listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture()
def proxied(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    proxy = TcpProxy(s3_env)
    monkeypatch.setenv("POLYA_S3_ENDPOINT", proxy.url)
    yield proxy
    proxy.down()


def test_an_outage_mid_stage_is_ridden_out_and_the_work_goes_on(proxied: TcpProxy, bucket: str, caplog: pytest.LogCaptureFixture) -> None:
    store = S3Store(bucket, "runs/outage")
    written = []
    with caplog.at_level(logging.WARNING, logger="polya.core.store.s3"):
        for i in range(12):
            if i == 4:
                proxied.down()
                threading.Timer(4.0, proxied.up).start()  # the endpoint is back after 4 s
            store.write_json(f"shards/part-{i:02d}.json", {"i": i})
            written.append(i)
    assert written == list(range(12))
    assert [store.read_json(p)["i"] for p in store.list("shards")] == list(range(12))  # nothing lost, nothing twice
    assert any("unreachable" in r.getMessage() and "retrying" in r.getMessage() for r in caplog.records)


def test_an_endpoint_that_stays_down_is_a_clear_error_after_a_bounded_retry(
    proxied: TcpProxy, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYA_S3_OUTAGE_S", "3")
    store = S3Store(bucket, "runs/down")
    store.write_text("first.txt", "kept")
    proxied.down()
    started = time.monotonic()
    with pytest.raises(StoreError, match=rf"cannot reach S3 endpoint {proxied.url}.*retried for \d+s, POLYA_S3_OUTAGE_S=3"):
        store.write_text("second.txt", "lost")
    assert 2.5 < time.monotonic() - started < 20
    proxied.up()
    assert store.read_text("first.txt") == "kept" and not store.exists("second.txt")


def test_an_endpoint_never_reached_fails_at_once(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = TcpProxy(s3_env)
    proxy.down()
    monkeypatch.setenv("POLYA_S3_ENDPOINT", proxy.url)
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"cannot reach S3 endpoint {proxy.url}"):
        S3Store("anything")
    assert time.monotonic() - started < 30  # the outage window is for endpoints that answered before


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real full disk (needs root to mount)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_half_written(tiny_disk: Path) -> None:
    store = LocalStore(tiny_disk / "run")
    store.write_text("generate/summary.json", '{"samples": 1}')
    with pytest.raises(StoreError, match=r"no space left to write .*summary.json \(disk full; [\d,]+ bytes free there\)"):
        store.write_bytes("generate/summary.json", b"x" * (1 << 20))
    assert store.read_text("generate/summary.json") == '{"samples": 1}'  # the old content is intact
    assert [p.name for p in (tiny_disk / "run" / "generate").iterdir()] == ["summary.json"]  # no temp file left
