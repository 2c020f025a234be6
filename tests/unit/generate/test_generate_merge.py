"""Generation split into shards (``GenerateConfig.shard``) and the shards merged (``polya.generate.merge``), against a scripted chat server.

Three questions, two shards (qa in shard 1, qb and qc in shard 0): each shard asks only its own
questions and resumes like any generate run; the merge holds what one unsplit run holds, with the
counts added up, and refuses shards that do not fit together.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_generate_plain_condition import QUESTIONS, ScriptedModel, config

from polya.core.errors import ConfigError, DataError
from polya.core.manifest import RunManifest
from polya.core.outputs import iter_generations
from polya.core.store import LocalStore
from polya.generate.merge import merge_shards
from polya.generate.stage import run
from polya.select.config import SelectConfig
from polya.select.stage import run as select

COUNTS = ("questions", "pairs", "pairs_solved", "questions_solved", "samples", "correct_samples", "completion_tokens", "rounds",
          "per_heuristic", "rationalization", "pair_solve_rate", "heuristics")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """shard-0/, shard-1/ and whole/ (the same generation unsplit), all from one scripted model."""
    root = tmp_path_factory.mktemp("shards")
    data = root / "questions.jsonl"
    data.write_text("".join(f'{{"id": "{q["id"]}", "question": "{q["question"]}", "answer": "{q["answer"]}"}}\n' for q in QUESTIONS))
    with ScriptedModel(plain_solves={"What is 3 + 4?"}) as model:
        for k in (0, 1):
            run(config(root / f"shard-{k}", data, model.url, shard={"index": k, "count": 2}))
        run(config(root / "whole", data, model.url))
    with ScriptedModel(plain_solves=set()) as again:  # a shard run again resumes: nothing is asked twice
        run(config(root / "shard-0", data, again.url, shard={"index": 0, "count": 2}))
        assert again.requests == []
    return root


def questions(run_dir: Path) -> list[str]:
    return [q["id"] for q in LocalStore(run_dir).read_jsonl("generate/questions.jsonl")]


def test_each_shard_asks_only_its_questions(runs: Path) -> None:
    assert questions(runs / "shard-0") == ["qb", "qc"] and questions(runs / "shard-1") == ["qa"]
    for k, ids in ((0, {"qb", "qc"}), (1, {"qa"})):
        assert {r["question_id"] for r in iter_generations(LocalStore(runs / f"shard-{k}"))} == ids
        identity = LocalStore(runs / f"shard-{k}").read_json("generate/config.json")["identity"]
        assert identity["shard"] == {"index": k, "count": 2}
    assert "shard" not in LocalStore(runs / "whole").read_json("generate/config.json")["identity"]  # unsplit runs keep their identity


def test_the_merge_holds_what_one_unsplit_run_holds(runs: Path, tmp_path: Path) -> None:
    summary = merge_shards([str(runs / "shard-1"), str(runs / "shard-0")], str(tmp_path / "merged")).dump()  # any order
    merged, whole = LocalStore(tmp_path / "merged"), LocalStore(runs / "whole")
    assert questions(tmp_path / "merged") == ["qb", "qc", "qa"]  # shard order
    assert sorted(r["id"] for r in iter_generations(merged)) == sorted(r["id"] for r in iter_generations(whole))
    expected = whole.read_json("generate/summary.json")
    assert {k: summary[k] for k in COUNTS} == {k: expected[k] for k in COUNTS}
    assert merged.read_json("generate/summary.json") == summary
    assert merged.read_json("generate/config.json")["identity"] == whole.read_json("generate/config.json")["identity"]
    assert RunManifest.load_or_create(merged).stage("generate").status == "done"
    # select reads the merge like an unsplit run
    built = {
        name: select(SelectConfig(run_dir=str(d), datasets=["polya", "star"], progress=False)).datasets
        for name, d in (("merged", tmp_path / "merged"), ("whole", runs / "whole"))
    }
    assert {k: v.examples for k, v in built["merged"].items()} == {k: v.examples for k, v in built["whole"].items()}
    assert built["merged"]["polya"].examples > 0


def copy(runs: Path, tmp_path: Path, *names: str) -> list[str]:
    for name in names:
        shutil.copytree(runs / name, tmp_path / name)
    return [str(tmp_path / name) for name in names]


def test_shards_that_do_not_fit_together_are_refused(runs: Path, tmp_path: Path) -> None:
    shard0, shard1, whole = copy(runs, tmp_path, "shard-0", "shard-1", "whole")
    with pytest.raises(DataError, match=r"2 shards must be shard 0 .. 1 of 2 once each; these are shards 0 of 2, 0 of 2"):
        merge_shards([shard0, shard0], str(tmp_path / "out-a"))
    with pytest.raises(DataError, match=r"1 shards must be shard 0 .. 0 of 1 .* shards 1 of 2"):
        merge_shards([shard1], str(tmp_path / "out-b"))  # shard 0 is missing
    with pytest.raises(DataError, match="shards 0 of 1, 1 of 2"):
        merge_shards([whole, shard1], str(tmp_path / "out-c"))
    # the same questions in two shards
    extra = LocalStore(shard1).read_jsonl("generate/questions.jsonl") + [LocalStore(shard0).read_jsonl("generate/questions.jsonl")[1]]
    LocalStore(shard1).write_jsonl("generate/questions.jsonl", extra)
    with pytest.raises(DataError, match=r"disjoint questions, but 1 are in two: qc \(.*shard-0/generate and .*shard-1/generate\)"):
        merge_shards([shard0, shard1], str(tmp_path / "out-d"))


def test_unfinished_or_different_shards_are_refused(runs: Path, tmp_path: Path) -> None:
    shard0, shard1 = copy(runs, tmp_path, "shard-0", "shard-1")
    store = LocalStore(shard1)
    config_json = store.read_json("generate/config.json")
    store.write_json("generate/config.json", {**config_json, "identity": {**config_json["identity"], "num_exemplars": 3}})
    with pytest.raises(DataError, match=r"shard-1/generate was generated with other settings than .*shard-0/generate \(differ: num_exemplars\)"):
        merge_shards([shard0, shard1], str(tmp_path / "out-a"))
    store.write_json("generate/config.json", config_json)
    store.delete(store.list("generate/generations/round-01")[0])
    with pytest.raises(DataError, match=r"shard-1/generate/summary.json counts 4 samples but the shard holds 0 records"):
        merge_shards([shard0, shard1], str(tmp_path / "out-b"))
    store.delete("generate/summary.json")
    with pytest.raises(ConfigError, match=r"shard-1/generate is not a finished generation \(no generate/summary.json\)"):
        merge_shards([shard0, shard1], str(tmp_path / "out-c"))
    merge_shards([shard0, str(runs / "shard-1")], str(tmp_path / "merged"))
    with pytest.raises(ConfigError, match="already holds generations"):
        merge_shards([shard0, str(runs / "shard-1")], str(tmp_path / "merged"))
