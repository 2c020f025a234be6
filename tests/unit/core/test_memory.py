"""Peak memory of a process and its children; out-of-memory kills read from real-format kernel log lines."""

from __future__ import annotations

import os
import subprocess
import sys

from polya.core.memory import OomKill, oom_kill, parse_oom_kills, peak_memory, peak_rss_mib
from polya.core.processes import ProcessIdentity

ALLOCATE = "from polya.core.memory import peak_rss_mib; block = b'x' * (200 * 2**20); print(peak_rss_mib())"


def test_a_waited_for_child_that_allocates_200_mb_raises_the_childrens_peak() -> None:
    done = subprocess.run([sys.executable, "-c", ALLOCATE], capture_output=True, text=True, check=True)
    assert float(done.stdout) >= 200  # the child's own peak (RUSAGE_SELF there)
    assert peak_rss_mib(children=True) >= 200  # the largest waited-for child, seen from here
    memory = peak_memory()
    assert set(memory) == {"peak_rss_mib", "peak_rss_mib_children"}
    assert 50 < memory["peak_rss_mib"] < 100_000


# As Linux 5.x / 6.x logs them (mm/oom_kill.c): the whole-machine form, then a cgroup limit's form.
MACHINE_OOM = [
    (5120.4, "python invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0"),
    (5120.5, "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/user.slice/user-1000.slice/session-3.scope,task=python,pid=12345,uid=1000"),
    (5120.5, "Out of memory: Killed process 12345 (python) total-vm:35651584kB, anon-rss:31457280kB, file-rss:2048kB, shmem-rss:0kB, UID:1000 pgtables:62000kB oom_score_adj:0"),
    (5120.7, "oom_reaper: reaped process 12345 (python), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"),
]
CGROUP_OOM = [
    (88.0, "Memory cgroup out of memory: Killed process 777 (pt_main_thread) total-vm:9437184kB, anon-rss:8388608kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:17000kB oom_score_adj:936"),
]


def test_out_of_memory_kills_are_read_with_their_figures() -> None:
    kills = parse_oom_kills(MACHINE_OOM + CGROUP_OOM + [(90.0, "EXT4-fs (vda): mounted filesystem")])
    assert set(kills) == {12345, 777}
    machine = kills[12345]
    assert (machine.command, machine.at_s, machine.constraint) == ("python", 5120.5, "CONSTRAINT_NONE")
    assert machine.figures_kib == {"total-vm": 35651584, "anon-rss": 31457280, "file-rss": 2048, "shmem-rss": 0}
    text = machine.describe()
    assert "out of memory" in text and "the machine's memory" in text and "anon-rss 30.0 GiB" in text and "total-vm 34.0 GiB" in text
    cgroup = kills[777]
    assert cgroup.constraint == "CONSTRAINT_MEMCG" and "memory limit" in cgroup.describe() and "anon-rss 8.0 GiB" in cgroup.describe()


def test_a_kill_logged_before_the_process_started_belongs_to_an_earlier_process_with_that_pid() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    process = ProcessIdentity(pid=12345, hostname="h", start_ticks=6000 * ticks)  # started 6000 s after boot
    assert oom_kill(process, MACHINE_OOM) is None  # the kill at 5120 s was another process's
    earlier = ProcessIdentity(pid=12345, hostname="h", start_ticks=5000 * ticks)
    assert isinstance(oom_kill(earlier, MACHINE_OOM), OomKill)
    assert oom_kill(ProcessIdentity(pid=4, hostname="h"), MACHINE_OOM) is None
