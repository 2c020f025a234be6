"""Run an untrusted Python script in a throwaway Linux sandbox and capture how it ended.

One call, :func:`run_python_sandboxed`, runs one script under three processes::

    judge (caller, any thread)
      └─ launcher   this file run as ``python -I -S sandbox.py <config>``, own session; unshares
         └─ init    pid 1 of a fresh pid namespace; builds the filesystem view, reaps orphans
            └─ program   rlimits, unprivileged uid, no_new_privs, ``python -I -S main.py``

What is enforced, best first (the launcher picks the strongest the machine allows and reports it
in :attr:`SandboxResult.isolation`):

``namespaces`` (running as root, the CI and container case)
    New pid, network, mount, IPC and UTS namespaces. The program runs as a uid/gid of its own
    (``SANDBOX_UID_BASE`` + random, no supplementary groups), so file permissions keep it out of
    the service's files and ``RLIMIT_NPROC`` (which root ignores) caps its processes. The network
    namespace has only a down loopback: every connect fails. The whole filesystem is remounted
    read-only, the working directory is a fresh size-limited tmpfs, ``/proc`` shows only the
    sandbox. When the program exits or the deadline passes, init exits and the kernel kills every
    process left in the pid namespace, daemonized grandchildren included; :func:`run_python_sandboxed`
    returns only after that.
``user-namespaces`` (not root, unprivileged user namespaces allowed)
    The same namespaces inside a new user namespace, but the program keeps the caller's uid: files
    the service user can read, the program can read.
``rlimits`` (no namespaces, e.g. a container whose seccomp profile forbids ``unshare``)
    Own session, rlimits, the unprivileged uid when root (all its processes are killed with
    ``kill(-1)`` from that uid afterwards), and a Python audit hook that refuses socket
    connect/bind/name lookups, ``ctypes`` and starting other programs. Best effort: the audit
    hook is not a security boundary, and the program can write where its uid may.

In every mode: rlimits on address space, CPU seconds, file size, open files, processes and core
dumps; ``no_new_privs`` and a seccomp filter that refuses new namespaces (``unshare``, ``setns``,
``clone`` with namespace flags; x86_64 and aarch64); an isolated interpreter (``-I -S``: standard
library only, no ``PYTHON*`` variables); a minimal environment (nothing from the caller's); output
(stdout and stderr together) read as it comes, only the last ``output_limit_bytes`` kept.

Not bounded here: the sum over a run's processes. ``memory_mb`` is per process, so one run can
hold up to ``max_processes * memory_mb``; give the service's container a memory limit (the
Kubernetes pod limit) so the kernel's OOM killer acts inside it, not on the node.

The interpreter is the one running polya. When the sandbox uid cannot reach it (pyenv under a
0700 ``/root``), its prefix is bind-mounted read-only into the sandbox; without a mount namespace
a world-readable system ``python3`` stands in.

The module imports only the standard library: the launcher runs it as a script under ``-I -S``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import random
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

SANDBOX_UID_BASE = 2_000_000_000
"""The program runs as a uid (and gid) in ``[SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_COUNT)``
when the judge runs as root; a fresh one per run, so limits and kills never touch other runs."""
SANDBOX_UID_COUNT = 1_000_000

SCRIPT_NAME = "main.py"
PRELUDE_NAME = "_polya_prelude.py"
_PYTHON_MOUNT = ".python"
_HIDDEN_DIRS = ("/tmp", "/var/tmp", "/run", "/var/run")
"""Replaced by empty read-only tmpfs in the sandbox: other programs' temp files and the
host's unix sockets (a read-only mount does not stop a connect to a socket file)."""
_KILL_GRACE_S = 3.0
"""After the deadline the launcher gets this long to tear the sandbox down before its whole
process group is killed from outside."""
_SETUP_LIMIT_S = 5.0
"""Sandbox set-up (launcher start, namespaces, mounts) gets this long; ``timeout_s`` counts from
the moment the program is started, so set-up on a loaded machine does not eat into it."""
_STREAM_GRACE_S = 1.0
"""After the launcher exits, output still held open by an escaped process is read this long."""

