"""Generation stage logic without a model server: rounds, seeds, shards, resume accounting, identity, budget.

The last tests run the whole stage on a run directory whose work is already complete; the
configured endpoint is a closed local port, so the stage finishing proves no server was contacted.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from polya.core.errors import ConfigError
from polya.core.layout import RunLayout
from polya.core.outputs import iter_generations
from polya.data.loader import load_questions
from polya.data.records import QuestionRecord
from polya.generate.config import BootstrapConfig, GenerateConfig
from polya.generate.stage import STAGE, GenerationStage, request_seed, run

GENERATIONS = RunLayout.generate.generations.split("/", 1)[1]  # "generations", inside generate/
from polya.core.manifest import RunManifest
from polya.core.store import LocalStore
from polya.core.store import shards as shards_module
from polya.core.store.shards import ShardWriter, read_shards, shard_paths
from polya.serving.vllm_server import free_port

HEURISTICS = ["analogy", "working_backward"]
DATA = {"source": "synthetic", "synthetic": {"count": 2, "difficulties": [1]}}


def make_config(run_dir: Path, **extra: Any) -> GenerateConfig:
    data: dict[str, Any] = {
        "run_dir": str(run_dir),
        "data": DATA,
        "heuristics": HEURISTICS,
        "plain": False,  # the plain condition and rationalization: test_generate_plain_condition.py
        "progress": False,
        "bootstrap": {"rounds": 2, "samples": 2, "growth": 2.0},
        "server": {"endpoint": f"http://127.0.0.1:{free_port()}/v1"},  # nothing listens there
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return GenerateConfig.model_validate(data)


def record(qid: str, hid: str, round_index: int, sample: int, correct: bool, tokens: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{qid}|{hid}|r{round_index}|s{sample}",
        "question_id": qid,
        "heuristic": hid,
        "round": round_index,
        "sample_index": sample,
        "completion": "... \\boxed{1}",
        "finish_reason": "stop",
        "completion_tokens": tokens,
        "correct": correct,
        **extra,
    }


def request(qid: str, hid: str, round_index: int, correct: list[bool], tokens: int = 10) -> list[dict[str, Any]]:
    """The records one request with ``len(correct)`` samples produces."""
    return [record(qid, hid, round_index, i, ok, tokens) for i, ok in enumerate(correct)]


def questions(n: int = 2) -> list[QuestionRecord]:
    return [QuestionRecord(id=f"q{i}", question=f"What is {i} + 1?", answer=str(i + 1), source="test") for i in range(n)]


# ----- bootstrap rounds and seeds ------------------------------------------------------------


def test_samples_in_round_grows_geometrically_and_is_capped() -> None:
    b = BootstrapConfig(samples=2, growth=2.0, max_samples=16)
    assert [b.samples_in_round(r) for r in range(1, 7)] == [2, 4, 8, 16, 16, 16]


def test_samples_in_round_rounds_up_fractional_growth() -> None:
    b = BootstrapConfig(samples=3, growth=1.5, max_samples=100)
    assert [b.samples_in_round(r) for r in range(1, 5)] == [3, 5, 7, 11]  # ceil(4.5), ceil(6.75), ceil(10.125)


def test_samples_in_round_without_growth_is_constant() -> None:
    b = BootstrapConfig(samples=4, growth=1.0, max_samples=16)
    assert {b.samples_in_round(r) for r in range(1, 10)} == {4}


def test_max_samples_below_first_round_is_rejected() -> None:
    with pytest.raises(ValidationError, match="max_samples"):
        BootstrapConfig(samples=8, max_samples=3)


def test_request_seed_is_deterministic_and_31_bit() -> None:
    a = request_seed(0, "q1", "analogy", 1)
    assert a == request_seed(0, "q1", "analogy", 1)
    assert 0 <= a <= 0x7FFFFFFF
    assert isinstance(a, int)


def test_request_seed_differs_by_each_part() -> None:
    base = request_seed(0, "q1", "analogy", 1)
    variants = [
        request_seed(1, "q1", "analogy", 1),
        request_seed(0, "q2", "analogy", 1),
        request_seed(0, "q1", "working_backward", 1),
        request_seed(0, "q1", "analogy", 2),
    ]
    assert base not in variants
    assert len(set(variants)) == len(variants)


def test_request_seeds_are_spread() -> None:
    seeds = {request_seed(7, f"q{i}", h, r) for i in range(50) for h in HEURISTICS for r in (1, 2, 3)}
    assert len(seeds) == 50 * 2 * 3


# ----- shards ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(shards_module, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def test_shard_writer_flushes_after_flush_every_records(tmp_path: Path, clock: FakeClock) -> None:
    store = LocalStore(tmp_path)
    writer = ShardWriter(store, "gen", flush_every=3, flush_interval_s=60)
    assert not writer.due()  # empty buffer is never due
    assert writer.add([{"i": 0}]) is False
    assert writer.add([{"i": 1}]) is False
    assert writer.add([{"i": 2}]) is True
    batch = writer.take()
    assert batch is not None
    path, rows = batch
    assert rows == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert path.startswith("gen/part-000000-") and path.endswith(".jsonl")
    assert shard_paths(store, "gen") == []  # take() only detaches; nothing written yet
    writer.write(path, rows)
    assert writer.written == 3
    assert list(read_shards(store, "gen")) == rows
    assert writer.take() is None and not writer.due()


def test_shard_writer_flushes_after_interval(tmp_path: Path, clock: FakeClock) -> None:
    writer = ShardWriter(LocalStore(tmp_path), "gen", flush_every=100, flush_interval_s=5.0)
    assert writer.add([{"i": 0}]) is False
    clock.now += 4.9
    assert not writer.due()
    clock.now += 0.2
    assert writer.due()
    writer.flush()
    assert not writer.due()
    # the interval restarts at the flush
    writer.add([{"i": 1}])
    clock.now += 4.0
    assert not writer.due()
    clock.now += 1.5
    assert writer.due()


def test_interval_never_makes_an_empty_buffer_due(tmp_path: Path, clock: FakeClock) -> None:
    writer = ShardWriter(LocalStore(tmp_path), "gen", flush_every=100, flush_interval_s=1.0)
    clock.now += 100
    assert not writer.due()
    writer.flush()
    assert shard_paths(LocalStore(tmp_path), "gen") == []


def test_records_added_together_are_never_split(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    writer = ShardWriter(store, "gen", flush_every=2, flush_interval_s=60)
    assert writer.add([{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}, {"i": 4}]) is True
    writer.flush()
    paths = shard_paths(store, "gen")
    assert len(paths) == 1
    assert [r["i"] for r in store.read_jsonl(paths[0])] == [0, 1, 2, 3, 4]


def test_sequence_continues_after_reopening_and_reads_in_write_order(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = ShardWriter(store, "gen/", flush_every=1, flush_interval_s=60)
    for i in range(3):
        first.add([{"i": i}])
        first.flush()
    second = ShardWriter(store, "gen", flush_every=1, flush_interval_s=60)
    for i in range(3, 12):
        second.add([{"i": i}])
        second.flush()
    paths = shard_paths(store, "gen")
    seqs = [int(p.split("part-")[1][:6]) for p in paths]
    assert seqs == list(range(12))
    assert [r["i"] for r in read_shards(store, "gen")] == list(range(12))


def test_read_shards_ignores_other_files_and_blank_lines(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_text("gen/part-000001-ab.jsonl", '{"i": 1}\n\n{"i": 2}\n')
    store.write_text("gen/part-000000-cd.jsonl", '{"i": 0}\n')
    store.write_text("gen/notes.txt", "not a shard")
    store.write_text("gen/part-1-zz.jsonl", '{"i": 99}\n')  # wrong name pattern
    store.write_text("other/part-000000-ef.jsonl", '{"i": 100}\n')  # other prefix
    (tmp_path / "gen" / ".tmp-123-part-000002-aa.jsonl").write_text('{"i": 50}\n')  # unfinished write
    assert [r["i"] for r in read_shards(store, "gen")] == [0, 1, 2]
    writer = ShardWriter(store, "gen")
    writer.add([{"i": 3}])
    assert writer.take()[0].startswith("gen/part-000002-")  # type: ignore[index]


def test_read_shards_of_missing_prefix_is_empty(tmp_path: Path) -> None:
    assert list(read_shards(LocalStore(tmp_path), "nothing-here")) == []


# ----- resume accounting and pending pairs ------------------------------------------------------


def write_records(stage: GenerationStage, *requests: list[dict[str, Any]]) -> None:
    writer = ShardWriter(stage.store.child(STAGE), GENERATIONS, flush_every=1000, flush_interval_s=1000)
    for recs in requests:
        writer.add(recs)
        writer.flush()


def pending_ids(stage: GenerationStage, qs: list[QuestionRecord], round_index: int) -> list[tuple[str, str]]:
    return [(q.id, h.id) for q, h in stage._pending(qs, round_index)]


def test_everything_is_pending_before_anything_is_stored(tmp_path: Path) -> None:
    stage = GenerationStage(make_config(tmp_path / "run"))
    stage._load_existing()
    qs = questions(2)
    expected = [("q0", "analogy"), ("q0", "working_backward"), ("q1", "analogy"), ("q1", "working_backward")]
    assert pending_ids(stage, qs, 1) == expected
    assert pending_ids(stage, qs, 2) == expected


def test_resume_accounting_from_stored_records(tmp_path: Path) -> None:
    stage = GenerationStage(make_config(tmp_path / "run"))
    write_records(
        stage,
        request("q0", "analogy", 1, [False, True], tokens=7),  # solved in round 1
        request("q0", "working_backward", 1, [False, False], tokens=5),  # unsolved in round 1
        request("q1", "analogy", 1, [False, False], tokens=5),
        request("q1", "analogy", 2, [False, False, True, False], tokens=3),  # solved in round 2
    )
    # a duplicated record (e.g. a shard written twice) is counted once
    write_records(stage, [record("q0", "analogy", 1, 1, True, tokens=7)])
    stage._load_existing()
    p = stage.progress
    assert p.records == 10
    assert p.completion_tokens == 2 * 7 + 2 * 5 + 2 * 5 + 4 * 3
    assert p.done_requests == {("q0", "analogy", 1), ("q0", "working_backward", 1), ("q1", "analogy", 1), ("q1", "analogy", 2)}
    assert p.solved_round == {("q0", "analogy"): 1, ("q1", "analogy"): 2}

    qs = questions(2)
    # round 1: only the pair never requested in round 1
    assert pending_ids(stage, qs, 1) == [("q1", "working_backward")]
    # round 2: pairs solved in round 1 are not retried; pairs already requested in round 2 are skipped
    assert pending_ids(stage, qs, 2) == [("q0", "working_backward"), ("q1", "working_backward")]
    # round 3: a pair solved in round 2 is done too
    assert pending_ids(stage, qs, 3) == [("q0", "working_backward"), ("q1", "working_backward")]


def test_solved_round_is_the_earliest_correct_round(tmp_path: Path) -> None:
    stage = GenerationStage(make_config(tmp_path / "run"))
    write_records(stage, request("q0", "analogy", 2, [True]), request("q0", "analogy", 1, [False, True]))
    stage._load_existing()
    assert stage.progress.solved_round == {("q0", "analogy"): 1}


def test_pair_solved_in_a_later_round_is_pending_for_earlier_unrequested_rounds(tmp_path: Path) -> None:
    # `_pending(r)` skips a pair only if it was solved *before* r or already requested in r.
    stage = GenerationStage(make_config(tmp_path / "run"))
    write_records(stage, request("q0", "analogy", 2, [True]))
    stage._load_existing()
    qs = questions(1)
    assert ("q0", "analogy") in pending_ids(stage, qs, 1)
    assert ("q0", "analogy") not in pending_ids(stage, qs, 2)
    assert ("q0", "analogy") not in pending_ids(stage, qs, 3)


def test_work_left_follows_pending_over_all_rounds(tmp_path: Path) -> None:
    stage = GenerationStage(make_config(tmp_path / "run", heuristics=["analogy"]))
    qs = questions(1)
    write_records(stage, request("q0", "analogy", 1, [False, False]))
    stage._load_existing()
    assert stage._work_left(qs)  # round 2 still has to retry the unsolved pair

    stage = GenerationStage(make_config(tmp_path / "run", heuristics=["analogy"]))
    write_records(stage, request("q0", "analogy", 2, [False, False, False, False]))
    stage._load_existing()
    assert not stage._work_left(qs)  # both rounds requested; nothing left even though unsolved


def test_work_left_false_when_all_solved_in_round_one(tmp_path: Path) -> None:
    stage = GenerationStage(make_config(tmp_path / "run", heuristics=["analogy"]))
    write_records(stage, request("q0", "analogy", 1, [True, False]))
    stage._load_existing()
    assert not stage._work_left(questions(1))


# ----- token budget ----------------------------------------------------------------------------


def test_budget_left_without_budget(tmp_path: Path) -> None:
    stage = GenerationStage(make_config(tmp_path / "run"))
    stage.progress.completion_tokens = 10**12
    assert stage._budget_left()
    assert not stage.progress.budget_exhausted


def test_budget_left_with_token_budget(tmp_path: Path) -> None:
    stage = GenerationStage(make_config(tmp_path / "run", bootstrap={"token_budget": 100}))
    stage.progress.completion_tokens = 99
    assert stage._budget_left()
    stage.progress.completion_tokens = 100
    assert not stage._budget_left()
    assert stage.progress.budget_exhausted
    stage.progress.completion_tokens = 0  # once exhausted it stays exhausted
    assert not stage._budget_left()


def test_budget_counts_resumed_tokens_and_stops_work(tmp_path: Path) -> None:
    stage = GenerationStage(make_config(tmp_path / "run", bootstrap={"token_budget": 20}))
    write_records(stage, request("q0", "analogy", 1, [False, False], tokens=10))
    stage._load_existing()
    assert not stage._budget_left()
    assert not stage._work_left(questions(2))  # pairs are pending, but the budget is spent


# ----- identity checks on resume ------------------------------------------------------------------


def test_check_identity_writes_config_json_first_time(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "run")
    stage = GenerationStage(cfg)
    stage._check_identity()
    saved = json.loads((tmp_path / "run" / STAGE / "config.json").read_text())
    assert saved["identity"] == json.loads(json.dumps(GenerationStage(cfg).identity()))
    assert saved["config"]["sampling"] == cfg.sampling.model_dump(mode="json")
    GenerationStage(cfg)._check_identity()  # same settings: fine


@pytest.mark.parametrize(
    "change, named",
    [
        ({"sampling": {"temperature": 0.1}}, "sampling"),
        ({"sampling": {"max_tokens": 7}}, "sampling"),
        ({"sampling": {"seed": 3}}, "sampling"),
        ({"bootstrap": {"samples": 3}}, "bootstrap.samples"),
        ({"bootstrap": {"growth": 3.0}}, "bootstrap.growth"),
        ({"heuristics": ["analogy"]}, "heuristics"),
        ({"num_exemplars": 0}, "num_exemplars"),
        ({"plain": True}, "plain"),
        ({"server": {"model": "some/other-model"}}, "model"),
        ({"data": {"synthetic": {"count": 3, "difficulties": [1]}}}, "data"),
    ],
)
def test_check_identity_refuses_changed_settings(tmp_path: Path, change: dict[str, Any], named: str) -> None:
    GenerationStage(make_config(tmp_path / "run"))._check_identity()
    with pytest.raises(ConfigError) as info:
        GenerationStage(make_config(tmp_path / "run", **change))._check_identity()
    msg = str(info.value)
    assert f"changed: {named}" in msg
    assert str(tmp_path / "run" / STAGE) in msg
    assert "new run_dir" in msg


def test_check_identity_allows_rounds_concurrency_and_operational_settings(tmp_path: Path) -> None:
    GenerationStage(make_config(tmp_path / "run"))._check_identity()
    changed = make_config(
        tmp_path / "run",
        bootstrap={"rounds": 5, "token_budget": 10},
        concurrency=3,
        flush_every=1,
        judge_workers=2,
        request_timeout_s=5.0,
        server={"endpoint": "http://127.0.0.1:9/v1", "startup_timeout_s": 5.0},
    )
    GenerationStage(changed)._check_identity()  # no error
    # and config.json still holds the original identity
    saved = json.loads((tmp_path / "run" / STAGE / "config.json").read_text())
    assert saved["config"]["bootstrap"]["rounds"] == 2


# ----- the whole stage on finished work: no server -------------------------------------------------


def prepare_finished_run(run_dir: Path, cfg: GenerateConfig) -> tuple[list[QuestionRecord], dict[str, Any]]:
    """Write config.json, questions.jsonl and shards so that every round's work is stored."""
    stage_dir = LocalStore(run_dir).child(STAGE)
    qs = load_questions(cfg.data).records
    assert len(qs) == 2
    stage_dir.write_json("config.json", {"identity": GenerationStage(cfg).identity(), "config": cfg.model_dump(mode="json")})
    stage_dir.write_jsonl("questions.jsonl", (q.model_dump(mode="json") for q in qs))
    q0, q1 = qs[0].id, qs[1].id
    h0, h1 = HEURISTICS
    rounds = {
        1: [
            request(q0, h0, 1, [True, False], tokens=10),  # solved in round 1: not retried
            request(q0, h1, 1, [False, False], tokens=10),
            request(q1, h0, 1, [False, False], tokens=10),
            request(q1, h1, 1, [False, True], tokens=10),  # solved in round 1
        ],
        2: [
            request(q0, h1, 2, [False, False, True, False], tokens=5),  # solved in round 2
            request(q1, h0, 2, [False, False, False, False], tokens=5),  # never solved
        ],
    }
    writer = ShardWriter(stage_dir, GENERATIONS, flush_every=1000, flush_interval_s=1000)
    for recs in rounds[1] + rounds[2]:
        writer.add(recs)
        writer.flush()
    return qs, rounds


