"""Intervals and paired comparisons of eval results, from the per-question counts in ``results.json``.

Every (arm, benchmark) in ``results.json`` keeps ``per_question``: question id -> ``[decided
samples, correct samples]``. From it:

- :func:`pass_at_k_intervals`: a 95% bootstrap interval of pass@k over questions, per k;
- :func:`average_intervals`: the same for the average over benchmarks (each benchmark resampled
  on its own, then averaged, as the average itself is computed);
- :func:`compare_arms`: for every pair of arms, on every benchmark and on the average, at pass@1
  and the largest k: the paired difference on the questions both arms answered, its interval, a
  sign-flip permutation p-value, Holm's adjustment over the pairs of one benchmark and k, and a
  plain verdict: ``A > B``, ``no significant difference``, ``too few questions to tell (m
  differ)`` when fewer than 6 questions differ (no p-value could then be below 0.05), or ``no
  difference`` when the arms agree on every question.

Comparisons are made when the report is written, so they also cover arms merged from several
evaluations (``polya run``, the KFP report step). The methods are in :mod:`polya.metrics.uncertainty`.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

from polya.metrics.passk import pass_at_k
from polya.metrics.uncertainty import ALPHA, bootstrap_interval, holm, paired_test

PerQuestion = Mapping[str, Sequence[int]]
"""Question id -> [decided samples, correct samples]."""


def question_values(per_question: PerQuestion, k: int) -> dict[str, float]:
    """Each question's pass@k, for questions with at least k decided samples."""
    return {q: pass_at_k(int(n), int(c), k) for q, (n, c) in per_question.items() if int(n) >= k}


def pass_at_k_intervals(per_question: PerQuestion, ks: Sequence[int]) -> dict[str, list[float]]:
    """k -> [low, high] of pass@k's 95% bootstrap interval (ks no question reaches are left out)."""
    out: dict[str, list[float]] = {}
    for k in ks:
        values = list(question_values(per_question, k).values())
        if values:
            interval = bootstrap_interval([values])
            out[str(k)] = [round(interval.low, 4), round(interval.high, 4)]
    return out


def average_intervals(per_benchmark: Sequence[PerQuestion], ks: Sequence[int]) -> dict[str, list[float]]:
    """k -> [low, high] of the average over benchmarks (only ks every benchmark has)."""
    out: dict[str, list[float]] = {}
    for k in ks:
        strata = [list(question_values(pq, k).values()) for pq in per_benchmark]
        if strata and all(strata):
            interval = bootstrap_interval(strata)
            out[str(k)] = [round(interval.low, 4), round(interval.high, 4)]
    return out


def _differences(a: PerQuestion, b: PerQuestion, k: int) -> list[float]:
    va, vb = question_values(a, k), question_values(b, k)
    return [va[q] - vb[q] for q in sorted(set(va) & set(vb))]


def _verdict(a: str, b: str, row: Mapping[str, Any]) -> str:
    if row["differing"] == 0:
        return "no difference: the arms agree on every question"
    if not row["decidable"]:
        return f"too few questions to tell ({row['differing']} differ)"
    if not row["significant"]:
        return "no significant difference"
    return f"{a} > {b}" if row["difference"] > 0 else f"{b} > {a}"


def compare_arms(results: Mapping[str, Any], ks: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Paired comparisons of every pair of arms (see the module docstring); [] without per-question counts."""
    arms = {name: data for name, data in results["arms"].items() if data.get("benchmarks")}
    names = list(arms)
    benchmarks: list[str] = []
    for data in arms.values():
        benchmarks += [b for b in data["benchmarks"] if b not in benchmarks]
    all_ks = sorted({int(k) for data in arms.values() for bench in data["benchmarks"].values() for k in bench.get("pass_at_k", {})})
    if ks is None:
        ks = sorted({1, max(all_ks)}) if all_ks else []
    rows: list[dict[str, Any]] = []
    for k in ks:
        for scope in [*benchmarks, "average"]:
            family: list[dict[str, Any]] = []
            for a, b in itertools.combinations(names, 2):
                if scope == "average":
                    shared = [x for x in benchmarks if x in arms[a]["benchmarks"] and x in arms[b]["benchmarks"]]
                    pairs = [(arms[a]["benchmarks"][x].get("per_question"), arms[b]["benchmarks"][x].get("per_question")) for x in shared]
                    if len(shared) < 2:
                        continue  # one benchmark: the same as its own row
                else:
                    if scope not in arms[a]["benchmarks"] or scope not in arms[b]["benchmarks"]:
                        continue
                    pairs = [(arms[a]["benchmarks"][scope].get("per_question"), arms[b]["benchmarks"][scope].get("per_question"))]
                if any(pa is None or pb is None for pa, pb in pairs):
                    continue  # results written before per-question counts were kept
                strata = [_differences(pa, pb, k) for pa, pb in pairs]
                if not all(strata):
                    continue
                test = paired_test(strata)
                family.append({
                    "benchmark": scope, "k": k, "a": a, "b": b, "questions": test.questions, "differing": test.differing,
                    "difference": round(test.difference.estimate, 4),
                    "interval": [round(test.difference.low, 4), round(test.difference.high, 4)],
                    "p_value": round(test.p_value, 6), "decidable": test.decidable,
                })
            for row, adjusted in zip(family, holm([r["p_value"] for r in family])):
                row["p_holm"] = round(adjusted, 6)
                row["significant"] = row["decidable"] and adjusted < ALPHA
                row["verdict"] = _verdict(row["a"], row["b"], row)
            rows += family
    return rows
