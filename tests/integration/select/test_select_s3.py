"""The select stage with its run directory in S3 (a real S3-protocol server process, moto)."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest

from polya.core.manifest import RunManifest
from polya.core.store import open_store
from polya.core.store.shards import ShardWriter
from polya.select.config import SelectConfig
from polya.select.stage import run

pytestmark = pytest.mark.integration


def _record(qid: str, heuristic: str, sample: int, correct: bool, completion: str) -> dict:
    return {
        "id": f"{qid}|{heuristic}|r1|s{sample}", "question_id": qid, "heuristic": heuristic, "round": 1, "sample_index": sample,
        "question": f"What is {qid}?", "reference": "4", "source": "test", "completion": completion, "finish_reason": "stop",
        "prompt_tokens": 10, "completion_tokens": 20, "correct": correct, "extracted_answer": "4" if correct else "5",
        "judge_reason": "equivalent" if correct else "not equivalent", "model": "test",
    }


def test_select_reads_and_writes_an_s3_run_directory(bucket: str) -> None:
    run_dir = f"s3://{bucket}/runs/exp1"
    store = open_store(run_dir)
    writer = ShardWriter(store.child("generate"), "generations/round-01", flush_every=2, flush_interval_s=60)
    steps = "Step 1: 2 + 2 = 4, because addition counts both groups. Step 2: nothing else, because that is all. \\boxed{4}"
    backward = "Work backward from the end: undo the last step, before that it was 2, then 2 + 2 = 4. Check: right. \\boxed{4}"
    writer.add([
        _record("q1", "step_by_step_justification", 0, True, steps),
        _record("q1", "working_backward", 0, True, backward),
        _record("q1", "working_backward", 1, False, backward.replace("\\boxed{4}", "\\boxed{5}")),
        _record("q2", "working_backward", 0, True, backward),
    ])
    writer.flush()

    # The records hold heuristic generations only (no plain prompt): star draws from them.
    out = run(SelectConfig(
        run_dir=run_dir, datasets=["polya", "star", "wrong_answer"], baseline_source="heuristics", output_format="parquet", progress=False
    ))
    assert out.stage_uri == f"{run_dir}/select"
    table = pq.read_table(io.BytesIO(store.read_bytes("select/polya/train.parquet")))
    assert sorted(table.column("generation_id").to_pylist()) == [
        "q1|step_by_step_justification|r1|s0", "q1|working_backward|r1|s0", "q2|working_backward|r1|s0"
    ]
    assert pq.read_table(io.BytesIO(store.read_bytes("select/wrong_answer/train.parquet"))).num_rows == 1
    assert "**2 examples over 2 questions**" in store.read_text("select/star/README.md")
    report = json.loads(store.read_text("select/report.json"))
    assert report["datasets"]["polya"]["examples"] == 3
    stage = RunManifest.load_or_create(store).stage("select")
    assert stage is not None and stage.status == "done"
    assert all(stage.artifacts[p] == store.sha256(p) for p in stage.artifacts)
