"""pass@k: the unbiased estimator against exact enumeration of every k-subset."""

from __future__ import annotations

import itertools
import re
from fractions import Fraction
from math import comb

import pytest

from polya.metrics import PASS_AT_K_VALUES, default_ks, mean_pass_at_k, pass_at_k


def enumerated_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Share of all k-subsets of n samples (c correct) that contain a correct one, by listing them."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(1 for subset in subsets if any(samples[i] for i in subset))
    return Fraction(hits, len(subsets))


@pytest.mark.parametrize("n", range(1, 11))
def test_pass_at_k_equals_enumeration_over_all_subsets(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = enumerated_pass_at_k(n, c, k)
            assert pass_at_k(n, c, k) == pytest.approx(float(expected), abs=1e-12), (n, c, k)


def test_pass_at_1_is_the_fraction_correct() -> None:
    for n in (1, 7, 64):
        for c in range(n + 1):
            assert pass_at_k(n, c, 1) == pytest.approx(c / n, abs=1e-12)


def test_large_n_is_exact_without_huge_binomials() -> None:
    # Exact rational value from the closed form, for n where C(n, k) has hundreds of digits.
    for n, c, k in [(200, 3, 64), (1024, 1, 512), (1024, 17, 64), (500, 250, 250)]:
        exact = 1 - Fraction(comb(n - c, k), comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12, abs=1e-15)
    assert pass_at_k(1024, 1, 512) == pytest.approx(0.5, abs=1e-12)


def test_monotone_in_k_and_c() -> None:
    n = 64
    for c in range(n + 1):
        values = [pass_at_k(n, c, k) for k in PASS_AT_K_VALUES]
        assert values == sorted(values)
    for k in PASS_AT_K_VALUES:
        values = [pass_at_k(n, c, k) for c in range(n + 1)]
        assert values == sorted(values)
        assert values[0] == 0.0 and values[-1] == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 0, 1), "n (samples) must be >= 1"),
        ((4, 5, 1), "between 0 and n=4"),
        ((4, -1, 1), "between 0 and n=4"),
        ((4, 1, 5), "k must be between 1 and n=4"),
        ((4, 1, 0), "k must be between 1 and n=4"),
        ((4.0, 1, 1), "n must be an integer"),
        ((4, True, 1), "c must be an integer"),
    ],
)
def test_bad_arguments_raise_clear_errors(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        pass_at_k(*args)


def test_default_ks_and_mean() -> None:
    assert default_ks(64) == [1, 2, 4, 8, 16, 32, 64]
    assert default_ks(1) == [1]
    assert default_ks(6) == [1, 2, 4, 6]
    counts = [(4, 0), (4, 2), (4, 4)]
    means = mean_pass_at_k(counts, [1, 2, 4])
    assert means[1] == pytest.approx((0 + 0.5 + 1) / 3)
    assert means[2] == pytest.approx((0 + float(enumerated_pass_at_k(4, 2, 2)) + 1) / 3)
    assert means[4] == pytest.approx(2 / 3)
    assert mean_pass_at_k([], [1]) == {}
    with pytest.raises(ValueError):
        mean_pass_at_k([(2, 1)], [4])
