"""Intervals and paired tests against cases whose answer is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from polya.metrics.uncertainty import bootstrap_interval, holm, paired_test, stratified_mean


def test_a_constant_has_a_zero_width_interval() -> None:
    interval = bootstrap_interval([[0.25] * 40])
    assert (interval.estimate, interval.low, interval.high) == (0.25, 0.25, 0.25)


def test_bootstrap_interval_of_a_proportion_matches_the_normal_approximation() -> None:
    # 120 of 400 questions right: p = 0.3, standard error sqrt(p(1-p)/n) = 0.0229, 95% half-width 0.0449.
    values = [1.0] * 120 + [0.0] * 280
    interval = bootstrap_interval([values], resamples=4000)
    half = 1.96 * math.sqrt(0.3 * 0.7 / 400)
    assert interval.estimate == pytest.approx(0.3)
    assert interval.low == pytest.approx(0.3 - half, abs=0.006)
    assert interval.high == pytest.approx(0.3 + half, abs=0.006)


def test_intervals_are_seeded() -> None:
    values = list(np.random.default_rng(3).random(50))
    assert bootstrap_interval([values]) == bootstrap_interval([values])
    assert bootstrap_interval([values], seed=1) != bootstrap_interval([values], seed=2)


def test_stratified_mean_weighs_benchmarks_equally() -> None:
    assert stratified_mean([[1.0] * 10, [0.0] * 1000]) == 0.5
    interval = bootstrap_interval([[1.0] * 10, [0.0] * 1000])
    assert interval.low == interval.high == 0.5  # each stratum resampled on its own: constant within each


def test_no_difference_gives_p_one() -> None:
    test = paired_test([[0.0] * 30])
    assert (test.p_value, test.differing, test.decidable) == (1.0, 0, False)
    assert test.difference.estimate == 0.0


def test_exact_sign_flip_p_value_equals_the_sign_test() -> None:
    # 10 questions differ by +1, 2 by -1: the two-sided exact sign test over 12 differing questions.
    diffs = [1.0] * 10 + [-1.0] * 2 + [0.0] * 20
    test = paired_test([diffs])
    extreme = sum(math.comb(12, i) for i in range(0, 3))  # 0, 1 or 2 negatives (and mirror)
    assert test.exact and test.p_value == pytest.approx(2 * extreme / 2**12)
    assert test.questions == 32 and test.differing == 12 and test.decidable


def test_exact_p_value_by_brute_force_with_unequal_differences() -> None:
    diffs = [0.5, 0.25, -0.125, 0.75, 0.0, -0.5, 1.0]
    observed = abs(sum(diffs))
    nonzero = [d for d in diffs if d]
    patterns = [sum(s * d for s, d in zip(signs, nonzero)) for signs in itertools.product((1, -1), repeat=len(nonzero))]
    expected = sum(1 for t in patterns if abs(t) >= observed - 1e-12) / len(patterns)
    assert paired_test([diffs]).p_value == pytest.approx(expected)


def test_too_few_differing_questions_cannot_be_significant() -> None:
    # The cpu-demo case: one arm right on one question more than the other, out of 16.
    test = paired_test([[1.0] + [0.0] * 15])
    assert test.min_p_value == 1.0 and test.p_value == 1.0 and not test.decidable
    five = paired_test([[1.0] * 5 + [0.0] * 11])
    assert five.p_value == five.min_p_value == 2 / 2**5 and not five.decidable  # 0.0625: even all five agreeing is not enough
    six = paired_test([[1.0] * 6 + [0.0] * 10])
    assert six.p_value == 2 / 2**6 and six.decidable


def test_a_real_shift_on_many_questions_is_found_and_a_null_one_is_not() -> None:
    rng = np.random.default_rng(7)
    shifted = paired_test([rng.normal(0.1, 0.3, 400)])
    assert not shifted.exact and shifted.p_value < 0.001
    assert shifted.difference.low > 0 and shifted.difference.high < 0.2
    # Under the null, p-values are roughly uniform: about 5% of 200 tests fall below 0.05.
    rejections = sum(paired_test([rng.normal(0.0, 0.3, 60)], seed=i, resamples=400).p_value < 0.05 for i in range(200))
    assert 2 <= rejections <= 20


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []
    assert holm([0.2]) == [0.2]
