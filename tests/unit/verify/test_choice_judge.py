"""The choice judge: letter forms, option text, numbered options, references, ambiguity, hostile input."""

from __future__ import annotations

import time

import pytest

from polya.verify.choice_judge import (
    ChoiceVerdict,
    extract_choice,
    judge_choice,
    option_label,
    resolve_reference,
)

SUSPECTS = ["Mr. Green", "Mrs. Peacock"]
PLACES = ["kitchen", "living room", "garage", "kitchen drawer"]
PEOPLE = ["Alice", "Bob", "Carol", "Dave"]


def _chosen(prediction: str, options: list[str]) -> str | None:
    indices, status = extract_choice(prediction, options)
    return option_label(indices[0]) if status == "found" else status


# ----- which option a prediction names -----------------------------------------------------------


@pytest.mark.parametrize(
    "prediction, options, expected",
    [
        # explicit letter forms
        ("Answer: B", SUSPECTS, "B"),
        ("ANSWER: (B)", SUSPECTS, "B"),
        ("After all that, the answer is B.", SUSPECTS, "B"),
        ("The final answer is **B**.", SUSPECTS, "B"),
        ("**B**", SUSPECTS, "B"),
        ("Weighing motive and opportunity...\n\nB", SUSPECTS, "B"),
        ("So I pick B) Mrs. Peacock.", SUSPECTS, "B"),
        ("Everything points to (A).", SUSPECTS, "A"),
        ("A is the correct answer.", PEOPLE, "A"),
        ("The answer is: b", SUSPECTS, "B"),  # a lone lower-case letter as the whole answer
        ("Final answer:\n\n(C) Carol", PEOPLE, "C"),  # the answer on the next line
        ("The **answer**: Bob", PEOPLE, "B"),
        # option text
        ("The murderer is Mr. Green.", SUSPECTS, "A"),
        ("The murderer is **mr.  green**.", SUSPECTS, "A"),  # case, spaces, markdown folded
        ("I first suspected Mrs. Peacock, but the murderer is Mr. Green.", SUSPECTS, "A"),  # the last mention
        ("The apple is in the kitchen drawer.", PLACES, "D"),  # the most specific option
        ("It is in the kitchen.", PLACES, "A"),
        ("I think the answer is Carol, I am sure.", PEOPLE, "C"),  # "I am" is a pronoun, not option I
        ("The answer is 2", ["1", "2", "3"], "B"),  # numeric option texts
        # numbered options, 1-based
        ("Option 2 is correct.", PLACES, "B"),
        ("I choose option 3", PLACES, "C"),
        ("choice #4", PLACES, "D"),
        # the final statement wins
        ("Answer: A\n...on reflection...\nFinal answer: B", SUSPECTS, "B"),
        ("Answer: B\n\nExplanation: Mr. Green had an alibi.", SUSPECTS, "B"),  # statement beats later mention
        ("Bob and Carol should lead; Alice is best at cooking. Answer: Alice", PEOPLE, "A"),
        # a reason after the answer, negations
        ("The answer is (B) Mrs. Peacock because Mr. Green was away.", SUSPECTS, "B"),
        ("Answer: B. Mr. Green had no motive.", SUSPECTS, "B"),
        ("The answer is B since Alice cannot cook.", PEOPLE, "B"),
        ("The answer is B, not A.", SUSPECTS, "B"),
        ("The answer is not A but B.", SUSPECTS, "B"),
        ("Neither Alice nor Bob; the answer is Dave.", PEOPLE, "D"),
        ("It wasn't Mrs. Peacock. The murderer is Mr. Green.", SUSPECTS, "A"),
        ("It was Mr. Green; it was not Mrs. Peacock.", SUSPECTS, "A"),
        # articles are not letters
        ("A knife was used. The answer is: b", SUSPECTS, "B"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 60 else None,
)
def test_named_option(prediction: str, options: list[str], expected: str) -> None:
    assert _chosen(prediction, options) == expected


@pytest.mark.parametrize(
    "prediction, options",
    [
        ("It is either Mr. Green or Mrs. Peacock.", SUSPECTS),
        ("The answer is A or B.", SUSPECTS),
        ("Answer: (A), (C)", PEOPLE),
        ("Final answer: Alice and Bob", PEOPLE),
        ("The options were:\n(A) Mr. Green\n(B) Mrs. Peacock", SUSPECTS),  # options restated at the end
        ("The answer is A/B.", SUSPECTS),
    ],
)
def test_two_options_stated_as_final_are_ambiguous(prediction: str, options: list[str]) -> None:
    assert extract_choice(prediction, options)[1] == "ambiguous"


@pytest.mark.parametrize(
    "prediction",
    [
        "",
        "Let me think. Nothing here is conclusive.",
        "The answer is (E).",  # a letter past the options
        "option 7",  # a number past the options
        "A knife and a rope.",  # articles, no options
    ],
)
def test_no_option_found(prediction: str) -> None:
    assert extract_choice(prediction, SUSPECTS) == ([], "no option found")


# ----- the reference -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference, expected",
    [
        ("Mrs. Peacock", 1),
        ("  mrs.  peacock ", 1),  # folded like the prediction
        ("B", 1),
        ("b", 1),
        ("(B)", 1),
        ("1", 1),  # 0-based index
        ("0", 0),
    ],
)
def test_reference_forms(reference: str, expected: int) -> None:
    assert resolve_reference(SUSPECTS, reference) == expected


def test_reference_text_beats_index() -> None:
    # "1" is option A's text, not the 0-based index of option B.
    assert resolve_reference(["1", "2", "3"], "1") == 0


@pytest.mark.parametrize("reference", ["Colonel Mustard", "C", "2", "-1", ""])
def test_reference_naming_no_option_raises(reference: str) -> None:
    with pytest.raises(ValueError, match="names no option"):
        resolve_reference(SUSPECTS, reference)


def test_empty_options_raise() -> None:
    with pytest.raises(ValueError, match="options"):
        judge_choice("Answer: A", [], "A")


# ----- verdicts ----------------------------------------------------------------------------------


def test_correct_verdict() -> None:
    verdict = judge_choice("The murderer is Mrs. Peacock.", SUSPECTS, "Mrs. Peacock")
    assert verdict == ChoiceVerdict(True, "B", "matches reference")
    assert verdict.to_dict() == {"correct": True, "extracted": "B", "reason": "matches reference"}


@pytest.mark.parametrize("reference", ["Mrs. Peacock", "B", "1"])
def test_reference_forms_agree(reference: str) -> None:
    assert judge_choice("Answer: (B)", SUSPECTS, reference).correct


def test_wrong_verdict() -> None:
    assert judge_choice("Answer: A", SUSPECTS, "B") == ChoiceVerdict(False, "A", "does not match reference")


def test_ambiguous_verdict_is_incorrect_even_when_it_contains_the_reference() -> None:
    verdict = judge_choice("The answer is A or B.", SUSPECTS, "A")
    assert verdict == ChoiceVerdict(False, "A, B", "ambiguous")


def test_no_option_verdict() -> None:
    assert judge_choice("I cannot tell.", SUSPECTS, "A") == ChoiceVerdict(False, None, "no option found")


def test_options_past_z_are_labelled_by_number() -> None:
    options = [f"suspect {i}" for i in range(30)]
    assert judge_choice("Answer: option 28", options, "27") == ChoiceVerdict(True, "option 28", "matches reference")


# ----- hostile input -----------------------------------------------------------------------------

MB = 1_000_000


@pytest.mark.parametrize(
    "hostile, options",
    [
        ("(A) " * (MB // 4), SUSPECTS),
        ("the answer is " * (MB // 14), SUSPECTS),
        ("Answer: A or " * (MB // 13), SUSPECTS),
        ("Mr. Green or " * (MB // 13), SUSPECTS),
        ("Mr. " * (MB // 4), SUSPECTS),
        ("not " * (MB // 4), SUSPECTS),
        ("." * MB, SUSPECTS),
        ("\n" * MB, SUSPECTS),
        ("a" * MB, ["a", "aa", "aaa"]),
        ("a " * (MB // 2), ["a " * k for k in range(1, 200)]),  # hundreds of overlapping options
        ("x" * MB, ["x" * MB, "y"]),  # a megabyte option
    ],
    ids=["letters", "answer-is", "answer-or", "option-text", "abbreviations", "negations", "dots", "newlines",
         "no-boundaries", "overlapping-options", "huge-option"],
)
def test_megabyte_hostile_string_returns_fast(hostile: str, options: list[str]) -> None:
    assert len(hostile) >= MB - 20
    # CPU time, not wall time: other work on the machine must not fail this (a quadratic scan
    # of a megabyte would take minutes, not seconds).
    started = time.process_time()
    verdict = judge_choice(hostile, options, "0")
    assert time.process_time() - started < 2.0
    assert isinstance(verdict, ChoiceVerdict)


def test_only_the_tail_is_searched() -> None:
    assert judge_choice("Answer: B" + "x " * MB, SUSPECTS, "B").reason == "no option found"
    assert judge_choice("x " * MB + "Answer: B", SUSPECTS, "B").correct
