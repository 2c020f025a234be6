"""A pool of judge worker processes with a hard per-item deadline.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot kill one stuck worker without
breaking the whole pool, and hostile model output does get judges stuck (a regex that
backtracks for minutes, a sympy expression that never simplifies). Here every worker is a
``spawn``-ed process of its own that judges items on its **main thread** (math-verify's
``signal.alarm`` timeouts only work there) and talks to the pool over a pipe.

One dispatcher thread in the calling process hands out items, reads verdicts and enforces the
deadline: a worker still busy on an item after ``deadline_s`` (code items: their own timeout plus
a margin) is killed with its process group (so a program it runs dies too) and replaced; the item
gets ``Verdict(status="timeout", reason="deadline exceeded")`` and later items go on as usual.
A worker that dies on its own (a crash, the OOM killer) costs its current item an ``error``
verdict and is replaced too, unless more than ``crash_limit`` died within a minute: then the pool
is dead (:meth:`JudgePool.alive` is False) and pending work fails with :class:`JudgePoolError`.

Items travel in **chunks**: one pipe message carries up to ``chunk_size`` items, and one reply
carries their verdicts. Fewer when the queue is short (every worker gets a share) or items are
slow (about :data:`_CHUNK_WORK_S` of judging a chunk, from the recent time per item); a code item
always travels alone (it may run for seconds). The deadline stays per item: before each item
a worker writes the item's number and start time into a small shared-memory slot, and the
dispatcher reads it, so it knows which item of a chunk is running and for how long. A worker sends
what it has judged so far whenever ``_FLUSH_S`` passed since its last reply, so a slow item does
not hold back the verdicts before it. When a worker is killed (deadline) or dies, only the item it
was judging gets the ``timeout`` / ``error`` verdict; every other item of its chunks whose verdict
did not arrive goes back to the front of the queue and is judged again.

Batches from concurrent callers are served round-robin, item by item (a chunk may mix callers),
so one large batch does not starve small ones. Each worker holds at most ``prefetch`` chunks (the
next one waits in its pipe so it never idles between chunks).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import selectors
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from polya.core.errors import PolyaError
from polya.verify.judge import judge_item, oversized_verdict
from polya.verify.math_judge import REL_TOL, fast_path_hits
from polya.verify.protocol import Verdict, VerifyItem

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]
"""Called with the number of items just finished (from the pool's dispatcher thread)."""

_PREFETCH_MAX_BYTES = 16 * 1024
"""An item is queued in a busy worker's pipe only when it is this small: a larger one could fill
the pipe and block the dispatcher thread (and with it the deadline checks) while that worker is
stuck. Larger items wait until their worker is idle and reading."""

_FLUSH_S = 0.2
"""A worker replies with the verdicts it has so far once this long passed since its last reply,
even in the middle of a chunk: what a killed worker judged but did not send is judged again."""

_CHUNK_WORK_S = 0.01
"""A chunk holds about this much judging (from the recent time per item), so that slow items
travel a few at a time and the workers finish a batch together; fast ones up to ``chunk_size``."""

_CRASH_WINDOW_S = 60.0
_PARENT_CHECK_S = 1.0


class JudgePoolError(PolyaError):
    """The pool cannot judge: it is closed, or its workers keep dying (the message says which)."""


class ItemRefused(PolyaError, ValueError):
    """An item the pool will not judge as asked (``field`` names it, e.g. ``items[3].timeout_s``)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of the pool, for /health and /metrics."""

    workers: int
    workers_alive: int
    workers_ready: int
    queue_depth: int
    in_progress: int
    items_judged: int
    restarts: int
    deadline_kills: int
    crashes: int
    alive: bool
    messages_sent: int = 0
    """Chunks sent to workers (each is one pipe message and at least one reply)."""
    fast_path_hits: int = 0
    """Math items decided as identical after normalisation, without math-verify."""


# ----- worker process ----------------------------------------------------------------------------


def _watch_parent(parent_pid: int) -> None:
    """Worker-side: exit with the whole process group when the pool's process is gone."""
    while True:
        time.sleep(_PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            try:
                os.killpg(0, signal.SIGKILL)
            finally:
                os._exit(1)


def _judge_fields(item_fields: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    try:
        return judge_item(VerifyItem.model_validate(item_fields), **settings).model_dump()
    except Exception as exc:  # judge_item does not raise; this guards the protocol itself
        return {
            "id": item_fields.get("id"), "kind": item_fields.get("kind", "math"), "correct": False,
            "status": "error", "extracted": None, "reason": f"worker error: {type(exc).__name__}: {exc}"[:300],
        }


def _worker_main(
    conn: multiprocessing.connection.Connection, settings: dict[str, Any], parent_pid: int, progress: Any
) -> None:
    """Entry point of a worker process: warm up, say ready, then judge chunks of items until the pipe closes.

    A chunk is ``[(seq, pickled item fields), ...]``; the reply ``("verdicts", [(seq, verdict
    fields), ...], fast path hits)``, sent when the chunk is done or :data:`_FLUSH_S` after the
    last reply. ``progress`` (shared memory) holds the start time and seq of the item being judged.
    """
    try:
        os.setpgid(0, 0)  # own process group: killing it also kills programs a code judge started
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the pool owner's business
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    try:
        # Importing math-verify and its grammar takes about a second: pay it before saying ready.
        judge_item(VerifyItem(kind="math", prediction="\\boxed{1}", reference="1"), **settings)
        conn.send_bytes(pickle.dumps(("ready", os.getpid())))
    except (BrokenPipeError, EOFError, ConnectionError):
        return  # the pool closed while this worker was starting
    except BaseException:
        try:
            conn.send_bytes(pickle.dumps(("failed", traceback.format_exc(limit=8))))
        except OSError:
            pass
        return
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        chunk = pickle.loads(data)
        done: list[tuple[int, dict[str, Any]]] = []
        hits_before = fast_path_hits()
        last_reply = time.monotonic()
        for seq, item_bytes in chunk:
            now = time.monotonic()
            if done and now - last_reply >= _FLUSH_S:
                if not _reply(conn, done, fast_path_hits() - hits_before):
                    return
                done, hits_before, last_reply = [], fast_path_hits(), now
            progress[0] = now  # the start time first, then the seq: the pool reads them the other way round
            progress[1] = float(seq)
            done.append((seq, _judge_fields(pickle.loads(item_bytes), settings)))
        if not _reply(conn, done, fast_path_hits() - hits_before):
            return


def _reply(conn: multiprocessing.connection.Connection, done: list[tuple[int, dict[str, Any]]], hits: int) -> bool:
    try:
        conn.send_bytes(pickle.dumps(("verdicts", done, hits), protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        return False
    return True


# ----- pool-side bookkeeping ---------------------------------------------------------------------


class _Batch:
    """One caller's items; its future resolves with the verdicts in item order."""

    __slots__ = ("items", "verdicts", "next_index", "remaining", "future", "on_progress")

    def __init__(self, items: list[VerifyItem], on_progress: ProgressCallback | None):
        self.items = items
        self.verdicts: list[Verdict | None] = [None] * len(items)
        self.next_index = 0
        self.remaining = len(items)
        self.future: concurrent.futures.Future[list[Verdict]] = concurrent.futures.Future()
        self.on_progress = on_progress

    @property
    def abandoned(self) -> bool:
        return self.future.done()  # cancelled by the caller, or failed

    def finish(self, index: int, verdict: Verdict) -> None:
        if self.verdicts[index] is not None:
            return
        self.verdicts[index] = verdict
        self.remaining -= 1
        if self.on_progress is not None:
            try:
                self.on_progress(1)
            except Exception:  # a progress bar must not break judging
                logger.debug("progress callback failed", exc_info=True)
        if self.remaining == 0:
            _resolve(self.future, result=list(self.verdicts))  # type: ignore[arg-type]


def _resolve(future: concurrent.futures.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass  # the caller cancelled it meanwhile


@dataclass
class _Task:
    batch: _Batch
    index: int

    @property
    def item(self) -> VerifyItem:
        return self.batch.items[self.index]


@dataclass(eq=False)
class _Worker:
    process: Any  # multiprocessing.context.SpawnProcess
    conn: multiprocessing.connection.Connection
    spawned_at: float
    progress: Any  # shared RawArray("d", 2): start time (time.monotonic) and seq of the item being judged
    ready: bool = False
    tasks: collections.deque[tuple[int, _Task]] = field(default_factory=collections.deque)
    """Items sent and not answered yet, in the order the worker judges them."""
    chunk_ends: collections.deque[int] = field(default_factory=collections.deque)
    """The last seq of each chunk sent and not fully answered (its length: chunks held)."""
    head_since: float = 0.0
    """When the first unanswered item became first (sent to an idle worker, or the reply before it came)."""
    failure: str | None = None
    fd: int = -1

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def current(self, now: float) -> tuple[int, float] | None:
        """(position in ``tasks``, seconds it has run) of the item being judged; None when idle.

        From the worker's progress slot when it names an unanswered item; else the first item,
        counted from when it became first (the worker has not started it, or is between items).
        """
        if not self.tasks:
            return None
        seq = int(self.progress[1])  # seq before start time: the worker writes them the other way round
        started = self.progress[0]
        first = self.tasks[0][0]
        if seq >= first:
            for position, (task_seq, _task) in enumerate(self.tasks):
                if task_seq == seq:
                    return position, now - started
        return 0, now - self.head_since


def _kill_descendants(pid: int) -> None:
    """SIGKILL every process below ``pid`` (best effort; needs psutil)."""
    try:
        import psutil
    except ImportError:
        return
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            pass


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class JudgePool:
    """Judge :class:`VerifyItem` s in ``workers`` spawned processes, each item under a hard deadline.

    ``await pool.judge(items)`` / ``pool.judge_sync(items)`` return the verdicts in item order.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        workers: int,
        deadline_s: float,
        *,
        math_timeout_s: float = 5.0,
        math_rel_tol: float = REL_TOL,
        max_item_timeout_s: float | None = None,
        code_timeout_s: float = 10.0,
        code_memory_mb: int = 1024,
        code_deadline_margin_s: float = 10.0,
        max_prediction_chars: int | None = None,
        crash_limit: int = 8,
        startup_timeout_s: float = 120.0,
        prefetch: int = 2,
        chunk_size: int = 16,
    ):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        self.workers = workers
        self.deadline_s = float(deadline_s)
        self.math_timeout_s = float(math_timeout_s)
        self.code_timeout_s = float(code_timeout_s)
        self.code_deadline_margin_s = float(code_deadline_margin_s)
        self.max_item_timeout_s = max_item_timeout_s
        self.max_prediction_chars = max_prediction_chars
        self.crash_limit = crash_limit
        self.startup_timeout_s = startup_timeout_s
        self.prefetch = max(1, prefetch)
        self.chunk_size = max(1, chunk_size)
        self._settings = {
            "math_timeout_s": float(math_timeout_s), "math_rel_tol": float(math_rel_tol),
            "code_timeout_s": float(code_timeout_s), "code_memory_mb": int(code_memory_mb),
        }
        self._ctx = multiprocessing.get_context("spawn")

        self._lock = threading.Lock()
        self._batches: collections.deque[_Batch] = collections.deque()  # batches with unsent items
        self._requeued: collections.deque[_Task] = collections.deque()  # tasks taken back from a killed worker
        self._queued = 0
        self._closing = False
        self._dead_reason: str | None = None
        self._workers: list[_Worker] = []
        self._seq = 0
        self._crash_times: collections.deque[float] = collections.deque()
        self._last_failure: str | None = None
        self._ready_event = threading.Event()
        self._ever_ready = 0
        self._item_s = 0.001  # moving average of the time a worker spent per item

        self.restarts = 0
        """Workers replaced (deadline kills and crashes)."""
        self.deadline_kills = 0
        """Items that ran past their deadline (their worker was killed)."""
        self.crashes = 0
        """Workers that died on their own."""
        self.items_judged = 0
        self.messages_sent = 0
        """Chunks sent to workers."""
        self.fast_path_hits = 0
        """Math items decided as identical after normalisation (no math-verify)."""

        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="polya-judge-pool", daemon=True)
        self._thread.start()

    # ----- public API -----------------------------------------------------------------------------

    def submit(self, items: Iterable[VerifyItem | dict[str, Any]], on_progress: ProgressCallback | None = None) -> concurrent.futures.Future[list[Verdict]]:
        """Queue ``items``; the future resolves with their verdicts, in order."""
        checked = [i if isinstance(i, VerifyItem) else VerifyItem.model_validate(i) for i in items]
        if self.max_item_timeout_s is not None:
            for index, item in enumerate(checked):
                if item.timeout_s is not None and item.timeout_s > self.max_item_timeout_s:
                    raise ItemRefused(
                        f"items[{index}].timeout_s is {item.timeout_s:g}; this verifier allows at most "
                        f"{self.max_item_timeout_s:g} (max_item_timeout_s)",
                        field=f"items[{index}].timeout_s",
                    )
        batch = _Batch(checked, on_progress)
        for index, item in enumerate(checked):  # too long to judge: answered here, never shipped to a worker
            early = oversized_verdict(item, self.max_prediction_chars)
            if early is not None:
                batch.finish(index, early)
        if batch.remaining == 0:
            _resolve(batch.future, result=list(batch.verdicts))
            return batch.future
        with self._lock:
            self._raise_if_unusable()
            self._batches.append(batch)
            self._queued += len(checked)  # items answered already are skipped (and uncounted) when their turn comes
        self._wake()
        return batch.future

    async def judge(self, items: Sequence[VerifyItem | dict[str, Any]], on_progress: ProgressCallback | None = None) -> list[Verdict]:
        """Judge ``items`` without blocking the event loop; cancelling drops the items not started yet."""
        return await asyncio.wrap_future(self.submit(items, on_progress))

    def judge_sync(self, items: Sequence[VerifyItem | dict[str, Any]], on_progress: ProgressCallback | None = None) -> list[Verdict]:
        """Judge ``items`` and block until all verdicts are in."""
        return self.submit(items, on_progress).result()

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Block until every worker has started and warmed up; raise :class:`JudgePoolError` if that fails."""
        limit = self.startup_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        while not self._ready_event.wait(timeout=0.1):
            if self._dead_reason is not None or self._closing:
                break
            if time.monotonic() > deadline:
                raise JudgePoolError(
                    f"judge workers did not start within {limit:.0f}s"
                    + (f"; last failure: {self._last_failure}" if self._last_failure else "")
                )
        self._raise_if_unusable()

    def alive(self) -> bool:
        """True while the pool can judge: not closed, not dead, dispatcher running, a worker alive or starting."""
        if self._closing or self._dead_reason is not None or not self._thread.is_alive():
            return False
        return any(w.process.is_alive() for w in list(self._workers))

    @property
    def dead_reason(self) -> str | None:
        """Why the pool stopped judging (None while it works)."""
        if self._dead_reason is None and not self._closing and not self._thread.is_alive():
            return "dispatcher thread stopped"
        return self._dead_reason

    @property
    def timeouts(self) -> int:
        """Items that got ``status="timeout", reason="deadline exceeded"`` (same as ``deadline_kills``)."""
        return self.deadline_kills

    def queue_depth(self) -> int:
        """Items waiting for a worker."""
        return self._queued

    def stats(self) -> PoolStats:
        workers = list(self._workers)
        return PoolStats(
            workers=self.workers,
            workers_alive=sum(1 for w in workers if w.process.is_alive()),
            workers_ready=sum(1 for w in workers if w.ready and w.process.is_alive()),
            queue_depth=self._queued,
            in_progress=sum(1 for w in workers if w.tasks),
            items_judged=self.items_judged,
            restarts=self.restarts,
            deadline_kills=self.deadline_kills,
            crashes=self.crashes,
            alive=self.alive(),
            messages_sent=self.messages_sent,
            fast_path_hits=self.fast_path_hits,
        )

    def worker_pids(self) -> list[int]:
        return [w.pid for w in list(self._workers) if w.process.pid is not None]

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the workers; items still pending fail with :class:`JudgePoolError`. Idempotent."""
        with self._lock:
            self._closing = True
        self._wake()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            logger.warning("judge pool dispatcher did not stop within %.0fs", timeout_s)
            return
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "JudgePool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- dispatcher thread ----------------------------------------------------------------------

    def _raise_if_unusable(self) -> None:
        if self._dead_reason is not None:
            raise JudgePoolError(f"judge pool is dead: {self._dead_reason}")
        if self._closing:
            raise JudgePoolError("judge pool is closed")

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # already signalled, or closed

    def deadline_for(self, item: VerifyItem) -> float:
        """The wall-clock backstop for ``item``: code: its run time limit plus the margin; math and
        choice: ``deadline_s``, scaled by how much more CPU time than ``math_timeout_s`` it may take."""
        if item.kind == "code":
            return (item.timeout_s or self.code_timeout_s) + self.code_deadline_margin_s
        return self.deadline_s * max(1.0, (item.timeout_s or self.math_timeout_s) / self.math_timeout_s)

    def _run(self) -> None:
        try:
            for _ in range(self.workers):
                self._spawn()
            while not self._closing and self._dead_reason is None:
                self._assign()
                ready = {key.data for key, _events in self._selector.select(timeout=self._next_check_in())}
                if None in ready:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                for w in list(self._workers):
                    exited = (w, "exit") in ready
                    if (w, "pipe") in ready or exited:
                        self._read(w)  # after an exit too: a verdict may have been sent just before
                    if exited or w.failure is not None:
                        self._on_crash(w)
                self._check_deadlines()
        except Exception as exc:  # a bug here must not leave callers waiting forever
            logger.exception("judge pool dispatcher failed")
            self._dead_reason = f"dispatcher failed: {type(exc).__name__}: {exc}"
        finally:
            self._shutdown()

    def _spawn(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        progress = self._ctx.RawArray("d", 2)
        progress[1] = -1.0
        process = self._ctx.Process(
            target=_worker_main, args=(child_conn, self._settings, os.getpid(), progress),
            name="polya-judge-worker", daemon=True,
        )
        process.start()
        child_conn.close()
        worker = _Worker(
            process=process, conn=parent_conn, spawned_at=time.monotonic(), progress=progress, fd=parent_conn.fileno()
        )
        self._selector.register(parent_conn.fileno(), selectors.EVENT_READ, (worker, "pipe"))
        self._selector.register(process.sentinel, selectors.EVENT_READ, (worker, "exit"))
        self._workers.append(worker)
        logger.debug("started judge worker pid %s", process.pid)

    def _take(self) -> _Task | None:
        with self._lock:
            while self._requeued:
                task = self._requeued.popleft()
                self._queued -= 1
                if not task.batch.abandoned:
                    return task
            while self._batches:
                batch = self._batches.popleft()
                if batch.abandoned:
                    self._queued -= len(batch.items) - batch.next_index
                    continue
                index = batch.next_index
                batch.next_index += 1
                self._queued -= 1
                if batch.next_index < len(batch.items):
                    self._batches.append(batch)  # round-robin between callers
                if batch.verdicts[index] is not None:  # answered without a worker (too long)
                    continue
                return _Task(batch, index)
        return None

    def _take_chunk(self, size: int) -> list[_Task]:
        """Up to ``size`` tasks for one message; a code item travels alone (it may run for seconds)."""
        chunk: list[_Task] = []
        while len(chunk) < size:
            task = self._take()
            if task is None:
                break
            if task.item.kind == "code" and chunk:
                self._put_back([task])
                break
            chunk.append(task)
            if task.item.kind == "code":
                break
        return chunk

    def _chunk_size(self) -> int:
        """Items per message now: ``chunk_size``, or fewer so that each worker's ``prefetch`` chunks
        share the queue and a chunk is about :data:`_CHUNK_WORK_S` of judging."""
        share = -(-self._queued // (self.workers * self.prefetch))
        by_time = int(_CHUNK_WORK_S / self._item_s)
        return max(1, min(self.chunk_size, share, by_time))

    def _put_back(self, tasks: Iterable[_Task]) -> None:
        with self._lock:
            tasks = [t for t in tasks if not t.batch.abandoned]
            self._requeued.extendleft(reversed(tasks))
            self._queued += len(tasks)

    def _send(self, w: _Worker, chunk: list[_Task], entries: list[tuple[int, bytes]]) -> bool:
        try:
            w.conn.send_bytes(pickle.dumps(entries, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, ConnectionError, OSError):
            self._put_back(chunk)
            w.failure = w.failure or "pipe closed"
            return False
        if not w.tasks:
            w.head_since = time.monotonic()
        w.tasks.extend((seq, task) for (seq, _data), task in zip(entries, chunk))
        w.chunk_ends.append(entries[-1][0])
        self.messages_sent += 1
        return True

    def _assign(self) -> None:
        # Idle workers first, then one more chunk into busy workers' pipes (prefetch).
        for depth in range(self.prefetch):
            for w in self._workers:
                if not w.ready or len(w.chunk_ends) != depth or w.failure is not None:
                    continue
                chunk = self._take_chunk(self._chunk_size())
                if not chunk:
                    return
                entries = []
                size = 0
                for position, task in enumerate(chunk):
                    data = pickle.dumps(task.item.model_dump(exclude_defaults=True), protocol=pickle.HIGHEST_PROTOCOL)
                    size += len(data)
                    if depth > 0 and size > _PREFETCH_MAX_BYTES:
                        self._put_back(chunk[position:])  # waits until a worker is idle and reading
                        chunk = chunk[:position]
                        break
                    self._seq += 1
                    entries.append((self._seq, data))
                if chunk:
                    self._send(w, chunk, entries)

    def _read(self, w: _Worker) -> None:
        try:
            while w.conn.poll():
                message = pickle.loads(w.conn.recv_bytes())
                self._on_message(w, message)
        except (EOFError, OSError):
            w.failure = w.failure or "pipe closed"
            w.process.join(timeout=0.5)  # it is exiting: let its exit code be known

    def _on_message(self, w: _Worker, message: tuple[Any, ...]) -> None:
        tag, body = message[0], message[1]
        if tag == "ready":
            w.ready = True
            self._ever_ready += 1
            if self._ever_ready >= self.workers:
                self._ready_event.set()
            return
        if tag == "failed":
            w.failure = str(body)
            self._last_failure = str(body).strip().splitlines()[-1] if str(body).strip() else "worker failed"
            logger.error("judge worker pid %s failed to start:\n%s", w.pid, body)
            return
        assert tag == "verdicts", f"unexpected message {tag!r} from judge worker pid {w.pid}"
        results, hits = body, message[2]  # type: ignore[misc]
        self.fast_path_hits += hits
        for seq, fields in results:
            task_seq, task = w.tasks.popleft()
            assert seq == task_seq, f"worker answered item {seq}, expected {task_seq}"
            self.items_judged += 1
            self._item_s = 0.9 * self._item_s + 0.1 * min(float(fields.get("latency_s") or 0.0), 1.0)
            task.batch.finish(task.index, Verdict.model_construct(**fields))
        while w.chunk_ends and (not w.tasks or w.chunk_ends[0] < w.tasks[0][0]):
            w.chunk_ends.popleft()
        w.head_since = time.monotonic()

    def _next_check_in(self) -> float:
        now = time.monotonic()
        wake = now + 1.0
        for w in self._workers:
            current = w.current(now)
            if current is not None:
                position, elapsed = current
                wake = min(wake, now - elapsed + self.deadline_for(w.tasks[position][1].item))
            elif not w.ready:
                wake = min(wake, w.spawned_at + self.startup_timeout_s)
        return max(0.0, wake - now)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for w in list(self._workers):
            if w.tasks:
                position, elapsed = w.current(now) or (0, 0.0)
                if elapsed < self.deadline_for(w.tasks[position][1].item):
                    continue
                self._read(w)  # its verdict may have come in meanwhile
                current = w.current(time.monotonic())
                if current is None or w.failure is not None:
                    continue  # answered after all, or it died: the next round handles that
                position, elapsed = current
                task = w.tasks[position][1]
                limit = self.deadline_for(task.item)
                if elapsed < limit:
                    continue
                item = task.item
                logger.warning(
                    "judge worker pid %s spent over %.1fs on %s item %s; killed and replaced",
                    w.pid, limit, item.kind, item.id if item.id is not None else f"#{task.index}",
                )
                self._remove(w)
                self.deadline_kills += 1
                del w.tasks[position]
                task.batch.finish(
                    task.index,
                    Verdict(id=item.id, kind=item.kind, correct=False, status="timeout", extracted=None,
                            reason="deadline exceeded", latency_s=elapsed),
                )
                self._put_back(t for _s, t in w.tasks)  # its chunk neighbours are judged again
                w.tasks.clear()
                w.chunk_ends.clear()
                self.restarts += 1
                self._spawn()
            elif not w.ready and now - w.spawned_at > self.startup_timeout_s:
                self._last_failure = f"worker did not start within {self.startup_timeout_s:.0f}s"
                self._remove(w)
                self._count_crash(w, self._last_failure)

    def _remove(self, w: _Worker) -> None:
        """Kill a worker with its process group and forget it."""
        if w in self._workers:
            self._workers.remove(w)
            for fd in (w.fd, w.process.sentinel):
                try:
                    self._selector.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
        pid = w.process.pid
        if pid is not None and w.process.exitcode is None:
            _kill_descendants(pid)  # a code judge's sandbox runs in a session of its own
            try:
                os.killpg(pid, signal.SIGKILL)  # the worker and anything left in its process group
            except (ProcessLookupError, PermissionError, OSError):
                pass
            try:
                w.process.kill()
            except Exception:
                pass
        w.process.join(timeout=5)
        try:
            w.conn.close()
        except OSError:
            pass

    def _on_crash(self, w: _Worker) -> None:
        """A worker died on its own: fail its current item, requeue the rest, maybe replace it."""
        code = w.process.exitcode
        if code is None:  # pipe broke but the process lingers
            self._remove(w)
            code = w.process.exitcode
        else:
            self._remove(w)
        how = _describe_exit(code)
        if w.failure and w.failure != "pipe closed":
            how += f" after: {self._last_failure}"
        current = w.current(time.monotonic())
        if current is not None:
            position, elapsed = current
            task = w.tasks[position][1]
            del w.tasks[position]
            item = task.item
            logger.error("judge worker pid %s died (%s) while judging %s item %s", w.pid, how, item.kind, item.id)
            task.batch.finish(
                task.index,
                Verdict(id=item.id, kind=item.kind, correct=False, status="error", extracted=None,
                        reason=f"worker process died ({how}) while judging this item", latency_s=elapsed),
            )
            self._put_back(t for _s, t in w.tasks)  # its chunk neighbours are judged again
            w.tasks.clear()
            w.chunk_ends.clear()
        else:
            logger.error("judge worker pid %s died (%s)", w.pid, how)
        self._count_crash(w, f"worker pid {w.pid} {how}")

    def _count_crash(self, w: _Worker, what: str) -> None:
        self.crashes += 1
        now = time.monotonic()
        self._crash_times.append(now)
        while self._crash_times and now - self._crash_times[0] > _CRASH_WINDOW_S:
            self._crash_times.popleft()
        if len(self._crash_times) > self.crash_limit:
            self._dead_reason = (
                f"{len(self._crash_times)} judge workers died within {_CRASH_WINDOW_S:.0f}s "
                f"(limit {self.crash_limit}); last: {what}. Workers are spawned processes: a script that "
                "uses the pool needs an `if __name__ == '__main__':` guard and cannot be read from stdin"
            )
            logger.error("judge pool is dead: %s", self._dead_reason)
            return
        self.restarts += 1
        self._spawn()

    def _shutdown(self) -> None:
        """Stop every worker and fail whatever is still pending."""
        error = JudgePoolError(f"judge pool is dead: {self._dead_reason}" if self._dead_reason else "judge pool is closed")
        pending: list[_Batch] = [t.batch for w in self._workers for _s, t in w.tasks]
        for w in list(self._workers):
            if not w.tasks and w.process.is_alive():
                try:
                    w.conn.close()  # the worker sees EOF and exits
                except OSError:
                    pass
        stop_by = time.monotonic() + 2.0
        for w in list(self._workers):
            if not w.tasks:
                w.process.join(timeout=max(0.0, stop_by - time.monotonic()))
            self._remove(w)
        with self._lock:
            pending.extend(self._batches)
            pending.extend(t.batch for t in self._requeued)
            self._batches.clear()
            self._requeued.clear()
            self._queued = 0
        for batch in pending:
            _resolve(batch.future, error=error)
        self._ready_event.set()
