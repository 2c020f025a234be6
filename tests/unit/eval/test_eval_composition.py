"""Composition analysis: parsing the judge's heuristic labels and the shares reported."""

from __future__ import annotations

from polya.eval.composition import (
    judge_messages,
    parse_heuristics,
    summarize_composition,
)
from polya.heuristics import HeuristicCatalog

IDS = [h.id for h in HeuristicCatalog.load().heuristics]


def test_parse_heuristics() -> None:
    assert parse_heuristics("Heuristics: decomposition, working_backward", IDS) == ["working_backward", "decomposition"]
    assert parse_heuristics("The solution works backward.\nHeuristics: working backward and look-for-pattern", IDS) == [
        "working_backward", "look_for_pattern",
    ]
    assert parse_heuristics("Heuristics: none", IDS) == []
    assert parse_heuristics("I think it uses analogy.", IDS) == ["analogy"]
    assert parse_heuristics("Heuristics: something else", IDS) is None
    assert parse_heuristics("", IDS) is None
    # the last "Heuristics:" line decides
    assert parse_heuristics("Heuristics: analogy\nCorrection.\nHeuristics: specialization", IDS) == ["specialization"]


def test_judge_prompt_lists_the_catalog() -> None:
    catalog = HeuristicCatalog.load()
    messages = judge_messages(catalog, "What is 2+2?", "x" * 10_000, max_solution_chars=1000)
    user = messages[1]["content"]
    assert all(f"- {hid}:" in user for hid in IDS)
    assert "[... middle omitted ...]" in user and len(user) < 10_000


def test_summary_shares() -> None:
    labels = [
        {"heuristics": ["analogy", "decomposition"]},
        {"heuristics": ["decomposition"]},
        {"heuristics": []},
        {"heuristics": None},
        {"heuristics": ["working_backward", "decomposition", "analogy"]},
    ]
    s = summarize_composition(labels)
    assert (s["solutions"], s["labelled"], s["unparseable"], s["none"], s["single"], s["multiple"]) == (5, 4, 1, 1, 1, 2)
    assert s["share_multiple"] == 0.5 and s["mean_heuristics"] == 1.5
    assert list(s["per_heuristic"]) [0] == "decomposition" and s["per_heuristic"]["decomposition"] == 3
    assert summarize_composition([])["share_multiple"] is None
