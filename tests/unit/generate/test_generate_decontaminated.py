"""Generate reads the run's decontamination: removed questions are left out, and the removed ids are
part of its identity (no mixing of question sets on resume, re-run by `polya run` when they change)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from polya.core.errors import ConfigError
from polya.experiment.decontaminate import DecontaminateConfig
from polya.experiment.decontaminate import run as decontaminate
from polya.generate.config import GenerateConfig
from polya.generate.stage import GenerationStage, excluded_questions, manifest_config
from polya.serving.vllm_server import free_port

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "decontaminate"
DATA = {"source": str(FIXTURES / "train.jsonl")}
BENCHMARKS = [{"name": "gsm8k", "path": str(FIXTURES / "gsm8k.jsonl")}, {"name": "math500", "path": str(FIXTURES / "math500.jsonl")}]
REMOVED = sorted(["t-exact", "t-spacing", "t-numbers", "t-paraphrase", "t-latex"])


def generate_config(run_dir: Path, **extra: Any) -> GenerateConfig:
    return GenerateConfig.model_validate({
        "run_dir": str(run_dir), "data": DATA, "heuristics": ["analogy"], "progress": False,
        "server": {"endpoint": f"http://127.0.0.1:{free_port()}/v1"}, **extra,
    })


def decontaminated(run_dir: Path, **extra: Any) -> None:
    decontaminate(DecontaminateConfig.model_validate({"run_dir": str(run_dir), "data": DATA, "benchmarks": BENCHMARKS, **extra}))


def frozen_ids(run_dir: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (run_dir / "generate" / "questions.jsonl").read_text().splitlines()]


def test_removed_questions_are_left_out_of_generation(tmp_path: Path) -> None:
    decontaminated(tmp_path)
    cfg = generate_config(tmp_path)
    assert excluded_questions(cfg) == REMOVED
    stage = GenerationStage(cfg)
    stage._check_identity()
    questions = stage._questions()
    assert [q.id for q in questions] == ["t-stock", "t-clean", "t-short"] == frozen_ids(tmp_path)
    assert "excluded_questions" in stage.identity()
    assert "excluded_questions" in manifest_config(cfg)["inputs"]


def test_flagged_questions_stay_and_change_nothing(tmp_path: Path) -> None:
    plain = generate_config(tmp_path / "plain")
    decontaminated(tmp_path / "flagged", action="flag")
    flagged = generate_config(tmp_path / "flagged")
    assert excluded_questions(flagged) == []
    assert GenerationStage(flagged).identity() == GenerationStage(plain).identity()
    assert "inputs" not in manifest_config(flagged) and manifest_config(flagged) == flagged.model_dump(mode="json")
    assert len(GenerationStage(flagged)._questions()) == 8


def test_a_report_for_other_data_is_refused(tmp_path: Path) -> None:
    decontaminated(tmp_path)
    with pytest.raises(ConfigError, match=r"decontaminate/report.json was made for other training questions \(data settings that differ: limit\)"):
        GenerationStage(generate_config(tmp_path, data={**DATA, "limit": 4}))


def test_generations_are_not_mixed_across_decontamination_results(tmp_path: Path) -> None:
    decontaminated(tmp_path, action="flag")
    GenerationStage(generate_config(tmp_path))._check_identity()  # generation started on all 8 questions
    before = manifest_config(generate_config(tmp_path))
    decontaminated(tmp_path)  # now they are dropped
    assert manifest_config(generate_config(tmp_path)) != before  # polya run will not skip generate
    with pytest.raises(ConfigError, match="changed: excluded_questions.*decontamination removed other questions"):
        GenerationStage(generate_config(tmp_path))._check_identity()


def test_every_question_removed_is_a_clear_error(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (FIXTURES / "train.jsonl").read_text().splitlines()]
    copy = tmp_path / "copy.jsonl"  # the training questions as a benchmark: every one is an exact copy
    copy.write_text("".join(json.dumps({"question": r["question"], "answer": f"#### {i}"}) + "\n" for i, r in enumerate(rows)))
    decontaminated(tmp_path, benchmarks=[{"name": "gsm8k", "path": str(copy)}])
    with pytest.raises(ConfigError, match="every question of .* overlaps a benchmark and was removed"):
        GenerationStage(generate_config(tmp_path))._questions()
