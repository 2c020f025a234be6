"""Chat prompts for heuristic-guided (and plain) solving.

The messages are OpenAI chat messages; the inference server applies the model's chat template
(vLLM ``/v1/chat/completions``). The layout is fixed and deterministic::

    system     catalog.system_prompt (or the override)
    user       <instruction>\\n\\nProblem: <exemplar 1 question>\\n\\n<answer_format>
    assistant  <exemplar 1 solution>
    ...        (the first ``num_exemplars`` exemplars)
    user       <instruction>\\n\\nProblem: <question>\\n\\n<answer_format>

A plain prompt (``heuristic=None``: the plain condition of generation, recorded as heuristic
``plain``) is the same without the instruction line, with the catalog's plain exemplars
(``catalog.plain.exemplars``) as few-shot turns. So a heuristic prompt's last user turn is exactly
the plain one with the instruction in front of it. Rationalization (STaR) adds a hint sentence
naming the reference answer after each problem (each exemplar's with its own answer)::

    user       Problem: <question>\n\n<hint naming the answer>\n\n<answer_format>

Evaluation and RL ask with :func:`plain_messages` (zero-shot, no hint).
"""

from __future__ import annotations

from typing import Sequence

from polya.core.digest import digest
from polya.core.errors import ConfigError, DataError
from polya.heuristics.catalog import PLAIN, Exemplar, Heuristic, HeuristicCatalog

FINGERPRINT_LENGTH = 16
"""Hex characters kept from the sha256 of a prompt (64 bits: collisions are not a concern here)."""


def condition_id(heuristic: Heuristic | None) -> str:
    """The id a prompt condition is recorded under: the heuristic's, or ``plain``."""
    return heuristic.id if heuristic is not None else PLAIN


def user_turn(question: str, answer_format: str, instruction: str | None = None, hint: str | None = None) -> str:
    """One user message: the optional heuristic instruction, the problem, the optional hint, the answer-format sentence."""
    parts = [instruction.strip()] if instruction else []
    parts.append(f"Problem: {question.strip()}")
    if hint:
        parts.append(hint.strip())
    parts.append(answer_format.strip())
    return "\n\n".join(parts)


def build_messages(
    question: str,
    heuristic: Heuristic | None,
    catalog: HeuristicCatalog,
    *,
    num_exemplars: int = 2,
    system_prompt: str | None = None,
    exemplars: Sequence[Exemplar] | None = None,
    hint: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages asking the model to solve ``question`` with ``heuristic`` (None: plainly).

    Args:
        question: the problem statement.
        heuristic: the heuristic to follow; its instruction prefixes every user turn and its
            exemplars become few-shot turns. ``None`` gives a plain prompt.
        catalog: supplies the default system prompt and the answer-format sentence.
        num_exemplars: how many few-shot exemplars to include, from the start of the list; fewer
            are used when fewer exist. ``0`` gives a zero-shot prompt.
        system_prompt: replaces ``catalog.system_prompt`` when given.
        exemplars: few-shot exemplars to use instead of the heuristic's own (for a plain prompt:
            instead of ``catalog.plain.exemplars``).
        hint: the reference answer of ``question``, given as a hint (rationalization): the
            catalog's ``plain.rationalization_hint`` follows every problem, each exemplar's
            naming its own answer. The stored training prompt never carries it.

    Returns:
        ``[{"role": "system", ...}, ({"role": "user"}, {"role": "assistant"}) * k, {"role": "user"}]``.
    """
    if not isinstance(question, str) or not question.strip():
        raise DataError("cannot build a prompt for an empty question")
    if isinstance(num_exemplars, bool) or not isinstance(num_exemplars, int) or num_exemplars < 0:
        raise ConfigError(f"num_exemplars must be an integer >= 0, got {num_exemplars!r}")
    system = catalog.system_prompt if system_prompt is None else system_prompt
    if not system.strip():
        raise ConfigError("system_prompt must not be empty (leave it unset to use the catalog's)")

    instruction = heuristic.instruction if heuristic is not None else None
    if exemplars is None:
        exemplars = heuristic.exemplars if heuristic is not None else catalog.plain.exemplars
    shots = list(exemplars)[:num_exemplars]
    if hint is not None and not str(hint).strip():
        raise DataError("cannot give an empty reference answer as a hint")

    def hint_for(answer: str) -> str | None:
        return catalog.plain.hint(answer) if hint is not None else None

    messages = [{"role": "system", "content": system.strip()}]
    for shot in shots:
        messages.append({"role": "user", "content": user_turn(shot.question, catalog.answer_format, instruction, hint_for(shot.answer))})
        messages.append({"role": "assistant", "content": shot.solution.strip()})
    messages.append({"role": "user", "content": user_turn(question, catalog.answer_format, instruction, hint_for(str(hint)))})
    return messages


def plain_messages(
    question: str, catalog: HeuristicCatalog, *, system_prompt: str | None = None, answer_format: str | None = None
) -> list[dict[str, str]]:
    """The plain zero-shot prompt evaluation and RL ask with: no heuristic, no exemplars.

    ``system_prompt`` / ``answer_format`` replace the catalog's; an empty string leaves that part
    out. With neither given this is exactly ``build_messages(question, None, catalog, num_exemplars=0)``.
    """
    if not isinstance(question, str) or not question.strip():
        raise DataError("cannot build a prompt for an empty question")
    system = catalog.system_prompt if system_prompt is None else system_prompt
    answer = catalog.answer_format if answer_format is None else answer_format
    messages = [{"role": "system", "content": system.strip()}] if system.strip() else []
    content = user_turn(question, answer) if answer.strip() else f"Problem: {question.strip()}"
    messages.append({"role": "user", "content": content})
    return messages


def prompt_fingerprint(messages: Sequence[dict[str, str]]) -> str:
    """Short, stable id of an exact prompt: sha256 of its canonical JSON, first 16 hex characters."""
    return digest(list(messages), FINGERPRINT_LENGTH)
