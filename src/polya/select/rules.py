"""Which generations go into which SFT dataset: the datasets of the paper's arms, built from one run's generations.

Every dataset rule works on :class:`Candidate` objects (a generation record plus its adherence score)
ranked by :func:`rank_key`: higher score first; ties go to the earlier bootstrap round, then
catalog order of the heuristic, then the sample index and the record id, so the result never
depends on file order.

- ``polya``: per question, walk the correct candidates best first and keep one unless its
  (question, heuristic) pair already has ``per_pair`` kept (``not_best_in_pair``), it
  near-duplicates one already kept (``duplicate``) or the question already has ``n`` kept
  (``over_cap``). So each pair contributes its best non-duplicate solution and the question its
  top n across heuristics.
- ``star``: the best correct candidate per question (``not_best_in_question`` for the rest).
- ``wrong_answer``: the ``polya`` rule applied to incorrect candidates that reached a final
  answer: diverse but wrong (the paper's control).
- ``breadth``: the ``star`` pick of as many questions as the budget allows, one each.
- ``depth``: the ``polya`` picks of the questions with the most kept solutions, whole
  questions until the budget is reached (the last one may be cut); ``over_budget`` for the rest.
Questions for breadth and depth are taken in a seeded, deterministic order (``seed``).

Which prompt condition a dataset draws from: ``polya``, ``wrong_answer`` and ``distill`` only from
the heuristic prompts (``plain_prompt`` for the plain condition's records); ``star``, ``breadth``
and ``depth`` from the baseline source (``baseline_source``): by default the plain step-by-step
prompt (``heuristic_prompt`` for the rest), rationalized solutions included unless
``rationalized`` is off, so STaR and Pólya differ only in heuristic diversity. Drawn from the plain
condition, ``depth`` keeps up to n solutions per question (one condition: no per-pair cap).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from polya.core.digest import seeded_order
from polya.heuristics import PLAIN
from polya.select.config import DedupConfig, dataset_rule
from polya.select.dedup import NearDuplicateFilter


@dataclass
class Candidate:
    """A generation record with its adherence score."""

    record: dict[str, Any]
    score: float | None
    heuristic_rank: int

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def question_id(self) -> str:
        return str(self.record["question_id"])

    @property
    def heuristic(self) -> str:
        return str(self.record["heuristic"])

    @property
    def round(self) -> int:
        return int(self.record.get("round") or 1)

    @property
    def sample_index(self) -> int:
        return int(self.record.get("sample_index") or 0)

    @property
    def completion(self) -> str:
        return str(self.record.get("completion") or "")

    @property
    def correct(self) -> bool:
        return bool(self.record.get("correct"))

    @property
    def plain(self) -> bool:
        """Written with the plain step-by-step prompt (no heuristic)."""
        return self.heuristic == PLAIN

    @property
    def rationalized(self) -> bool:
        """Written with the reference answer given as a hint (rationalization)."""
        return bool(self.record.get("rationalized"))


def rank_key(c: Candidate) -> tuple[Any, ...]:
    """Sort key: scored before unscored, unaided before rationalized, higher score, earlier round, catalog order, sample, id."""
    return (c.score is None, c.rationalized, -(c.score or 0.0), c.round, c.heuristic_rank, c.sample_index, c.id)


@dataclass
class DatasetSelection:
    """One dataset's examples (in question order, best first within a question) and why the rest were left out."""

    name: str
    examples: list[Candidate] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)
    budget: int | None = None
    notes: list[str] = field(default_factory=list)
    source: str = "heuristics"
    """The prompt condition the examples come from: ``heuristics`` or ``plain``."""

    @property
    def questions(self) -> int:
        return len({c.question_id for c in self.examples})


def _group(cands: Iterable[Candidate]) -> dict[str, list[Candidate]]:
    groups: dict[str, list[Candidate]] = {}
    for c in cands:
        groups.setdefault(c.question_id, []).append(c)
    for members in groups.values():
        members.sort(key=rank_key)
    return groups


def greedy_pick(
    cands: Iterable[Candidate], n: int, per_pair: int, dedup: DedupConfig, rejections: Counter[str]
) -> dict[str, list[Candidate]]:
    """Per question: best-first, at most ``per_pair`` per heuristic, no near-duplicates, at most ``n``."""
    kept: dict[str, list[Candidate]] = {}
    for qid, ranked in _group(cands).items():
        seen = NearDuplicateFilter(dedup.method, dedup.threshold, dedup.ngram)
        per_heuristic: Counter[str] = Counter()  # per heuristic: kept, or ranked out by the cap
        chosen: list[Candidate] = []
        for c in ranked:
            if per_heuristic[c.heuristic] >= per_pair:
                rejections["not_best_in_pair"] += 1
            elif seen.is_duplicate(c.completion):
                rejections["duplicate"] += 1
            elif len(chosen) >= n:
                rejections["over_cap"] += 1
                per_heuristic[c.heuristic] += 1  # the pair's best was capped: its others are not the best
            else:
                seen.accept(c.completion)
                per_heuristic[c.heuristic] += 1
                chosen.append(c)
        if chosen:
            kept[qid] = chosen
    return kept


