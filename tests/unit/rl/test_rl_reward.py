"""The reward worker judges with the real verifier (in-process pool) and counts where rewards came from."""

from __future__ import annotations

from typing import Iterator

import pytest

from polya.rl.reward import RewardWorker, VerifierRewards, completion_text
from polya.verify.config import JudgeSettings


@pytest.fixture(scope="module")
def worker() -> Iterator[RewardWorker]:
    reward_worker = RewardWorker()
    try:
        yield reward_worker
    finally:
        reward_worker.close()


def test_ready_probes_the_verifier(worker: RewardWorker) -> None:
    info = worker.ready()
    assert "LocalVerifier" in info["source"]


def test_rewards_are_the_verifiers_verdicts(worker: RewardWorker) -> None:
    before = worker.stats()
    rewards = VerifierRewards(worker)
    completions = [
        [{"role": "assistant", "content": "2 + 3 = 5. The answer is \\boxed{5}."}],
        [{"role": "assistant", "content": "The answer is \\boxed{6}."}],
        [{"role": "assistant", "content": "I think it is five."}],
        [{"role": "assistant", "content": "So the final answer is 10/2."}],
    ]
    answers = ["5", "5", "5", "5"]

    class State:
        global_step = 6

    correct = rewards.correctness(prompts=[None] * 4, completions=completions, answer=answers, trainer_state=State())
    found = rewards.answer_format(prompts=[None] * 4, completions=completions, answer=answers, trainer_state=State())
    assert correct == [1.0, 0.0, 0.0, 1.0]
    assert found == [1.0, 1.0, 0.0, 1.0]
    after = worker.stats()
    assert after["verifier_calls"] - before.get("verifier_calls", 0) == 1  # the format reward reused the verdicts
    assert after["verdicts"] - before.get("verdicts", 0) == 4
    assert worker.stats(7) == {
        "verifier_calls": 1, "verdicts": 4, "correct": 2, "answer_found": 3, "rejudged": 0, "undecided": 0,
        "status_pass": 2, "status_fail": 2,
    }


SLOW_RIGHT = r"So \boxed{(x+1)^{120}(x-1)^{120}}"
"""Right against (x^2-1)^{120}, and about 0.9 s of CPU time for sympy."""


@pytest.mark.parametrize("rejudge_timeout_s, expected", [(20.0, "pass"), (0.0, "timeout")])
def test_an_undecided_verdict_is_judged_again_or_rewarded_zero(rejudge_timeout_s: float, expected: str) -> None:
    worker = RewardWorker(JudgeSettings(judge_workers=1, judge_timeout_s=0.3, rejudge_timeout_s=rejudge_timeout_s))
    try:
        out = worker.judge([SLOW_RIGHT, r"\boxed{3}"], [r"(x^2-1)^{120}", "4"], step=1)
    finally:
        worker.close()
    assert [o["status"] for o in out] == [expected, "fail"]
    assert [o["correct"] for o in out] == [expected == "pass", False]
    stats = worker.stats(1)
    assert stats["status_timeout"] == 1  # the first verdicts
    assert (stats["rejudged"], stats["undecided"]) == ((1, 0) if rejudge_timeout_s else (0, 1))


def test_reward_functions_and_weights() -> None:
    rewards = VerifierRewards(worker=None)
    funcs, weights = rewards.functions(format_weight=0.0, correct_weight=1.0)
    assert [f.__name__ for f in funcs] == ["correctness"] and weights == [1.0]
    funcs, weights = rewards.functions(format_weight=0.2, correct_weight=1.0)
    assert [f.__name__ for f in funcs] == ["correctness", "answer_format"] and weights == [1.0, 0.2]


def test_completion_text() -> None:
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"
