"""A hand-decided table of tricky math answers: (prediction, reference, expected verdict).

Each expectation was decided by hand from what the answer means, not read off the judge. Rules
the table relies on (see ``polya.verify.math_judge``'s docstring):

- floats are compared after rounding both sides to 6 decimals (math-verify's ``float_rounding``):
  ``0.333333`` == ``1/3``, ``3.141593`` == ``\\pi``; ``0.333`` != ``1/3``, ``3.14`` != ``\\pi``,
  ``3.14`` != ``3.1416``;
- percentages: the reference decides the scale. ``50\\%`` == ``50`` both ways; ``0.5`` is accepted
  only against a reference written as a percentage, and never when the prediction itself carries
  the percent sign;
- a comma followed by three digits is a thousands separator unless the answer is bracketed
  (tuple, set, interval);
- sets are unordered; tuples and intervals are ordered and their brackets matter.

A row that fails only because of a math-verify limitation stays in the table as a strict xfail.
"""

from __future__ import annotations

import pytest

from polya.verify import judge_math


def _row(case_id: str, prediction: str, reference: str, expected: bool, xfail: str | None = None):
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(prediction, reference, expected, id=case_id, marks=marks)


TABLE = [
    # ----- fractions and decimals -----
    _row("decimal-vs-frac", r"\boxed{0.5}", r"\frac{1}{2}", True),
    _row("dfrac-vs-decimal", r"\boxed{\dfrac{1}{2}}", "0.5", True),
    _row("tfrac-short-vs-slash", r"\boxed{\tfrac12}", "1/2", True),
    _row("slash-vs-frac-short", r"\boxed{1/2}", r"\frac12", True),
    _row("trailing-zero-decimal", r"\boxed{0.50}", "1/2", True),
    _row("unreduced-fraction", r"\boxed{2/4}", r"\frac{1}{2}", True),
    _row("displaystyle-frac", r"\boxed{\displaystyle\frac{1}{2}}", "0.5", True),
    _row("close-decimal-is-wrong", r"\boxed{0.51}", r"\frac{1}{2}", False),
    # ----- negative numbers -----
    _row("negative-decimal-vs-frac", r"\boxed{-0.5}", r"-\frac{1}{2}", True),
    _row("minus-inside-frac", r"\boxed{\frac{-1}{2}}", r"-\frac12", True),
    _row("unicode-minus", r"\boxed{−7}", "-7", True),
    _row("sign-lost-frac", r"\boxed{-\frac{1}{2}}", r"\frac{1}{2}", False),
    _row("sign-lost-integer", r"\boxed{-3}", "3", False),
    # ----- thousands separators -----
    _row("commas-millions", r"\boxed{1,234,567}", "1234567", True),
    _row("thin-space-separator", r"\boxed{1\,234}", "1234", True),
    _row("braced-comma-separator", r"\boxed{1{,}234}", "1234", True),
    _row("commas-with-decimals", r"\boxed{1,234.5}", "1234.5", True),
    _row("commas-in-reference", r"\boxed{1234}", "1,234", True),
    _row("tuple-keeps-its-comma", r"\boxed{(1,234)}", "(1, 234)", True),
    _row("tuple-is-not-a-number", r"\boxed{(1,234)}", "1234", False),
    _row("set-is-not-a-number", r"\boxed{\{1,234\}}", "1234", False),
    _row("interval-keeps-its-comma", r"\boxed{[1,234]}", "[1, 234]", True),
    # ----- percentages -----
    _row("percent-vs-bare", r"\boxed{50\%}", "50", True),
    _row("bare-vs-percent-reference", r"\boxed{50}", r"50\%", True),
    _row("fraction-vs-percent-reference", r"\boxed{0.5}", r"50\%", True),
    _row("fraction-vs-percent-word-reference", r"\boxed{0.5}", "50 percent", True),
    _row("percent-prediction-not-rescaled", r"\boxed{50\%}", "0.5", False),
    _row("fraction-vs-bare-reference", r"\boxed{0.5}", "50", False),
    _row("percent-of-fraction-is-wrong", r"\boxed{0.5\%}", r"50\%", False),
    _row("percent-word-in-sentence", "The answer is 50 percent.", "50", True),
    # ----- currency -----
    _row("escaped-dollar-with-commas", r"\boxed{\$1,250.00}", "1250", True),
    _row("answer-is-dollar-cents", "The answer is $12.50.", "12.5", True),
    _row("euro-sign", r"\boxed{€20}", "20", True),
    _row("dollar-word-vs-dollar-sign", r"\boxed{5\text{ dollars}}", r"\$5", True),
    _row("dollar-wrong-amount", r"\boxed{\$13}", "12", False),
    # ----- units and text -----
    _row("text-unit", r"\boxed{12 \text{ apples}}", "12", True),
    _row("text-unit-squared", r"\boxed{12\text{ cm}^2}", "12", True),
    _row("plain-unit-word", r"\boxed{5 dollars}", "5", True),
    _row("plain-compound-unit", r"\boxed{15 km/h}", "15", True),
    _row("mathrm-unit", r"\boxed{7\mathrm{m}}", "7", True),
    _row("frac-with-unit", r"\boxed{\frac{1}{2}\text{ cup}}", "0.5", True),
    _row("text-word-answer", r"\boxed{\text{Monday}}", "Monday", True),
    _row("text-word-answer-wrong", r"\boxed{\text{odd}}", r"\text{even}", False),
    _row("unit-kept-number-wrong", r"\boxed{13 \text{ apples}}", "12", False),
    # ----- scientific notation -----
    _row("e-notation", r"\boxed{1.2e3}", "1200", True),
    _row("times-ten-power", r"\boxed{1.2 \times 10^{3}}", "1200", True),
    _row("e-notation-negative-exponent", r"\boxed{1.5e-3}", "0.0015", True),
    _row("e-notation-signed-exponent", r"\boxed{1.5E+03}", "1500", True),
    _row("e-notation-wrong-exponent", r"\boxed{1.2e3}", "120", False),
    # ----- roots and pi -----
    _row("sqrt-simplified", r"\boxed{2\sqrt{2}}", r"\sqrt{8}", True),
    _row("sqrt-unsimplified", r"\boxed{\sqrt{8}}", r"2\sqrt2", True),
    _row("rationalised-denominator", r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{1}{\sqrt{2}}", True),
    _row("unicode-sqrt", r"\boxed{√2}", r"\sqrt{2}", True),
    _row("sqrt-wrong-coefficient", r"\boxed{3\sqrt{2}}", r"\sqrt{8}", False),
    _row("pi-half-forms", r"\boxed{\frac{\pi}{2}}", r"\pi/2", True),
    _row("plain-word-pi", r"\boxed{2 pi}", r"2\pi", True),
    _row("unicode-pi", r"\boxed{π}", r"\pi", True),
    _row("pi-to-six-decimals", r"\boxed{3.141593}", r"\pi", True),
    _row("pi-two-decimals-is-wrong", r"\boxed{3.14}", r"\pi", False),
    # ----- wrong-but-close numbers (6-decimal rounding) -----
    _row("two-vs-four-decimals", r"\boxed{3.14}", "3.1416", False),
    _row("four-vs-five-decimals", r"\boxed{3.1416}", "3.14159", False),
    _row("third-three-decimals", r"\boxed{0.333}", r"\frac13", False),
    _row("third-six-decimals", r"\boxed{0.333333}", r"\frac13", True),
    _row("off-by-one", r"\boxed{99}", "100", False),
    _row("off-in-sixth-decimal", r"\boxed{1.000001}", "1", False),
    _row(
        "rounds-to-integer-at-six-decimals",
        r"\boxed{1.0000001}",
        "1",
        True,
        xfail="math-verify rounds floats to 6 decimals, but on SymPy >= 1.13 Integer(1) != Float(1.000000), "
        "so a float never matches an integer gold by rounding (0.3333333 vs 1/3 does match)",
    ),
    # ----- sets, tuples, intervals -----
    _row("set-order-irrelevant", r"\boxed{\{1,2\}}", r"\{2,1\}", True),
    _row("set-extra-element", r"\boxed{\{1,2,3\}}", r"\{1,2\}", False),
    _row("tuple-same", r"\boxed{(1,2)}", "(1,2)", True),
    _row("tuple-swapped", r"\boxed{(2,1)}", "(1,2)", False),
    _row("tuple-with-left-right", r"\boxed{\left( 3, 4 \right)}", "(3,4)", True),
    _row("interval-half-open-vs-closed", r"\boxed{[0,1)}", "[0,1]", False),
    _row("interval-left-right-brackets", r"\boxed{\left[0,1\right)}", "[0, 1)", True),
    _row("interval-to-minus-infinity", r"\boxed{(-\infty, 0]}", r"(-\infty,0]", True),
    _row("list-and-text", r"\boxed{1, 2}", r"1 \text{ and } 2", True),
    _row("list-or-text", r"\boxed{2 \text{ or } 3}", "2, 3", True),
    # ----- equations -----
    _row("equation-vs-value", r"\boxed{x=3}", "3", True),
    _row("value-vs-equation-reference", r"\boxed{3}", "x=3", True),
    _row("equation-wrong-sign", r"\boxed{x=-3}", "3", False),
    _row("equation-other-variable", r"\boxed{x = 3}", "y = 3", False),
    # ----- LaTeX variants -----
    _row("negative-thin-spaces", r"\boxed{3\!,\!4}", "3,4", True),
    _row("spaces-in-frac", r"\boxed{\frac{1}{2}}", r"\frac {1} {2}", True),
    _row("invisible-delimiters", r"\boxed{\left.\frac{1}{2}\right.}", "0.5", True),
    _row("polynomial-expanded", r"\boxed{x^2+2x+1}", "(x+1)^2", True),
    _row("polynomial-wrong", r"\boxed{x^2+2x+2}", "(x+1)^2", False),
    _row("complex-reordered", r"\boxed{2+3i}", "3i+2", True),
    _row("degrees-circ", r"\boxed{30^\circ}", "30", True),
    _row("degrees-braced-circ", r"\boxed{30^{\circ}}", "30", True),
    _row("degrees-word", r"\boxed{30 degrees}", "30", True),
    _row("degrees-are-not-radians", r"\boxed{30^\circ}", r"\frac{\pi}{6}", False),
    _row("trailing-period", r"\boxed{12.}", "12", True),
    # ----- matrices -----
    _row("matrix-same", r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix}1\\2\end{pmatrix}", True),
    _row("matrix-swapped", r"\boxed{\begin{pmatrix} 2 \\ 1 \end{pmatrix}}", r"\begin{pmatrix}1\\2\end{pmatrix}", False),
    # ----- infinity -----
    _row("infinity", r"\boxed{\infty}", r"\infty", True),
    _row("infinity-word-reference", r"\boxed{\infty}", "infinity", True),
    _row("infinity-sign", r"\boxed{-\infty}", r"\infty", False),
    # ----- extraction: boxes, markers, trailing text -----
    _row("last-box-wins", r"First \boxed{3}, then \boxed{4}.", "4", True),
    _row("earlier-box-ignored", r"First \boxed{3}, then \boxed{4}.", "3", False),
    _row("box-in-box", r"\boxed{\boxed{5}}", "5", True),
    _row("box-in-box-with-text", r"\boxed{The answer is \boxed{7}}", "7", True),
    _row("answer-is-with-because", "The answer is 42 because 6 times 7 is 42.", "42", True),
    _row("answer-is-with-since", "The answer is 42, since 6*7=42.", "42", True),
    _row("answer-is-with-unit", "The answer is 3 apples.", "3", True),
    _row("answer-is-bold", "The answer is **12**.", "12", True),
    _row("final-answer-colon", "Final answer: 17", "17", True),
    _row("final-answer-markdown", "**Final Answer:** 17", "17", True),
    _row("minerva-format", "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "0.75", True),
    _row("answer-is-wrong", "The answer is 41 because 6 times 7 is 41.", "42", False),
    # ----- GSM8K -----
    _row("gsm8k-marker", "Natalia sold 48 + 24 = 72 clips.\n#### 72", "72", True),
    _row("gsm8k-commas-both-sides", "#### 1,234", "1,234", True),
    _row("gsm8k-dollar-commas", "#### $1,234", "1234", True),
    _row("gsm8k-million-words", "The answer is 1,000,000 dollars.", "10^6", True),
    _row("gsm8k-wrong", "#### 1,235", "1234", False),
]


@pytest.mark.parametrize("prediction, reference, expected", TABLE)
def test_equivalence_table(prediction: str, reference: str, expected: bool) -> None:
    verdict = judge_math(prediction, reference)
    assert verdict.correct is expected, verdict
    assert verdict.reason == ("equivalent" if expected else "not equivalent"), verdict


def test_table_size_and_balance() -> None:
    expected = [param.values[2] for param in TABLE]
    assert len(TABLE) >= 60
    assert sum(1 for value in expected if not value) >= 20
    ids = [param.id for param in TABLE]
    assert len(ids) == len(set(ids)), "row ids must be unique"
