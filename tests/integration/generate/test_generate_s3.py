"""The generate stage with its run directory in S3 (a real S3-protocol server process, moto)."""

from __future__ import annotations

import json

import pytest

from polya.core.manifest import RunManifest
from polya.core.outputs import iter_generations
from polya.core.store import open_store
from polya.generate.config import GenerateConfig
from polya.generate.stage import run

pytestmark = pytest.mark.integration


def test_generate_streams_to_s3_and_resumes_there(vllm_endpoint, bucket: str) -> None:
    run_dir = f"s3://{bucket}/runs/exp1"
    config = GenerateConfig.model_validate(
        {
            "run_dir": run_dir,
            "data": {"source": "synthetic", "synthetic": {"count": 2, "difficulties": [1]}},
            "heuristics": ["decomposition", "bright_idea"],
            "plain": False,  # counts the heuristic pairs exactly; the plain condition: tests/unit/generate/test_generate_plain_condition.py
            "num_exemplars": 0,
            "sampling": {"max_tokens": 48},
            "bootstrap": {"rounds": 1, "samples": 2},
            "flush_every": 2,
            "progress": False,
        }
    )
    out = run(config, endpoint=vllm_endpoint)
    assert out.stage_uri == f"{run_dir}/generate"

    store = open_store(run_dir)
    objects = store.list()
    shards = [p for p in objects if p.startswith("generate/generations/round-01/part-")]
    assert len(shards) >= 2, objects  # flush_every=2 with 8 samples streams several shards
    records = list(iter_generations(open_store(run_dir)))
    assert len(records) == 2 * 2 * 2
    assert {(r["question_id"], r["heuristic"]) for r in records} == {
        (q["id"], h) for q in store.read_jsonl("generate/questions.jsonl") for h in ("decomposition", "bright_idea")
    }
    summary = store.read_json("generate/summary.json")
    assert summary["samples"] == 8
    manifest = RunManifest.load_or_create(store)
    stage = manifest.stage("generate")
    assert stage is not None and stage.status == "done"
    assert set(shards) <= set(stage.artifacts)
    assert all(stage.artifacts[p] == store.sha256(p) for p in shards)

    # Running again finds everything stored: same records, nothing new.
    again = run(config, endpoint=vllm_endpoint)
    assert again.summary["samples"] == 8
    assert [p for p in open_store(run_dir).list() if "/part-" in p] == [p for p in objects if "/part-" in p]
    assert json.dumps(sorted(r["id"] for r in iter_generations(open_store(run_dir)))) == json.dumps(sorted(r["id"] for r in records))
