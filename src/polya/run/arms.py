"""The paper's arms as data: which SFT dataset (if any) and whether GRPO follows.

An arm's name says how its model is made, so ``polya run --arms`` needs no other setting:

=====================  ==========================================================
``base``               the starting model, untouched
``rl``                 GRPO from the starting model ("RL only")
``<dataset>_sft``      SFT on ``select/<dataset>/`` (``polya_sft``: Pólya-SFT, ``star_sft``: STaR, ...)
``<dataset>_sft_rl``   that SFT checkpoint, then GRPO (``polya_sft_rl``: Pólya-SFT + RL)
=====================  ==========================================================

``<dataset>`` is one of the select stage's datasets: polya, star, wrong_answer, breadth, depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from polya.select.config import ARMS as SELECT_DATASETS

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
    names = ["base", "rl"]
    for dataset in SELECT_DATASETS:
        names += [f"{dataset}_sft", f"{dataset}_sft_rl"]
    return names


def parse_arm(name: str) -> Arm:
    """The :class:`Arm` a name describes; an unknown name raises ValueError listing the valid ones."""
    if name == "base":
        return Arm(name, None, False)
    if name == "rl":
        return Arm(name, None, True)
    for dataset in SELECT_DATASETS:
        if name == f"{dataset}_sft":
            return Arm(name, dataset, False)
        if name == f"{dataset}_sft_rl":
            return Arm(name, dataset, True)
    raise ValueError(f"unknown arm {name!r}; valid: {', '.join(valid_arm_names())}")
