"""The arms of the comparison, as data: one definition used by ``polya run`` and the KFP pipeline.

An arm's name says how its model is made, so ``polya run --arms`` and the pipeline's ``arms``
need no other setting, and a laptop report and a cluster report name their rows the same way:

=====================  ==========================================================
``base``               the starting model, untouched
``rl``                 GRPO from the starting model ("vanilla RL")
``<dataset>_sft``      SFT on the select dataset ``<dataset>`` (``polya_sft``: Pólya-SFT, ``star_sft``: STaR-SFT, ...)
``<dataset>_sft_rl``   that SFT model, then GRPO (``polya_sft_rl``: Pólya-SFT + RL)
=====================  ==========================================================

``<dataset>`` is one of the select stage's datasets: polya, star, wrong_answer, breadth, depth,
``polya@<n>`` (Pólya-SFT with n solutions per question: ``polya@1_sft_rl``, ``polya@4_sft_rl``,
``polya@16_sft_rl``, ``polya@64_sft_rl`` is the paper's Pólya(n) sweep in one run), or
``distill`` (a teacher model's solutions: ``distill_sft``, ``distill_sft_rl``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from polya.select.config import BASELINE_DATASETS, DATASETS, dataset_rule

_SFT_ARM = re.compile(r"^(?P<dataset>.+?)_sft(?P<rl>_rl)?$")

DEFAULT_ARMS = ("base", "polya_sft", "rl", "polya_sft_rl")
"""The comparison ``polya run`` makes by default: base, Pólya-SFT, RL only, Pólya-SFT + RL."""


@dataclass(frozen=True)
class Arm:
    """One arm of the comparison."""

    name: str
    sft_dataset: str | None
    """The select dataset the model is fine-tuned on first, or None (no SFT)."""
    rl: bool
    """Whether GRPO follows."""

    @property
    def start(self) -> str:
        """The arm whose model GRPO starts from: ``base`` or ``<dataset>_sft``."""
        return f"{self.sft_dataset}_sft" if self.sft_dataset else "base"


def valid_arm_names() -> list[str]:
    """Every arm name but the ``polya@<n>`` family (see :func:`parse_arm`)."""
    names = ["base", "rl"]
    for dataset in DATASETS:
        names += [f"{dataset}_sft", f"{dataset}_sft_rl"]
    return names


def parse_arm(name: str) -> Arm:
    """The :class:`Arm` a name describes; an unknown name raises ValueError listing the valid ones."""
    if name == "base":
        return Arm(name, None, False)
    if name == "rl":
        return Arm(name, None, True)
    match = _SFT_ARM.match(name)
    if match:
        try:
            dataset_rule(match.group("dataset"))
        except ValueError:
            pass
        else:
            return Arm(name, match.group("dataset"), bool(match.group("rl")))
    raise ValueError(f"unknown arm {name!r}; valid: {', '.join(valid_arm_names())}, polya@<n>_sft, polya@<n>_sft_rl (n = 1..64)")


def check_arms(names: Iterable[str]) -> list[str]:
    """The arm names, each checked, duplicates dropped, in the given order (at least one)."""
    names = list(dict.fromkeys(names))
    if not names:
        raise ValueError(f"arms must name at least one of: {', '.join(valid_arm_names())}")
    for name in names:
        parse_arm(name)
    return names


def sft_datasets(arms: Iterable[str]) -> list[str]:
    """The select datasets the arms fine-tune on, in a fixed order."""
    return sorted({arm.sft_dataset for arm in map(parse_arm, arms) if arm.sft_dataset})


def rl_starts(arms: Iterable[str]) -> list[str]:
    """The arms GRPO starts from (``base`` or ``<dataset>_sft``), in a fixed order."""
    return sorted({arm.start for arm in map(parse_arm, arms) if arm.rl})


LOOP_EXCLUDED = ("distill", "wrong_answer")
"""Datasets the outer bootstrap loop leaves alone: a teacher's solutions, and wrong answers (nothing to solve)."""


def loop_datasets(arms: Iterable[str]) -> list[str]:
    """The datasets the outer bootstrap loop iterates when it is on (``polya run`` and the pipeline): the
    arms' SFT datasets but :data:`LOOP_EXCLUDED`, in a fixed order."""
    return [name for name in sft_datasets(arms) if name not in LOOP_EXCLUDED]


def draws_from_plain(dataset: str, baseline_source: str) -> bool:
    """Whether ``dataset`` is drawn from the plain prompt's generations (star, breadth, depth with select's
    ``baseline_source: plain``) rather than from the heuristic prompts; the loop's iterations of it
    generate with that condition only."""
    return baseline_source == "plain" and dataset in BASELINE_DATASETS
