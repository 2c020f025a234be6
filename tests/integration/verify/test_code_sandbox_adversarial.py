"""Hostile programs against the code sandbox: each must be contained, and the judge must come back.

The program under test is the model's output, so every case here is something a program can
do on purpose. Tests that need an OS-enforced boundary (namespaces, an unprivileged uid) skip
with the reason when the machine only allows the best-effort mode; the CI machine (root,
namespaces allowed) runs them all. The ``rlimits`` tests at the end check the fallback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from polya.verify import sandbox
from polya.verify.code_judge import judge_code
from polya.verify.sandbox import SandboxLimits, run_python_sandboxed

pytestmark = [pytest.mark.integration, pytest.mark.skipif(sys.platform != "linux", reason="the code sandbox needs Linux")]

# A program that passes only when every statement in ``body`` runs without an exception.
CHECK_ONLY = "def solution():\n    return None\n"


def _tests(body: str) -> str:
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"def check(candidate):\n{lines}\n"


@pytest.fixture(scope="module")
def isolation() -> str:
    result = run_python_sandboxed("pass", SandboxLimits(timeout_s=10))
    assert result.error is None, result.error
    return result.mode


@pytest.fixture()
def os_enforced(isolation: str) -> None:
    if isolation != "namespaces":
        pytest.skip(f"needs root and namespaces (OS-enforced mode); this machine gives {isolation!r}")


# The uids handed to this test session's sandboxes (other sessions on the machine may run their own).
_OUR_UIDS: set[int] = set()


@pytest.fixture(autouse=True)
def _record_sandbox_uids(monkeypatch: pytest.MonkeyPatch) -> None:
    acquire = sandbox._UIDS.acquire

    def recording_acquire() -> int:
        uid = acquire()
        _OUR_UIDS.add(uid)
        return uid

    monkeypatch.setattr(sandbox._UIDS, "acquire", recording_acquire)


def _sandbox_processes(marker: str | None = None) -> list[psutil.Process]:
    """Live processes of this session's sandboxes: their uids, launchers below this process, or ``marker``.

    Zombies are dead: a killed daemon of the ``rlimits`` mode was reparented to the machine's
    init, which reaps it in its own time.
    """
    found = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if sandbox.__file__ in " ".join(process.cmdline()):
                found[process.pid] = process
        except psutil.Error:
            continue
    for process in psutil.process_iter(["uids", "cmdline"]):
        uids = process.info["uids"]
        cmdline = " ".join(process.info["cmdline"] or [])
        if (uids and set(uids) & _OUR_UIDS) or (marker and marker in cmdline):
            found[process.pid] = process
    alive = []
    for process in found.values():
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.Error:
            continue
    return alive


def _describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        try:
            info = process.as_dict(["pid", "ppid", "uids", "status", "cmdline", "create_time"])
        except psutil.Error as exc:
            info = {"pid": process.pid, "gone": repr(exc)}
        lines.append(repr(info)[:400])
    return "\n".join(lines)


@pytest.fixture()
def no_leftovers() -> Iterator[None]:
    leftovers = _sandbox_processes()
    assert not leftovers, f"sandbox processes left over from before this test:\n{_describe(leftovers)}"
    yield
    leftovers = _sandbox_processes()
    assert not leftovers, f"sandbox processes survived the judgement (now {time.time():.2f}):\n{_describe(leftovers)}"


@pytest.fixture()
def tcp_server() -> Iterator[tuple[int, list[object]]]:
    """A TCP server on 127.0.0.1; yields its port and the list of connections it accepted."""
    accepted: list[object] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, address = server.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            accepted.append(address)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


def _assert_server_reachable_from_here(port: int, accepted: list[object]) -> None:
    """The control: the same connect from the judge's side does reach the server."""
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    deadline = time.monotonic() + 2
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(accepted) == 1


# ----- processes ------------------------------------------------------------------------------


def test_infinite_loop_is_killed_at_the_deadline(no_leftovers: None) -> None:
    started = time.monotonic()
    verdict = judge_code("def solution():\n    while True:\n        pass\n", _tests("candidate()"), "solution", timeout_s=2.0)
    elapsed = time.monotonic() - started
    assert verdict.status == "timeout" and not verdict.correct
    assert elapsed < 2.0 + 5.0  # generous: CI runs this beside other load