def best_per_question(cands: Iterable[Candidate], rejections: Counter[str]) -> dict[str, list[Candidate]]:
    """The top candidate of each question."""
    kept: dict[str, list[Candidate]] = {}
    for qid, ranked in _group(cands).items():
        kept[qid] = ranked[:1]
        rejections["not_best_in_question"] += len(ranked) - 1
    return kept


def _in_question_order(kept: dict[str, list[Candidate]], question_order: dict[str, int]) -> list[Candidate]:
    out: list[Candidate] = []
    for qid in sorted(kept, key=lambda q: (question_order.get(q, len(question_order)), q)):
        out.extend(kept[qid])
    return out


@dataclass
class SelectionInputs:
    """What every dataset is built from: the eligible candidates and the settings that shape the datasets."""

    correct: list[Candidate]
    incorrect: list[Candidate]
    base_rejections: dict[str, Counter[str]]
    """Per pool ('correct' / 'incorrect'): records left out before ranking, by reason."""
    question_order: dict[str, int]
    n: int
    per_pair: int
    dedup: DedupConfig
    budget: int | None
    seed: int
    heuristics: int = 1
    """How many heuristics may contribute (``polya@<n>`` keeps more per pair when n exceeds it)."""
    baseline_source: str = "plain"
    """What star, breadth and depth draw from: ``plain`` (the plain prompt) or ``heuristics``."""
    rationalized: bool = True
    """Whether rationalized solutions may enter the datasets drawn from the plain prompt."""


def heuristic_candidates(cands: Iterable[Candidate], rejections: Counter[str]) -> list[Candidate]:
    """The candidates written with a heuristic prompt; the plain prompt's are counted as ``plain_prompt``."""
    out = []
    for c in cands:
        if c.plain:
            rejections["plain_prompt"] += 1
        else:
            out.append(c)
    return out


def baseline_candidates(inp: SelectionInputs, rejections: Counter[str]) -> list[Candidate]:
    """The correct candidates star, breadth and depth draw from (``baseline_source``), the rest counted by reason."""
    if inp.baseline_source == "heuristics":
        return heuristic_candidates(inp.correct, rejections)
    out = []
    for c in inp.correct:
        if not c.plain:
            rejections["heuristic_prompt"] += 1
        elif c.rationalized and not inp.rationalized:
            rejections["rationalized"] += 1
        else:
            out.append(c)
    return out


def _baseline_selection(name: str, inp: SelectionInputs, budget: int | None = None) -> tuple[DatasetSelection, list[Candidate]]:
    selection = DatasetSelection(name, rejections=Counter(inp.base_rejections["correct"]), budget=budget, source=inp.baseline_source)
    candidates = baseline_candidates(inp, selection.rejections)
    if inp.baseline_source == "plain" and not candidates:
        selection.notes.append(
            "no correct plain-prompt generation to draw from (generate with plain: true, the default; or set "
            "baseline_source: heuristics to draw from the heuristic prompts)"
        )
    return selection, candidates


def _greedy_dataset(name: str, pool: str, inp: SelectionInputs) -> DatasetSelection:
    """The ``polya`` rule (best first per question, ``per_pair`` per heuristic, no near-duplicates, ``n``) on one pool's heuristic candidates."""
    selection = DatasetSelection(name, rejections=Counter(inp.base_rejections[pool]))
    candidates = heuristic_candidates(inp.correct if pool == "correct" else inp.incorrect, selection.rejections)
    selection.examples = _in_question_order(greedy_pick(candidates, inp.n, inp.per_pair, inp.dedup, selection.rejections), inp.question_order)
    return selection


def build_polya(inp: SelectionInputs) -> DatasetSelection:
    return _greedy_dataset("polya", "correct", inp)


def build_star(inp: SelectionInputs) -> DatasetSelection:
    selection, candidates = _baseline_selection("star", inp)
    selection.examples = _in_question_order(best_per_question(candidates, selection.rejections), inp.question_order)
    return selection


def build_wrong_answer(inp: SelectionInputs) -> DatasetSelection:
    return _greedy_dataset("wrong_answer", "incorrect", inp)


