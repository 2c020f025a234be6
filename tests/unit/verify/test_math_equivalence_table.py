"""A hand-decided table of tricky math answers (``math_equivalence_table.yaml``): prediction, reference, verdict.

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

from pathlib import Path

import pytest
import yaml

from polya.verify import judge_math

TABLE = [
    pytest.param(
        row["prediction"], row["reference"], row["equivalent"], id=row["id"],
        marks=[pytest.mark.xfail(strict=True, reason=row["xfail"])] if row.get("xfail") else [],
    )
    for row in yaml.safe_load((Path(__file__).with_name("math_equivalence_table.yaml")).read_text(encoding="utf-8"))
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
