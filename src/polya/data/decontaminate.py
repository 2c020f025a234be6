"""Decontamination: which training questions overlap a benchmark's questions.

Two tests, both on normalised text (:func:`tokens`: lower-cased words and numbers, LaTeX layout
commands and punctuation dropped, so whitespace, case, ``\\left(`` or ``$`` never matter):

- **word n-gram overlap**: for each size n in ``ngrams``, the two questions share n-grams making
  up at least the size's share of the shorter question's n-grams (share 0: one shared n-gram is
  enough). The default ``{8: 0.25, 13: 0}``: one shared 13-gram (lm-eval-harness, NeMo Curator),
  or 8-grams (open-r1's size) making up a quarter, since a single 8-gram is often a stock phrase.
  With ``mask_numbers`` (the default) every number counts as the same word, so a GSM8K-style
  rewrite that only changes the numbers still matches; an n-gram made mostly of numbers is then
  ignored (any two lists of numbers would share it).
- **normalised exact match**: the two questions are the same token sequence, numbers included
  (this also catches questions shorter than the smallest n).

The benchmark questions go into an index (a dict from each n-gram to the questions holding it),
so each training question costs one dictionary look-up per n-gram: GSM8K's 7,473 training
questions against GSM8K test and MATH-500 take about two seconds on one core.

This module knows nothing about stages or benchmarks' files: callers pass ``(id, text)`` pairs
(the ``decontaminate`` stage of :mod:`polya.experiment.decontaminate` loads them).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping, Sequence

from pydantic import Field, field_validator

from polya.core.config import StageConfig
from polya.metrics.similarity import words

Action = Literal["drop", "flag"]

NUMBER = "<num>"
"""What a number becomes in an n-gram when ``mask_numbers`` is on."""

_LAYOUT = re.compile(  # LaTeX that only sets layout: sizes of delimiters, fonts, spaces
    r"\\(?:left|right|big|Big|bigg|Bigg|displaystyle|textstyle|mathrm|mathbf|mathit|operatorname|textbf|textit|text|mbox|quad|qquad)(?![A-Za-z])"
    r"|\\[,;:! ]"
)
_FRAC = re.compile(r"\\[dt]frac(?![A-Za-z])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_IS_NUMBER = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


DEFAULT_NGRAMS: dict[int, float] = {8: 0.25, 13: 0.0}
"""n-gram size -> least share of shared n-grams: one shared 13-gram is enough; 8-grams must make up a quarter."""


class DecontaminationSettings(StageConfig):
    """How training questions are compared with benchmark questions, and what happens to a match."""

    ngrams: dict[int, float] = Field(
        default_factory=lambda: dict(DEFAULT_NGRAMS),
        description="Word n-gram size -> the least share of the shorter question's n-grams the two questions must share "
        "(0: one shared n-gram is enough). A question matches a benchmark question when any size passes. Default: one shared "
        "13-gram (lm-eval-harness, NeMo Curator), or shared 8-grams (open-r1's size) making up a quarter, since a single 8-gram "
        "is often a stock phrase ('at a speed of <num> miles per hour'). A list [8, 13] means 0 for each.",
    )
    mask_numbers: bool = Field(
        default=True,
        description="Count every number as the same word in n-grams, so a copy with other numbers (a GSM8K-style rewrite) still matches; "
        "n-grams made mostly of numbers are then ignored. Exact matches always compare the numbers.",
    )
    exact: bool = Field(
        default=True,
        description="Also match questions whose normalised text (case, whitespace, punctuation, LaTeX layout ignored) equals a benchmark question's.",
    )
    action: Action = Field(
        default="drop",
        description="drop: leave contaminated questions out of generation (the default: a model fine-tuned on a benchmark's questions "
        "inflates that benchmark's pass@k); flag: keep them and only list them in the report.",
    )

    @field_validator("ngrams", mode="before")
    @classmethod
    def _list_means_any(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            return {n: 0.0 for n in value}
        return value

    @field_validator("ngrams")
    @classmethod
    def _sizes(cls, value: dict[int, float]) -> dict[int, float]:
        if not value:
            raise ValueError("ngrams must name at least one n-gram size, e.g. {8: 0.25, 13: 0} or [8, 13]")
        bad = [n for n in value if n < 3 or n > 64]
        if bad:
            raise ValueError(f"n-gram sizes {bad} are outside 3..64 (shorter n-grams match ordinary phrases)")
        shares = [share for share in value.values() if not 0.0 <= share <= 1.0]
        if shares:
            raise ValueError(f"shares {shares} are outside 0..1 (the share of the shorter question's n-grams that must be shared)")
        return dict(sorted(value.items()))


def tokens(text: str) -> list[str]:
    """The normalised words of ``text``: NFKC, lower-case, LaTeX layout commands and punctuation dropped.

    A comma between digits is a thousands separator when three digits follow (``1,000`` is
    ``1000``), otherwise a separator (``(0,3)`` reads as ``(0, 3)``).

    >>> tokens("Janet's  ducks lay 1,000 eggs at $\\\\left(0,3\\\\right)$!")
    ['janet', 's', 'ducks', 'lay', '1000', 'eggs', 'at', '0', '3']
    """
    text = unicodedata.normalize("NFKC", text)
    text = _FRAC.sub(r"\\frac", text)
    text = _LAYOUT.sub(" ", text)
    text = _THOUSANDS.sub("", text).replace(",", " ")
    return words(text)


def is_number(token: str) -> bool:
    """Whether a token from :func:`tokens` is a number (``16``, ``3.5``, ``1000``)."""
    return _IS_NUMBER.match(token) is not None


def ngram_tokens(text: str, mask_numbers: bool) -> list[str]:
    """The tokens n-grams are made of: :func:`tokens`, numbers replaced by :data:`NUMBER` when masked."""
    out = tokens(text)
    return [NUMBER if is_number(t) else t for t in out] if mask_numbers else out


def exact_key(text: str) -> str:
    """The text exact matching compares: the tokens, numbers kept, joined by single spaces."""
    return " ".join(tokens(text))


def ngrams(toks: Sequence[str], n: int, mask_numbers: bool) -> list[tuple[int, str]]:
    """(start, n-gram) of every n-gram of ``toks``; with ``mask_numbers`` those with more numbers than words are skipped."""
    out: list[tuple[int, str]] = []
    for start in range(len(toks) - n + 1):
        gram = toks[start : start + n]
        if mask_numbers and 2 * sum(1 for t in gram if t == NUMBER) > n:
            continue
        out.append((start, " ".join(gram)))
    return out


@dataclass
class Match:
    """One training question that overlaps one benchmark question."""

    question_id: str
    benchmark: str
    benchmark_id: str
    exact: bool
    shared: dict[int, int] = field(default_factory=dict)
    """n -> how many distinct n-grams of that size the two questions share (sizes with none left out)."""
    share: dict[int, float] = field(default_factory=dict)
    """n -> those shared n-grams as a share of the shorter question's n-grams of that size."""
    sizes: list[int] = field(default_factory=list)
    """The n-gram sizes whose share reached the setting (the reason for the match, with ``exact``)."""
    spans: list[str] = field(default_factory=list)
    """The shared stretches of the training question (overlapping shared n-grams merged, numbers as <num>), longest first."""


