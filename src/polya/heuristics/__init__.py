"""Pólya heuristics: the catalog of problem-solving heuristics and the prompts built from it."""

from polya.heuristics.catalog import (
    Exemplar,
    Heuristic,
    HeuristicCatalog,
    exemplar_answer,
)
from polya.heuristics.prompts import build_messages, plain_messages, prompt_fingerprint

__all__ = [
    "Exemplar",
    "Heuristic",
    "HeuristicCatalog",
    "build_messages",
    "exemplar_answer",
    "plain_messages",
    "prompt_fingerprint",
]
