"""How sure a pass@k number is, and whether two arms really differ.

Questions are the unit of resampling: a benchmark's pass@k is the mean of per-question values,
so its uncertainty comes from which questions happened to be in the benchmark. An average over
benchmarks is the mean of benchmark means; each benchmark is one *stratum*, resampled on its own.

- :func:`bootstrap_interval`: a percentile bootstrap interval of the (stratified) mean.
- :func:`paired_test`: two arms on the **same** questions. The difference of their per-question
  values, its bootstrap interval, and a two-sided **sign-flip permutation** p-value: under "no
  difference" each question's difference is as likely to have either sign. With at most
  :data:`EXACT_FLIPS_MAX` non-zero differences every sign pattern is enumerated (an exact test),
  beyond that ``resamples`` random patterns are drawn (Monte Carlo, ``(hits + 1) / (draws + 1)``).
- :func:`holm`: Holm's step-down adjustment for a family of p-values (all pairs of arms on one
  benchmark and k).

**Too few to tell.** With m questions whose difference is not zero, the smallest p-value the
sign-flip test can give is ``2 / 2^m`` (every difference has the same sign and no other pattern
is as extreme). With m < 6 it is above 0.05: no result on such a benchmark can be significant,
whatever the arms do, and :class:`PairedTest` says so (``decidable`` False) instead of reading
"no difference".

Everything is seeded: the same inputs give the same intervals and p-values.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
ALPHA = 0.05
RESAMPLES = 2000
"""Bootstrap resamples (and Monte Carlo sign-flip draws are 5x this)."""
EXACT_FLIPS_MAX = 16
"""Up to this many non-zero differences the sign-flip test enumerates all 2^m patterns."""

Strata = Sequence[Sequence[float]]
"""Per-question values, one sequence per benchmark (a single benchmark: one sequence)."""


@dataclass(frozen=True)
class Interval:
    """A point estimate and its ``confidence`` interval (``low`` <= ``estimate`` <= ``high`` usually)."""

    estimate: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    def to_dict(self, digits: int = 4) -> dict[str, float]:
        return {"estimate": round(self.estimate, digits), "low": round(self.low, digits), "high": round(self.high, digits)}


@dataclass(frozen=True)
class PairedTest:
    """Arm A minus arm B on the same questions."""

    questions: int
    """Questions both arms were judged on (summed over strata)."""
    differing: int
    """Questions whose difference is not zero: what the sign-flip test can work with."""
    difference: Interval
    p_value: float
    min_p_value: float
    """The smallest p-value this many differing questions could ever give (``2 / 2^differing``)."""
    exact: bool
    """True when every sign pattern was enumerated."""

    @property
    def decidable(self) -> bool:
        """Whether a difference could be significant at :data:`ALPHA` with these questions at all."""
        return self.min_p_value <= ALPHA

    def to_dict(self, digits: int = 4) -> dict[str, object]:
        out = asdict(self)
        out["difference"] = self.difference.to_dict(digits)
        out["p_value"] = round(self.p_value, 6)
        out["min_p_value"] = round(self.min_p_value, 6)
        out["decidable"] = self.decidable
        return out


def _arrays(strata: Strata) -> list[np.ndarray]:
    arrays = [np.asarray(s, dtype=float) for s in strata]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        raise ValueError("no values: every stratum is empty")
    return arrays


def stratified_mean(strata: Strata) -> float:
    """Mean over strata of each stratum's mean (one stratum: the plain mean)."""
    return float(np.mean([a.mean() for a in _arrays(strata)]))


def bootstrap_interval(
    strata: Strata, *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of :func:`stratified_mean`, resampling questions within each stratum."""
    arrays = _arrays(strata)
    means = np.zeros(resamples)
    for index, a in enumerate(arrays):
        means += a[_picks(seed, index, a.size, resamples)].mean(axis=1)
    means /= len(arrays)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(stratified_mean(arrays), float(low), float(high), confidence)


@functools.lru_cache(maxsize=32)
def _picks(seed: int, stratum: int, size: int, resamples: int) -> np.ndarray:
    """Bootstrap indices for one stratum (cached: every arm and pair on a benchmark reuses them)."""
    return np.random.default_rng([seed, stratum, size]).integers(0, size, size=(resamples, size))


@functools.lru_cache(maxsize=32)
def _signs(seed: int, size: int, draws: int) -> np.ndarray:
    """Random sign patterns for ``size`` differences (cached like :func:`_picks`)."""
    return np.random.default_rng([seed, size]).choice((1.0, -1.0), size=(draws, size))


@functools.lru_cache(maxsize=EXACT_FLIPS_MAX + 1)
def _all_signs(size: int) -> np.ndarray:
    return np.array(list(itertools.product((1.0, -1.0), repeat=size)))


def _sign_flip_p(arrays: list[np.ndarray], resamples: int, seed: int) -> tuple[float, bool]:
    # T = sum_i w_i d_i with w_i = 1 / (strata x stratum size): the stratified mean of differences.
    weights = np.concatenate([np.full(a.size, 1.0 / (len(arrays) * a.size)) for a in arrays])
    terms = weights * np.concatenate(arrays)
    terms = terms[terms != 0]
    if terms.size == 0:
        return 1.0, True
    observed = abs(terms.sum())
    tolerance = 1e-12 * max(1.0, float(np.abs(terms).sum()))
    if terms.size <= EXACT_FLIPS_MAX:
        totals = np.abs(_all_signs(terms.size) @ terms)
        return float(np.mean(totals >= observed - tolerance)), True
    draws = 5 * resamples
    hits = int(np.sum(np.abs(_signs(seed, terms.size, draws) @ terms) >= observed - tolerance))
    return (hits + 1) / (draws + 1), False


def paired_test(
    differences: Strata, *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0
) -> PairedTest:
    """Test the per-question differences (arm A minus arm B, same questions) against "no difference"."""
    arrays = _arrays(differences)
    differing = int(sum(np.count_nonzero(a) for a in arrays))
    p_value, exact = _sign_flip_p(arrays, resamples, seed)
    return PairedTest(
        questions=int(sum(a.size for a in arrays)),
        differing=differing,
        difference=bootstrap_interval(arrays, confidence=confidence, resamples=resamples, seed=seed),
        p_value=p_value,
        min_p_value=min(1.0, 2.0 / 2**differing) if differing else 1.0,
        exact=exact,
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): family-wise error at most alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
