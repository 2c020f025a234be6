"""judge_item dispatch and the JudgePool: order, deadlines (a real stuck item is killed and its
worker replaced), crashes, the crash limit, fairness between callers, cancellation, close.

The stuck item is real model output, not a test hook: ``\\boxed{9^{9^{9}}+1}`` against ``5``
makes SymPy work on a 370-million-digit number until math-verify's own timeout, which the pool
here sets to a minute; the pool's 3-second deadline must cut it short.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Iterator

import pytest

from polya.verify import JudgePool, JudgePoolError, Verdict, VerifyItem, judge_item
from support.waiting import wait_for

DEADLINE_S = 3.0
MATH_TIMEOUT_S = 60
"""math-verify's own limit in the shared pool: far past the deadline, so the deadline must act."""

HUGE_POWER = "\\boxed{9^{9^{9}}+1}"
"""Compared with 5, math-verify works until its own timeout (measured: the full 60 s)."""

BACKTRACKING = "The answer is" + " " * 19_000 + "a" * 300
"""Made ``extract_final_answer``'s regex backtrack for minutes when this test was written."""


def math(i: int, right: bool = True) -> VerifyItem:
    return VerifyItem(id=f"m{i}", kind="math", prediction=f"So the result is \\boxed{{{i}}}.", reference=str(i if right else i + 1))


def stuck_item(item_id: str = "stuck") -> VerifyItem:
    return VerifyItem(id=item_id, kind="math", prediction=HUGE_POWER, reference="5")


def code(program: str, item_id: str = "c") -> VerifyItem:
    return VerifyItem(
        id=item_id, kind="code", prediction=program, entry_point="add",
        tests="def check(candidate):\n    assert candidate(1, 2) == 3\n",
    )


def choice(prediction: str, reference: str = "B") -> VerifyItem:
    return VerifyItem(id="q", kind="choice", prediction=prediction, options=["red", "green", "blue"], reference=reference)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0)
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


# ----- judge_item -------------------------------------------------------------------------------


def test_judge_item_math() -> None:
    right = judge_item(math(7))
    assert (right.id, right.kind, right.correct, right.status, right.extracted, right.reason) == ("m7", "math", True, "pass", "7", "equivalent")
    assert right.latency_s > 0
    wrong = judge_item(math(7, right=False))
    assert (wrong.correct, wrong.status, wrong.reason) == (False, "fail", "not equivalent")
    none = judge_item(VerifyItem(kind="math", prediction="I do not know.", reference="3"))
    assert (none.status, none.extracted, none.reason) == ("fail", None, "no final answer found")


def test_judge_item_choice() -> None:
    assert judge_item(choice("The answer is (B) green.")).status == "pass"
    wrong = judge_item(choice("It must be red, option A."))
    assert wrong.status == "fail" and not wrong.correct and wrong.kind == "choice"


def test_judge_item_code() -> None:
    good = judge_item(code("def add(a, b):\n    return a + b\n"))
    assert (good.status, good.correct, good.extracted) == ("pass", True, None)
    bad = judge_item(code("def add(a, b):\n    return a - b\n"))
    assert bad.status == "fail" and not bad.correct and "AssertionError" in bad.reason


def test_judge_item_turns_a_judge_exception_into_an_error_verdict() -> None:
    # judge_code refuses an entry point that is not a Python name: an exception, not a verdict.
    item = VerifyItem(id="x", kind="code", prediction="def f(): pass\n", tests="def check(c): pass\n", entry_point="not a name")
    verdict = judge_item(item)
    assert (verdict.id, verdict.status, verdict.correct) == ("x", "error", False)
    assert verdict.reason.startswith("judge error: ValueError: entry_point must be a Python name")


def test_judge_item_rejects_overlong_prediction_as_fail() -> None:
    verdict = judge_item(VerifyItem(kind="math", prediction="x" * 101 + "\\boxed{1}", reference="1"), max_prediction_chars=100)
    assert (verdict.status, verdict.correct, verdict.reason) == ("fail", False, "prediction longer than 100 characters")


# ----- the pool -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[JudgePool]:
    with JudgePool(
        2, DEADLINE_S, math_timeout_s=MATH_TIMEOUT_S, code_timeout_s=2.0, code_deadline_margin_s=5.0, max_prediction_chars=50_000
    ) as p:
        p.wait_ready(120)
        yield p


def test_verdicts_come_back_in_item_order(pool: JudgePool) -> None:
    items = [math(i, right=i % 3 != 0) for i in range(120)]
    verdicts = pool.judge_sync(items)
    assert [v.id for v in verdicts] == [i.id for i in items]
    assert [v.correct for v in verdicts] == [i % 3 != 0 for i in range(120)]
    assert all(isinstance(v, Verdict) for v in verdicts)


