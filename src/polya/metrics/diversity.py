"""Diversity of a set of solutions: the Vendi score over TF-IDF word n-gram cosine similarity.

The Vendi score (Friedman & Dieng, 2023) of n items with a positive semi-definite similarity
matrix K (K_ii = 1) is ``exp(-sum_i l_i log l_i)`` where ``l_i`` are the eigenvalues of ``K / n``:
the exponential of the entropy of K's spectrum, an "effective number of distinct items". n
identical items score 1; n items with pairwise similarity 0 score n.

The similarity here is lexical: each solution is a TF-IDF vector over its word n-grams
(1..``ngram_max``; raw counts times the smoothed IDF ``ln((1 + N) / (1 + df)) + 1`` of the
corpus the caller gives), L2-normalised, and K is their cosine-similarity (Gram) matrix, which
is PSD by construction. It needs only numpy. An embedding model can replace it: any function
that maps texts to L2-normalised vectors gives a valid K for :func:`vendi_score`, e.g.
``vendi_score(E @ E.T)`` with ``E`` from a sentence-embedding model.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from polya.core.digest import sha256_hex
from polya.metrics.similarity import words

_CHUNK = 8192
"""Features per dense block when accumulating a Gram matrix."""


def vendi_score(similarity: np.ndarray) -> float:
    """Vendi score of a PSD similarity matrix with unit diagonal; 0.0 for an empty matrix."""
    k = np.asarray(similarity, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"similarity must be a square matrix, got shape {k.shape}")
    n = k.shape[0]
    if n == 0:
        return 0.0
    eigenvalues = np.linalg.eigvalsh((k + k.T) / (2.0 * n))
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    entropy = -float(np.sum(eigenvalues * np.log(eigenvalues)))
    return float(math.exp(entropy))


def ngram_features(text: str, ngram_max: int = 2) -> Counter[str]:
    """Counts of the word n-grams (n = 1..ngram_max) of ``text``."""
    tokens = words(text)
    counts: Counter[str] = Counter()
    for n in range(1, ngram_max + 1):
        for i in range(len(tokens) - n + 1):
            counts[" ".join(tokens[i : i + n])] += 1
    return counts


class TfidfSimilarity:
    """Cosine similarity of TF-IDF n-gram vectors, with the IDF fitted on one corpus."""

    def __init__(self, corpus: Sequence[str], ngram_max: int = 2):
        self.ngram_max = ngram_max
        df: Counter[str] = Counter()
        for text in corpus:
            df.update(ngram_features(text, ngram_max).keys())
        self._df = df
        self._n_docs = len(corpus)

    def idf(self, feature: str) -> float:
        """Smoothed inverse document frequency (a feature unseen in the corpus gets the highest)."""
        return math.log((1 + self._n_docs) / (1 + self._df.get(feature, 0))) + 1.0

    def _vectors(self, texts: Sequence[str]) -> list[dict[str, float]]:
        out = []
        for text in texts:
            weights = {f: c * self.idf(f) for f, c in ngram_features(text, self.ngram_max).items()}
            norm = math.sqrt(sum(w * w for w in weights.values()))
            out.append({f: w / norm for f, w in weights.items()} if norm > 0 else {})
        return out

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        """The n x n cosine-similarity matrix of ``texts`` (a text without words is similar only to itself)."""
        vectors = self._vectors(texts)
        n = len(vectors)
        gram = np.zeros((n, n), dtype=np.float64)
        # Only features shared by >= 2 texts contribute off the diagonal; the diagonal is 1 by normalisation.
        owners: Counter[str] = Counter()
        for vec in vectors:
            owners.update(vec.keys())
        shared = sorted(f for f, c in owners.items() if c >= 2)
        index = {f: i for i, f in enumerate(shared)}
        triples = [(row, index[f], w) for row, vec in enumerate(vectors) for f, w in vec.items() if f in index]
        if triples:
            rows = np.fromiter((t[0] for t in triples), dtype=np.int64, count=len(triples))
            cols = np.fromiter((t[1] for t in triples), dtype=np.int64, count=len(triples))
            vals = np.fromiter((t[2] for t in triples), dtype=np.float64, count=len(triples))
            for start in range(0, len(shared), _CHUNK):
                width = min(_CHUNK, len(shared) - start)
                mask = (cols >= start) & (cols < start + width)
                block = np.zeros((n, width), dtype=np.float64)
                block[rows[mask], cols[mask] - start] = vals[mask]
                gram += block @ block.T
        np.fill_diagonal(gram, 1.0)
        return np.clip(gram, 0.0, 1.0)


@dataclass
class DiversitySummary:
    """Vendi scores of one dataset."""

    vendi_per_question_mean: float | None
    """Mean over questions with >= 2 examples (None when there is none)."""
    vendi_per_question_mean_all: float | None
    """Mean over every question with >= 1 example (a single example scores 1)."""
    vendi_overall: float | None
    """Over the whole dataset (or a deterministic sample of ``max_overall`` examples)."""
    overall_sample: int
    """How many examples the overall score used."""
    questions_with_2_or_more: int

    def as_dict(self) -> dict[str, object]:
        return {
            "vendi_per_question_mean": _round(self.vendi_per_question_mean),
            "vendi_per_question_mean_all": _round(self.vendi_per_question_mean_all),
            "vendi_overall": _round(self.vendi_overall),
            "overall_sample": self.overall_sample,
            "questions_with_2_or_more": self.questions_with_2_or_more,
            "similarity": "tf-idf word n-gram cosine",
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def summarize_diversity(
    groups: dict[str, list[str]], ngram_max: int = 2, max_overall: int = 1000, keys: dict[str, list[str]] | None = None
) -> DiversitySummary:
    """Vendi scores of texts grouped by question: mean per question and overall.

    ``keys`` (same shape as ``groups``) gives each text a stable id used to pick the overall sample
    when there are more than ``max_overall`` texts; without it the position is used.
    """
    corpus = [t for texts in groups.values() for t in texts]
    if not corpus:
        return DiversitySummary(None, None, None, 0, 0)
    similarity = TfidfSimilarity(corpus, ngram_max)
    per_question: list[float] = []
    multi: list[float] = []
    for texts in groups.values():
        if not texts:
            continue
        score = vendi_score(similarity.matrix(texts)) if len(texts) > 1 else 1.0
        per_question.append(score)
        if len(texts) > 1:
            multi.append(score)
    flat = [
        ((keys[q][i] if keys else f"{q}#{i}"), text) for q, texts in groups.items() for i, text in enumerate(texts)
    ]
    if len(flat) > max_overall:
        flat = sorted(flat, key=lambda kv: sha256_hex(kv[0]))[:max_overall]
    overall = vendi_score(similarity.matrix([t for _k, t in flat]))
    return DiversitySummary(
        vendi_per_question_mean=float(np.mean(multi)) if multi else None,
        vendi_per_question_mean_all=float(np.mean(per_question)) if per_question else None,
        vendi_overall=overall,
        overall_sample=len(flat),
        questions_with_2_or_more=len(multi),
    )
