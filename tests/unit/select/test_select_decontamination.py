"""The dataset cards and select/report.json say what the decontamination removed or flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from polya.experiment.decontaminate import DecontaminateConfig
from polya.experiment.decontaminate import run as decontaminate
from polya.select.config import SelectConfig
from polya.select.stage import manifest_config
from polya.select.stage import run as select

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "decontaminate"
BENCHMARKS = [{"name": "gsm8k", "path": str(FIXTURES / "gsm8k.jsonl")}, {"name": "math500", "path": str(FIXTURES / "math500.jsonl")}]


def generations(run_dir: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str], ids: list[str]) -> None:
    write(run_dir, [record(q, "working_backward", 0, True, texts["backward"]) for q in ids])


def decontaminated(run_dir: Path, **extra: Any) -> None:
    decontaminate(DecontaminateConfig.model_validate(
        {"run_dir": str(run_dir), "data": {"source": str(FIXTURES / "train.jsonl")}, "benchmarks": BENCHMARKS, **extra}
    ))


def card(run_dir: Path, dataset: str = "polya") -> str:
    return (run_dir / "select" / dataset / "README.md").read_text()


def run_select(run_dir: Path) -> dict[str, Any]:
    return select(SelectConfig(run_dir=str(run_dir), datasets=["polya", "star"], progress=False)).report


def test_cards_say_which_questions_were_removed(tmp_path: Path, record, write, texts) -> None:
    decontaminated(tmp_path)
    generations(tmp_path, record, write, texts, ["t-stock", "t-clean"])
    report = run_select(tmp_path)
    for dataset in ("polya", "star"):
        text = card(tmp_path, dataset)
        assert "## Decontamination" in text
        assert (
            "5 training questions removed as contaminated with gsm8k, math500 (word n-grams, n = 8, 13; numbers masked; "
            "normalised exact match) before generation, out of 8 checked against gsm8k (5 questions), math500 (2 questions); "
            "see `decontaminate/report.md`." in text
        )
        assert "Removed: `t-exact`, `t-spacing`, `t-numbers`, `t-paraphrase`, `t-latex`." in text
    assert report["decontamination"]["removed"] == ["t-exact", "t-spacing", "t-numbers", "t-paraphrase", "t-latex"]
    assert report["decontamination"]["benchmarks"] == {"gsm8k": 4, "math500": 1} and report["decontamination"]["action"] == "drop"
    stored = json.loads((tmp_path / "select" / "report.json").read_text())
    assert stored["decontamination"]["report"] == "decontaminate/report.json"


def test_cards_count_the_flagged_questions_a_dataset_learns_from(tmp_path: Path, record, write, texts) -> None:
    decontaminated(tmp_path, action="flag")
    generations(tmp_path, record, write, texts, ["t-numbers", "t-exact", "t-clean"])
    run_select(tmp_path)
    assert (
        "5 training questions overlap gsm8k, math500 (word n-grams, n = 8, 13; numbers masked; normalised exact match) and "
        "were kept (action flag): 2 of this dataset's questions are among them; see `decontaminate/report.md`." in card(tmp_path)
    )


def test_without_a_decontamination_the_card_says_so(tmp_path: Path, record, write, texts) -> None:
    generations(tmp_path, record, write, texts, ["q1"])
    report = run_select(tmp_path)
    assert "The training questions were not checked against the evaluation benchmarks" in card(tmp_path)
    assert report["decontamination"] is None


def test_a_new_decontamination_report_reruns_select(tmp_path: Path, record, write, texts) -> None:
    generations(tmp_path, record, write, texts, ["t-clean"])
    config = SelectConfig(run_dir=str(tmp_path))
    before = manifest_config(config)
    decontaminated(tmp_path, action="flag")
    flagged = manifest_config(config)
    decontaminated(tmp_path, benchmarks=BENCHMARKS[:1], action="flag")
    assert len({json.dumps(c, sort_keys=True) for c in (before, flagged, manifest_config(config))}) == 3