def default_budget(inp: SelectionInputs) -> int:
    """The star dataset's size: the number of questions with an eligible correct solution of the baseline source."""
    return len({c.question_id for c in baseline_candidates(inp, Counter())})


def build_breadth(inp: SelectionInputs) -> DatasetSelection:
    budget = inp.budget if inp.budget is not None else default_budget(inp)
    selection, candidates = _baseline_selection("breadth", inp, budget)
    best = best_per_question(candidates, selection.rejections)
    chosen: dict[str, list[Candidate]] = {}
    for qid in seeded_order(best, inp.seed):
        if len(chosen) < budget:
            chosen[qid] = best[qid]
        else:
            selection.rejections["over_budget"] += 1
    selection.examples = _in_question_order(chosen, inp.question_order)
    if len(selection.examples) < budget:
        selection.notes.append(f"{len(selection.examples)} examples, short of the budget of {budget}: only {len(best)} questions have an eligible correct solution")
    return selection


def build_depth(inp: SelectionInputs) -> DatasetSelection:
    budget = inp.budget if inp.budget is not None else default_budget(inp)
    selection, candidates = _baseline_selection("depth", inp, budget)
    kept = greedy_pick(candidates, inp.n, depth_per_pair(inp), inp.dedup, selection.rejections)
    rank = {q: i for i, q in enumerate(seeded_order(kept, inp.seed))}
    chosen: dict[str, list[Candidate]] = {}
    room = budget
    for qid in sorted(kept, key=lambda q: (-len(kept[q]), rank[q])):
        take = kept[qid][: max(0, room)]
        selection.rejections["over_budget"] += len(kept[qid]) - len(take)
        if take:
            chosen[qid] = take
            room -= len(take)
    selection.examples = _in_question_order(chosen, inp.question_order)
    if len(selection.examples) < budget:
        selection.notes.append(
            f"{len(selection.examples)} examples, short of the budget of {budget}: the polya selection holds only "
            f"{sum(len(v) for v in kept.values())} examples"
        )
    return selection


DATASET_BUILDERS: dict[str, Callable[[SelectionInputs], DatasetSelection]] = {
    "polya": build_polya,
    "star": build_star,
    "wrong_answer": build_wrong_answer,
    "breadth": build_breadth,
    "depth": build_depth,
    "distill": build_polya,  # the polya rule, on a teacher's generations
}

DATASET_DESCRIPTIONS = {
    "polya": "D_Pólya: the best-scoring correct solution per (question, heuristic), at most n per question, near-duplicates removed.",
    "star": "STaR baseline: one correct solution per question (by default from the plain step-by-step prompt, as in STaR).",
    "wrong_answer": "Wrong-answer control: diverse but incorrect solutions (same n cap and de-duplication as polya).",
    "breadth": "Fixed-budget breadth: many questions with one solution each.",
    "depth": "Fixed-budget depth: few questions with up to n solutions each.",
    "distill": (
        "Distillation: a teacher model's correct solutions, written with the Pólya heuristics and selected by the polya rule "
        "(best-scoring per (question, heuristic), at most n per question)."
    ),
}


def describe_dataset(name: str) -> str:
    """One sentence on what a dataset holds (``polya@4``: D_Pólya with n = 4)."""
    rule, n = dataset_rule(name)
    if n is None:
        return DATASET_DESCRIPTIONS[rule]
    return f"D_Pólya with n = {n}: the best-scoring correct solution per (question, heuristic), at most {n} per question, near-duplicates removed."


def depth_per_pair(inp: SelectionInputs) -> int:
    """Solutions ``depth`` keeps per (question, condition): n from the plain prompt (one condition), else ``per_pair``."""
    return inp.n if inp.baseline_source == "plain" else inp.per_pair


def polya_at_per_pair(n: int, per_pair: int, heuristics: int) -> int:
    """Solutions ``polya@<n>`` keeps per (question, heuristic): ``per_pair`` (the paper's 1) while the
    heuristics can fill n that way, else the fewest that can (n = 64 over 11 heuristics: 6); never above n."""
    return min(n, max(per_pair, math.ceil(n / max(1, heuristics))))


def build_dataset(name: str, inp: SelectionInputs) -> DatasetSelection:
    """The dataset ``name`` (a rule, or ``polya@<n>``: the polya rule with its own n) from ``inp``."""
    rule, n = dataset_rule(name)
    if n is not None:
        inp = dataclasses.replace(inp, n=n, per_pair=polya_at_per_pair(n, inp.per_pair, inp.heuristics))
    selection = DATASET_BUILDERS[rule](inp)
    selection.name = name
    return selection