def test_run_on_finished_work_needs_no_server_and_writes_summary(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = make_config(run_dir)
    qs, _ = prepare_finished_run(run_dir, cfg)

    out = run(cfg)  # the endpoint is a closed port: contacting it would raise ServerError

    summary = json.loads((run_dir / STAGE / "summary.json").read_text())
    assert out.summary == summary
    assert out.run_dir == str(run_dir)
    assert out.generations_prefix == f"{STAGE}/{GENERATIONS}"
    assert summary["questions"] == 2
    assert summary["heuristics"] == HEURISTICS
    assert summary["pairs"] == 4
    assert summary["pairs_solved"] == 3
    assert summary["pair_solve_rate"] == 0.75
    assert summary["questions_solved"] == 2
    assert summary["samples"] == 4 * 2 + 2 * 4
    assert summary["correct_samples"] == 3
    assert summary["completion_tokens"] == 8 * 10 + 8 * 5
    assert summary["rounds"] == {
        "1": {"samples": 8, "correct": 2, "completion_tokens": 80, "requests": 4},
        "2": {"samples": 8, "correct": 1, "completion_tokens": 40, "requests": 2},
    }
    assert summary["rounds_configured"] == 2
    assert summary["per_heuristic"] == {
        "analogy": {"samples": 2 + 2 + 4, "correct": 1},
        "working_backward": {"samples": 2 + 4 + 2, "correct": 2},
    }
    assert summary["finish_reasons"] == {"stop": 16}
    assert summary["token_budget_exhausted"] is False
    assert summary["this_invocation"]["new_completion_tokens"] == 0
    assert [q.id for q in qs] == [json.loads(line)["id"] for line in (run_dir / STAGE / "questions.jsonl").read_text().splitlines()]

    manifest = RunManifest.load_or_create(LocalStore(run_dir))
    rec = manifest.stage(STAGE)
    assert rec is not None
    assert rec.status == "done" and rec.attempts == 1 and rec.error is None
    assert rec.outputs == {"samples": 16, "correct_samples": 3, "pairs_solved": 3, "pairs": 4}
    assert {"generate/config.json", "generate/questions.jsonl", "generate/summary.json"} <= set(rec.artifacts)
    shard_artifacts = [p for p in rec.artifacts if p.startswith(f"{STAGE}/{GENERATIONS}/")]
    assert len(shard_artifacts) == 6
    assert manifest.is_done(STAGE, cfg.model_dump(mode="json"))

    # a second run over the same directory is also server-free and counts the same
    again = run(cfg)
    assert again.summary["samples"] == 16 and again.summary["pairs_solved"] == 3
    assert RunManifest.load_or_create(LocalStore(run_dir)).stage(STAGE).attempts == 2  # type: ignore[union-attr]

    assert len(list(iter_generations(LocalStore(run_dir)))) == 16


def test_run_with_spent_token_budget_needs_no_server(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = make_config(run_dir, bootstrap={"token_budget": 20})
    stage_dir = LocalStore(run_dir).child(STAGE)
    qs = load_questions(cfg.data).records
    stage_dir.write_json("config.json", {"identity": GenerationStage(cfg).identity(), "config": cfg.model_dump(mode="json")})
    stage_dir.write_jsonl("questions.jsonl", (q.model_dump(mode="json") for q in qs))
    writer = ShardWriter(stage_dir, GENERATIONS)
    writer.add(request(qs[0].id, HEURISTICS[0], 1, [False, False], tokens=10))
    writer.flush()

    out = run(cfg)
    assert out.summary["token_budget_exhausted"] is True
    assert out.summary["samples"] == 2 and out.summary["pairs_solved"] == 0
    assert RunManifest.load_or_create(LocalStore(run_dir)).stage(STAGE).status == "done"  # type: ignore[union-attr]


def test_run_with_changed_identity_fails_before_anything_else(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    prepare_finished_run(run_dir, make_config(run_dir))
    with pytest.raises(ConfigError, match="changed: sampling"):
        run(make_config(run_dir, sampling={"temperature": 0.1}))
    assert not (run_dir / STAGE / "summary.json").exists()


def test_run_with_work_left_contacts_the_endpoint(tmp_path: Path) -> None:
    # The control for the server-free tests above: with one request missing, the stage does try the
    # (closed) endpoint, fails with a message naming it, and records the failure in the manifest.
    from polya.core.errors import ServerError

    run_dir = tmp_path / "run"
    cfg = make_config(run_dir)
    prepare_finished_run(run_dir, cfg)
    shard = sorted((run_dir / STAGE / GENERATIONS).glob("part-*.jsonl"))[-1]
    shard.unlink()  # drop the last round-2 request
    with pytest.raises(ServerError) as info:
        run(cfg)
    assert str(cfg.server.endpoint) in str(info.value)
    rec = RunManifest.load_or_create(LocalStore(run_dir)).stage(STAGE)
    assert rec is not None and rec.status == "failed" and "ServerError" in (rec.error or "")


def test_edited_catalog_content_is_refused_on_resume(tmp_path: Path) -> None:
    """Same catalog path, different content: the prompts changed, so resuming must be refused."""
    import yaml

    from polya.heuristics import HeuristicCatalog

    catalog_file = tmp_path / "catalog.yaml"
    data = HeuristicCatalog.load().model_dump(mode="json")
    catalog_file.write_text(yaml.safe_dump(data, sort_keys=False))
    cfg = make_config(tmp_path / "run", catalog=str(catalog_file))
    GenerationStage(cfg)._check_identity()

    data["heuristics"][0]["instruction"] += " Be brief."
    catalog_file.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match="catalog_digest"):
        GenerationStage(cfg)._check_identity()
