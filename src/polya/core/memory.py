"""Memory: how much a stage used at its peak, and whether the kernel killed a process for lack of it.

:func:`peak_rss_mib` is the one definition of peak memory that every stage records in its summary
(and the manifest in the stage's record). :func:`oom_kill` looks for an out-of-memory kill of a
process in the kernel log, which is how the manifest explains a stage killed from outside.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from polya.core.processes import ProcessIdentity


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory in MiB of this process, or with ``children`` of its largest waited-for descendant.

    ``getrusage(RUSAGE_CHILDREN)`` covers only children that ended and were waited for (a model
    server once stopped, a finished subprocess), and its peak is that of the largest one, not a
    sum. Linux reports KiB (macOS bytes: the figure there is 1024 times too large).
    """
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def peak_memory() -> dict[str, float]:
    """``peak_rss_mib`` (this process) and ``peak_rss_mib_children`` (its largest waited-for child): what a stage's summary records."""
    return {"peak_rss_mib": peak_rss_mib(), "peak_rss_mib_children": peak_rss_mib(children=True)}


# ----- out-of-memory kills in the kernel log ----------------------------------------------------

_KILLED = re.compile(
    r"(?P<scope>Memory cgroup out of memory|Out of memory(?: \(oom_kill_allocating_task\))?)?:?\s*"
    r"Killed process (?P<pid>\d+) \((?P<comm>[^)]*)\)(?P<figures>.*)"
)
_OOM_KILL = re.compile(r"oom-kill:(?P<fields>\S*pid=(?P<pid>\d+)\S*)")
_FIGURE = re.compile(r"(total-vm|anon-rss|file-rss|shmem-rss):(\d+)kB")
_DMESG_LINE = re.compile(r"^\[\s*(?P<ts>\d+\.\d+)\]\s?(?P<text>.*)$")

KernelLine = tuple[float | None, str]
"""A kernel log line: seconds after boot (None when the line has no time stamp) and its text."""


@dataclass(frozen=True)
class OomKill:
    """An out-of-memory kill of one process, as the kernel logged it."""

    pid: int
    command: str
    at_s: float | None
    """Seconds after boot when the kernel logged it."""
    figures_kib: dict[str, int]
    """total-vm, anon-rss, file-rss, shmem-rss of the process when killed, in KiB."""
    constraint: str | None = None
    """CONSTRAINT_NONE (the machine ran out), CONSTRAINT_MEMCG (a cgroup's limit: a container's or job's), ..."""
    cgroup: str | None = None
    """The memory cgroup whose limit was hit (with CONSTRAINT_MEMCG)."""

    def describe(self) -> str:
        """The cause in words, with the figures the kernel gave."""
        if self.constraint == "CONSTRAINT_MEMCG":
            scope = f"the memory limit of cgroup {self.cgroup}" if self.cgroup else "a memory cgroup's limit (the container's or job's memory limit)"
        elif self.constraint == "CONSTRAINT_NONE":
            scope = "the machine's memory"
        else:
            scope = self.constraint or "memory"
        sizes = ", ".join(f"{name} {kib / 2**20:.1f} GiB" for name, kib in self.figures_kib.items())
        return (
            f"out of memory: the kernel's OOM killer killed process {self.pid} ({self.command}) for lack of {scope}"
            + (f"; it held {sizes}" if sizes else "")
            + "; give it more memory or make the stage use less (batch size, sequence length, concurrency)"
        )


def parse_oom_kills(lines: list[KernelLine]) -> dict[int, OomKill]:
    """The out-of-memory kills in kernel log ``lines``, by pid (the latest of each).

    Reads ``Out of memory: Killed process <pid> (<comm>) total-vm:...kB, anon-rss:...kB, ...`` (and its
    ``Memory cgroup out of memory:`` form) and the ``oom-kill:constraint=...,pid=<pid>,...`` line
    that says which limit was hit.
    """
    kills: dict[int, OomKill] = {}
    constraints: dict[int, dict[str, str]] = {}
    for at_s, text in lines:
        if match := _OOM_KILL.search(text):
            fields = dict(part.split("=", 1) for part in match["fields"].split(",") if "=" in part)
            constraints[int(match["pid"])] = fields
        elif match := _KILLED.search(text):
            pid = int(match["pid"])
            fields = constraints.pop(pid, {})
            constraint = fields.get("constraint") or ("CONSTRAINT_MEMCG" if match["scope"] == "Memory cgroup out of memory" else None)
            kills[pid] = OomKill(
                pid=pid, command=match["comm"], at_s=at_s, figures_kib={name: int(kib) for name, kib in _FIGURE.findall(match["figures"])},
                constraint=constraint, cgroup=fields.get("oom_memcg") or fields.get("task_memcg"),
            )
    return kills


def kernel_log() -> list[KernelLine] | None:
    """The kernel log of this boot as far as it is kept, or None when this process cannot read it.

    Tries ``/dev/kmsg`` (read without blocking), then ``dmesg``; in containers both are often
    refused. Inside a container that can read the host's log, pids in it are the host's.
    """
    lines = _read_kmsg()
    if lines is not None:
        return lines
    try:
        done = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    out: list[KernelLine] = []
    for line in done.stdout.splitlines():
        match = _DMESG_LINE.match(line)
        out.append((float(match["ts"]), match["text"]) if match else (None, line))
    return out


def _read_kmsg() -> list[KernelLine] | None:
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    lines: list[KernelLine] = []
    try:
        while True:
            try:
                record = os.read(fd, 16384)
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten while reading: go on with the next
                    continue
                if exc.errno == errno.EAGAIN:
                    break
                return lines or None
            if not record:
                break
            head, _, text = record.decode("utf-8", "replace").partition(";")
            fields = head.split(",")
            at_s = int(fields[2]) / 1e6 if len(fields) > 2 and fields[2].isdigit() else None
            lines.append((at_s, text.split("\n", 1)[0]))  # continuation lines (" KEY=value") are left out
    finally:
        os.close(fd)
    return lines


def seconds_since_boot() -> float | None:
    """Seconds since this machine booted (``/proc/uptime``), or None where unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return float(Path("/proc/uptime").read_text().split()[0])
    return None


def oom_kill(process: ProcessIdentity, lines: list[KernelLine] | None = None) -> OomKill | None:
    """The out-of-memory kill of ``process`` in the kernel log (``lines``, default: read it now), or None.

    A kill logged before the process started belongs to an earlier process with the same pid and
    does not count.
    """
    lines = kernel_log() if lines is None else lines
    kill = parse_oom_kills(lines or []).get(process.pid)
    started = process.started_s()
    if kill is None or (kill.at_s is not None and started is not None and kill.at_s < started - 1.0):
        return None
    return kill
