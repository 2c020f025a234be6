"""An undecided verdict is never a wrong one: a judge that runs out of CPU time says ``timeout``,
the pool honours a per-item time limit, a second try can decide it, and verdicts do not depend on
how loaded the machine is."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator

import pytest

from polya.verify import (
    JudgePool,
    LocalVerifier,
    VerifierConfig,
    VerifyItem,
    judge_item,
    judge_math,
)
from polya.verify.client import RejudgingVerifier, rejudge_undecided
from polya.verify.pool import ItemRefused
from polya.verify.protocol import record_decided

SURD_PAIRS = r"(22+8 \sqrt{6}, 22-8 \sqrt{6}), (22-8 \sqrt{6}, 22+8 \sqrt{6})"
"""An OlympiadBench reference that came back 'fail' under load when judging had a wall-clock limit."""

SLOW_RIGHT = (r"So \boxed{(x+1)^{120}(x-1)^{120}}", r"(x^2-1)^{120}")
"""Right, and about 0.9 s of CPU time for sympy (measured on the 2-core box)."""

FOREVER = (r"So \boxed{(x+1)^{300}(x-1)^{300}}", r"(x^2-1)^{300}")
"""Right too, but about 7 s of CPU time: over a 2.5 s limit on any machine."""

HARD_SET: list[tuple[str, str, str]] = [
    # (prediction, reference, status with a 2.5 s CPU limit)
    (r"The pairs are \boxed{(22-8 \sqrt{6}, 22+8 \sqrt{6}), (22+8 \sqrt{6}, 22-8 \sqrt{6})}", SURD_PAIRS, "pass"),
    (r"The pairs are \boxed{(22+8 \sqrt{6}, 22+8 \sqrt{6}), (22-8 \sqrt{6}, 22-8 \sqrt{6})}", SURD_PAIRS, "fail"),
    (*SLOW_RIGHT, "pass"),
    (r"\boxed{\sin^2 x + \cos^2 x}", "1", "pass"),
    (r"\boxed{\int_0^1 x^2 \, dx}", r"\frac13", "pass"),
    (r"\boxed{\int_0^1 x^3 \, dx}", r"\frac13", "fail"),
    (r"\boxed{\frac{\sqrt{3}}{2}+\frac{1}{2}}", r"\frac{1+\sqrt{3}}{2}", "pass"),
    (r"\boxed{2.88 \times 10^{-19}}", "2.88e-19", "pass"),
    (r"\boxed{5.76e-19}", "2.88e-19", "fail"),
    (*FOREVER, "timeout"),
]
CPU_LIMIT_S = 2.5


def test_a_judge_out_of_cpu_time_says_timeout_not_fail() -> None:
    verdict = judge_math(*FOREVER, timeout_s=0.5)
    assert (verdict.status, verdict.correct) == ("timeout", False), verdict
    assert "CPU time" in verdict.reason
    assert judge_math(*SLOW_RIGHT, timeout_s=30).status == "pass"

    item = VerifyItem(kind="math", prediction=FOREVER[0], reference=FOREVER[1])
    out = judge_item(item, math_timeout_s=0.5)
    assert out.status == "timeout" and not out.correct and not out.decided
    assert judge_item(item.model_copy(update={"timeout_s": 0.2}), math_timeout_s=30).status == "timeout"


def test_decided_and_stored_records() -> None:
    assert record_decided({"status": "pass"}) and record_decided({"status": "fail"})
    assert not record_decided({"status": "timeout"}) and not record_decided({"status": "error"})
    assert record_decided({"correct": True})  # written before statuses were stored


@pytest.fixture(scope="module")
def pool() -> Iterator[JudgePool]:
    with JudgePool(2, 120.0, math_timeout_s=CPU_LIMIT_S, max_item_timeout_s=60.0) as p:
        p.wait_ready(120)
        yield p


def _judge_hard_set(p: JudgePool) -> list[tuple[str, bool]]:
    items = [VerifyItem(id=str(i), kind="math", prediction=pred, reference=ref) for i, (pred, ref, _s) in enumerate(HARD_SET)]
    return [(v.status, v.correct) for v in p.judge_sync(items)]


def _busy_processes(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def test_verdicts_do_not_depend_on_machine_load(pool: JudgePool) -> None:
    idle = _judge_hard_set(pool)
    assert idle == [(status, status == "pass") for _p, _r, status in HARD_SET]
    # Three busy processes per core: a judge gets about a quarter of a core, so a 0.9 s item takes
    # several seconds of wall time -- past a 2.5 s wall-clock limit, well within 2.5 s of CPU time.
    cores = len(os.sched_getaffinity(0))
    busy = _busy_processes(3 * cores)
    try:
        loaded = _judge_hard_set(pool)
        with open("/proc/loadavg", encoding="ascii") as handle:
            load = float(handle.read().split()[0])
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    assert loaded == idle, f"load average {load}"
    assert pool.stats().deadline_kills == 0


def test_an_item_may_ask_for_more_time(pool: JudgePool) -> None:
    item = VerifyItem(kind="math", prediction=FOREVER[0], reference=FOREVER[1])
    assert pool.deadline_for(item) == 120.0
    assert pool.deadline_for(item.model_copy(update={"timeout_s": 25.0})) == 120.0 * 10
    quick = item.model_copy(update={"timeout_s": 0.3})
    assert pool.judge_sync([quick])[0].status == "timeout"
    with pytest.raises(ItemRefused, match=r"items\[0\].timeout_s is 61; this verifier allows at most 60") as refused:
        pool.judge_sync([item.model_copy(update={"timeout_s": 61.0})])
    assert refused.value.field == "items[0].timeout_s"


def test_undecided_items_are_judged_again_with_more_time() -> None:
    config = VerifierConfig(workers=1, math_timeout_s=0.3, item_deadline_s=60)
    items = [
        {"kind": "math", "prediction": SLOW_RIGHT[0], "reference": SLOW_RIGHT[1]},
        {"kind": "math", "prediction": r"\boxed{3}", "reference": "4"},
    ]
    with LocalVerifier(config) as local:
        first = local.verify(items)
        assert [v.status for v in first] == ["timeout", "fail"]

        verdicts = list(first)
        assert rejudge_undecided(local, items, verdicts, 20.0) == 1
        assert [v.status for v in verdicts] == ["pass", "fail"]
        assert "judged again with 20s after: timed out after 0.3s of CPU time" in verdicts[0].reason

        # A second try that is still too short (another item: sympy caches what it worked out).
        rejudging = RejudgingVerifier(local, 0.6)
        again = rejudging.verify([{"kind": "math", "prediction": FOREVER[0], "reference": FOREVER[1]}, items[1]])
        assert [v.status for v in again] == ["timeout", "fail"]
        assert (rejudging.rejudged, rejudging.undecided) == (1, 1)
