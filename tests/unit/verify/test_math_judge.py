"""The math judge: final-answer extraction, equivalences math-verify must accept, wrong answers, hostile input.

math-verify bounds its work with ``signal.alarm``; pytest runs tests on the main thread, so the
timeouts work here as they do in the generate stage's judge worker processes.
"""

from __future__ import annotations

import time

import pytest

from polya.verify import MathVerdict, extract_final_answer, judge_math
from polya.verify.math_judge import is_percentage, normalize_answer

# ----- extraction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("First \\boxed{3}, then corrected: \\boxed{4}.", "4"),  # the last box wins
        ("So \\boxed{\\frac{1}{\\sqrt{2}}} is it.", "\\frac{1}{\\sqrt{2}}"),  # nested braces
        ("\\boxed{ {a}{b} }", "{a}{b}"),  # inner braces kept, outer whitespace stripped
        ("\\boxed 5", "5"),
        ("Thus \\boxed 5.", "5"),
        ("\\boxed {7}", "7"),
        ("\\fbox{8}", "8"),
        ("\\boxed{1} and \\fbox{9}", "9"),
        ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72"),
        ("#### 5\n#### 6", "6"),  # last GSM8K marker
        ("####1,234", "1,234"),
        ("The answer is 42.", "42"),
        ("Therefore, the answer is: 7\n", "7"),
        ("THE ANSWER IS 9", "9"),
        ("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}"),
        ("The answer is 1.5.", "1.5"),  # a decimal point does not end the answer
        ("The answer is $1.5$.", "1.5"),
        ("So the answer is 3.14", "3.14"),
        ("The answer is 12. Then we check it.", "12"),
        ("the answer is \\$12.", "12"),
        ("The answer is 6.\nThe answer is 7.", "7"),  # the last statement wins
    ],
)
def test_extract_final_answer(text: str, expected: str) -> None:
    assert extract_final_answer(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Final answer: 17", "17"),
        ("**Final Answer:** 17", "17"),
        ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
        ("Some work.\nAnswer: 12\n", "12"),
        ("The answer is **12**.", "12"),
        ("The answer is 42 because 6 times 7 is 42.", "42"),  # a trailing clause is cut
        ("The answer is 42, since 6*7=42.", "42"),
        ("The answer is 3 apples.", "3 apples"),  # units stay: extraction returns the answer as written
        ("\\boxed{\\boxed{5}}", "5"),  # a box in a box: the inner one
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),  # escaped braces are not groups
    ],
)
def test_extract_final_answer_forms(text: str, expected: str) -> None:
    assert extract_final_answer(text) == expected


def test_boxed_beats_gsm8k_marker_and_answer_is() -> None:
    assert extract_final_answer("\\boxed{a}\n#### 5\nThe answer is 6.") == "a"


def test_gsm8k_marker_beats_answer_is() -> None:
    assert extract_final_answer("#### 5\nThe answer is 6.") == "5"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I am not sure.",
        "\\boxed{}",  # empty box
        "\\boxed{3",  # cut off mid-answer
        "\\boxedx{3}",  # not a box command
        "\\boxed{3} and then \\boxed{4",  # the last box is cut off: the earlier one is not the final answer
    ],
)
def test_no_final_answer(text: str) -> None:
    assert extract_final_answer(text) is None


def test_only_the_tail_of_a_long_prediction_is_searched() -> None:
    text = "\\boxed{1}" + "x" * 50_000
    assert extract_final_answer(text) is None
    assert extract_final_answer("x" * 50_000 + "\\boxed{2}") == "2"


