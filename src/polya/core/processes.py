"""Child processes polya starts (model servers, services in tests and benchmarks): wait until one
answers over HTTP, and stop it, with one definition of each."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import httpx

from polya.core.errors import ServerError


def log_tail(path: str | Path | None, lines: int = 40) -> str:
    """The last lines of a log file (or a note that there is none)."""
    if path is None:
        return "(no log)"
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def wait_for_http(
    url: str, process: subprocess.Popen[bytes], timeout_s: float, *, what: str = "server", log: str | Path | None = None,
    ready: Callable[[int], bool] = lambda status: status == 200, poll_s: float = 0.2, hint: str = "",
) -> float:
    """Wait until ``url`` answers with a status ``ready`` accepts; return the seconds it took.

    Raises :class:`ServerError` naming ``what``, with the log's tail, when the process exits first
    or ``timeout_s`` passes (``hint`` names the setting that sets the timeout).
    """
    started = time.monotonic()
    with httpx.Client(timeout=5.0) as client:
        while True:
            code = process.poll()
            if code is not None:
                raise ServerError(f"{what} exited with code {code} before answering {url}; log {log}:\n{log_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if ready(client.get(url).status_code):
                    return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise ServerError(f"{what} did not become healthy within {timeout_s:.0f}s{hint} at {url}; log {log}:\n{log_tail(log)}")
            time.sleep(poll_s)


def stop_process(process: subprocess.Popen[bytes] | None, grace_s: float = 10.0, group: bool = False) -> None:
    """Stop a child: SIGTERM, then SIGKILL after ``grace_s``; with ``group`` its whole process group
    (a process started with ``start_new_session``), so workers it started end with it."""
    if process is None or process.poll() is not None and not group:
        return

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig) if group else process.send_signal(sig)

    if process.poll() is None:
        send(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait(timeout=10)
    if group:  # workers may outlive the group's leader briefly; nothing of the group remains
        send(signal.SIGKILL)
