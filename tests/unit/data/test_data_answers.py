"""Answer extraction: GSM8K's #### marker and MATH's \\boxed{}, including hostile input."""

from __future__ import annotations

import time

import pytest

from polya.core.errors import DataError
from polya.data.answers import extract_boxed, extract_gsm8k_answer, split_gsm8k_solution


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Natalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "72"),
        ("#### 1,234", "1234"),
        ("#### 109,200,000", "109200000"),
        ("She pays $5.\n#### $1,080", "1080"),
        ("#### -3", "-3"),
        ("#### 0.25 ", "0.25"),
        ("a #### 1\nb #### 2\n", "2"),
        ("#### 72\nextra trailing line", "72"),
    ],
)
def test_gsm8k_answer(text: str, expected: str) -> None:
    assert extract_gsm8k_answer(text) == expected


def test_gsm8k_answer_keeps_non_thousands_commas() -> None:
    assert extract_gsm8k_answer("#### (1,2)") == "(1,2)"


@pytest.mark.parametrize("text", ["no marker at all", "ends with marker ####   "])
def test_gsm8k_answer_missing_is_a_data_error(text: str) -> None:
    with pytest.raises(DataError, match="####"):
        extract_gsm8k_answer(text)


def test_split_gsm8k_solution() -> None:
    reasoning, answer = split_gsm8k_solution("Step one.\nStep two.\n#### 1,000")
    assert reasoning == "Step one.\nStep two."
    assert answer == "1000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so $\boxed{5}$.", "5"),
        (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),
        (r"\boxed{\frac{\sqrt{3}}{2}} and more", r"\frac{\sqrt{3}}{2}"),
        (r"first \boxed{1}, then \boxed{2}", "2"),
        (r"\boxed{\boxed{5}}", "5"),
        (r"\boxed{x = \boxed{7}} done", "7"),
        (r"\fbox{3}", "3"),
        (r"\boxed{a} then \fbox{b}", "b"),
        (r"The answer is $\boxed 7$.", "7"),
        (r"The answer is \boxed 42.", "42"),
        (r"\boxed {  12 }", "12"),
        (r"\boxed{\{0, 1\}}", r"\{0, 1\}"),
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"\boxed{}", ""),
    ],
)
def test_extract_boxed(text: str, expected: str) -> None:
    assert extract_boxed(text) == expected


@pytest.mark.parametrize("text", ["", "no box", r"\boxedx{3}", r"\boxed{unclosed", r"\boxed"])
def test_extract_boxed_absent(text: str) -> None:
    assert extract_boxed(text) is None


def test_unclosed_last_box_falls_back_to_the_last_complete_one() -> None:
    assert extract_boxed(r"\boxed{4} but then \boxed{oops") == "4"


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{" * 200_000,  # 1.4 MB of unclosed boxes
        "\\boxed{" * 100_000 + "1" + "}" * 100_000,  # 100k nested boxes, all closed
        "{" * 1_000_000 + "\\boxed{9}",
        "x" * 2_000_000 + "\\boxed{8}",
        "\\boxed 1 " * 200_000,
    ],
)
def test_megabyte_input_is_fast(text: str) -> None:
    start = time.perf_counter()
    extract_boxed(text)
    assert time.perf_counter() - start < 2.0


def test_megabyte_nested_answer_is_innermost() -> None:
    text = "\\boxed{" * 100_000 + "1" + "}" * 100_000
    assert extract_boxed(text) == "1"


def test_megabyte_gsm8k_is_fast() -> None:
    text = "#### 1 " * 300_000
    start = time.perf_counter()
    assert extract_gsm8k_answer(text) == "1"
    assert time.perf_counter() - start < 1.0
