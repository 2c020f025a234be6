"""Selection on real generations from the embedded model, with every scorer kind against real models.

A real vLLM server (the session fixture ``vllm_endpoint``) generates solutions of a few synthetic
questions. The 135M model solves few of them, so correct, heuristic-following solutions written
by hand are appended to the same run (as extra samples of the same requests, through the same
shard writer); ``reverify`` then judges every record, real and hand-written, with the verifier.
The LLM judge is that same vLLM server; the reward model is a real sequence-classification model
built from the embedded SmolLM2 checkpoint with a freshly initialised one-logit head.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from polya.core.outputs import iter_generations
from polya.core.store import LocalStore, open_store
from polya.core.store.shards import ShardWriter, read_shards
from polya.generate.config import GenerateConfig
from polya.generate.stage import run as run_generate
from polya.heuristics import HeuristicCatalog
from polya.metrics.similarity import normalize_text
from polya.select.config import ScorerConfig, SelectConfig
from polya.select.scorers import RewardModelScorer, ScoreItem
from polya.select.stage import run as run_select
from polya.verify.math_judge import judge_math

pytestmark = pytest.mark.integration

HEURISTICS = ["working_backward", "decomposition", "step_by_step_justification"]
ARMS = ["polya", "star", "wrong_answer", "breadth", "depth"]


def _hand_written(heuristic: str, answer: str, correct: bool) -> str:
    final = answer if correct else f"{answer}1"
    if heuristic == "working_backward":
        return (
            f"Work backward from the result and undo each step in reverse order.\nThe result is {final}.\n"
            f"Undo the last step: before that the value was {final}.\nCheck: running the steps forward gives {final} again.\n"
            f"The final answer is \\boxed{{{final}}}."
        )
    if heuristic == "decomposition":
        return (
            "Sub-problem 1: find what is given in the problem.\nSub-problem 2: find what is asked for.\n"
            f"Combine: putting the two parts together, the total is {final}.\nThe final answer is \\boxed{{{final}}}."
        )
    return (
        "Step 1: Read the numbers in the problem, because every later step uses them.\n"
        "Step 2: Apply the operation the problem describes, because that is how the quantities are related.\n"
        f"Step 3: The result is {final}, because the arithmetic of step 2 gives it.\nThe final answer is \\boxed{{{final}}}."
    )


@pytest.fixture(scope="module")
def generated_run(vllm_endpoint: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("select-run")
    config = GenerateConfig.model_validate(
        {
            "run_dir": str(run_dir),
            "data": {"source": "synthetic", "synthetic": {"count": 3, "difficulties": [1]}, "seed": 5},
            "heuristics": HEURISTICS,
            "plain": False,  # the hand-written solutions below are heuristic ones; star draws from them
            "num_exemplars": 1,
            "sampling": {"temperature": 0.9, "max_tokens": 96, "seed": 3, "per_request_seed": "off"},
            "bootstrap": {"rounds": 1, "samples": 2},
            "concurrency": 8,
            "progress": False,
        }
    )
    run_generate(config, endpoint=vllm_endpoint)
    stage = LocalStore(run_dir).child("generate")
    questions = stage.read_jsonl("questions.jsonl")
    writer = ShardWriter(stage, "generations/round-01", flush_every=1000, flush_interval_s=3600)
    for q in questions:
        for h in HEURISTICS:
            for sample, correct in ((90, True), (91, False)):
                text = _hand_written(h, str(q["answer"]), correct)
                writer.add([{
                    "id": f"{q['id']}|{h}|r1|s{sample}", "question_id": q["id"], "heuristic": h, "round": 1, "sample_index": sample,
                    "question": q["question"], "reference": q["answer"], "source": q["source"], "completion": text,
                    "finish_reason": "stop", "prompt_tokens": None, "completion_tokens": len(text.split()),
                    "correct": correct, "extracted_answer": None, "judge_reason": "hand-written", "model": "hand-written",
                }])
    writer.flush()
    return run_dir


def _rows(run_dir: Path, arm: str) -> list[dict[str, Any]]:
    text = (run_dir / "select" / arm / "train.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_select_on_real_generations_keeps_its_invariants(generated_run: Path) -> None:
    records = {r["id"]: r for r in iter_generations(open_store(str(generated_run)))}
    real = [r for r in records.values() if r["model"] != "hand-written"]
    assert real, "the generate stage wrote records"
    questions = {r["question_id"] for r in records.values()}

    out = run_select(SelectConfig(
        run_dir=str(generated_run), datasets=ARMS, n_per_question=2, budget=4, reverify=True, judge_workers=1, progress=False,
        baseline_source="heuristics",
    ))
    report = out.report
    assert report["inputs"]["records"] == len(records)
    assert report["reverify"]["judged"] == len(records)

    for arm in ARMS:
        arm_report = report["datasets"][arm]
        assert arm_report["examples"] + sum(arm_report["rejections"].values()) == len(records), arm
        assert (generated_run / "select" / arm / "README.md").is_file()
        vendi = arm_report["diversity"]["vendi_per_question_mean"]
        assert vendi is None or 1.0 - 1e-9 <= vendi <= 2.0 + 1e-9

    polya = _rows(generated_run, "polya")
    assert {r["question_id"] for r in polya} == questions  # the hand-written correct ones guarantee each question
    for row in polya:
        rec = records[row["generation_id"]]
        assert judge_math(rec["completion"], rec["reference"]).correct, row["generation_id"]
        assert row["messages"] == [
            {"role": "user", "content": rec["question"].strip()}, {"role": "assistant", "content": rec["completion"].strip()}
        ]
    per_question = Counter(r["question_id"] for r in polya)
    per_pair = Counter((r["question_id"], r["heuristic"]) for r in polya)
    assert max(per_question.values()) <= 2 and max(per_pair.values()) == 1
    for q in questions:
        texts = [normalize_text(r["messages"][-1]["content"]) for r in polya if r["question_id"] == q]
        assert len(texts) == len(set(texts))

    wrong = _rows(generated_run, "wrong_answer")
    assert wrong and all(not judge_math(records[r["generation_id"]]["completion"], records[r["generation_id"]]["reference"]).correct for r in wrong)
    star = _rows(generated_run, "star")
    assert sorted(r["question_id"] for r in star) == sorted(questions)
    assert len(_rows(generated_run, "breadth")) == min(4, len(questions))
    depth = _rows(generated_run, "depth")
    assert len(depth) == min(4, len(polya)) and max(Counter(r["question_id"] for r in depth).values()) <= 2


def test_llm_judge_scores_with_the_real_server(generated_run: Path, vllm_endpoint: Any) -> None:
    config = SelectConfig(
        run_dir=str(generated_run), datasets=["polya"], heuristics=["working_backward", "decomposition"], progress=False,
        scorer=ScorerConfig(kind="llm_judge", endpoint=vllm_endpoint.base_url, max_tokens=8, parse_attempts=2, concurrency=4),
    )
    out = run_select(config)
    scorer = out.report["scorer"]
    eligible = [
        r for r in iter_generations(open_store(str(generated_run)))
        if r["correct"] and r["heuristic"] in ("working_backward", "decomposition") and r.get("finish_reason") != "length" and r["completion"].strip()
    ]
    assert scorer["kind"] == "llm_judge" and scorer["solutions"] == len(eligible) == scorer["scored_now"]
    cached = list(read_shards(LocalStore(generated_run).child("select"), f"scores/{scorer['id']}"))
    assert len(cached) == len(eligible)
    nulls = [c for c in cached if c["score"] is None]
    assert all(1.0 <= c["score"] <= 10.0 for c in cached if c["score"] is not None)
    assert all(c["attempts"] == 2 and "unparseable" in c["detail"] for c in nulls)
    assert scorer["unscored"] == len(nulls)
    polya = out.report["datasets"]["polya"]
    assert polya["rejections"].get("unscored", 0) == len(nulls)  # on_unscored: drop
    assert all(r["score"] is not None and 1.0 <= r["score"] <= 10.0 for r in _rows(generated_run, "polya"))

    again = run_select(config)
    assert again.report["scorer"]["scored_now"] == 0 and again.report["scorer"]["from_cache"] == len(eligible)
    assert again.report["datasets"]["polya"]["examples"] == polya["examples"]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sequence-classification model: the embedded SmolLM2 with a fresh one-logit head."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from polya.models import ensure_embedded_checkpoint

    source = ensure_embedded_checkpoint()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    target = tmp_path_factory.mktemp("reward-model")
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


def test_reward_model_scores_are_finite_deterministic_and_batch_independent(classifier_dir: Path) -> None:
    catalog = HeuristicCatalog.load()
    items = [
        ScoreItem(f"i{i}", "Tom has 3 apples and buys 4 more. How many apples does he have?", catalog.get(h), _hand_written(h, "7", i % 2 == 0))
        for i, h in enumerate(HEURISTICS * 2)
    ]
    batched = RewardModelScorer(ScorerConfig(kind="reward_model", model=str(classifier_dir), batch_size=4), catalog)
    assert batched.output == "logit" and batched.templated
    first: dict[str, float | None] = {}
    batched.score(items, lambda item, result: first.__setitem__(item.id, result.score))
    second: dict[str, float | None] = {}
    batched.score(items, lambda item, result: second.__setitem__(item.id, result.score))
    assert first == second and len(first) == len(items)
    assert all(v is not None and math.isfinite(v) for v in first.values())
    single = RewardModelScorer(ScorerConfig(kind="reward_model", model=str(classifier_dir), batch_size=1), catalog)
    alone: dict[str, float | None] = {}
    single.score(items, lambda item, result: alone.__setitem__(item.id, result.score))
    for key, value in first.items():
        assert alone[key] == pytest.approx(value, abs=1e-4)
    assert len(set(round(v, 6) for v in first.values() if v is not None)) > 1  # the head tells the solutions apart


def test_select_with_the_reward_model_scorer_caches_its_scores(generated_run: Path, classifier_dir: Path) -> None:
    config = SelectConfig(
        run_dir=str(generated_run), datasets=["polya", "star"], progress=False,
        scorer=ScorerConfig(kind="reward_model", model=str(classifier_dir), batch_size=8),
    )
    out = run_select(config)
    scorer = out.report["scorer"]
    assert scorer["kind"] == "reward_model" and scorer["unscored"] == 0 and scorer["scored_now"] == scorer["solutions"] > 0
    cached = {c["id"]: c["score"] for c in read_shards(LocalStore(generated_run).child("select"), f"scores/{scorer['id']}")}
    for row in _rows(generated_run, "polya"):
        assert row["score"] == cached[row["generation_id"]] and math.isfinite(row["score"])
    star = _rows(generated_run, "star")
    for row in star:
        same_question = [r["score"] for r in _rows(generated_run, "polya") if r["question_id"] == row["question_id"]]
        assert row["score"] == max(same_question)
    again = run_select(config)
    assert again.report["scorer"]["scored_now"] == 0 and again.report["scorer"]["from_cache"] == scorer["solutions"]
    assert _rows(generated_run, "star") == star
