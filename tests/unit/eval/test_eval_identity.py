"""An (arm, benchmark) part is evaluated again when what decides its samples changes, the catalog included."""

from __future__ import annotations

from pathlib import Path

import yaml

import polya.heuristics.catalog
from polya.eval.config import BenchmarkSpec, EvalConfig
from polya.eval.stage import EvaluationStage

PACKAGED = Path(polya.heuristics.catalog.__file__).with_name("catalog.yaml")
SPEC = BenchmarkSpec(name="synthetic", limit=3)


def stage(run_dir: Path, **settings: object) -> EvaluationStage:
    return EvaluationStage(EvalConfig(run_dir=str(run_dir), benchmarks=[SPEC], progress=False, **settings))


def edited_catalog(tmp_path: Path, **changes: str) -> Path:
    data = yaml.safe_load(PACKAGED.read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_changing_the_catalogs_answer_format_changes_the_part_identity(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    packaged = stage(run_dir).part_identity("base", SPEC)
    assert stage(run_dir, catalog=str(PACKAGED)).part_identity("base", SPEC) == packaged  # same content, same identity
    answer = "Finish with the final answer written as \\boxed{ANSWER} on its own line."
    edited = stage(run_dir, catalog=str(edited_catalog(tmp_path, answer_format=answer))).part_identity("base", SPEC)
    assert edited["catalog_digest"] != packaged["catalog_digest"]
    assert edited["prompts_digest"] != packaged["prompts_digest"]
    assert edited != packaged


def test_a_stored_part_with_another_catalog_is_evaluated_again(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = stage(run_dir)
    first.store.write_jsonl(first.paths.samples("base", SPEC.name), [{"id": "x"}])
    first.store.write_json(first.paths.part_record("base", SPEC.name), {"identity": first.part_identity("base", SPEC)})
    assert first.part_done("base", SPEC)
    system = "You are a careful mathematician. Think step by step."
    assert not stage(run_dir, catalog=str(edited_catalog(tmp_path, system_prompt=system))).part_done("base", SPEC)
    assert not stage(run_dir, system_prompt="Answer tersely.").part_done("base", SPEC)
    assert stage(run_dir, sampling={"ks": [1, 2]}).part_done("base", SPEC)  # ks only changes the report