# Linux constants (sched.h, mount.h, prctl.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
_NAMESPACES = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
_MOUNT_OPTION_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CLONE_NEWCGROUP = 0x02000000
# Per architecture: (AUDIT_ARCH_*, unshare, setns, clone, clone3) syscall numbers.
_SECCOMP_ARCHES = {
    "x86_64": (0xC000003E, 272, 308, 56, 435),
    "aarch64": (0xC00000B7, 97, 268, 220, 435),
}

_PRELUDE = '''\
"""polya sandbox prelude (rlimits mode): refuse network, ctypes and new programs, then run main.py."""
import sys

_BLOCKED = ("socket.", "ctypes.", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen", "pty.spawn")
_ALLOWED = ("socket.__new__", "socket.gethostname")


def _refuse(event, args):
    if event.startswith(_BLOCKED) and not event.startswith(_ALLOWED):
        raise PermissionError(f"blocked by the polya sandbox: {event}")


def _run():
    with open("main.py", "rb") as handle:
        source = handle.read()
    try:
        code = compile(source, "main.py", "exec")
    except SyntaxError as exc:
        import traceback

        traceback.print_exception(type(exc), exc, None)
        sys.exit(1)
    sys.addaudithook(_refuse)
    namespace = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
    sys.argv = ["main.py"]
    exec(code, namespace)


_run()
'''


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run."""

    timeout_s: float = field(default=10.0, metadata={"help": "Wall-clock seconds the program may run, from its start, before every process of the run is killed."})
    memory_mb: int = field(default=512, metadata={"help": "Address-space limit (RLIMIT_AS) of each process, MiB."})
    file_size_mb: int = field(default=16, metadata={"help": "Largest file a process may write (RLIMIT_FSIZE), MiB."})
    disk_mb: int = field(default=64, metadata={"help": "Size of the tmpfs working directory (namespace modes), MiB."})
    max_processes: int = field(default=32, metadata={"help": "Processes and threads of the sandbox uid (RLIMIT_NPROC)."})
    max_open_files: int = field(default=256, metadata={"help": "Open file descriptors per process (RLIMIT_NOFILE)."})
    output_limit_bytes: int = field(default=64 * 1024, metadata={"help": "Bytes of output kept (the tail of stdout+stderr)."})
    use_namespaces: bool = field(default=True, metadata={"help": "False forces the best-effort 'rlimits' mode (for tests)."})
    python: str | None = field(default=None, metadata={"help": "Interpreter for the program; default: the one running polya."})

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout_s, (int, float)) and 0 < self.timeout_s <= 3600):
            raise ValueError(f"timeout_s must be a number of seconds in (0, 3600], got {self.timeout_s!r}")
        minimums = {"memory_mb": 64, "file_size_mb": 1, "disk_mb": 1, "max_processes": 1, "max_open_files": 16, "output_limit_bytes": 1}
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed run ended."""

    exit_code: int | None
    """The program's exit status when it exited by itself; None when killed by a signal or the deadline."""
    signal: int | None
    """The signal that killed the program (e.g. SIGXCPU at the CPU limit), None otherwise."""
    timed_out: bool
    """The wall-clock deadline passed and the run was killed."""
    output_tail: str
    """The last ``output_limit_bytes`` of stdout and stderr together (UTF-8, undecodable bytes replaced)."""
    output_bytes: int
    """All bytes the run wrote to stdout and stderr."""
    isolation: str
    """The mode that was in force (``namespaces``, ``user-namespaces`` or ``rlimits``) and its notes."""
    error: str | None
    """Why the sandbox itself failed (the program's fate is then unknown), None when it worked."""
    wall_s: float

    @property
    def mode(self) -> str:
        return self.isolation.split(" ", 1)[0]


# ----- the judge's side ----------------------------------------------------------------------