def test_fork_bomb_is_contained(os_enforced: None, no_leftovers: None) -> None:
    started = time.monotonic()
    verdict = judge_code("import os\nwhile True:\n    os.fork()\n", "", timeout_s=5.0)
    assert verdict.status in ("fail", "timeout")
    assert time.monotonic() - started < 5.0 + 5.0  # generous: CI runs this beside other load
    assert "BlockingIOError" in verdict.reason or verdict.status == "timeout"


def test_fork_bomb_that_ignores_failures_is_killed_at_the_deadline(os_enforced: None, no_leftovers: None) -> None:
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    started = time.monotonic()
    verdict = judge_code(program, "", timeout_s=2.0)
    assert verdict.status == "timeout"
    assert time.monotonic() - started < 2.0 + 5.0  # generous: CI runs this beside other load
    # The machine still forks: the bomb did not eat the host's process table.
    assert judge_code(CHECK_ONLY, _tests("import os; assert os.waitpid(os.fork() or os._exit(0), 0)"), "solution").status != "error"


DAEMON = """
import os, sys, time

def solution():
    pid = os.fork()
    if pid == 0:  # double fork + setsid: the classic daemon, out of the program's process group
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.3)
    alive = [p for p in os.listdir("/proc") if p.isdigit() and "{marker}" in open(f"/proc/{{p}}/cmdline").read()]
    assert alive, "the daemon did not start"
"""


def test_daemonized_grandchild_is_killed(no_leftovers: None, isolation: str) -> None:
    if isolation == "rlimits" and os.geteuid() != 0:
        pytest.skip("without namespaces or root a setsid() daemon can escape (documented)")
    marker = f"polya-daemon-{os.getpid()}-{time.monotonic_ns()}"
    verdict = judge_code(DAEMON.format(marker=marker), _tests("candidate()"), "solution", timeout_s=5.0)
    assert verdict.status == "pass", verdict
    leftovers = _sandbox_processes(marker)
    assert not leftovers, f"now {time.time():.2f}:\n{_describe(leftovers)}"


def test_daemonized_grandchild_is_killed_at_the_deadline(no_leftovers: None, isolation: str) -> None:
    if isolation == "rlimits" and os.geteuid() != 0:
        pytest.skip("without namespaces or root a setsid() daemon can escape (documented)")
    marker = f"polya-daemon-{os.getpid()}-{time.monotonic_ns()}"
    program = DAEMON.format(marker=marker) + "    while True:\n        time.sleep(1)\n"
    verdict = judge_code(program, _tests("candidate()"), "solution", timeout_s=2.0)
    assert verdict.status == "timeout"
    leftovers = _sandbox_processes(marker)
    assert not leftovers, f"now {time.time():.2f}:\n{_describe(leftovers)}"


def test_killing_its_parent_and_the_judge_does_not_hurt_the_judge(no_leftovers: None) -> None:
    body = f"""
import os, signal
for target in (os.getppid(), {os.getpid()}, 1):
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
print("still here")
"""
    verdict = judge_code(CHECK_ONLY, _tests(body), "solution", timeout_s=5.0)
    assert verdict.status in ("pass", "fail"), verdict  # fail: the program killed itself (rlimits mode)
    assert psutil.Process(os.getpid()).is_running()
    assert judge_code(CHECK_ONLY, _tests("pass"), "solution").status == "pass"


def test_kill_everything_it_can_signal(no_leftovers: None, os_enforced: None) -> None:
    body = "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\nprint('alone')"
    verdict = judge_code(CHECK_ONLY, _tests(body), "solution")
    assert verdict.status == "pass", verdict
    assert verdict.output_tail == "alone\n"


def test_cannot_make_namespaces_of_its_own(os_enforced: None, no_leftovers: None) -> None:
    # Unprivileged user namespaces would give it a mount namespace and an unbounded tmpfs.
    body = """
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
for flags in (0x10000000, 0x10000000 | 0x00020000, 0x40000000):  # NEWUSER, NEWUSER|NEWNS, NEWNET
    assert libc.unshare(flags) == -1 and ctypes.get_errno() == 1, hex(flags)
threads = [threading.Thread(target=print, args=("thread",)) for _ in range(2)]  # clone3 -> clone fallback
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
pid = os.fork()
if pid == 0:
    os._exit(7)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
"""
    verdict = judge_code(CHECK_ONLY, _tests(body), "solution")
    assert verdict.status == "pass", verdict
    assert verdict.output_tail == "thread\nthread\n"


