"""Evaluation metrics shared by the eval stage, reports and RL logging.

:func:`pass_at_k` is the unbiased estimator of Chen et al. (2021, "Evaluating Large Language
Models Trained on Code"): with ``n`` samples of which ``c`` are correct, the probability that a
random subset of ``k`` samples (drawn without replacement) holds at least one correct one is

    pass@k = 1 - C(n - c, k) / C(n, k)

It is computed as ``1 - prod_{i = n-c+1}^{n} (1 - k / i)``, a product of ``c`` factors in
[0, 1], so it never forms the huge binomials (C(1024, 512) has 306 digits) and stays exact to
float rounding for any n.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

PASS_AT_K_VALUES = (1, 2, 4, 8, 16, 32, 64)
"""The k values the paper reports (pass@1 .. pass@64)."""


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    return value


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one question with ``n`` samples, ``c`` of them correct.

    Raises :class:`ValueError` unless ``n >= 1``, ``0 <= c <= n`` and ``1 <= k <= n``
    (pass@k with k > n samples cannot be estimated from them).

    >>> pass_at_k(4, 0, 2), pass_at_k(4, 4, 1), pass_at_k(4, 1, 1), round(pass_at_k(4, 1, 2), 4)
    (0.0, 1.0, 0.25, 0.5)
    """
    n, c, k = _check_int("n", n), _check_int("c", c), _check_int("k", k)
    if n < 1:
        raise ValueError(f"n (samples) must be >= 1, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c (correct samples) must be between 0 and n={n}, got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and n={n} (the samples drawn), got {k}")
    if n - c < k:
        return 1.0  # every k-subset holds a correct sample
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def default_ks(n: int) -> list[int]:
    """Powers of two up to ``n`` (1, 2, 4, ... <= n); ``n`` itself is added when it is not one."""
    n = _check_int("n", n)
    if n < 1:
        raise ValueError(f"n (samples) must be >= 1, got {n}")
    ks = [2**i for i in range(int(math.log2(n)) + 1) if 2**i <= n]
    if ks[-1] != n:
        ks.append(n)
    return ks


def mean_pass_at_k(counts: Iterable[tuple[int, int]], ks: Sequence[int]) -> dict[int, float]:
    """pass@k averaged over questions, for each k; ``counts`` holds one (n, c) per question.

    Each question's estimate uses its own n, so every question must have n >= max(ks).
    Returns an empty dict when there are no questions.
    """
    pairs = list(counts)
    if not pairs:
        return {}
    out: dict[int, float] = {}
    for k in ks:
        out[k] = sum(pass_at_k(n, c, k) for n, c in pairs) / len(pairs)
    return out