@dataclass(frozen=True)
class _Entry:
    benchmark: str
    id: str


class BenchmarkIndex:
    """The benchmark questions, indexed by n-gram and by normalised text, to look training questions up in."""

    def __init__(self, benchmarks: Mapping[str, Iterable[tuple[str, str]]], settings: DecontaminationSettings):
        self.settings = settings
        self.entries: list[_Entry] = []
        self.texts: list[str] = []
        self.counts: dict[str, int] = {}
        self.near_misses: dict[int, int] = {n: 0 for n in settings.ngrams}
        """n -> (training, benchmark) pairs looked up so far that share n-grams of size n but do not match (too small a share)."""
        self._position: dict[tuple[str, str], int] = {}
        self._grams: dict[int, dict[str, list[int]]] = {n: defaultdict(list) for n in settings.ngrams}
        self._gram_counts: dict[int, list[int]] = {n: [] for n in settings.ngrams}
        self._exact: dict[str, list[int]] = defaultdict(list)
        for name, items in benchmarks.items():
            self.counts[name] = 0
            for item_id, text in items:
                index = len(self.entries)
                self.entries.append(_Entry(name, str(item_id)))
                self._position[(name, str(item_id))] = index
                self.texts.append(text)
                self.counts[name] += 1
                toks = ngram_tokens(text, settings.mask_numbers)
                for n, table in self._grams.items():
                    grams = {g for _s, g in ngrams(toks, n, settings.mask_numbers)}
                    self._gram_counts[n].append(len(grams))
                    for gram in grams:
                        table[gram].append(index)
                if settings.exact:
                    key = exact_key(text)
                    if key:
                        self._exact[key].append(index)

    def __len__(self) -> int:
        return len(self.entries)

    def text(self, benchmark: str, item_id: str) -> str:
        """A benchmark question's text."""
        return self.texts[self._position[(benchmark, item_id)]]

    def lookup(self, question_id: str, text: str) -> list[Match]:
        """Every benchmark question ``text`` matches, in benchmark order."""
        settings = self.settings
        toks = ngram_tokens(text, settings.mask_numbers)
        hits: dict[int, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        ranges: dict[int, set[tuple[int, int]]] = defaultdict(set)
        own: dict[int, int] = {}
        for n, table in self._grams.items():
            grams = ngrams(toks, n, settings.mask_numbers)
            own[n] = len({g for _s, g in grams})
            for start, gram in grams:
                for index in table.get(gram, ()):
                    hits[index][n].add(gram)
                    ranges[index].add((start, start + n))
        exact = set(self._exact.get(exact_key(text), ())) if settings.exact else set()
        out = []
        for index in sorted(set(hits) | exact):
            shared = {n: len(grams) for n, grams in sorted(hits[index].items()) if grams}
            share = {n: round(count / max(1, min(own[n], self._gram_counts[n][index])), 4) for n, count in shared.items()}
            sizes = [n for n in shared if share[n] >= settings.ngrams[n]]
            if not sizes and index not in exact:
                for n in shared:
                    self.near_misses[n] += 1
                continue
            entry = self.entries[index]
            out.append(
                Match(
                    question_id=question_id, benchmark=entry.benchmark, benchmark_id=entry.id, exact=index in exact,
                    shared=shared, share=share, sizes=sizes, spans=_spans(toks, ranges.get(index, set())),
                )
            )
        return out


def _spans(toks: Sequence[str], ranges: set[tuple[int, int]]) -> list[str]:
    """Overlapping token ranges merged into stretches of text, longest first."""
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    merged.sort(key=lambda r: (r[0] - r[1], r[0]))
    return [" ".join(toks[s:e]) for s, e in merged]


def find_contamination(
    questions: Iterable[tuple[str, str]], benchmarks: Mapping[str, Iterable[tuple[str, str]]] | BenchmarkIndex,
    settings: DecontaminationSettings | None = None,
) -> list[Match]:
    """Every (training question, benchmark question) pair that matches, in training-question order.

    ``questions`` and each benchmark are ``(id, text)`` pairs; pass a built :class:`BenchmarkIndex`
    instead of the benchmarks to reuse it (its settings apply).
    """
    if isinstance(benchmarks, BenchmarkIndex):
        index = benchmarks
    else:
        index = BenchmarkIndex(benchmarks, settings or DecontaminationSettings())
    matches: list[Match] = []
    for question_id, text in questions:
        matches.extend(index.lookup(str(question_id), text))
    return matches


def contaminated_ids(matches: Iterable[Match]) -> list[str]:
    """The training questions with at least one match, in first-match order."""
    return list(dict.fromkeys(m.question_id for m in matches))