# ----- judging ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prediction, reference",
    [
        ("\\boxed{1,234}", "1234"),
        ("\\boxed{1234}", "1,234"),
        ("#### 1,234", "1234"),
        ("\\boxed{\\frac{1}{2}}", "0.5"),
        ("\\boxed{0.5}", "\\frac{1}{2}"),
        ("\\boxed{\\frac12}", "\\frac{1}{2}"),
        ("\\boxed{12 \\text{ apples}}", "12"),
        ("\\boxed{\\$12}", "12"),
        ("\\boxed{$12}", "12"),
        ("#### $12", "12"),
        ("The answer is $12.", "12"),
        ("the answer is \\$12.", "12"),
        ("\\boxed{12}", "\\$12"),
        ("\\boxed{50\\%}", "50"),
        ("\\boxed{50}", "50\\%"),
        ("\\boxed{x = 4}", "4"),
        ("\\boxed 5.", "5"),
        ("The answer is 1.5.", "1.5"),
        ("Long work... \\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt{2}}{2}"),
    ],
)
def test_equivalent_answers_are_correct(prediction: str, reference: str) -> None:
    verdict = judge_math(prediction, reference)
    assert verdict.correct, verdict
    assert verdict.reason == "equivalent"
    assert verdict.extracted is not None


@pytest.mark.parametrize(
    "prediction, reference",
    [
        ("\\boxed{13}", "12"),
        ("\\boxed{-3}", "3"),
        ("\\boxed{0.333}", "\\frac{1}{3}"),
        ("\\boxed{13 \\text{ apples}}", "12"),
        ("#### 1,235", "1234"),
        ("The answer is 1.5.", "1"),  # would pass if the decimal point ended the answer
        ("\\boxed{12} was a guess; \\boxed{11}", "12"),  # the last box counts
    ],
)
def test_wrong_answers_are_not_correct(prediction: str, reference: str) -> None:
    verdict = judge_math(prediction, reference)
    assert not verdict.correct
    assert verdict.reason == "not equivalent"


def test_no_answer_gives_a_reason() -> None:
    verdict = judge_math("I think it is about twelve or so", "12")
    assert verdict == MathVerdict(False, None, "no final answer found")
    assert verdict.to_dict() == {"correct": False, "extracted": None, "reason": "no final answer found", "status": "fail"}


def test_unparseable_reference_gives_a_reason() -> None:
    verdict = judge_math("\\boxed{5}", "")
    assert not verdict.correct
    assert verdict.extracted == "5"
    assert verdict.reason == "reference answer could not be parsed"


def test_verdict_dict_round_trip() -> None:
    verdict = judge_math("\\boxed{2}", "2")
    assert verdict.to_dict() == {"correct": True, "extracted": "2", "reason": "equivalent", "status": "pass"}


