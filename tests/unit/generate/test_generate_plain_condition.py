"""The plain condition and rationalization (STaR) in the generate stage, against a scripted chat server.

The stand-in model answers every heuristic prompt correctly, the plain prompt correctly only for the
questions it is told to, and a hinted prompt (rationalization) with the answer of the hint. So the
run shows which requests the stage makes, what it stores and how it counts them.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from support.local_http import JsonHandler, LocalServer

from polya.core.outputs import iter_generations
from polya.core.store import LocalStore
from polya.generate.config import GenerateConfig
from polya.generate.stage import GenerationStage, run
from polya.heuristics import PLAIN, HeuristicCatalog
from polya.select.config import SelectConfig
from polya.select.stage import run as select

CATALOG = HeuristicCatalog.load()
QUESTIONS = [
    {"id": "qa", "question": "What is 3 + 4?", "answer": "7"},
    {"id": "qb", "question": "What is 10 - 2?", "answer": "8"},
    {"id": "qc", "question": "What is 3 x 4?", "answer": "12"},
]
HINT = re.compile(r"the correct final answer is (.+?)\. Write")


class ScriptedModel(LocalServer):
    """An OpenAI-compatible server: right under a heuristic or a hint, right plainly only for ``plain_solves``."""

    def __init__(self, plain_solves: set[str]) -> None:
        self.plain_solves = plain_solves
        self.answers = {q["question"]: q["answer"] for q in QUESTIONS}
        self.requests: list[list[dict[str, str]]] = []
        self.lock = threading.Lock()
        super().__init__()

    def answer(self, messages: list[dict[str, str]]) -> str:
        last = messages[-1]["content"]
        question = last.split("Problem: ", 1)[1].split("\n\n", 1)[0]
        hint = HINT.search(last)
        if hint:
            return hint.group(1)
        if not last.startswith("Problem:"):  # a heuristic's instruction comes first
            return self.answers[question]
        return self.answers[question] if question in self.plain_solves else "-1"

    def _handler(self) -> type[JsonHandler]:
        model = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                self.send_json(200, {"data": [{"id": "scripted"}]})

            def do_POST(self) -> None:
                body = self.read_json()
                with model.lock:
                    model.requests.append(body["messages"])
                answer = model.answer(body["messages"])
                text = f"Working through it step by step, the result is {answer}. The final answer is \\boxed{{{answer}}}."
                choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} for i in range(body["n"])]
                self.send_json(200, {"choices": choices, "usage": {"prompt_tokens": 50, "completion_tokens": 5 * body["n"]}})

        return Handler


@pytest.fixture()
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


def config(run_dir: Path, data_file: Path, url: str, **extra: Any) -> GenerateConfig:
    return GenerateConfig.model_validate({
        "run_dir": str(run_dir), "data": {"source": str(data_file)}, "heuristics": ["analogy"], "progress": False,
        "bootstrap": {"rounds": 2, "samples": 2, "growth": 2.0}, "server": {"endpoint": f"{url}/v1"}, **extra,
    })


def hinted(requests: list[list[dict[str, str]]]) -> list[list[dict[str, str]]]:
    return [m for m in requests if "Hint:" in m[-1]["content"]]


def test_plain_condition_and_rationalization_are_generated_and_counted_apart(tmp_path: Path, data_file: Path) -> None:
    with ScriptedModel(plain_solves={"What is 3 + 4?"}) as model:
        out = run(config(tmp_path / "run", data_file, model.url))
        requests = list(model.requests)

    summary = out.summary
    assert summary["heuristics"] == ["analogy", PLAIN] and summary["plain"] is True
    # round 1: 3 questions x (analogy, plain) x 2; round 2: the 2 unsolved plain pairs x 4
    assert summary["rounds"]["1"]["samples"] == 12 and summary["rounds"]["2"]["samples"] == 8
    assert set(summary["rounds"]) == {"1", "2"}  # the rationalization pass is not a round
    assert summary["per_heuristic"] == {"analogy": {"samples": 6, "correct": 6}, PLAIN: {"samples": 14, "correct": 2}}
    assert summary["pairs"] == 6 and summary["pairs_solved"] == 4  # a hinted answer solves no pair
    assert summary["rationalization"] == {"questions_asked": 2, "samples": 4, "correct": 4, "questions_solved": 2, "completion_tokens": 20}
    assert summary["samples"] == 24 and summary["correct_samples"] == 6 + 2 + 4

    # The plain prompt: no heuristic instruction, the catalog's own plain exemplar as the few-shot turn.
    plain = [m for m in requests if m[-1]["content"].startswith("Problem:") and "Hint:" not in m[-1]["content"]]
    assert len(plain) == 3 + 2
    assert plain[0][1]["content"].startswith(f"Problem: {CATALOG.plain.exemplars[0].question.strip()}")
    assert plain[0][2]["content"] == CATALOG.plain.exemplars[0].solution.strip()
    # Rationalization asks only the questions with no correct plain solution, each exemplar with its own answer as the hint.
    asked = hinted(requests)
    assert sorted(m[-1]["content"].split("\n\n")[0] for m in asked) == ["Problem: What is 10 - 2?", "Problem: What is 3 x 4?"]
    assert all(CATALOG.plain.hint(CATALOG.plain.exemplars[0].answer) in m[1]["content"] for m in asked)

    records = {r["id"]: r for r in iter_generations(LocalStore(tmp_path / "run"))}
    rationalized = [r for r in records.values() if r["rationalized"]]
    assert sorted(r["id"] for r in rationalized) == [f"{q}|plain|rationalized|s{i}" for q in ("qb", "qc") for i in (0, 1)]
    assert all(r["heuristic"] == PLAIN and r["correct"] for r in rationalized)
    assert all("Hint" not in r["question"] and r["question"] in {"What is 10 - 2?", "What is 3 x 4?"} for r in rationalized)
    assert not any(r["rationalized"] for r in records.values() if r not in rationalized)
    assert (tmp_path / "run" / "generate" / "generations" / "rationalization").is_dir()

    # Resumed: everything is stored, nothing is asked again (the rationalized questions included).
    with ScriptedModel(plain_solves=set()) as again:
        resumed = run(config(tmp_path / "run", data_file, again.url))
        assert again.requests == []
    assert resumed.summary["rationalization"] == summary["rationalization"]


def test_star_trains_on_rationalized_solutions_without_their_hint(tmp_path: Path, data_file: Path) -> None:
    with ScriptedModel(plain_solves={"What is 3 + 4?"}) as model:
        run(config(tmp_path / "run", data_file, model.url))
    out = select(SelectConfig(run_dir=str(tmp_path / "run"), datasets=["polya", "star"], prompt="plain", progress=False))

    star = [json.loads(line) for line in (tmp_path / "run" / "select" / "star" / "train.jsonl").read_text().splitlines()]
    assert [(r["question_id"], r["heuristic"], r["rationalized"]) for r in star] == [("qa", PLAIN, False), ("qb", PLAIN, True), ("qc", PLAIN, True)]
    for row in star:
        user = row["messages"][0]["content"]
        assert "Hint" not in user and "correct final answer" not in user  # the training prompt is the plain one
        assert user == f"Problem: {QUESTIONS[['qa', 'qb', 'qc'].index(row['question_id'])]['question']}\n\n{CATALOG.answer_format.strip()}"
    polya = [json.loads(line) for line in (tmp_path / "run" / "select" / "polya" / "train.jsonl").read_text().splitlines()]
    assert {r["heuristic"] for r in polya} == {"analogy"} and not any(r["rationalized"] for r in polya)
    assert out.report["datasets"]["star"]["rationalized"] == 2 and out.report["datasets"]["star"]["source"] == "plain"
    assert out.report["inputs"]["rationalized"] == {"samples": 4, "correct": 4, "questions_solved": 2}


@pytest.mark.parametrize("extra, plain_requests, hinted_requests", [
    ({"rationalization": {"enabled": False}}, 5, 0),
    ({"plain": False}, 0, 0),
])
def test_plain_and_rationalization_can_be_turned_off(
    tmp_path: Path, data_file: Path, extra: dict[str, Any], plain_requests: int, hinted_requests: int
) -> None:
    with ScriptedModel(plain_solves={"What is 3 + 4?"}) as model:
        out = run(config(tmp_path / "run", data_file, model.url, **extra))
        requests = list(model.requests)
    assert len(hinted(requests)) == hinted_requests
    assert sum(1 for m in requests if m[-1]["content"].startswith("Problem:")) == plain_requests
    assert out.summary["rationalization"] is None
    assert (PLAIN in out.summary["heuristics"]) is (plain_requests > 0)


def test_plain_and_rationalization_are_part_of_the_identity(tmp_path: Path, data_file: Path) -> None:
    base = config(tmp_path / "run", data_file, "http://127.0.0.1:9")
    identity = GenerationStage(base).identity()
    assert identity["plain"] is True and identity["rationalization.enabled"] is True
    off = GenerationStage(config(tmp_path / "run", data_file, "http://127.0.0.1:9", plain=False)).identity()
    assert off["plain"] is False and off["rationalization.enabled"] is False  # nothing to rationalize without plain