class _UidPool:
    """Hands out sandbox uids no other run of this process is using (random across processes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_use: set[int] = set()
        self._random = random.SystemRandom()

    def acquire(self) -> int:
        with self._lock:
            while True:
                uid = SANDBOX_UID_BASE + self._random.randrange(SANDBOX_UID_COUNT)
                if uid not in self._in_use:
                    self._in_use.add(uid)
                    return uid

    def release(self, uid: int) -> None:
        with self._lock:
            self._in_use.discard(uid)


_UIDS = _UidPool()


def _others_can_reach(path: str, *, need: int) -> bool:
    """True when a uid that is neither owner nor group can open ``path`` with mode bits ``need``."""
    try:
        if os.stat(path).st_mode & need != need:
            return False
        parent = os.path.dirname(path)
        while True:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            if parent == os.path.dirname(parent):
                return True
            parent = os.path.dirname(parent)
    except OSError:
        return False


@dataclass(frozen=True)
class _Interpreter:
    path: str
    bind_prefix: str | None = None
    """Set when the sandbox uid cannot reach ``path``: its prefix is bind-mounted into the sandbox."""
    bind_relative_path: str | None = None
    fallback: str | None = None
    """A system interpreter the sandbox uid can reach, for modes without a mount namespace."""


def _program_python(limits: SandboxLimits, drop_uid: bool) -> _Interpreter:
    exe = os.path.realpath(limits.python or sys.executable)
    if not drop_uid:
        return _Interpreter(exe)
    stdlib = os.path.dirname(os.__file__)
    readable = stat.S_IROTH | stat.S_IXOTH
    if _others_can_reach(exe, need=readable) and (limits.python or _others_can_reach(stdlib, need=readable)):
        return _Interpreter(exe)
    # E.g. pyenv under /root (0700): the sandbox uid cannot reach it. With a mount namespace its
    # prefix is mounted read-only into the sandbox; without one a system python3 stands in.
    prefix = os.path.realpath(sys.base_prefix)
    fallback = None
    for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", "python3"):
        found = shutil.which(name, path="/usr/local/bin:/usr/bin:/bin")
        if found and _others_can_reach(os.path.realpath(found), need=readable):
            fallback = os.path.realpath(found)
            break
    if limits.python is None and exe.startswith(prefix + os.sep):
        return _Interpreter(exe, prefix, os.path.relpath(exe, prefix), fallback)
    return _Interpreter(exe, fallback=fallback)


def _minimal_env(workdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


class _Tail:
    """The last ``limit`` bytes of a stream, and how many bytes it had."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._buffer = bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._buffer += chunk
        if len(self._buffer) > 2 * self.limit:
            del self._buffer[: -self.limit]

    def text(self) -> str:
        return bytes(self._buffer[-self.limit :]).decode("utf-8", errors="replace")


