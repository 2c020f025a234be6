"""The STaR side of selection: star, breadth and depth draw from the plain prompt (and rationalization), polya never does."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from polya.experiment.config import RunConfig
from polya.heuristics import PLAIN
from support.select_runs import ids, rows, select

RecordFactory = Callable[..., dict[str, Any]]


def rationalized(record: RecordFactory, qid: str, sample: int, completion: str, correct: bool = True) -> dict[str, Any]:
    """A record of the rationalization pass, as ``polya generate`` writes it (question without the hint)."""
    rec = record(qid, PLAIN, sample, correct, completion, round_index=3)
    rec.update(id=f"{qid}|{PLAIN}|rationalized|s{sample}", rationalized=True)
    return rec


def plain_text(n: int) -> str:
    return f"Attempt {n}: Ann has 2 apples and Bob gives her 2 more, so " + " ".join(f"w{n}x{k}" for k in range(20)) + ". \\boxed{4}"


@pytest.fixture()
def mixed(tmp_path: Path, record: RecordFactory, write: Callable[..., None], texts: dict[str, str]) -> Path:
    """Heuristic and plain generations of five questions, with rationalized ones where plain failed."""
    wrong = plain_text(9).replace("\\boxed{4}", "\\boxed{5}")
    records = [
        # q1: two different correct plain solutions, and heuristic ones
        record("q1", PLAIN, 0, True, plain_text(0)),
        record("q1", PLAIN, 1, True, plain_text(1)),
        record("q1", "working_backward", 0, True, texts["backward"]),
        record("q1", "decomposition", 0, True, texts["decomposed"]),
        # q2: plain wrong, rationalized right; a heuristic solved it
        record("q2", PLAIN, 0, False, wrong),
        rationalized(record, "q2", 0, plain_text(2)),
        record("q2", "analogy", 0, True, texts["plain"]),
        # q3: the rationalized solution cites the hint its training prompt will not have
        record("q3", PLAIN, 0, False, wrong),
        rationalized(record, "q3", 0, "As the hint says, 2 + 2 = 4. \\boxed{4}"),
        # q4: only a heuristic solved it
        record("q4", "step_by_step_justification", 0, True, texts["steps"]),
        record("q4", PLAIN, 0, False, wrong),
        # q5: plain solved it only in round 2; a rationalized solution exists too (ranked after it)
        record("q5", PLAIN, 0, True, plain_text(5), round_index=2),
        rationalized(record, "q5", 0, plain_text(6)),
    ]
    write(tmp_path, records)
    return tmp_path


def test_star_is_built_from_plain_prompt_generations_only(mixed: Path) -> None:
    out = select(mixed, datasets=["star"])
    star = rows(mixed, "star")
    assert ids(mixed, "star") == ["q1|plain|r1|s0", "q2|plain|rationalized|s0", "q5|plain|r2|s0"]
    assert {r["heuristic"] for r in star} == {PLAIN}
    assert [r["rationalized"] for r in star] == [False, True, False]  # q5: the unaided solution beats the rationalized one
    report = out.report["datasets"]["star"]
    assert report["source"] == "plain" and report["rationalized"] == 1
    assert report["rejections"] == {"heuristic_prompt": 4, "incorrect": 3, "not_best_in_question": 2, "mentions_hint": 1}
    card = (mixed / "select" / "star" / "README.md").read_text()
    assert "Drawn from the plain step-by-step prompt" in card and "1 of its examples are rationalized" in card
    assert "`baseline_source` | `plain`" in card


def test_polya_and_wrong_answer_never_include_plain_samples(mixed: Path) -> None:
    out = select(mixed, datasets=["polya", "wrong_answer"])
    assert {r["heuristic"] for r in rows(mixed, "polya")} == {"working_backward", "decomposition", "analogy", "step_by_step_justification"}
    assert rows(mixed, "wrong_answer") == []  # every wrong answer here is a plain one
    assert out.report["datasets"]["polya"]["rejections"]["plain_prompt"] == 5  # 3 correct plain + 2 rationalized (one cites the hint)
    assert out.report["datasets"]["wrong_answer"]["rejections"]["plain_prompt"] == 3
    card = (mixed / "select" / "polya" / "README.md").read_text()
    assert "Drawn from the Pólya heuristic prompts" in card


def test_rationalized_solutions_can_be_left_out(mixed: Path) -> None:
    out = select(mixed, datasets=["star"], rationalized=False)
    assert ids(mixed, "star") == ["q1|plain|r1|s0", "q5|plain|r2|s0"]
    assert out.report["datasets"]["star"]["rejections"]["rationalized"] == 2


def test_baseline_source_heuristics_draws_star_from_the_heuristic_prompts(mixed: Path) -> None:
    out = select(mixed, datasets=["star"], baseline_source="heuristics")
    assert [r["question_id"] for r in rows(mixed, "star")] == ["q1", "q2", "q4"]
    assert PLAIN not in {r["heuristic"] for r in rows(mixed, "star")}
    assert out.report["datasets"]["star"]["source"] == "heuristics"
    assert "Drawn from the Pólya heuristic prompts" in (mixed / "select" / "star" / "README.md").read_text()


def test_breadth_and_depth_draw_from_the_plain_prompt(mixed: Path) -> None:
    out = select(mixed, datasets=["star", "breadth", "depth"])
    assert out.datasets["breadth"].examples == out.datasets["star"].examples == 3  # the default budget: star's size
    assert {r["heuristic"] for name in ("breadth", "depth") for r in rows(mixed, name)} == {PLAIN}
    depth = rows(mixed, "depth")
    per_question = Counter(r["question_id"] for r in depth)
    assert len(depth) == 3 and max(per_question.values()) == 2  # one condition: no per-pair cap, up to n per question
    assert "`n_per_question` | `16`" in (mixed / "select" / "depth" / "README.md").read_text()


def test_plain_solutions_are_not_scored_for_adherence(mixed: Path) -> None:
    out = select(mixed, datasets=["polya", "star"])
    assert out.report["scorer"]["solutions"] == 4  # the heuristic ones; plain solutions follow no heuristic
    assert {r["score"] for r in rows(mixed, "star")} == {None}
    assert "unscored" not in out.report["datasets"]["star"]["rejections"]


def test_every_generation_is_accounted_for_once(mixed: Path) -> None:
    out = select(mixed, datasets=["polya", "star", "wrong_answer", "breadth", "depth"], budget=2)
    for name, report in out.report["datasets"].items():
        assert report["examples"] + sum(report["rejections"].values()) == 13, name


def test_rationalized_generations_are_counted_apart_in_the_report(mixed: Path) -> None:
    out = select(mixed, datasets=["star"])
    inputs = out.report["inputs"]
    assert inputs["rationalized"] == {"samples": 3, "correct": 3, "questions_solved": 3}
    assert inputs["per_heuristic"][PLAIN] == {"samples": 6, "correct": 3}  # the unaided plain samples only
    assert inputs["records"] == 13


def test_without_plain_generations_star_is_empty_and_says_why(tmp_path: Path, record: RecordFactory, write: Callable[..., None], texts: dict[str, str]) -> None:
    write(tmp_path, [record("q1", "working_backward", 0, True, texts["backward"])])
    out = select(tmp_path, datasets=["polya", "star"])
    assert out.datasets["star"].examples == 0 and out.datasets["polya"].examples == 1
    assert "baseline_source: heuristics" in out.report["datasets"]["star"]["notes"][0]
    assert "no correct plain-prompt generation" in (tmp_path / "select" / "star" / "README.md").read_text()


def test_polya_run_refuses_a_plain_baseline_without_plain_generations() -> None:
    with pytest.raises(ValidationError, match="generate.plain is false"):
        RunConfig.model_validate({"arms": ["base", "star_sft"], "generate": {"plain": False}})
    RunConfig.model_validate({"arms": ["base", "star_sft"], "generate": {"plain": False}, "select": {"baseline_source": "heuristics"}})
    RunConfig.model_validate({"arms": ["base", "polya_sft"], "generate": {"plain": False}})  # star is built, but no arm trains on it
    # the teacher's generation (the distill arms) needs no plain prompt
    assert RunConfig.model_validate({"arms": ["base", "distill_sft"]}).distill_generate_config().plain is False