def test_mixed_kinds_and_dicts(pool: JudgePool) -> None:
    items = [
        math(1),
        {"id": "d", "kind": "math", "prediction": "#### 12", "reference": "12"},
        choice("Final answer: B"),
        code("def add(a, b):\n    return a + b\n"),
    ]
    assert [v.status for v in pool.judge_sync(items)] == ["pass", "pass", "pass", "pass"]


def test_empty_batch(pool: JudgePool) -> None:
    assert pool.judge_sync([]) == []


def test_async_judge_and_concurrent_callers(pool: JudgePool) -> None:
    async def main() -> list[list[Verdict]]:
        return await asyncio.gather(*(pool.judge([math(100 * c + i) for i in range(20)]) for c in range(6)))

    results = asyncio.run(main())
    for c, verdicts in enumerate(results):
        assert [v.id for v in verdicts] == [f"m{100 * c + i}" for i in range(20)]
        assert all(v.correct for v in verdicts)


def test_threads_share_the_pool(pool: JudgePool) -> None:
    out: dict[int, list[Verdict]] = {}

    def work(t: int) -> None:
        out[t] = pool.judge_sync([math(1000 * t + i) for i in range(15)])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(out) == [0, 1, 2, 3]
    assert all(all(v.correct for v in vs) for vs in out.values())


def test_stuck_item_is_killed_at_its_deadline_and_its_worker_replaced(pool: JudgePool) -> None:
    before = pool.stats()
    pids_before = set(pool.worker_pids())
    items = [math(1), stuck_item(), *[math(i) for i in range(2, 30)]]
    start = time.monotonic()
    verdicts = pool.judge_sync(items)
    elapsed = time.monotonic() - start
    stuck = verdicts[1]
    assert (stuck.id, stuck.status, stuck.correct, stuck.reason) == ("stuck", "timeout", False, "deadline exceeded")
    assert DEADLINE_S <= stuck.latency_s < DEADLINE_S + 2
    assert elapsed < DEADLINE_S + 10
    assert all(v.status == "pass" for i, v in enumerate(verdicts) if i != 1)  # the other worker went on
    after = pool.stats()
    assert after.deadline_kills == before.deadline_kills + 1
    assert after.restarts == before.restarts + 1
    killed = pids_before - set(pool.worker_pids())
    assert len(killed) == 1 and not pid_alive(killed.pop())
    wait_for(lambda: pool.stats().workers_ready == 2, what="the replacement worker to be ready")
    assert [v.status for v in pool.judge_sync([math(i) for i in range(10)])] == ["pass"] * 10
    assert pool.alive()


def test_two_stuck_items_at_once(pool: JudgePool) -> None:
    verdicts = pool.judge_sync([stuck_item("a"), stuck_item("b"), math(5)])
    assert [v.status for v in verdicts] == ["timeout", "timeout", "pass"]
    wait_for(lambda: pool.stats().workers_ready == 2, what="both workers to be replaced")
    assert pool.judge_sync([math(6)])[0].correct


def test_backtracking_extraction_is_answered_within_the_deadline(pool: JudgePool) -> None:
    # Stuck in the regex (a deadline kill) or, once extraction is linear, a quick 'fail': either way
    # within the deadline, and the pool keeps working.
    verdict = pool.judge_sync([VerifyItem(id="bt", kind="math", prediction=BACKTRACKING, reference="1")])[0]
    assert verdict.status in ("timeout", "fail") and not verdict.correct
    assert verdict.latency_s < DEADLINE_S + 2
    wait_for(lambda: pool.stats().workers_ready == 2, what="workers ready")
    assert pool.judge_sync([math(4)])[0].correct


def test_code_item_runs_to_its_own_timeout_not_the_math_deadline(pool: JudgePool) -> None:
    # code timeout 2 s < pool deadline 3 s here; the code judge itself reports the timeout.
    loop = code("def add(a, b):\n    while True:\n        pass\n", "loop")
    before = pool.stats().deadline_kills
    verdict = pool.judge_sync([loop])[0]
    assert verdict.status == "timeout" and not verdict.correct
    assert pool.stats().deadline_kills == before


def test_code_items_get_code_deadline() -> None:
    with JudgePool(1, 1.5, code_timeout_s=2.5, code_deadline_margin_s=3.0) as p:
        assert p.deadline_for(code("def add(a, b):\n    return a + b\n", "quick")) == 5.5
        longer = code("def add(a, b):\n    return a + b\n", "quick").model_copy(update={"timeout_s": 7.0})
        assert p.deadline_for(longer) == 10.0
        assert p.deadline_for(VerifyItem(kind="math", prediction="1", reference="1", timeout_s=50.0)) == 1.5 * 10
        p.wait_ready(120)
        slow = code("import time\ndef add(a, b):\n    time.sleep(2)\n    return a + b\n", "slow")
        verdict = p.judge_sync([slow])[0]
        assert verdict.status == "pass", verdict  # 2 s > the 1.5 s math deadline, but fine for code
        assert p.stats().deadline_kills == 0


