"""The offline adherence score on hand-written solutions and the catalog's exemplars; judge prompt and parsing."""

from __future__ import annotations

import statistics

import pytest

from polya.heuristics import HeuristicCatalog
from polya.select.config import ScorerConfig
from polya.select.scorers import (
    HEURISTIC_CUES,
    OfflineScorer,
    ScoreItem,
    ScoreResult,
    cues_for,
    instruction_cues,
    judge_messages,
    offline_score,
    parse_judge_score,
)

CATALOG = HeuristicCatalog.load()


def score(heuristic: str, text: str, finish_reason: str = "stop") -> float:
    return offline_score(CATALOG.get(heuristic), text, finish_reason).score


def test_following_the_heuristic_beats_a_plain_solution(texts: dict[str, str]) -> None:
    assert score("working_backward", texts["backward"]) > score("working_backward", texts["plain"])
    assert score("decomposition", texts["decomposed"]) > score("decomposition", texts["plain"])
    assert score("step_by_step_justification", texts["steps"]) > score("step_by_step_justification", texts["plain"])
    assert score("draw_figure_or_table", texts["table"]) > score("draw_figure_or_table", texts["plain"])


def test_each_solution_scores_highest_under_its_own_heuristic(texts: dict[str, str]) -> None:
    own = {"backward": "working_backward", "decomposed": "decomposition", "steps": "step_by_step_justification", "table": "draw_figure_or_table"}
    for name, heuristic in own.items():
        others = {h: score(h, texts[name]) for h in own.values() if h != heuristic}
        assert score(heuristic, texts[name]) > max(others.values()), (name, others)


def test_penalties_order_truncated_short_and_unanswered_solutions_lower(texts: dict[str, str]) -> None:
    h = "working_backward"
    full = score(h, texts["backward"])
    truncated = offline_score(CATALOG.get(h), texts["backward"], "length")
    assert truncated.penalties == {"truncated": 4.0}
    assert truncated.score == pytest.approx(full - 4.0)
    no_box = texts["backward"].replace("\\boxed{4}", "4")
    assert score(h, no_box) == pytest.approx(full - 1.0)
    bare = offline_score(CATALOG.get(h), texts["bare"])
    assert set(bare.penalties) == {"short"} and bare.score == 0.0
    looping = "\n".join(["Undo the step: 2 + 2 = 4."] * 8) + "\nWork backward. Check: fine. \\boxed{4}" + " word" * 20
    assert "repetitive" in offline_score(CATALOG.get(h), looping).penalties


def test_score_is_bounded_and_deterministic(texts: dict[str, str]) -> None:
    for h in CATALOG:
        for text in texts.values():
            a = offline_score(h, text)
            assert 0.0 <= a.score <= 10.0 and 0.0 <= a.adherence <= 1.0
            assert a == offline_score(h, text)


def test_catalog_exemplars_score_higher_under_their_own_heuristic() -> None:
    """The cues are derived from the exemplars' structure: each heuristic recognises its own exemplars best."""
    for h in CATALOG:
        own = statistics.fmean(offline_score(h, e.solution).score for e in h.exemplars)
        others = [offline_score(h, e.solution).score for g in CATALOG if g.id != h.id for e in g.exemplars]
        assert own >= 5.0, h.id
        assert own > statistics.fmean(others) + 3.0, h.id


def test_instruction_labels_become_cues_with_numbered_forms_required_twice() -> None:
    cues = {c.name: c for c in instruction_cues(CATALOG.get("step_by_step_justification"))}
    assert set(cues) == {"label 'Step 1:'", "label 'because'"}
    assert cues["label 'Step 1:'"].min_count == 2
    assert cues["label 'Step 1:'"].found("Step 1: a\nStep 2: b") and not cues["label 'Step 1:'"].found("Step 1: a")
    table = instruction_cues(CATALOG.get("draw_figure_or_table"))
    assert [c.name for c in table] == ["label '|'"]
    every_packaged_heuristic_has_hand_cues = set(HEURISTIC_CUES) == set(CATALOG.ids)
    assert every_packaged_heuristic_has_hand_cues


def test_a_heuristic_from_another_catalog_uses_its_instruction_labels() -> None:
    custom = HeuristicCatalog.from_dict(
        {
            "system_prompt": "Solve.",
            "answer_format": "Answer in \\boxed{}.",
            "heuristics": [
                {
                    "id": "guess_and_check", "name": "Guess and check", "description": "Guess, then check.",
                    "instruction": 'Write "Guess 1:", "Guess 2:" and then "Verified:".',
                    "exemplars": [{"question": "1+1?", "solution": "Guess 1: 3. Guess 2: 2. Verified: 1+1=2. \\boxed{2}"}],
                },
                {
                    "id": "free", "name": "Free", "description": "Anything.", "instruction": "Solve it any way.",
                    "exemplars": [{"question": "1+1?", "solution": "\\boxed{2}"}],
                },
            ],
        }
    )
    guess = custom.get("guess_and_check")
    assert [c.name for c in cues_for(guess)] == ["label 'Guess 1:'", "label 'Verified:'"]
    assert offline_score(guess, "Guess 1: 3, too big. Guess 2: 2. Verified: 1 + 1 = 2.").adherence == 1.0
    assert offline_score(custom.get("free"), "anything at all").adherence == 0.5  # no cue: neutral


def test_offline_scorer_reports_every_item() -> None:
    scorer = OfflineScorer(ScorerConfig(), CATALOG)
    got: list[tuple[str, ScoreResult]] = []
    items = [ScoreItem(f"i{i}", "q", CATALOG.get("analogy"), "Related problem: x. Using it: y. \\boxed{1}") for i in range(3)]
    scorer.score(items, lambda item, result: got.append((item.id, result)))
    assert [i for i, _ in got] == ["i0", "i1", "i2"]
    assert all(r.score is not None and "adherence" in (r.detail or "") for _, r in got)
    assert scorer.identity()["kind"] == "offline"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Score: 7", 7.0),
        ("score:8", 8.0),
        ("**Score:** 9", 9.0),
        ("The score is 6.", 6.0),
        ("I would give it 8/10.", 8.0),
        ("8 out of 10", 8.0),
        ("10", 10.0),
        ("**4**", 4.0),
        ("Score: 0", None),
        ("Score: 11", None),
        ("The solution uses 3 steps and 12 apples.", None),
        ("", None),
        (None, None),
        ("Score: 42\nActually, Score: 7", 7.0),
    ],
)
def test_parse_judge_score(reply: str | None, expected: float | None) -> None:
    assert parse_judge_score(reply) == expected


def test_judge_prompt_holds_the_rubric_from_the_catalog() -> None:
    h = CATALOG.get("working_backward")
    long_solution = "x" * 10_000
    messages = judge_messages(ScoreItem("a", "What is 2 + 2?", h, long_solution), max_solution_chars=1000)
    user = messages[-1]["content"]
    assert h.name in user and h.description.strip() in user and h.instruction.strip() in user
    assert "What is 2 + 2?" in user and '"Score: N"' in user
    assert "[... middle omitted ...]" in user and len(user) < 1000 + 2500
