"""The outer bootstrap loop in the pipeline's steps: the iterate component on small artifacts (the
questions the next iteration asks, the rows SFT trains on, the chain of iterations, errors that name
the problem), the loop's shared rules, and generate sampling from a model artifact."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from kfp.dsl import Dataset, Metrics

from polya.core.errors import ConfigError, DataError
from polya.experiment.iterations import loop_rows, questions_to_ask, solved_ids
from polya.pipeline.loader import load_component
from polya.pipeline.steps.iterate import STATE_FILE, iterate_step

STAR = json.dumps({"iterations": 3, "style": "star"})
REST_EM = json.dumps({"iterations": 3, "style": "rest_em"})


@pytest.fixture()
def questions(tmp_path: Path) -> tuple[str, list[str]]:
    """A questions artifact of 4 synthetic questions and their ids."""
    load_component("data").python_func(questions=Dataset(name="q", uri=str(tmp_path / "questions")),
                                       config_yaml="synthetic: {count: 4, difficulties: [1]}", source="synthetic")
    return str(tmp_path / "questions"), ids(tmp_path / "questions")


def ids(folder: Path | str) -> list[str]:
    return [json.loads(line)["id"] for line in (Path(folder) / "questions.jsonl").read_text().splitlines()]


def selected(folder: Path, dataset: str, solved: list[str]) -> str:
    """A datasets artifact (select's) whose ``dataset`` holds two examples of each solved question."""
    path = folder / "select" / dataset / "train.jsonl"
    path.parent.mkdir(parents=True)
    rows = [{"question_id": q, "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"#{i}"}]} for q in solved for i in (1, 2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(folder)


def rows(folder: Path | str, dataset: str) -> list[dict]:
    return [json.loads(line) for line in (Path(folder) / "select" / dataset / "train.jsonl").read_text().splitlines()]


def test_the_loops_rules_are_pure_functions():
    assert solved_ids([{"question_id": "a"}, {"question_id": 7}, {"other": 1}]) == {"a", "7"}
    assert questions_to_ask("star", ["c", "a", "b"], {"a"}) == ["c", "b"] and questions_to_ask("rest_em", ["c", "a"], {"a"}) == ["c", "a"]
    earlier = [{"question_id": "a", "iteration": 1}]
    assert loop_rows("star", 2, [{"question_id": "b"}], earlier) == [*earlier, {"question_id": "b", "iteration": 2}]
    assert loop_rows("rest_em", 2, [{"question_id": "b"}], earlier) == [{"question_id": "b", "iteration": 2}]


def test_star_iterations_chain_the_solved_questions_and_the_rows(tmp_path: Path, questions):
    qdir, qids = questions
    iterate = load_component("iterate").python_func
    first = {name: Dataset(name=name, uri=str(tmp_path / f"it1-{name}")) for name in ("next_questions", "data")}
    metrics = Metrics(name="metrics", uri=str(tmp_path / "it1-metrics"))
    iterate(questions=Dataset(name="q", uri=qdir), datasets=Dataset(name="d", uri=selected(tmp_path / "sel1", "star", qids[:1])),
            metrics=metrics, config_yaml=STAR, dataset="star", iteration=1, **first)
    assert ids(first["next_questions"].path) == qids[1:]  # iteration 2 asks what iteration 1 did not solve
    assert [r["iteration"] for r in rows(first["data"].path, "star")] == [1, 1]
    assert metrics.metadata["solved_total"] == 1.0 and first["data"].metadata == {"dataset": "star", "iteration": 1, "examples": 2}

    summary = iterate_step(STAR, qdir, selected(tmp_path / "sel2", "star", qids[1:3]), str(tmp_path / "q3"), str(tmp_path / "d2"),
                           "star", 2, earlier_dir=first["data"].path)
    assert ids(tmp_path / "q3") == qids[3:]
    trained = rows(tmp_path / "d2", "star")  # star: every iteration's rows so far, tagged
    assert [(r["question_id"], r["iteration"]) for r in trained] == [(q, k) for q, k in [(qids[0], 1)] * 2 + [(qids[1], 2)] * 2 + [(qids[2], 2)] * 2]
    assert summary == {"iteration": 2, "questions": 4, "solved": 2, "solved_new": 2, "solved_total": 3, "next_questions": 1, "sft_examples": 6}
    assert json.loads((tmp_path / "d2" / STATE_FILE).read_text())["solved"] == sorted(qids[:3])

    # Everything solved: the next iteration asks every question again (a task cannot be skipped at run time).
    done = iterate_step(STAR, qdir, selected(tmp_path / "sel3", "star", qids[3:]), str(tmp_path / "q4"), str(tmp_path / "d3"),
                        "star", 3, earlier_dir=str(tmp_path / "d2"))
    assert done["solved_total"] == 4 and ids(tmp_path / "q4") == qids and done["sft_examples"] == 8


def test_rest_em_asks_everything_and_trains_on_its_own_rows(tmp_path: Path, questions):
    qdir, qids = questions
    iterate_step(REST_EM, qdir, selected(tmp_path / "sel1", "polya", qids[:2]), str(tmp_path / "q2"), str(tmp_path / "d1"), "polya", 1)
    assert ids(tmp_path / "q2") == qids
    summary = iterate_step(REST_EM, qdir, selected(tmp_path / "sel2", "polya", qids[1:2]), str(tmp_path / "q3"), str(tmp_path / "d2"),
                           "polya", 2, earlier_dir=str(tmp_path / "d1"))
    assert [r["iteration"] for r in rows(tmp_path / "d2", "polya")] == [2, 2] and ids(tmp_path / "q3") == qids
    assert (summary["solved_new"], summary["solved_total"], summary["sft_examples"]) == (0, 2, 2)


def test_bad_inputs_are_named(tmp_path: Path, questions):
    qdir, qids = questions
    sel = selected(tmp_path / "sel", "star", qids[:1])
    out = (str(tmp_path / "q"), str(tmp_path / "d"))
    with pytest.raises(ConfigError, match="no dataset 'polya'; datasets present: star"):
        iterate_step(STAR, qdir, sel, *out, "polya", 1)
    with pytest.raises(ConfigError, match="iteration 1 takes no earlier artifact"):
        iterate_step(STAR, qdir, sel, *out, "star", 2)
    iterate_step(STAR, qdir, sel, *out, "star", 1)
    with pytest.raises(ConfigError, match="closes iteration 1 of 'star'; iteration 3 of 'star' needs iteration 2"):
        iterate_step(STAR, qdir, sel, str(tmp_path / "q3"), str(tmp_path / "d3"), "star", 3, earlier_dir=str(tmp_path / "d"))
    with pytest.raises(ConfigError, match="style"):
        iterate_step('{"style": "stars"}', qdir, sel, *out, "star", 1)
    empty = selected(tmp_path / "empty", "polya", [])
    iterate_step(REST_EM, qdir, empty, str(tmp_path / "qe"), str(tmp_path / "de"), "polya", 1)  # iteration 1's own SFT reports an empty dataset
    with pytest.raises(DataError, match="iteration 2 of polya selected no example"):
        iterate_step(REST_EM, qdir, empty, str(tmp_path / "qe2"), str(tmp_path / "de2"), "polya", 2, earlier_dir=str(tmp_path / "de"))


def test_generate_samples_from_a_model_artifact_in_its_own_pod(tmp_path: Path, questions, monkeypatch):
    """A later iteration's generate serves the previous SFT model: a running endpoint (serving the base model) is dropped."""
    import polya.generate.stage as stage
    from polya.pipeline.steps.generate import generate_step

    seen = []
    monkeypatch.setattr(stage, "run", lambda config: seen.append(config) or SimpleNamespace(summary={"samples": 0}))
    settings = '{"server": {"endpoint": "http://vllm:8000/v1"}}'
    generate_step(settings, questions[0], str(tmp_path / "g"), model="base", heuristics="none", plain=True, model_dir_in=str(tmp_path / "sft"))
    assert (seen[0].server.model, seen[0].server.endpoint, seen[0].heuristics, seen[0].plain) == (str(tmp_path / "sft"), None, ["none"], True)
    generate_step(settings, questions[0], str(tmp_path / "g2"), model="base", plain=False)
    assert (seen[1].server.model, seen[1].server.endpoint, seen[1].plain) == ("base", "http://vllm:8000/v1", False)