def test_sandbox_dies_with_a_killed_judge(no_leftovers: None, isolation: str) -> None:
    if isolation == "rlimits":
        pytest.skip("needs the pid namespace")
    marker = f"polya-orphan-{os.getpid()}-{time.monotonic_ns()}"
    program = f"""
import os, sys, time
if os.fork() == 0:
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", {marker!r}])
while True:
    time.sleep(1)
"""
    judge = subprocess.Popen(
        [sys.executable, "-c", f"from polya.verify.code_judge import judge_code; judge_code({program!r}, '', timeout_s=60)"]
    )
    try:
        deadline = time.monotonic() + 20
        while not _sandbox_processes(marker):
            assert time.monotonic() < deadline, "the sandboxed program did not start"
            time.sleep(0.1)
        judge.kill()  # SIGKILL: no clean-up code of the judge runs
        judge.wait()
        deadline = time.monotonic() + 5
        while _sandbox_processes(marker):
            assert time.monotonic() < deadline, f"the sandbox outlived its judge:\n{_describe(_sandbox_processes(marker))}"
            time.sleep(0.1)
    finally:
        judge.kill()
        judge.wait()


# ----- memory, disk, output ---------------------------------------------------------------------


def test_allocating_4_gb_fails_inside_the_sandbox(no_leftovers: None) -> None:
    verdict = judge_code(CHECK_ONLY, _tests("block = bytearray(4 * 1024**3)"), "solution", memory_mb=512)
    assert verdict.status in ("fail", "error")
    assert "MemoryError" in verdict.reason
    assert psutil.virtual_memory().available > 256 * 1024 * 1024


def test_growing_memory_stops_at_the_limit(no_leftovers: None) -> None:
    body = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))"
    verdict = judge_code(CHECK_ONLY, _tests(body), "solution", memory_mb=256, timeout_s=10.0)
    assert verdict.status == "fail" and verdict.reason.startswith("MemoryError")


WRITE_100_MB = """
import errno
megabyte = b"x" * (1 << 20)
written = 0
try:
    with open("big.bin", "wb", buffering=0) as handle:
        for _ in range(100):
            handle.write(megabyte)
            written += 1
except OSError as exc:
    assert exc.errno == errno.EFBIG, exc
    assert written <= 16, written
else:
    raise AssertionError("wrote 100 MB")
"""


def test_writing_a_100_mb_file_is_cut_at_the_file_size_limit(no_leftovers: None) -> None:
    verdict = judge_code(CHECK_ONLY, _tests(WRITE_100_MB), "solution")
    assert verdict.status == "pass", verdict


FILL_DISK = """
import errno
chunk = b"x" * (8 << 20)
try:
    for number in range(20):
        with open(f"part{number}.bin", "wb", buffering=0) as handle:
            handle.write(chunk)
except OSError as exc:
    assert exc.errno == errno.ENOSPC, exc
else:
    raise AssertionError("wrote 160 MB")
"""


def test_working_directory_has_a_size_limit(os_enforced: None, no_leftovers: None) -> None:
    assert judge_code(CHECK_ONLY, _tests(FILL_DISK), "solution").status == "pass"


def test_printing_100_mb_keeps_only_a_bounded_tail(no_leftovers: None) -> None:
    script = "import sys\nchunk = 'y' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)\nprint('END')\n"
    started = time.monotonic()
    result = run_python_sandboxed(script, SandboxLimits(timeout_s=20))
    assert result.exit_code == 0
    assert result.output_bytes == 100 * (1 << 20) + 4
    assert len(result.output_tail) <= 64 * 1024 and result.output_tail.endswith("yyyyEND\n")
    assert time.monotonic() - started < 10
    verdict = judge_code(script, "", timeout_s=20)
    assert verdict.status == "pass" and len(verdict.output_tail) <= 64 * 1024


# ----- network, files, environment --------------------------------------------------------------


def _connect_to(port: int, handler: str) -> str:
    """A script that connects to the test's TCP server on loopback: ``handler`` (an ``except`` clause) must
    take the refusal; a connection fails the script."""
    return (
        "import socket\ntry:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        f"{handler}\n"
        "else:\n    raise AssertionError('connected to the test server')\n"
    )


