"""Pólya heuristics: the catalog of problem-solving heuristics and the prompts built from it."""

from polya.heuristics.catalog import (
    NONE,
    PLAIN,
    Exemplar,
    Heuristic,
    HeuristicCatalog,
    PlainPrompt,
    exemplar_answer,
)
from polya.heuristics.prompts import (
    build_messages,
    condition_id,
    plain_messages,
    prompt_fingerprint,
)

__all__ = [
    "NONE",
    "PLAIN",
    "Exemplar",
    "Heuristic",
    "HeuristicCatalog",
    "PlainPrompt",
    "build_messages",
    "condition_id",
    "exemplar_answer",
    "plain_messages",
    "prompt_fingerprint",
]
