"""The steps the components call: settings mapping, artifact layouts, errors that name the problem,
and the data component's Python function called directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import Dataset, Metrics

from polya.core.errors import ConfigError, DataError, StoreError
from polya.core.layout import join_uri
from polya.core.store import copy_folder_in, copy_folder_out
from polya.generate.config import GenerateConfig
from polya.pipeline.loader import load_component
from polya.pipeline.steps.cluster import parse_cluster
from polya.pipeline.steps.common import (
    given,
    input_digest,
    scalar_metrics,
    split_list,
    stage_config,
)
from polya.pipeline.steps.data import data_step
from polya.pipeline.steps.generate import merge_step
from polya.pipeline.steps.select import dataset_file, select_step


def test_stage_config_merges_parameters_over_yaml_and_names_bad_keys():
    cfg = stage_config(GenerateConfig, "sampling: {temperature: 0.3}\nbootstrap: {rounds: 5}", {"bootstrap": {"rounds": 2}, "run_dir": "/x"})
    assert (cfg.sampling.temperature, cfg.bootstrap.rounds, cfg.run_dir) == (0.3, 2, "/x")
    assert stage_config(GenerateConfig, '{"concurrency": 3}', {}).concurrency == 3  # JSON works too
    with pytest.raises(ConfigError, match=r"sampling\.temprature: unknown key \(did you mean 'temperature'\?\)"):
        stage_config(GenerateConfig, "sampling: {temprature: 1}", {})
    with pytest.raises(ConfigError, match="must hold a mapping"):
        stage_config(GenerateConfig, "- a\n- b", {})
    with pytest.raises(ConfigError, match="not valid YAML"):
        stage_config(GenerateConfig, "a: [", {})


def test_small_parsers():
    assert split_list("a, b,,c") == ["a", "b", "c"] and split_list("[x, y]") == ["x", "y"] and split_list("") is None
    assert join_uri("s3://b/p/", "sft", "/polya/") == "s3://b/p/sft/polya"
    assert input_digest("sft", a=1) == input_digest("sft", a=1) != input_digest("sft", a=2)
    assert scalar_metrics({"gsm8k": {"pass@1": 0.5, "n": 3, "ok": True, "name": "x"}, "mean": 0.25}) == {"gsm8k/pass@1": 0.5, "gsm8k/n": 3.0, "mean": 0.25}
    assert parse_cluster("") is None and parse_cluster(None) is None
    with pytest.raises(ConfigError, match="size"):
        parse_cluster('{"kind": "pytorchjob", "image": "x"}')


def test_unset_parameters_keep_the_config_and_zero_is_a_value():
    # None means "not given": the stage config keeps its own value; 0 (or "") is a real value.
    assert given({}, bootstrap__token_budget=None, data__limit=None) == {}
    assert given({}, data__limit=0, sampling__temperature=0.0, name="") == {"data": {"limit": 0}, "sampling": {"temperature": 0.0}, "name": ""}
    cfg = stage_config(GenerateConfig, "sampling: {temperature: 0.7}", given({}, sampling__temperature=0.0))
    assert cfg.sampling.temperature == 0.0


def test_data_component_called_directly_writes_the_questions_artifact(tmp_path):
    data = load_component("data")
    out = Dataset(name="questions", uri=str(tmp_path / "questions"))
    count = data.python_func(questions=out, config_yaml="synthetic: {count: 12}\nseed: 3", source="synthetic", limit=5)
    lines = (tmp_path / "questions" / "questions.jsonl").read_text().splitlines()
    assert count == 5 == len(lines) and out.metadata == {"questions": 5, "source": "synthetic"}
    first = json.loads(lines[0])
    assert {"id", "question", "answer"} <= set(first)
    again = data_step("synthetic: {count: 12}\nseed: 3", str(tmp_path / "again"), limit=5)
    assert again["questions"] == 5 and (tmp_path / "again" / "questions.jsonl").read_text().splitlines() == lines
    with pytest.raises(ConfigError, match="source"):
        data_step("", str(tmp_path / "bad"), source="questions.csv")


def test_missing_inputs_are_named(tmp_path):
    with pytest.raises(ConfigError, match="holds no generate/ folder"):
        select_step("", str(tmp_path / "nothing"), str(tmp_path / "out"))
    (tmp_path / "ds" / "select" / "star").mkdir(parents=True)
    (tmp_path / "ds" / "select" / "star" / "train.jsonl").write_text("{}\n")
    assert dataset_file(str(tmp_path / "ds"), "star").name == "train.jsonl"
    with pytest.raises(ConfigError, match="no dataset 'polya'; datasets present: star"):
        dataset_file(str(tmp_path / "ds"), "polya")
    generate = load_component("generate")
    with pytest.raises(ConfigError, match="holds no questions.jsonl"):
        generate.python_func(questions=Dataset(name="q", uri=str(tmp_path / "q")), generations=Dataset(name="g", uri=str(tmp_path / "g")),
                             metrics=None, config_yaml="")


def _shard_artifact(folder: Path, index: int, question_ids: list[str]) -> None:
    """A finished generate shard of small files: one correct sample per question."""
    gen = folder / "generate"
    (gen / "generations" / "round-01").mkdir(parents=True)
    identity = {"model": "m", "heuristics": ["analogy"], "shard": {"index": index, "count": 2}}
    (gen / "config.json").write_text(json.dumps({"identity": identity, "config": {"heuristics": ["analogy"], "shard": identity["shard"]}}))
    (gen / "questions.jsonl").write_text("".join(json.dumps({"id": q, "question": f"{q}?", "answer": "1"}) + "\n" for q in question_ids))
    records = [{"id": f"{q}|analogy|r1|s0", "question_id": q, "heuristic": "analogy", "round": 1, "sample_index": 0, "correct": True,
                "completion": "\\boxed{1}", "completion_tokens": 3} for q in question_ids]
    (gen / "generations" / "round-01" / "part-000000-ab.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    n = len(question_ids)
    (gen / "summary.json").write_text(json.dumps({
        "questions": n, "heuristics": ["analogy"], "pairs": n, "pairs_solved": n, "pair_solve_rate": 1.0, "questions_solved": n, "samples": n,
        "correct_samples": n, "completion_tokens": 3 * n, "rounds": {"1": {"samples": n, "correct": n}}, "per_heuristic": {"analogy": {"samples": n, "correct": n}},
        "peak_rss_mib": 100.0 + index,
    }))


def test_merge_component_joins_generate_shards(tmp_path):
    _shard_artifact(tmp_path / "s0", 0, ["a", "b"])
    _shard_artifact(tmp_path / "s1", 1, ["c"])
    merge = load_component("merge")
    out, metrics = Dataset(name="generations", uri=str(tmp_path / "merged")), Metrics(name="metrics", uri=str(tmp_path / "metrics"))
    merge.python_func(generations=out, metrics=metrics, generations_1=Dataset(name="g", uri=str(tmp_path / "s1")),
                      generations_2=Dataset(name="g", uri=str(tmp_path / "s0")))
    assert out.metadata == {"samples": 3, "correct_samples": 3, "pairs_solved": 3, "pairs": 3, "completion_tokens": 9}
    assert json.loads((tmp_path / "metrics").read_text())["samples"] == 3.0
    merged = tmp_path / "merged" / "generate"
    summary = json.loads((merged / "summary.json").read_text())
    assert summary["rounds"] == {"1": {"samples": 3, "correct": 3}} and summary["peak_rss_mib"] == 101.0
    assert [json.loads(line)["id"] for line in (merged / "questions.jsonl").read_text().splitlines()] == ["a", "b", "c"]
    assert sorted(p.name[:11] for p in (merged / "generations" / "round-01").iterdir()) == ["part-000000", "part-000001"]
    assert "shard" not in json.loads((merged / "config.json").read_text())["identity"]
    assert (tmp_path / "merged" / "manifest.json").is_file()
    (tmp_path / "merged" / "generate" / "questions.jsonl").write_text("")  # a retried task starts over
    assert merge_step([str(tmp_path / "s0"), str(tmp_path / "s1")], str(tmp_path / "merged"))["samples"] == 3
    _shard_artifact(tmp_path / "s2", 1, ["b"])
    with pytest.raises(DataError, match=r"disjoint questions, but 1 are in two: b"):
        merge_step([str(tmp_path / "s0"), str(tmp_path / "s2")], str(tmp_path / "again"))


def test_folders_copy_both_ways(tmp_path: Path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "w.bin").write_bytes(b"123")
    copy_folder_out(src, str(tmp_path / "stored"))
    copy_folder_in(str(tmp_path / "stored"), tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "w.bin").read_bytes() == b"123"
    with pytest.raises(StoreError, match="expected a folder"):
        copy_folder_in(str(tmp_path / "missing"), tmp_path / "x")


def test_each_eval_task_keeps_only_its_arms_running_server(tmp_path):
    """The pipeline passes one eval_config to every eval task; endpoints: {base: url} serves the base
    arm's task and must not break the others (they start vLLM on their model artifacts)."""
    from polya.pipeline.steps.eval import eval_config

    shared = '{"endpoints": {"base": "http://vllm:8000/v1"}, "benchmarks": [{"name": "synthetic", "limit": 2}]}'
    base = eval_config(shared, None, str(tmp_path / "a"), model="embedded:smollm2-135m-instruct", label="base")
    assert base.arms == {"base": "embedded:smollm2-135m-instruct"} and base.arm_endpoint("base") == "http://vllm:8000/v1"
    rl = eval_config(shared, str(tmp_path / "rl-model"), str(tmp_path / "b"), label="rl", benchmarks="synthetic")
    assert rl.arms == {"rl": str(tmp_path / "rl-model")} and rl.endpoints == {} and rl.arm_endpoint("rl") is None
