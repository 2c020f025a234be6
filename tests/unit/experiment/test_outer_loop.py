"""The outer bootstrap loop's plan (which stage runs where, from which model, on which data) and its bookkeeping.

The loop itself runs on the embedded model in tests/integration/experiment/test_outer_loop_run.py;
here the settings and the files between iterations are checked without a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polya.core.errors import ConfigError
from polya.core.layout import RunLayout
from polya.core.store import open_store
from polya.experiment import iterations
from polya.experiment.config import RunConfig
from polya.generate.config import GenerateConfig
from polya.generate.stage import GenerationStage, manifest_config


def _config(tmp_path: Path, **loop) -> RunConfig:
    return RunConfig.model_validate({
        "run_dir": str(tmp_path), "arms": ["base", "star_sft", "polya_sft_rl", "wrong_answer_sft"], "outer_loop": {"iterations": 3, **loop},
        "generate": {"server": {"endpoint": "http://vllm:8000/v1", "api_key": "k"}},
    })


def test_off_by_default_and_nothing_changes(tmp_path: Path) -> None:
    config = RunConfig.model_validate({"run_dir": str(tmp_path), "arms": ["base", "polya_sft"]})
    assert config.outer_loop.iterations == 1 and config.loop_datasets() == []
    assert config.model_of("polya_sft") == f"{tmp_path}/sft/polya/final"
    assert not [name for name in config.stage_configs() if name.startswith("iterations/")]


def test_each_dataset_has_its_chain_and_the_arms_use_its_last_model(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.loop_datasets() == ["polya", "star"]  # wrong_answer is trained once
    last = f"{tmp_path}/iterations/star/iter-03/sft/star/final"
    assert config.model_of("star_sft") == last
    assert config.model_of("wrong_answer_sft") == f"{tmp_path}/sft/wrong_answer/final"
    assert config.rl_config("polya_sft").model == f"{tmp_path}/iterations/polya/iter-03/sft/polya/final"
    assert config.eval_config().arms["star_sft"] == last
    names = [name for name in config.stage_configs() if name.startswith("iterations/")]
    assert names == [
        f"iterations/{d}/iter-{k:02d}/{stage}" for d in ("polya", "star") for k in (2, 3) for stage in ("generate", "select", f"sft/{d}")
    ]
    # run.json records them: what runs is what --print-config shows.
    assert "iterations/star/iter-02/generate" in config.effective()["stages"]


def test_an_iteration_generates_with_the_previous_model_and_only_its_condition(tmp_path: Path) -> None:
    config = _config(tmp_path)
    star2 = config.iteration_configs("star", 2)
    assert star2["generate"].run_dir == f"{tmp_path}/iterations/star/iter-02"
    assert star2["generate"].server.model == f"{tmp_path}/sft/star/final"  # iteration 1's SFT model
    assert star2["generate"].server.endpoint is None  # polya serves it: the configured endpoint serves the base model
    assert (star2["generate"].heuristics, star2["generate"].plain) == (["none"], True)  # STaR: the plain prompt only
    assert config.iteration_configs("star", 3)["generate"].server.model == f"{tmp_path}/iterations/star/iter-02/sft/star/final"
    polya2 = config.iteration_configs("polya", 2)
    assert (polya2["generate"].heuristics, polya2["generate"].plain) == (["all"], False)
    assert polya2["select"].datasets == ["polya"] and polya2["select"].run_dir == polya2["generate"].run_dir
    # SFT restarts from the base model; star trains on every iteration's data so far, rest_em on its own.
    sft = star2["sft/star"]
    assert (sft.model, sft.run_dir, sft.output_uri) == (config.model, star2["generate"].run_dir, f"{tmp_path}/iterations/star/iter-02/sft/star")
    assert sft.data_file == f"{tmp_path}/iterations/star/iter-02/loop-data/star/train.jsonl"
    assert _config(tmp_path, style="rest_em").iteration_configs("star", 2)["sft/star"].data_file is None
    # With baseline_source heuristics, star's chain generates with the heuristics.
    heuristic = RunConfig.model_validate({
        "run_dir": str(tmp_path), "arms": ["star_sft"], "outer_loop": {"iterations": 2}, "select": {"baseline_source": "heuristics"},
    })
    assert heuristic.iteration_configs("star", 2)["generate"].plain is False


def test_plain_only_generation_needs_the_plain_prompt() -> None:
    assert GenerateConfig(heuristics=["none"]).plain
    with pytest.raises(ValueError, match=r"heuristics \[none\] with plain false leaves nothing to generate"):
        GenerateConfig(heuristics=["none"], plain=False)


def _questions(run: Path, ids: list[str]) -> None:
    open_store(str(run)).write_jsonl(RunLayout.generate.questions, [{"id": i, "question": f"q {i}", "answer": "1"} for i in ids])


def _dataset(layout: RunLayout, dataset: str, ids: list[str]) -> None:
    rows = [
        {"messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": f"a {i}"}], "question_id": i} for i in ids
    ]
    open_store(layout.root).write_jsonl(layout.select.data_file(dataset), rows)


def test_star_asks_only_the_unsolved_questions_and_trains_on_everything_so_far(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _questions(tmp_path, ["a", "b", "c", "d"])
    open_store(str(tmp_path)).write_json(RunLayout.decontaminate.report, {"removed": []})
    _dataset(RunLayout(str(tmp_path)), "star", ["a"])

    assert iterations.prepare(config, "star", 2) == 3
    second = config.iteration_layout("star", 2)
    solved = json.loads(Path(second.uri(RunLayout.generate.solved_before)).read_text())
    assert solved == {"dataset": "star", "iterations": [1], "question_ids": ["a"]}
    assert Path(second.uri(RunLayout.decontaminate.report)).is_file()  # the same decontamination as the run
    _dataset(second, "star", ["b", "b"])
    assert iterations.write_cumulative_data(config, "star", 2) == 3
    rows = [json.loads(line) for line in Path(iterations.cumulative_data_file(second, "star")).read_text().splitlines()]
    assert [(r["question_id"], r["iteration"]) for r in rows] == [("a", 1), ("b", 2), ("b", 2)]

    assert iterations.prepare(config, "star", 3) == 2
    third = config.iteration_layout("star", 3)
    assert json.loads(Path(third.uri(RunLayout.generate.solved_before)).read_text())["question_ids"] == ["a", "b"]
    # Every question solved: nothing to ask, no file written; SFT still trains on the data so far.
    _dataset(third, "star", ["c", "d"])
    config4 = _config(tmp_path, iterations=4)
    assert iterations.prepare(config4, "star", 4) == 0
    assert not Path(config4.iteration_layout("star", 4).uri(RunLayout.generate.solved_before)).exists()
    assert iterations.write_cumulative_data(config4, "star", 4) == 5

    table = {row.iteration: row for row in iterations.summarize(config4) if row.dataset == "star"}
    assert [table[k].questions_solved for k in (1, 2, 3, 4)] == [1, 1, 2, 0]
    assert [table[k].solved_total for k in (1, 2, 3, 4)] == [1, 2, 4, 4]
    assert table[4].questions_asked == 0 and table[4].sft_examples == 5 and table[2].sft_examples == 3
    assert table[3].sft_examples is None  # its training file is not written yet
    md = iterations.render(config4, iterations.summarize(config4))
    assert "| star | 2 | iteration 1 SFT model |" in md


def test_rest_em_asks_every_question_again(tmp_path: Path) -> None:
    config = _config(tmp_path, style="rest_em")
    _questions(tmp_path, ["a", "b"])
    _dataset(RunLayout(str(tmp_path)), "star", ["a"])
    assert iterations.prepare(config, "star", 2) == 2
    assert not Path(config.iteration_layout("star", 2).uri(RunLayout.generate.solved_before)).exists()


def test_generate_leaves_out_what_earlier_iterations_solved(tmp_path: Path) -> None:
    run = tmp_path / "iter"
    config = GenerateConfig(run_dir=str(run), data={"source": "synthetic", "synthetic": {"count": 4, "difficulties": [1]}}, progress=False)
    everything = [q.id for q in GenerationStage(config)._questions()]
    (run / "generate" / "questions.jsonl").unlink()
    store = open_store(str(run))
    store.write_json(RunLayout.generate.solved_before, {"question_ids": everything[:3]})
    stage = GenerationStage(config)
    assert [q.id for q in stage._questions()] == everything[3:]
    assert "solved_before" in stage.identity() and "solved_before" in manifest_config(config)["inputs"]
    store.write_json(RunLayout.generate.solved_before, {"question_ids": everything})
    (run / "generate" / "questions.jsonl").unlink()
    with pytest.raises(ConfigError, match="every question was solved by an earlier iteration"):
        GenerationStage(config)._questions()
    store.write_json(RunLayout.generate.solved_before, {"question_ids": "a"})
    with pytest.raises(ConfigError, match=r"must hold \{question_ids: \[...\]\}"):
        GenerationStage(config)