def test_oversized_prediction_answered_without_a_worker(pool: JudgePool) -> None:
    before = pool.stats().items_judged
    verdicts = pool.judge_sync([VerifyItem(kind="math", prediction="1" * 60_000, reference="1"), math(3)])
    assert verdicts[0].status == "fail" and verdicts[0].reason == "prediction longer than 50000 characters"
    assert verdicts[1].correct
    assert pool.stats().items_judged == before + 1
    assert pool.queue_depth() == 0


def test_worker_killed_externally_mid_item_gives_error_and_is_replaced(pool: JudgePool) -> None:
    wait_for(lambda: pool.stats().workers_ready == 2, what="workers ready")
    before = pool.stats()
    future = pool.submit([stuck_item("victim")])
    wait_for(lambda: pool.stats().in_progress == 1, what="the item to start")
    time.sleep(0.3)
    busy = [w.pid for w in pool._workers if w.tasks]  # noqa: SLF001 - find the worker to kill
    assert len(busy) == 1
    os.kill(busy[0], signal.SIGKILL)
    verdict = future.result(timeout=10)[0]
    assert verdict.status == "error" and "worker process died (killed by SIGKILL)" in verdict.reason
    after = pool.stats()
    assert after.crashes == before.crashes + 1 and after.restarts == before.restarts + 1
    assert pool.alive()
    wait_for(lambda: pool.stats().workers_ready == 2, what="the replacement")
    assert pool.judge_sync([math(8)])[0].correct


def test_small_batch_is_not_starved_by_a_big_one() -> None:
    with JudgePool(1, DEADLINE_S, math_timeout_s=MATH_TIMEOUT_S) as p:
        p.wait_ready(120)
        order: list[str] = []
        big = p.submit([stuck_item()] + [math(i) for i in range(200)])  # the stuck item holds the worker a while
        big.add_done_callback(lambda _f: order.append("big"))
        small = p.submit([math(999)])
        small.add_done_callback(lambda _f: order.append("small"))
        assert p.queue_depth() > 100
        assert small.result(60)[0].correct
        big.result(120)
        assert order == ["small", "big"]
        assert p.queue_depth() == 0


def test_cancelling_an_async_judge_drops_its_queued_items() -> None:
    with JudgePool(1, DEADLINE_S, math_timeout_s=MATH_TIMEOUT_S) as p:
        p.wait_ready(120)

        async def main() -> None:
            # The stuck item holds the only worker, so the rest are still queued when we cancel.
            task = asyncio.ensure_future(p.judge([stuck_item()] + [math(i) for i in range(500)]))
            await asyncio.sleep(0.3)
            assert p.queue_depth() >= 501 - p.prefetch * p.chunk_size  # all but the chunks the worker holds
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        wait_for(lambda: p.queue_depth() == 0, timeout_s=DEADLINE_S + 60, what="queued items dropped")
        assert p.stats().items_judged < 10
        assert p.judge_sync([math(1)])[0].correct


def test_crash_limit_zero_kills_the_pool() -> None:
    with JudgePool(2, DEADLINE_S, crash_limit=0) as p:
        p.wait_ready(120)
        assert p.alive()
        os.kill(p.worker_pids()[0], signal.SIGKILL)
        wait_for(lambda: not p.alive(), timeout_s=10, what="the pool to be declared dead")
        assert "died within 60s (limit 0)" in (p.dead_reason or "")
        with pytest.raises(JudgePoolError, match="judge pool is dead"):
            p.judge_sync([math(1)])
        wait_for(lambda: p.stats().workers_alive == 0, timeout_s=10, what="the healthy worker to be stopped too")


def test_close_fails_pending_work_and_stops_workers() -> None:
    p = JudgePool(1, 30.0, math_timeout_s=MATH_TIMEOUT_S)
    p.wait_ready(120)
    pids = p.worker_pids()
    pending = p.submit([stuck_item(), math(1)])
    time.sleep(0.3)
    p.close()
    with pytest.raises(JudgePoolError, match="closed"):
        pending.result(5)
    with pytest.raises(JudgePoolError, match="closed"):
        p.judge_sync([math(1)])
    assert not p.alive()
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout_s=5, what="workers to exit")
    p.close()  # idempotent


def test_workers_exit_when_the_owning_process_dies(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys
        from polya.verify import JudgePool
        if __name__ == "__main__":
            pool = JudgePool(2, 5.0)
            pool.wait_ready(120)
            print(" ".join(map(str, pool.worker_pids())), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    path = tmp_path / "owner.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=180)
    pids = [int(x) for x in proc.stdout.split()]
    assert len(pids) == 2, proc.stderr
    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout_s=10, what="orphaned workers to exit")


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="workers"):
        JudgePool(0, 1.0)
    with pytest.raises(ValueError, match="deadline_s"):
        JudgePool(1, 0)
