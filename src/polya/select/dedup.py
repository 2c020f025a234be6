"""Near-duplicate detection among the solutions kept for one question.

Two methods (``dedup.method``):

- ``normalized``: two solutions are duplicates when their texts are identical after lower-casing
  and collapsing every run of whitespace to one space. Numbers and punctuation are kept, so
  "x = 3" and "x = 4" stay distinct.
- ``ngram``: the Jaccard similarity of the two solutions' sets of word n-grams (default 3-grams
  over lower-cased words and numbers) is at least ``threshold``.

:class:`NearDuplicateFilter` is greedy: solutions are offered best first, and one is a duplicate
when it matches any solution already accepted.
"""

from __future__ import annotations

from typing import Literal

from polya.metrics.similarity import jaccard, normalize_text, word_ngrams


class NearDuplicateFilter:
    """Accept texts one at a time, refusing any that duplicates an accepted one."""

    def __init__(self, method: Literal["normalized", "ngram", "none"] = "ngram", threshold: float = 0.8, ngram: int = 3):
        if method not in ("normalized", "ngram", "none"):
            raise ValueError(f"unknown dedup method {method!r}; valid: normalized, ngram, none")
        self.method = method
        self.threshold = threshold
        self.ngram = ngram
        self._normalized: set[str] = set()
        self._grams: list[frozenset[tuple[str, ...]]] = []

    def is_duplicate(self, text: str) -> bool:
        """Whether ``text`` duplicates an accepted text (nothing is recorded)."""
        if self.method == "none":
            return False
        if self.method == "normalized":
            return normalize_text(text) in self._normalized
        grams = word_ngrams(text, self.ngram)
        return any(jaccard(grams, other) >= self.threshold for other in self._grams)

    def accept(self, text: str) -> None:
        """Record ``text`` as kept."""
        if self.method == "normalized":
            self._normalized.add(normalize_text(text))
        elif self.method == "ngram":
            self._grams.append(word_ngrams(text, self.ngram))

    def offer(self, text: str) -> bool:
        """Accept ``text`` unless it is a duplicate; return True when accepted."""
        if self.is_duplicate(text):
            return False
        self.accept(text)
        return True