def test_no_network_not_even_loopback(tcp_server: tuple[int, list[object]], no_leftovers: None) -> None:
    port, accepted = tcp_server
    body = _connect_to(port, "except OSError as exc:\n    print('refused:', exc)")
    verdict = judge_code(CHECK_ONLY, _tests(body), "solution")
    assert verdict.status == "pass", verdict
    time.sleep(0.2)
    assert accepted == []
    _assert_server_reachable_from_here(port, accepted)


def test_network_namespace_has_no_usable_interface(os_enforced: None, no_leftovers: None) -> None:
    body = """
import socket
for family, address in ((socket.AF_INET, ("127.0.0.1", 9)), (socket.AF_INET, ("1.1.1.1", 53))):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.sendto(b"x", address)
    except OSError:
        pass
    else:
        raise AssertionError(f"sent a datagram to {address}")
try:
    socket.getaddrinfo("example.com", 80)
except OSError:
    pass
else:
    raise AssertionError("resolved a name")
"""
    assert judge_code(CHECK_ONLY, _tests(body), "solution").status == "pass"


def _visible_parent() -> str:
    """A world-traversable folder the sandbox still sees (its /tmp, /var/tmp and /run are empty)."""
    for candidate in ("/var/lib", "/srv", "/opt", "/var/cache"):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK) and os.stat(candidate).st_mode & 0o001:
            return candidate
    pytest.skip("no writable, world-traversable folder outside /tmp for the service's files")


@pytest.fixture()
def service_files() -> Iterator[Path]:
    """A traversable directory with a 0600 file of the judge's user (``secret.txt``) and a 0644 one (``public.txt``)."""
    folder = Path(tempfile.mkdtemp(prefix="polya-service-", dir=_visible_parent()))
    folder.chmod(0o755)
    (folder / "secret.txt").write_text("the service's secret\n")
    (folder / "secret.txt").chmod(0o600)
    (folder / "public.txt").write_text("anyone may read this\n")
    (folder / "public.txt").chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _read_secret_refused(service_files: Path) -> str:
    """Script lines that read the service's 0600 file and must be refused."""
    secret = str(service_files / "secret.txt")
    return f"try:\n    open({secret!r}).read()\nexcept PermissionError:\n    pass\nelse:\n    raise AssertionError('read the secret')\n"


def test_cannot_read_a_0600_file_of_the_service(service_files: Path, no_leftovers: None) -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox runs as the service's own uid when not root (documented)")
    body = f"""
assert open({str(service_files / 'public.txt')!r}).read() == "anyone may read this\\n"  # the control
{_read_secret_refused(service_files)}"""
    verdict = judge_code(CHECK_ONLY, _tests(body), "solution")
    assert verdict.status == "pass", verdict


def test_cannot_write_outside_its_directory(service_files: Path, os_enforced: None, no_leftovers: None) -> None:
    open_folder = service_files / "world-writable"
    open_folder.mkdir()
    open_folder.chmod(0o777)  # only the read-only mount stops this write
    escape = f"polya-escape-{os.getpid()}"
    targets = [str(open_folder / escape), f"/tmp/{escape}", f"/var/tmp/{escape}", str(service_files / "public.txt")]
    body = f"""
import os
with open("inside.txt", "w") as handle:  # the control: its own directory is writable
    handle.write("ok")
assert open(os.path.join(os.getcwd(), "inside.txt")).read() == "ok"
for target in {targets!r}:
    try:
        with open(target, "a") as handle:
            handle.write("escaped")
    except OSError:
        continue
    raise AssertionError(f"wrote {{target}}")
"""
    try:
        verdict = judge_code(CHECK_ONLY, _tests(body), "solution")
        assert verdict.status == "pass", verdict
        for target in targets[:3]:
            assert not os.path.exists(target)
        assert (service_files / "public.txt").read_text() == "anyone may read this\n"
    finally:
        for target in targets[1:3]:
            if os.path.exists(target):
                os.unlink(target)


def test_temp_folders_and_runtime_sockets_are_hidden(os_enforced: None, no_leftovers: None) -> None:
    marker = f"polya-visible-{os.getpid()}"
    note = Path(tempfile.gettempdir()) / f"{marker}.txt"
    note.write_text("another program's temp file\n")
    note.chmod(0o644)
    socket_path = Path("/tmp") / f"{marker}.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(socket_path))
    socket_path.chmod(0o777)
    server.listen()
    server.settimeout(0.5)
    body = f"""
import os, socket
assert not os.path.exists({str(note)!r}), "sees the host's /tmp"
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    client.connect({str(socket_path)!r})
except OSError:
    pass
else:
    raise AssertionError("connected to a unix socket of the host")
assert os.listdir("/run") == []
"""
    try:
        verdict = judge_code(CHECK_ONLY, _tests(body), "solution")
        assert verdict.status == "pass", verdict
        with pytest.raises((TimeoutError, socket.timeout)):
            server.accept()
    finally:
        server.close()
        socket_path.unlink()
        note.unlink()


