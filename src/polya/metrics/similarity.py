"""Text similarity on words: the tokenizer, word n-grams, Jaccard similarity and whitespace normalisation.

One definition used wherever polya compares texts: near-duplicate removal in selection, the
Vendi score's features, and the n-gram overlap of decontamination.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-case ``text`` and collapse whitespace (numbers and punctuation are kept)."""
    return _SPACE.sub(" ", text.casefold()).strip()


def words(text: str) -> list[str]:
    """Lower-cased words and numbers of ``text`` (``3.5`` and ``1,000`` stay one token)."""
    return _WORD.findall(text.casefold())


def word_ngrams(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """The set of word n-grams of ``text``; a text shorter than ``n`` words gives its whole word tuple."""
    tokens = words(text)
    if len(tokens) < n:
        return frozenset([tuple(tokens)]) if tokens else frozenset()
    return frozenset(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def jaccard(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    """|a & b| / |a | b|; two empty sets are identical (1.0)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