# ----- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1,234", "1234"),
        ("1,234,567.5", "1234567.5"),
        ("(1,234)", "(1,234)"),  # a pair, not a number
        ("\\{1,234\\}", "\\{1,234\\}"),
        ("[1,234)", "[1,234)"),
        ("1\\,234", "1234"),
        ("1{,}234", "1234"),
        ("\\$12", "12"),
        ("$12$", "12"),
        ("€20", "20"),
        ("50\\%", "50"),
        ("50%", "50"),
        ("50 percent", "50"),
        ("12 \\text{ apples}", "12"),
        ("12\\text{ cm}^2", "12"),
        ("12 \\mbox{cm}", "12"),
        ("7\\mathrm{m}", "7"),
        ("5 dollars", "5"),
        ("15 km/h", "15"),
        ("3 square feet", "3"),
        ("2 pi", "2 \\pi"),  # a math word is not a unit
        ("\\text{Monday}", "Monday"),  # all text: unwrapped, not dropped
        ("1 \\text{ or } 2", "1 , 2"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\tfrac12", "\\frac12"),
        ("\\left( 3, 4 \\right)", "( 3, 4 )"),
        ("\\left.\\frac{1}{2}\\right.", "\\frac{1}{2}"),
        ("30^\\circ", "30"),
        ("30^{\\circ}", "30"),
        ("30°", "30"),
        ("12.", "12"),
        ("1.5e-3", "1.5\\times 10^{-3}"),
        ("−7", "-7"),
        ("**12**", "12"),
        ("x = 3", "x = 3"),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize("answer, expected", [("50\\%", True), ("50%", True), ("50 percent", True), ("50", False), ("0.5", False)])
def test_is_percentage(answer: str, expected: bool) -> None:
    assert is_percentage(answer) is expected


@pytest.mark.parametrize(
    "prediction, reference, expected",
    [
        ("\\boxed{50\\%}", "50", True),  # the percent sign is a unit
        ("\\boxed{50}", "50\\%", True),
        ("\\boxed{0.5}", "50\\%", True),  # a percentage reference also stands for its fraction
        ("\\boxed{50\\%}", "0.5", False),  # the prediction's own sign never rescales it
        ("\\boxed{0.5\\%}", "50\\%", False),
        ("\\boxed{0.5}", "50", False),
    ],
)
def test_percentage_rule(prediction: str, reference: str, expected: bool) -> None:
    assert judge_math(prediction, reference).correct is expected


def test_answer_that_normalises_to_nothing_gives_a_reason() -> None:
    verdict = judge_math("\\boxed{\\$}", "5")
    assert verdict == MathVerdict(False, "\\$", "final answer could not be parsed")


def test_overlong_reference_is_refused() -> None:
    verdict = judge_math("\\boxed{1}", "1" * 5_000)
    assert not verdict.correct
    assert verdict.reason.startswith("reference answer longer than")


def test_extracted_is_the_answer_as_written() -> None:
    assert judge_math("\\boxed{\\$1,234}", "1234") == MathVerdict(True, "\\$1,234", "equivalent")


# ----- hostile input -----------------------------------------------------------------------------

MB = 1_000_000


@pytest.mark.parametrize(
    "hostile",
    [
        "\\boxed{" * (MB // 7 + 1),  # a megabyte of unclosed boxes
        "{" * MB,
        "\\boxed{" + "(" * MB + "}",
        "\\boxed{" + "{" * MB + "}" * MB + "}",  # deeply nested braces
        "answer is " + "1+" * (MB // 2),
        "#### " + " 1" * (MB // 2),
        "\\frac{" * (MB // 6 + 1) + "1",
        "\\boxed{1}" * (MB // 9 + 1),
        "x" * MB + "\\boxed{" + "x^{" * 3000 + "1" + "}" * 3000,  # cut-off tower at the very end
    ],
    ids=["unclosed-boxes", "braces", "parens", "nested", "answer-is", "gsm8k", "fracs", "many-boxes", "cut-off-tower"],
)
def test_megabyte_hostile_string_returns_fast(hostile: str) -> None:
    assert len(hostile) >= MB
    # CPU time, not wall time: other work on the machine must not fail this.
    started = time.process_time()
    verdict = judge_math(hostile, "1")
    assert time.process_time() - started < 3.0
    assert isinstance(verdict, MathVerdict)


def test_megabyte_string_with_a_pathological_answer_is_bounded_by_the_timeout() -> None:
    # The answer itself is expensive to verify; the judge's timeout bounds the time spent.
    hostile = "x" * MB + "\\boxed{9^9^9^9^9^9^9^9^9}"
    started = time.process_time()  # the limit is CPU time: other load on the machine must not fail this
    verdict = judge_math(hostile, "1", timeout_s=1)
    assert time.process_time() - started < 3.0  # 1 s of CPU time plus extraction; unbounded would be hours
    assert (verdict.status, verdict.correct) == ("timeout", False), verdict


@pytest.mark.parametrize("tail", [" " * 19_000, "\t" * 19_000, " *" * 9_000, ": " * 9_000])
def test_answer_phrase_followed_by_whitespace_cannot_backtrack(tail: str) -> None:
    """'The answer is' + a long run of blanks once took minutes (regex backtracking)."""
    import time

    started = time.process_time()  # CPU time: other load on the machine must not fail this
    verdict = judge_math("The answer is" + tail, "42", timeout_s=1)
    assert time.process_time() - started < 1.0
    assert verdict.correct is False
