"""Generation records written into a real run directory, exactly as the generate stage writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from polya.core.store import LocalStore
from polya.core.store.shards import ShardWriter

RecordFactory = Callable[..., dict[str, Any]]


def make_record(
    qid: str,
    heuristic: str,
    sample: int,
    correct: bool,
    completion: str,
    *,
    round_index: int = 1,
    finish_reason: str = "stop",
    question: str | None = None,
    reference: str = "4",
    extracted: str | None = "auto",
    status: str | None = None,
) -> dict[str, Any]:
    """One record with every field ``polya generate`` writes."""
    if extracted == "auto":
        extracted = reference if correct else "5"
    return {
        "id": f"{qid}|{heuristic}|r{round_index}|s{sample}",
        "question_id": qid,
        "heuristic": heuristic,
        "round": round_index,
        "sample_index": sample,
        "question": question or f"Question {qid}: what is 2 + 2?",
        "reference": reference,
        "source": "test",
        "completion": completion,
        "finish_reason": finish_reason,
        "prompt_tokens": 100,
        "completion_tokens": len(completion.split()),
        "correct": correct,
        "status": status or ("pass" if correct else "fail"),
        "extracted_answer": extracted,
        "judge_reason": "equivalent" if correct else "not equivalent",
        "model": "embedded:smollm2-135m-instruct",
        "prompt_fingerprint": "0123456789abcdef",
        "num_exemplars": 1,
        "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 192, "seed": None, "n": 2},
        "latency_s": 1.0,
        "created_at": "2026-01-01T00:00:00+00:00",
    }


def write_generations(run_dir: Path, records: list[dict[str, Any]], questions: list[dict[str, Any]] | None = None) -> None:
    """Write records as round shards under <run_dir>/generate/generations/ with the generate stage's ShardWriter."""
    stage = LocalStore(run_dir).child("generate")
    if questions is not None:
        stage.write_jsonl("questions.jsonl", questions)
    by_round: dict[int, list[dict[str, Any]]] = {}
    for rec in records:
        by_round.setdefault(int(rec["round"]), []).append(rec)
    for round_index, recs in sorted(by_round.items()):
        writer = ShardWriter(stage, f"generations/round-{round_index:02d}", flush_every=3, flush_interval_s=60)
        for rec in recs:
            writer.add([rec])
            if writer.due():
                writer.flush()
        writer.flush()


@pytest.fixture()
def record() -> RecordFactory:
    return make_record


@pytest.fixture()
def write() -> Callable[..., None]:
    return write_generations


# Hand-written solutions: one that follows each heuristic, and weak ones.
BACKWARD = (
    "Work backward from the end and undo each step in reverse order.\n"
    "At the end there are 4 apples.\n"
    "Undo the last step: before that there were 4 - 2 = 2 apples.\n"
    "Undo the first step: before that there were 2 apples at the start.\n"
    "Check: 2 + 2 = 4, which matches the problem.\n"
    "The final answer is \\boxed{4}."
)
DECOMPOSED = (
    "Sub-problem 1: the apples Ann has. She has 2 apples.\n"
    "Sub-problem 2: the apples Bob gives her. He gives 2 apples.\n"
    "Combine: in total she has 2 + 2 = 4 apples.\n"
    "The final answer is \\boxed{4}."
)
STEPS = (
    "Step 1: Ann starts with 2 apples, because the problem says so.\n"
    "Step 2: Bob gives her 2 more, because giving adds to what she has.\n"
    "Step 3: She has 2 + 2 = 4 apples, because addition counts both groups.\n"
    "The final answer is \\boxed{4}."
)
TABLE = (
    "Make a table of the apples.\n"
    "Person | Apples\n"
    "Ann | 2\n"
    "Bob | 2\n"
    "Total | 4\n"
    "Reading the last row of the table, the total is 4 apples.\n"
    "The final answer is \\boxed{4}."
)
PLAIN = (
    "Ann has two apples and gets two more from Bob, so she ends up with two plus two apples, "
    "which is four apples altogether in her basket. The final answer is \\boxed{4}."
)
BARE = "\\boxed{4}"


@pytest.fixture()
def texts() -> dict[str, str]:
    """Hand-written solutions by name: backward, decomposed, steps, table, plain, bare."""
    return {"backward": BACKWARD, "decomposed": DECOMPOSED, "steps": STEPS, "table": TABLE, "plain": PLAIN, "bare": BARE}