def test_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch, no_leftovers: None) -> None:
    monkeypatch.setenv("POLYA_SECRET", "hunter2-polya")
    body = """
import os, sys
assert "POLYA_SECRET" not in os.environ, "secret in os.environ"
assert not any(name.startswith("PYTHON") for name in os.environ)
assert sys.flags.isolated and sys.flags.no_site
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        environ = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        continue
    assert b"hunter2-polya" not in environ, f"secret visible in /proc/{pid}/environ"
"""
    assert judge_code(CHECK_ONLY, _tests(body), "solution").status == "pass"


def test_sandbox_sees_only_its_own_processes(os_enforced: None, no_leftovers: None) -> None:
    body = "import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\nassert len(pids) <= 3, pids\nassert os.getuid() != 0"
    assert judge_code(CHECK_ONLY, _tests(body), "solution").status == "pass"


# ----- concurrency ------------------------------------------------------------------------------


def test_eight_concurrent_judgements_are_all_right(no_leftovers: None) -> None:
    program = "def square(x):\n    return x * x\n"
    wrong = "def square(x):\n    return x + x\n"
    tests = "def check(candidate):\n    assert candidate(3) == 9\n    assert candidate({n}) == {n} * {n}\n"
    jobs = [((program if n % 2 else wrong), tests.format(n=n), n % 2 == 1) for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda job: judge_code(job[0], job[1], "square", timeout_s=20), jobs))
    assert [verdict.correct for verdict in verdicts] == [expected for _, _, expected in jobs]
    assert [verdict.status for verdict in verdicts] == ["pass" if expected else "fail" for _, _, expected in jobs]


# ----- the best-effort fallback (no namespaces) ---------------------------------------------------

RLIMITS_ONLY = SandboxLimits(timeout_s=5, use_namespaces=False)


def test_fallback_mode_is_reported() -> None:
    result = run_python_sandboxed("print('hi')", RLIMITS_ONLY)
    assert result.error is None and result.exit_code == 0 and result.output_tail == "hi\n"
    assert result.mode == "rlimits" and "namespaces turned off" in result.isolation


def test_fallback_blocks_network_with_the_audit_hook(tcp_server: tuple[int, list[object]], no_leftovers: None) -> None:
    port, accepted = tcp_server
    script = _connect_to(port, "except PermissionError as exc:\n    assert 'blocked by the polya sandbox' in str(exc), exc")
    result = run_python_sandboxed(script, RLIMITS_ONLY)
    assert result.exit_code == 0, result.output_tail
    time.sleep(0.2)
    assert accepted == []


def test_fallback_kills_daemons_of_the_sandbox_uid(no_leftovers: None) -> None:
    if os.geteuid() != 0:
        pytest.skip("the uid sweep needs root")
    marker = f"polya-daemon-{os.getpid()}-{time.monotonic_ns()}"
    # ctypes and exec are refused by the audit hook: the daemon stays a forked Python process.
    script = f"""
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(600)
    os._exit(0)
os.waitpid(pid, 0)
print({marker!r})
"""
    result = run_python_sandboxed(script, RLIMITS_ONLY)
    assert result.exit_code == 0 and marker in result.output_tail
    leftovers = _sandbox_processes(marker)
    assert not leftovers, f"now {time.time():.2f}:\n{_describe(leftovers)}"


def test_fallback_still_drops_privileges(service_files: Path, no_leftovers: None) -> None:
    if os.geteuid() != 0:
        pytest.skip("the uid drop needs root")
    script = f"""
import os
assert os.getuid() != 0 and os.getgroups() == []
{_read_secret_refused(service_files)}"""
    result = run_python_sandboxed(script, RLIMITS_ONLY)
    assert result.exit_code == 0, result.output_tail


def test_judge_runs_under_the_interpreter_it_was_given() -> None:
    result = run_python_sandboxed("import sys; print(sys.version_info[:2])", SandboxLimits(timeout_s=5))
    assert result.output_tail.strip() == str(tuple(sys.version_info[:2]))
