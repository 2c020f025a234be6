"""Child processes polya starts (model servers, services in tests and benchmarks): start one so that
it cannot outlive polya, wait until it answers over HTTP, and stop it, with one definition of each.

:func:`start_owned` ties a child's life to this process's: the child runs in a session (and
process group) of its own, and a small **reaper** process reads a pipe whose only writer is this
process. When this process ends in any way, SIGKILL and the OOM killer included, the kernel
closes the pipe, the reaper reads end-of-file and stops the child's whole process group (SIGTERM,
then SIGKILL after the grace period). A vLLM server and the engine processes it spawned therefore
end with the polya command that started them, instead of living on as orphans that hold gigabytes
and both cores.

:class:`ProcessIdentity` names a process so that another process can tell later whether it still
runs (host, boot, pid and start time, so a reused pid is not mistaken for it); the run manifest
records one for each running stage.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field

from polya.core.errors import ServerError


_REAPER = r"""
import os, select, signal, sys, time
mode, target, grace = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the owner; the reaper acts when it is gone

def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19]  # field 22: start time (tells a reused pid apart)
    except OSError:
        return None

def descendants(root):
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child != os.getpid():
                out.append(child)
                todo.append(child)
    return out

seen = {}  # tree mode: every descendant of the owner seen while it lived, pid -> start time
while True:
    try:
        ready, _, _ = select.select([sys.stdin.buffer], [], [], 1.0 if mode == "tree" else None)
        if ready and not os.read(sys.stdin.fileno(), 65536):
            break
    except OSError:
        break
    if mode == "tree":
        for pid in descendants(target):
            seen.setdefault(pid, start_time(pid))

if mode == "tree":
    for pid in descendants(target):
        seen.setdefault(pid, start_time(pid))
    live = lambda: [p for p, t in seen.items() if t is not None and start_time(p) == t]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in live():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        end = time.monotonic() + (grace if sig == signal.SIGTERM else 0)
        while live() and time.monotonic() < end:
            time.sleep(0.2)
    sys.exit(0)

pgid = target
def alive():
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
if alive():
    try:
        os.killpg(pgid, signal.SIGTERM)
    except OSError:
        pass
    end = time.monotonic() + grace
    while alive() and time.monotonic() < end:
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


def start_owned(cmd: list[str], *, grace_s: float = 15.0, **popen_kwargs: object) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a session of its own whose process group ends when this process ends (see the module docstring).

    ``popen_kwargs`` go to :class:`subprocess.Popen` (``start_new_session`` is always on). Stop it
    as usual with :func:`stop_process` (``group=True``); the reaper then finds nothing to do.
    """
    popen_kwargs.pop("start_new_session", None)
    process = subprocess.Popen(cmd, start_new_session=True, **popen_kwargs)  # type: ignore[call-overload]
    try:
        write_end = _start_reaper("group", process.pid, grace_s)
    except BaseException:
        stop_process(process, grace_s, group=True)
        raise
    _OWNED_PIPES[process.pid] = write_end  # open while the child should live; the kernel closes it if we die
    return process


def _start_reaper(mode: str, target: int, grace_s: float) -> int:
    """Start a reaper for ``target`` (a process group, or in ``tree`` mode the pid whose descendants
    it watches); return the write end of its pipe, which only this process holds."""
    import sys

    read_end, write_end = os.pipe()  # not inheritable: children started later do not hold the write end
    try:
        subprocess.Popen(
            [sys.executable, "-c", _REAPER, mode, str(target), str(grace_s)],
            stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return write_end


_TREE_REAPER: dict[int, int] = {}
"""Owner pid -> the write end of its tree reaper's pipe (one per process)."""


def reap_descendants_on_exit(grace_s: float = 10.0) -> None:
    """Make every process this one starts, directly or not, end when this one ends (SIGKILL included).

    A tree reaper notes this process's descendants every second while it lives (a process that
    left its session, such as a Ray agent, is still noted while its parent lives); when this
    process is gone it sends SIGTERM to every one still running, then SIGKILL after ``grace_s``.
    Processes are told apart from reused pids by their start time. Idempotent; Linux only (reads /proc).
    """
    if os.getpid() in _TREE_REAPER or not os.path.isdir("/proc"):
        return
    _TREE_REAPER[os.getpid()] = _start_reaper("tree", os.getpid(), grace_s)


class ProcessIdentity(BaseModel):
    """Who a process is, recorded so that another process can tell later whether it still runs."""

    model_config = ConfigDict(extra="forbid")

    pid: int = Field(description="Process id (in the pid namespace of the process that recorded it).")
    hostname: str = Field(description="Host name of the machine (or container) it ran on.")
    boot_id: str | None = Field(default=None, description="The kernel's boot id then (Linux): a later boot has another.")
    start_ticks: int | None = Field(
        default=None, description="Start time in clock ticks after boot (/proc/<pid>/stat field 22): tells a reused pid apart."
    )

    @classmethod
    def of(cls, pid: int | None = None) -> ProcessIdentity:
        """The identity of process ``pid`` (default: this process) on this machine."""
        pid = os.getpid() if pid is None else pid
        stat = _proc_stat(pid)
        return cls(pid=pid, hostname=socket.gethostname(), boot_id=boot_id(), start_ticks=int(stat[19]) if stat else None)

    @property
    def here(self) -> bool:
        """True when the process ran on this machine (same host name), where its liveness can be checked."""
        return self.hostname == socket.gethostname()

    def running(self) -> bool | None:
        """Whether the process still runs; None when that cannot be told from here (another host).

        Gone: another boot since, no such pid, the pid now belongs to a process started at another
        time, or a zombie (killed, not yet waited for). Without ``/proc`` (not Linux) only the pid is checked.
        Processes in another pid namespace with the same host name (containers sharing the host's
        name) would be mistaken: the check trusts the host name to tell machines apart.
        """
        if not self.here:
            return None
        current_boot = boot_id()
        if self.boot_id and current_boot and self.boot_id != current_boot:
            return False
        if not os.path.isdir("/proc"):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                pass
            return True
        stat = _proc_stat(self.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return self.start_ticks is None or int(stat[19]) == self.start_ticks

    def started_s(self) -> float | None:
        """When the process started, in seconds after boot (None when unknown)."""
        return self.start_ticks / os.sysconf("SC_CLK_TCK") if self.start_ticks is not None else None


def boot_id() -> str | None:
    """The kernel's id of the current boot (Linux), or None where there is none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None when there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data.rsplit(b")", 1)[1].decode().split()


_OWNED_PIPES: dict[int, int] = {}
"""Child pid -> the write end of its reaper's pipe."""


def _release(pid: int) -> None:
    """The child was stopped: let its reaper go (it finds the group gone and exits)."""
    fd = _OWNED_PIPES.pop(pid, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
    if process is None:
        return
    if process.poll() is not None and not group:
        _release(process.pid)
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
    _release(process.pid)