def _launcher_exited(pid: int) -> bool:
    """Whether the launcher has exited, without reaping it (its pid, and so its process group, stay reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_python_sandboxed(script: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``script`` as ``main.py`` in a fresh sandbox; return when every process of it is gone.

    Safe to call from several threads at once. Never raises for anything the script does; a
    sandbox that cannot be set up is reported in :attr:`SandboxResult.error`.
    """
    limits = limits or SandboxLimits()
    started = time.monotonic()
    if sys.platform != "linux":
        return SandboxResult(None, None, False, "", 0, "none", f"the code sandbox needs Linux, not {sys.platform}", 0.0)
    drop_uid = os.geteuid() == 0
    uid = _UIDS.acquire() if drop_uid else None
    base = tempfile.gettempdir()
    if drop_uid and not _others_can_reach(base, need=stat.S_IXOTH):
        base = "/tmp"  # the sandbox uid must be able to walk down to its working directory
    workdir = tempfile.mkdtemp(prefix="polya-sandbox-", dir=base)
    try:
        data = script.encode("utf-8", errors="surrogatepass")  # lone surrogates: a syntax error in the sandbox
        with open(os.path.join(workdir, SCRIPT_NAME), "wb") as handle:
            handle.write(data)
        with open(os.path.join(workdir, PRELUDE_NAME), "w", encoding="utf-8") as handle:
            handle.write(_PRELUDE)
        for name in (SCRIPT_NAME, PRELUDE_NAME):
            os.chmod(os.path.join(workdir, name), 0o644)
        if uid is not None:
            os.chown(workdir, uid, uid)
        os.chmod(workdir, 0o700)
        return _supervise(limits, workdir, uid, _program_python(limits, drop_uid), started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if uid is not None:
            _UIDS.release(uid)


def _supervise(
    limits: SandboxLimits,
    workdir: str,
    uid: int | None,
    python: _Interpreter,
    started: float,
) -> SandboxResult:
    out_r, out_w = os.pipe()
    status_r, status_w = os.pipe()
    config = {
        "status_fd": status_w,
        "judge_pid": os.getpid(),
        "workdir": workdir,
        "uid": uid,
        "namespaces": limits.use_namespaces,
        "python": python.path,
        "python_prefix": python.bind_prefix,
        "python_rel": python.bind_relative_path,
        "python_fallback": python.fallback,
        "env": _minimal_env(workdir),
        "limits": {
            "cpu_s": math.ceil(limits.timeout_s) + 1,
            "memory_bytes": limits.memory_mb * 1024 * 1024,
            "file_size_bytes": limits.file_size_mb * 1024 * 1024,
            "disk_mb": limits.disk_mb,
            "max_processes": limits.max_processes,
            "max_open_files": limits.max_open_files,
        },
    }
    try:
        launcher = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            pass_fds=(status_w,),
            cwd=workdir,
            env=_minimal_env(workdir),
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        for fd in (out_r, out_w, status_r, status_w):
            os.close(fd)
        return SandboxResult(None, None, False, "", 0, "none", f"cannot start the sandbox launcher: {exc}", time.monotonic() - started)
    os.close(out_w)
    os.close(status_w)

    tail = _Tail(limits.output_limit_bytes)
    status = bytearray()
    selector = selectors.DefaultSelector()
    selector.register(out_r, selectors.EVENT_READ, "output")
    selector.register(status_r, selectors.EVENT_READ, "status")
    pidfd = None
    try:
        pidfd = os.pidfd_open(launcher.pid)
        selector.register(pidfd, selectors.EVENT_READ, "exit")
    except (AttributeError, OSError):
        pidfd = None  # no pidfd: poll the launcher every 50 ms instead
    deadline = started + _SETUP_LIMIT_S  # until init reports the program's start
    program_started = False
    setup_overran = False
    timed_out = False
    terminated_at: float | None = None
    group_killed = False
    exited_at: float | None = None
    open_streams = 2
    try:
        while True:
            now = time.monotonic()
            if exited_at is None and _launcher_exited(launcher.pid):
                exited_at = now
                if pidfd is not None:
                    selector.unregister(pidfd)
                _kill_group(launcher.pid)  # whatever is left in its group is a leftover (rlimits mode)
            if exited_at is not None and (open_streams == 0 or now - exited_at > _STREAM_GRACE_S):
                break
            if not program_started and b'"event": "isolation"' in status:
                program_started = True
                deadline = now + limits.timeout_s
            if exited_at is None and terminated_at is None and now >= deadline:
                setup_overran = not program_started
                timed_out = program_started and b'"event": "exit"' not in status  # else done, slow teardown
                terminated_at = now
                # Not Popen.send_signal: it would reap an exited launcher and free its pid and group.
                os.kill(launcher.pid, signal.SIGTERM)  # the launcher kills init; the kernel the rest
            if exited_at is None and not group_killed and terminated_at is not None and now >= terminated_at + _KILL_GRACE_S:
                logger.warning("sandbox launcher %s did not stop within %.0fs; killing its process group", launcher.pid, _KILL_GRACE_S)
                _kill_group(launcher.pid)
                group_killed = True
            wait = 0.05 if pidfd is None or exited_at is not None else 1.0
            if terminated_at is None and exited_at is None:
                wait = min(wait, max(deadline - now, 0.0))
            for key, _ in selector.select(timeout=wait):
                if key.data == "exit":
                    continue
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    open_streams -= 1
                elif key.data == "output":
                    tail.add(chunk)
                else:
                    status += chunk
    finally:
        # The launcher is not reaped yet, so its pid still names its process group: nothing
        # the sandbox started in that group outlives this call (namespace modes need no help).
        _kill_group(launcher.pid)
        launcher.wait()
        selector.close()
        for fd in (out_r, status_r) + ((pidfd,) if pidfd is not None else ()):
            os.close(fd)
    if setup_overran:
        status += json.dumps({"event": "error", "message": f"sandbox set-up took longer than {_SETUP_LIMIT_S:g}s"}).encode() + b"\n"
    return _result(status, tail, timed_out, launcher.returncode, started)


def _result(status: bytes, tail: _Tail, timed_out: bool, launcher_code: int, started: float) -> SandboxResult:
    isolation = "unknown"
    wait_status: int | None = None
    errors: list[str] = []
    for line in bytes(status).decode("utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            errors.append(f"unreadable status line {line[:200]!r}")
            continue
        if event.get("event") == "isolation":
            notes = "; ".join(event.get("notes") or [])
            isolation = event["mode"] + (f" ({notes})" if notes else "")
        elif event.get("event") == "exit":
            wait_status = int(event["wait_status"])
        elif event.get("event") == "error":
            errors.append(str(event.get("message")))
    exit_code = signal_number = None
    error = None
    if errors:
        error = "; ".join(errors)
        timed_out = False
    elif wait_status is not None:
        code = os.waitstatus_to_exitcode(wait_status)
        exit_code, signal_number = (code, None) if code >= 0 else (None, -code)
        timed_out = False
    elif not timed_out:
        error = f"sandbox launcher exited with status {launcher_code} before the program finished"
    return SandboxResult(exit_code, signal_number, timed_out, tail.text(), tail.total, isolation, error, time.monotonic() - started)


# ----- the launcher, init and program (run as a script: standard library only) -----------------

_libc: Any = None


def _load_libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _syscall(name: str, *args: Any) -> None:
    if getattr(_load_libc(), name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}{args}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def arg(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)

    _syscall("mount", arg(source), arg(target), arg(fstype), ctypes.c_ulong(flags), arg(data))


def _prctl(option: int, value: int) -> None:
    _syscall("prctl", option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _report(fd: int, **event: Any) -> None:
    os.write(fd, (json.dumps(event) + "\n").encode())


def _unescape_mount_path(path: str) -> str:
    # /proc/self/mountinfo writes space, tab, newline and backslash as octal escapes.
    for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(escaped, char)
    return path


def _mounts() -> list[tuple[str, int]]:
    """(mount point, per-mount flags to keep) of every mount this process sees."""
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            fields = line.split()
            flags = 0
            for option in fields[5].split(","):
                flags |= _MOUNT_OPTION_FLAGS.get(option, 0)
            mounts.append((_unescape_mount_path(fields[4]), flags))
    return mounts


def _enter_namespaces(config: dict[str, Any], notes: list[str]) -> str:
    """Unshare the strongest set of namespaces allowed; return the mode name."""
    if not config["namespaces"]:
        notes.append("namespaces turned off")
        return "rlimits"
    try:
        if os.geteuid() == 0:
            _syscall("unshare", _NAMESPACES)
            return "namespaces"
        uid, gid = os.getuid(), os.getgid()
        _syscall("unshare", CLONE_NEWUSER | _NAMESPACES)
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:
                handle.write(text)
        notes.append("same uid as the service: its files are readable")
        return "user-namespaces"
    except OSError as exc:
        notes.append(f"namespaces unavailable: {exc.strerror}")
        return "rlimits"


def _build_filesystem(config: dict[str, Any], notes: list[str]) -> tuple[str, dict[str, str]]:
    """In the new mount namespace: a tmpfs working directory, temp and runtime folders emptied,
    everything else read-only, a fresh /proc."""
    workdir = config["workdir"]
    env = dict(config["env"])
    python = config["python"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    files = {}
    for name in os.listdir(workdir):
        with open(os.path.join(workdir, name), "rb") as handle:
            files[name] = handle.read()
    needed = [os.path.realpath(python)] + ([config["python_prefix"]] if config["python_prefix"] else [])
    hidden: set[str] = set()
    for folder in _HIDDEN_DIRS:
        real = os.path.realpath(folder)
        if real in hidden or not os.path.isdir(real):
            continue
        if any(path == real or path.startswith(real + os.sep) for path in needed):
            notes.append(f"{real} not hidden: the interpreter is in it")
            continue
        _mount("tmpfs", real, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,nr_inodes=64,mode=0755")
        hidden.add(real)
    os.makedirs(workdir, mode=0o755, exist_ok=True)  # inside a hidden folder it has to be made again
    uid = config["uid"] if config["uid"] is not None else os.getuid()
    gid = config["uid"] if config["uid"] is not None else os.getgid()
    size = f"size={config['limits']['disk_mb']}m,nr_inodes=4096,mode=0700,uid={uid},gid={gid}"
    _mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, size)
    for name, data in files.items():
        path = os.path.join(workdir, name)
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o644)
    if config["python_prefix"]:
        target = os.path.join(workdir, _PYTHON_MOUNT)
        os.mkdir(target, 0o755)
        _mount(config["python_prefix"], target, None, MS_BIND | MS_REC)
        python = os.path.join(target, config["python_rel"])
        env["LD_LIBRARY_PATH"] = os.path.join(target, "lib")
    for mount_point, flags in _mounts():
        if mount_point == workdir:
            continue
        covered = any(mount_point.startswith(folder + os.sep) for folder in hidden)
        if covered and not mount_point.startswith(workdir + os.sep):
            continue  # under an emptied folder: out of sight
        try:
            _mount(None, mount_point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError as exc:
            if mount_point == "/":
                raise
            notes.append(f"{mount_point} stays writable: {exc.strerror}")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    try:  # POSIX semaphores (multiprocessing) need a writable /dev/shm: a private, small one
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16m,nr_inodes=256,mode=1777")
    except OSError as exc:
        notes.append(f"/dev/shm read-only: {exc.strerror}")
    return python, env


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _deny_new_namespaces() -> bool:
    """Install a seccomp filter that refuses unshare, setns and clone with namespace flags.

    Without it a program could make its own user and mount namespaces (kernel attack surface,
    and an unbounded tmpfs of its own). clone3 answers ENOSYS, so libc falls back to clone,
    whose flags the filter can read. False when this architecture has no filter here.
    """
    machine = os.uname().machine
    if machine not in _SECCOMP_ARCHES:
        return False
    arch, unshare_nr, setns_nr, clone_nr, clone3_nr = _SECCOMP_ARCHES[machine]
    ld_w_abs, jeq_k, jge_k, jset_k, ret_k = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, errno_base = 0x7FFF0000, 0x00050000
    eperm, enosys = errno_base | 1, errno_base | 38
    namespace_flags = _NAMESPACES | CLONE_NEWUSER | CLONE_NEWCGROUP
    program = [  # jump offsets count from the next instruction
        (ld_w_abs, 0, 0, 4),  # 0: A = arch
        (jeq_k, 1, 0, arch),  # 1: native ABI -> 3
        (ret_k, 0, 0, enosys),  # 2: other ABIs (i386 int 0x80): nothing
        (ld_w_abs, 0, 0, 0),  # 3: A = syscall number
        (jge_k, 7, 0, 0x40000000),  # 4: x32 ABI -> 12
        (jeq_k, 7, 0, unshare_nr),  # 5: -> 13
        (jeq_k, 6, 0, setns_nr),  # 6: -> 13
        (jeq_k, 4, 0, clone3_nr),  # 7: -> 12
        (jeq_k, 0, 2, clone_nr),  # 8: clone -> 9, anything else -> 11
        (ld_w_abs, 0, 0, 16),  # 9: A = low 32 bits of clone's flags
        (jset_k, 2, 0, namespace_flags),  # 10: a namespace flag -> 13
        (ret_k, 0, 0, allow),  # 11
        (ret_k, 0, 0, enosys),  # 12
        (ret_k, 0, 0, eperm),  # 13
    ]
    filters = (_SockFilter * len(program))(*[_SockFilter(*instruction) for instruction in program])
    fprog = _SockFprog(len(program), ctypes.cast(filters, ctypes.POINTER(_SockFilter)))
    if _load_libc().prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"installing the seccomp filter: {os.strerror(errno)}")
    return True


def _exec_program(config: dict[str, Any], mode: str, python: str, env: dict[str, str]) -> None:
    """In the program's process: limits, unprivileged uid, exec. Never returns."""
    fd = config["status_fd"]
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        limits = config["limits"]
        uid = config["uid"]
        processes = limits["max_processes"]
        if uid is None and mode == "rlimits":  # RLIMIT_NPROC counts all of the service user's processes
            processes += len(_processes_of(os.getuid(), zombies=True))  # unreaped zombies count too
        for which, value in (
            (resource.RLIMIT_AS, limits["memory_bytes"]),
            (resource.RLIMIT_FSIZE, limits["file_size_bytes"]),
            (resource.RLIMIT_NOFILE, limits["max_open_files"]),
            (resource.RLIMIT_NPROC, processes),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))
        resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
        os.set_inheritable(fd, False)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _deny_new_namespaces()
        os.chdir(config["workdir"])
        argv = [python, "-I", "-S", PRELUDE_NAME if mode == "rlimits" else SCRIPT_NAME]
        os.execve(python, argv, env)
    except BaseException as exc:  # noqa: BLE001 - anything here is a sandbox failure, reported as such
        try:
            _report(fd, event="error", message=f"starting the program failed: {exc!r}")
        finally:
            os._exit(127)


def _init_main(config: dict[str, Any], mode: str, notes: list[str]) -> int:
    """pid 1 of the sandbox (namespace modes) or a plain waiter (rlimits): run the program, report its end."""
    fd = config["status_fd"]
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # pid 1: signals without a handler cannot reach it
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    python, env = config["python"], dict(config["env"])
    if mode == "rlimits" and config["python_prefix"]:
        if not config["python_fallback"]:
            _report(fd, event="error", message=f"the sandbox uid cannot reach the interpreter {python} and no system python3 was found")
            return 1
        notes.append(f"interpreter {config['python_fallback']} (the sandbox uid cannot reach {python})")
        python = config["python_fallback"]
    if mode != "rlimits":
        try:
            python, env = _build_filesystem(config, notes)
        except OSError as exc:
            _report(fd, event="error", message=f"building the sandbox filesystem failed: {exc}")
            return 1
    if os.uname().machine not in _SECCOMP_ARCHES:
        notes.append(f"no seccomp filter for {os.uname().machine}: the program may make namespaces of its own")
    _report(fd, event="isolation", mode=mode, notes=notes)
    child = os.fork()
    if child == 0:
        _exec_program(config, mode, python, env)
    while True:
        # pid 1 reaps orphans too; when the program is done, init exits and the kernel kills the rest.
        pid, wait_status = os.waitpid(-1 if mode != "rlimits" else child, 0)
        if pid == child:
            _report(fd, event="exit", wait_status=wait_status)
            return 0


def _processes_of(uid: int, *, zombies: bool = False) -> list[int]:
    """Processes whose real, effective, saved or filesystem uid is ``uid`` (zombies only when asked)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if not zombies and line.startswith("State:") and line.split()[1] in ("Z", "X"):
                        break  # dead already; its new parent reaps it
                    if line.startswith("Uid:"):
                        if uid in [int(value) for value in line.split()[1:]]:
                            pids.append(int(entry))
                        break
        except OSError:
            continue
    return pids


def _kill_uid(uid: int) -> None:
    """rlimits mode as root: kill every process of the sandbox uid, forks racing included."""
    for _ in range(100):
        if not _processes_of(uid):
            return
        helper = os.fork()
        if helper == 0:
            try:
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)  # every process this uid may signal, except this one
            finally:
                os._exit(0)
        os.waitpid(helper, 0)
        time.sleep(0.01)


def _launcher_main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    fd = config["status_fd"]
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the judge died: so does everything below
    if os.getppid() != config["judge_pid"]:
        return 1
    notes: list[str] = []
    mode = _enter_namespaces(config, notes)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    init = os.fork()
    if init == 0:
        code = 1
        try:
            code = _init_main(config, mode, notes)
        except BaseException as exc:  # noqa: BLE001
            _report(fd, event="error", message=f"sandbox init failed: {exc!r}")
        finally:
            os._exit(code)

    def stop(signum: int, frame: object) -> None:
        try:
            os.kill(init, signal.SIGKILL)  # from outside the pid namespace: init dies, the kernel kills the rest
        except OSError:
            pass  # init is gone already

    signal.signal(signal.SIGTERM, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    os.waitpid(init, 0)  # in a pid namespace this returns after every process in it is gone
    if mode == "rlimits" and config["uid"] is not None:
        _kill_uid(config["uid"])
    return 0


if __name__ == "__main__":
    sys.exit(_launcher_main(sys.argv))
