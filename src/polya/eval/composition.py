"""Composition analysis: which Pólya heuristics does a solution use? Asked of an LLM judge.

The judge sees the catalog (each heuristic's id, name and description), the problem and one
solution, and answers with a line ``Heuristics: id1, id2`` (or ``Heuristics: none``). The paper
reports the share of (correct) AIME-2024 solutions that combine more than one approach: 23.3%
after mid-training, 56.7% after RL. Requests go through the generate stage's
:class:`~polya.generate.client.ChatClient` (same retries and backoff).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Sequence

from polya.heuristics import HeuristicCatalog
from polya.sampling import ChatClient, fan_out
from polya.serving.vllm_server import Endpoint

logger = logging.getLogger(__name__)

RUBRIC_VERSION = 1
"""Bump when the prompt changes: cached labels of another version are not reused."""

JUDGE_SYSTEM = (
    "You analyse how a math solution was reached. You name the problem-solving heuristics it actually uses; "
    "you do not grade whether it is correct."
)

_LINE = re.compile(r"heuristics?\s*(?:used)?\s*[:=]\s*(.+)", re.IGNORECASE)


def judge_messages(catalog: HeuristicCatalog, question: str, solution: str, max_solution_chars: int = 6000) -> list[dict[str, str]]:
    """The labelling prompt for one solution."""
    text = solution.strip()
    if len(text) > max_solution_chars:
        half = max_solution_chars // 2
        text = text[:half] + "\n[... middle omitted ...]\n" + text[-half:]
    listing = "\n".join(f"- {h.id}: {h.name}. {' '.join(h.description.split())}" for h in catalog.heuristics)
    user = (
        f"Heuristics (id: name. description):\n{listing}\n\n"
        f"Problem:\n{question.strip()}\n\n"
        f"Solution:\n{text}\n\n"
        "Which of these heuristics does the solution clearly use? Count a heuristic only when the solution visibly "
        "applies it, not when it merely computes.\n"
        'Reply with one line of the form "Heuristics: id1, id2" using the ids above, or "Heuristics: none".'
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_heuristics(text: str | None, valid_ids: Sequence[str]) -> list[str] | None:
    """The catalog ids named in a judge reply, in catalog order; ``[]`` for "none"; None when unparseable.

    The last ``Heuristics: ...`` line counts; without one, a reply that names catalog ids anywhere
    is read as the list. Ids are matched as whole words, with spaces or hyphens for underscores
    accepted (``working backward``).
    """
    if not text:
        return None
    matches = _LINE.findall(text)
    scope = matches[-1] if matches else text
    lowered = scope.lower()
    found = []
    for hid in valid_ids:
        pattern = r"\b" + r"[\s_-]".join(map(re.escape, hid.lower().split("_"))) + r"\b"
        if re.search(pattern, lowered):
            found.append(hid)
    if found:
        return found
    if matches and re.search(r"\b(none|no heuristics?)\b", lowered):
        return []
    return None


@dataclass
class CompositionLabel:
    """The judge's labels for one solution."""

    sample_id: str
    heuristics: list[str] | None
    """None when the reply could not be parsed (or the request was rejected)."""
    reply: str

    def as_dict(self) -> dict[str, Any]:
        return {"sample_id": self.sample_id, "heuristics": self.heuristics, "reply": self.reply[:300]}


async def label_solutions(
    endpoint: Endpoint,
    catalog: HeuristicCatalog,
    items: Sequence[tuple[str, str, str]],
    *,
    max_tokens: int = 96,
    temperature: float = 0.0,
    concurrency: int = 8,
    max_solution_chars: int = 6000,
    timeout_s: float = 300.0,
    max_retries: int = 4,
    on_label: Any = None,
) -> list[CompositionLabel]:
    """Label ``items`` (sample id, question, solution) with the judge at ``endpoint``; results in item order.

    A request the server rejects (for instance a prompt over its context length) gives an
    unparseable label instead of stopping the analysis; a server that keeps failing raises
    :class:`ServerError`.
    """
    ids = [h.id for h in catalog.heuristics]
    client = ChatClient(endpoint, timeout_s=timeout_s, max_retries=max_retries, max_connections=max(8, concurrency), what="composition judge", saved="Labels so far are saved")
    results: list[CompositionLabel | None] = [None] * len(items)

    async def label_one(index: int) -> None:
        sample_id, question, solution = items[index]
        body = {
            "model": endpoint.model,
            "messages": judge_messages(catalog, question, solution, max_solution_chars),
            "temperature": temperature,
            "max_tokens": max_tokens,
            "n": 1,
        }
        reply = await client.chat_text(body)
        if reply is None:
            label = CompositionLabel(sample_id, None, "rejected: the judge refused the request (prompt too long?)")
        else:
            label = CompositionLabel(sample_id, parse_heuristics(reply, ids), reply)
        results[index] = label
        if on_label is not None:
            on_label(label)

    try:
        await fan_out(range(len(items)), min(concurrency, len(items)), label_one)
    finally:
        await client.aclose()
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def summarize_composition(labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts and shares over stored labels: how many solutions use 0, 1, or more than one heuristic."""
    parsed = [lab["heuristics"] for lab in labels if lab.get("heuristics") is not None]
    multi = sum(1 for h in parsed if len(h) > 1)
    per_heuristic: dict[str, int] = {}
    for hs in parsed:
        for h in hs:
            per_heuristic[h] = per_heuristic.get(h, 0) + 1
    return {
        "solutions": len(labels),
        "labelled": len(parsed),
        "unparseable": len(labels) - len(parsed),
        "none": sum(1 for h in parsed if not h),
        "single": sum(1 for h in parsed if len(h) == 1),
        "multiple": multi,
        "share_multiple": round(multi / len(parsed), 4) if parsed else None,
        "mean_heuristics": round(sum(len(h) for h in parsed) / len(parsed), 4) if parsed else None,
        "per_heuristic": dict(sorted(per_heuristic.items(), key=lambda kv: -kv[1])),
    }
