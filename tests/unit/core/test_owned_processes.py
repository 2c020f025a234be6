"""A process polya starts with start_owned ends when polya ends, SIGKILL included, with everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil

# The "server": a session leader that starts a worker of its own (as vLLM starts its engine), both sleeping.
SERVER = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"

OWNER = textwrap.dedent(f"""
    import sys, time
    from polya.core.processes import start_owned
    child = start_owned([sys.executable, "-c", {SERVER!r}], grace_s=2.0)
    print(child.pid, flush=True)
    time.sleep(600)
""")


def _gone(pids: list[int], within_s: float) -> list[int]:
    end = time.monotonic() + within_s
    alive = pids
    while alive and time.monotonic() < end:
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    return alive



def _the_reaper(owner: subprocess.Popen, child_pid: int) -> int:
    """The pid of the one reaper ``owner`` started beside its owned process ``child_pid``."""
    reapers = [p.pid for p in psutil.Process(owner.pid).children() if p.pid != child_pid]
    assert len(reapers) == 1, reapers
    return reapers[0]


def _kill_and_expect_gone(owner: subprocess.Popen, pids: list[int], within_s: float) -> None:
    """SIGKILL ``owner``: every process in ``pids`` must be gone within ``within_s``."""
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=10)
    assert _gone(pids, within_s=within_s) == []


def test_the_owned_process_group_dies_with_a_sigkilled_owner() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(owner.stdout.readline())  # type: ignore[union-attr]
        child = psutil.Process(child_pid)
        deadline = time.monotonic() + 20
        while not child.children() and time.monotonic() < deadline:
            time.sleep(0.1)
        worker_pids = [p.pid for p in child.children()]
        assert worker_pids, "the server did not start its worker"
        assert os.getpgid(child_pid) == child_pid != os.getpgid(owner.pid)  # its own session and group
        reaper = _the_reaper(owner, child_pid)
        _kill_and_expect_gone(owner, [child_pid, *worker_pids, reaper], within_s=10)
    finally:
        if owner.poll() is None:
            owner.kill()


def test_stopping_an_owned_process_lets_its_reaper_go() -> None:
    from polya.core.processes import start_owned, stop_process

    before = {p.pid for p in psutil.Process().children()}  # this test process may hold others' children (pool workers, ...)
    child = start_owned([sys.executable, "-c", "import time; time.sleep(600)"], grace_s=1.0)
    (reaper,) = [p for p in psutil.Process().children() if p.pid not in before and p.pid != child.pid]
    stop_process(child, grace_s=2.0, group=True)
    assert child.poll() is not None
    assert _gone([reaper.pid], within_s=5) == []
    try:
        os.waitpid(reaper.pid, 0)
    except ChildProcessError:
        pass


DETACHING = "import os, subprocess, sys, time; os.setsid(); subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(600)']); time.sleep(600)"

TREE_OWNER = textwrap.dedent(f"""
    import subprocess, sys, time
    from polya.core.processes import reap_descendants_on_exit
    reap_descendants_on_exit(grace_s=2.0)
    reap_descendants_on_exit(grace_s=2.0)  # once per process
    child = subprocess.Popen([sys.executable, "-c", {DETACHING!r}])
    print(child.pid, flush=True)
    time.sleep(600)
""")


def test_every_descendant_dies_with_a_sigkilled_owner_even_one_that_left_its_session() -> None:
    # As Ray's agents do: a child in a session of its own, and a grandchild in yet another.
    owner = subprocess.Popen([sys.executable, "-c", TREE_OWNER], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(owner.stdout.readline())  # type: ignore[union-attr]
        deadline = time.monotonic() + 20
        while not psutil.Process(child_pid).children() and time.monotonic() < deadline:
            time.sleep(0.1)
        grandchildren = [p.pid for p in psutil.Process(child_pid).children()]
        assert grandchildren and os.getsid(grandchildren[0]) not in (os.getsid(owner.pid), os.getsid(child_pid))
        reaper = _the_reaper(owner, child_pid)  # one tree reaper, however often it is asked for
        time.sleep(2.5)  # the reaper notes the tree every second
        _kill_and_expect_gone(owner, [child_pid, *grandchildren, reaper], within_s=15)
    finally:
        if owner.poll() is None:
            owner.kill()


def test_a_process_identity_tells_a_live_process_from_a_gone_or_reused_pid() -> None:
    from polya.core.processes import ProcessIdentity

    me = ProcessIdentity.of()
    assert me.running() is True and me.start_ticks is not None
    assert me.model_copy(update={"start_ticks": me.start_ticks + 1}).running() is False  # the pid now names another process
    assert me.model_copy(update={"boot_id": "another-boot"}).running() is False
    assert me.model_copy(update={"hostname": me.hostname + "-elsewhere"}).running() is None  # cannot tell from here
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = ProcessIdentity.of(child.pid)
    assert identity.running() is True
    child.kill()
    deadline = time.monotonic() + 10
    while identity.running() and time.monotonic() < deadline:  # a zombie (killed, not yet waited for) counts as gone
        time.sleep(0.05)
    assert identity.running() is False
    child.wait()
    assert identity.running() is False
