"""The judge pool's throughput paths: several items per worker message (with the per-item deadline
and crash handling still per item), and the fast path for answers identical after normalisation.

The stuck item is real model output (see test_judge_pool.py): ``\\boxed{9^{9^{9}}+1}`` against
``5`` keeps SymPy busy far past the pool's 3-second deadline.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from polya.verify import JudgePool, VerifyItem
from support.waiting import wait_for
from polya.verify.math_judge import fast_path_hits, judge_math

DEADLINE_S = 3.0


def math(i: int, right: bool = True) -> VerifyItem:
    return VerifyItem(
        id=f"m{i}",
        kind="math",
        prediction=f"So the result is \\boxed{{{i}}}.",
        reference=str(i if right else i + 1),
    )


def stuck_item(item_id: str = "stuck") -> VerifyItem:
    return VerifyItem(
        id=item_id, kind="math", prediction="\\boxed{9^{9^{9}}+1}", reference="5"
    )


def chunk_around(pool: JudgePool, item_id: str) -> list[str] | None:
    """The ids a worker holds when ``item_id`` is among them with others before and after it."""
    for w in list(pool._workers):  # which items share a worker's messages
        ids = [task.item.id for _seq, task in list(w.tasks)]
        if item_id in ids and 0 < ids.index(item_id) < len(ids) - 1:
            return ids
    return None


@pytest.fixture(scope="module")
def pool() -> Iterator[JudgePool]:
    with JudgePool(2, DEADLINE_S, math_timeout_s=60, chunk_size=8) as p:
        p.wait_ready(120)
        yield p


def test_items_travel_several_per_message_in_order(pool: JudgePool) -> None:
    before = pool.stats()
    items = [math(i, right=i % 4 != 0) for i in range(96)]
    verdicts = pool.judge_sync(items)
    assert [v.id for v in verdicts] == [i.id for i in items]
    assert [v.correct for v in verdicts] == [i % 4 != 0 for i in range(96)]
    after = pool.stats()
    assert after.items_judged - before.items_judged == 96
    messages = after.messages_sent - before.messages_sent
    assert 96 / 8 <= messages <= 96 / 2, f"{messages} messages for 96 items"


def test_short_queue_is_shared_between_workers(pool: JudgePool) -> None:
    before = pool.stats().messages_sent
    assert [v.correct for v in pool.judge_sync([math(1), math(2), math(3)])] == [
        True
    ] * 3
    assert (
        pool.stats().messages_sent - before == 3
    )  # 3 items, 2 workers: one item per message


def test_chunk_size_one_is_one_message_per_item() -> None:
    with JudgePool(1, DEADLINE_S, chunk_size=1) as p:
        p.wait_ready(120)
        assert all(v.correct for v in p.judge_sync([math(i) for i in range(20)]))
        assert p.stats().messages_sent == 20


def test_deadline_kill_inside_a_chunk_costs_only_that_item(pool: JudgePool) -> None:
    before = pool.stats()
    items = (
        [math(i) for i in range(12)] + [stuck_item()] + [math(i) for i in range(13, 40)]
    )
    future = pool.submit(items)
    wait_for(
        lambda: chunk_around(pool, "stuck") is not None or future.done(),
        what="the stuck item inside a chunk",
    )
    assert not future.done()
    verdicts = future.result(timeout=DEADLINE_S + 30)
    assert [v.id for v in verdicts] == [i.id for i in items]
    stuck = verdicts[12]
    assert (stuck.status, stuck.reason) == ("timeout", "deadline exceeded")
    assert DEADLINE_S <= stuck.latency_s < DEADLINE_S + 2
    assert all(
        v.status == "pass" and v.correct for i, v in enumerate(verdicts) if i != 12
    )
    after = pool.stats()
    assert after.deadline_kills == before.deadline_kills + 1
    assert (
        after.items_judged - before.items_judged >= len(items) - 1
    )  # neighbours judged again, none lost
    wait_for(lambda: pool.stats().workers_ready == 2, what="the replacement worker")


def test_crash_inside_a_chunk_costs_only_that_item(pool: JudgePool) -> None:
    wait_for(lambda: pool.stats().workers_ready == 2, what="workers ready")
    before = pool.stats()
    items = (
        [math(i) for i in range(6)]
        + [stuck_item("victim")]
        + [math(i) for i in range(7, 16)]
    )
    future = pool.submit(items)
    wait_for(
        lambda: chunk_around(pool, "victim") is not None,
        what="the victim inside a chunk",
    )
    time.sleep(
        0.5
    )  # its neighbours in front are judged (in well under a second), the victim runs
    busy = [
        w
        for w in list(pool._workers)
        if any(t.item.id == "victim" for _s, t in list(w.tasks))
    ]
    assert len(busy) == 1
    os.kill(busy[0].pid, signal.SIGKILL)
    verdicts = future.result(timeout=30)
    assert [v.id for v in verdicts] == [i.id for i in items]
    victim = verdicts[6]
    assert (
        victim.status == "error"
        and "worker process died (killed by SIGKILL)" in victim.reason
    )
    assert all(v.status == "pass" for i, v in enumerate(verdicts) if i != 6)
    assert pool.stats().crashes == before.crashes + 1
    wait_for(lambda: pool.stats().workers_ready == 2, what="the replacement worker")
    assert pool.judge_sync([math(8)])[0].correct


# ----- the fast path ------------------------------------------------------------------------------

FAST_PATH_CASES = [
    # (prediction, reference, decided by the fast path)
    ("\\boxed{\\frac{14}{3}}", "\\frac{14}{3}", True),
    ("\\boxed{\\dfrac{14}{3}}", "\\frac{14}{3}", True),
    (
        "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        True,
    ),
    ("\\boxed{( 3, \\frac{\\pi}{2} )}", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("\\boxed{p - q}", "p - q", True),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", True),
    ("\\boxed{\\text{(C)}}", "\\text{(C)}", True),
    ("\\boxed{[-2, 7)}", "[-2, 7)", True),
    ("\\boxed{x^2 + 7x + 10}", "x^2+7x+10", False),
    ("\\boxed{6 - 5i}", "6 - 5i", True),
    ("\\boxed{\\$18}", "18", True),
    ("#### 1,234", "1234", True),
    ("The answer is 50%.", "50", True),
    ("\\boxed{30^\\circ}", "30", True),
    ("\\boxed{12 \\text{ cm}^2}", "12", True),
    (
        "\\boxed{0.5}",
        "50\\%",
        False,
    ),  # the fraction a percentage reference stands for ("0.50"): numbers
    ("\\boxed{0.5}", "\\frac{1}{2}", False),
    ("\\boxed{\\frac12}", "\\frac{1}{2}", False),
    ("\\boxed{19}", "18", False),
    ("\\boxed{2.88e-19}", "5.76e-19", False),
    ("\\boxed{\\sqrt{2}}", "\\sqrt{2}", True),
    ("\\boxed{\\{1, 2\\}}", "\\{2, 1\\}", False),
    ("I do not know.", "3", False),
]


@pytest.mark.parametrize(("prediction", "reference", "fast"), FAST_PATH_CASES)
def test_fast_path_agrees_with_full_judging(
    prediction: str, reference: str, fast: bool
) -> None:
    hits = fast_path_hits()
    quick = judge_math(prediction, reference)
    full = judge_math(prediction, reference, fast_path=False)
    assert (quick.method == "identical") is fast
    assert fast_path_hits() == hits + (1 if fast else 0)
    assert full.method != "identical"
    assert (quick.correct, quick.status, quick.extracted) == (
        full.correct,
        full.status,
        full.extracted,
    )
    if fast:
        assert quick.correct and quick.reason == "equivalent"


def test_pool_counts_fast_path_hits(pool: JudgePool) -> None:
    before = pool.stats().fast_path_hits
    items = [
        VerifyItem(kind="math", prediction=f"\\boxed{{{p}}}", reference=r)
        for p, r in [
            ("\\dfrac{1}{3}", "\\frac{1}{3}"),  # identical after normalisation
            ("x + 1", "x + 1"),  # identical
            ("0.5", "\\frac{1}{2}"),  # math-verify
            ("7", "8"),  # numbers
        ]
    ]
    assert [v.correct for v in pool.judge_sync(items)] == [True, True, True, False]
    assert pool.stats().fast_path_hits == before + 2
