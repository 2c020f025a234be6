"""The decontaminate stage on planted contamination (tests/fixtures/decontaminate): the report lists
each match, drop and flag, resuming through the manifest, its place before generate in `polya run`,
and the `polya decontaminate` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from polya.cli.main import cli, main
from polya.core.errors import DataError
from polya.core.layout import RunLayout
from polya.core.manifest import RunManifest
from polya.core.outputs import read_decontamination_report
from polya.core.store import LocalStore
from polya.experiment.config import STAGES, RunConfig
from polya.experiment.decontaminate import STAGE, DecontaminateConfig, run
from polya.experiment.run import run as run_job

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "decontaminate"
TRAIN = str(FIXTURES / "train.jsonl")
BENCHMARKS = [{"name": "gsm8k", "path": str(FIXTURES / "gsm8k.jsonl")}, {"name": "math500", "path": str(FIXTURES / "math500.jsonl")}]
CONTAMINATED = ["t-exact", "t-spacing", "t-numbers", "t-paraphrase", "t-latex"]
CLEAN = ["t-stock", "t-clean", "t-short"]


def config(run_dir: Path, **extra: Any) -> DecontaminateConfig:
    return DecontaminateConfig.model_validate({"run_dir": str(run_dir), "data": {"source": TRAIN}, "benchmarks": BENCHMARKS, **extra})


def test_planted_questions_are_found_and_dropped(tmp_path: Path) -> None:
    out = run(config(tmp_path))
    report = out.report
    assert report.contaminated == report.removed == CONTAMINATED
    assert [q.id for q in out.kept] == CLEAN
    assert (report.questions, report.benchmarks, report.per_benchmark) == (8, {"gsm8k": 5, "math500": 2}, {"gsm8k": 4, "math500": 1})
    assert out.summary == {"questions": 8, "contaminated": 5, "removed": 5, "action": "drop", "benchmarks": {"gsm8k": 4, "math500": 1}}
    why = {m.question_id: (m.benchmark, m.benchmark_id, m.exact, m.ngrams) for m in report.matches}
    assert why == {
        "t-exact": ("gsm8k", "gsm8k-0", True, [8, 13]),
        "t-spacing": ("gsm8k", "gsm8k-1", True, [8, 13]),
        "t-numbers": ("gsm8k", "gsm8k-2", False, [8, 13]),
        "t-paraphrase": ("gsm8k", "gsm8k-3", False, [13]),
        "t-latex": ("math500", "math500-0", True, [8, 13]),
    }
    assert report.near_misses == {"8": 1, "13": 0}  # t-stock's stock phrase shared with gsm8k-4: too small a share


def test_the_report_lists_each_match_with_both_texts_and_the_shared_words(tmp_path: Path) -> None:
    run(config(tmp_path))
    stored = json.loads((tmp_path / "decontaminate" / "report.json").read_text())
    assert stored["peak_rss_mib"] > 50
    paraphrase = next(m for m in stored["matches"] if m["question_id"] == "t-paraphrase")
    assert paraphrase["question"].startswith("Our town has a big new library")
    assert paraphrase["benchmark"] == "gsm8k" and paraphrase["benchmark_id"] == "gsm8k-3"
    assert paraphrase["benchmark_question"].startswith("The school library lends out picture books")
    assert paraphrase["spans"] == ["a fine of ten cents for each day a book is returned late"]
    assert paraphrase["shared"] == {"8": 6, "13": 1} and paraphrase["ngrams"] == [13]
    assert stored["settings"] == {"ngrams": {"8": 0.25, "13": 0.0}, "mask_numbers": True, "exact": True}
    assert stored["data"]["source"] == TRAIN

    markdown = (tmp_path / "decontaminate" / "report.md").read_text()
    assert "5 of 8 training questions overlap gsm8k, math500" in markdown and "removed before generation" in markdown
    for question_id in CONTAMINATED:
        assert f"`{question_id}` (removed)" in markdown
    for question_id in CLEAN:
        assert question_id not in markdown
    assert "### 4. `t-paraphrase` (removed) ~ gsm8k `gsm8k-3`: 13-gram (1 shared, 3%)" in markdown
    assert '- shared: "a fine of ten cents for each day a book is returned late"' in markdown
    assert "| math500 | 2 | 1 |" in markdown


def test_flag_keeps_every_question_and_only_reports(tmp_path: Path) -> None:
    out = run(config(tmp_path, action="flag"))
    assert out.report.contaminated == CONTAMINATED and out.report.removed == []
    assert sorted(q.id for q in out.kept) == sorted(CONTAMINATED + CLEAN)
    assert "flagged and kept (action flag)" in out.report.summary()
    assert "`t-numbers` (flagged, kept)" in (tmp_path / "decontaminate" / "report.md").read_text()


def test_without_number_masking_the_copy_with_other_numbers_is_missed(tmp_path: Path) -> None:
    out = run(config(tmp_path, mask_numbers=False))
    assert "t-numbers" not in out.report.contaminated and "t-exact" in out.report.contaminated


def test_a_missing_benchmark_file_fails_the_stage_and_is_recorded(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="benchmark file not found"):
        run(config(tmp_path, benchmarks=[{"name": "gsm8k", "path": str(tmp_path / "missing.jsonl")}]))
    record = RunManifest.load_or_create(LocalStore(tmp_path)).stage(STAGE)
    assert record is not None and record.status == "failed"
    assert read_decontamination_report(LocalStore(tmp_path)) is None


# ----- polya run ---------------------------------------------------------------------------------


def run_config(run_dir: Path, **extra: Any) -> RunConfig:
    settings: dict[str, Any] = {
        "run_dir": str(run_dir), "stages": ["decontaminate"],
        "generate": {"data": {"source": TRAIN}}, "eval": {"benchmarks": BENCHMARKS},
        "decontaminate": {"action": "drop"},  # the cpu-demo preset flags
    }
    for key, value in extra.items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    return RunConfig.model_validate(settings)


def test_the_run_decontaminates_generates_questions_against_eval_benchmarks() -> None:
    assert STAGES[0] == "decontaminate" and STAGES.index("decontaminate") < STAGES.index("generate")
    config = RunConfig(generate={"data": {"source": TRAIN}}, eval={"benchmarks": BENCHMARKS}, decontaminate={"data": {"source": "elsewhere.jsonl"}})
    assert config.stages[:2] == ["decontaminate", "generate"]
    assert config.decontaminate.data == config.generate.data and config.decontaminate.data.source == TRAIN
    assert [b.name for b in config.decontaminate.benchmarks] == ["gsm8k", "math500"] == [b.name for b in config.eval.benchmarks]
    assert config.decontaminate.run_dir == config.run_dir
    # cpu-demo: the synthetic train and eval problems share templates, so the demo flags; paper drops.
    assert RunConfig().decontaminate.action == "flag" and RunConfig(preset="paper").decontaminate.action == "drop"
    assert [b.name for b in RunConfig(preset="paper").decontaminate.benchmarks][:2] == ["gsm8k", "math500"]


def test_the_run_resumes_and_reruns_only_for_other_benchmarks_or_settings(tmp_path: Path) -> None:
    first = run_job(run_config(tmp_path))
    assert first.stages["decontaminate"]["removed"] == 5

    def attempts() -> int:
        record = RunManifest.load_or_create(LocalStore(tmp_path)).stage(STAGE)
        assert record is not None and record.status == "done"
        return record.attempts

    assert attempts() == 1
    again = run_job(run_config(tmp_path))  # same inputs: a no-op
    assert attempts() == 1 and again.stages["decontaminate"]["removed"] == 5

    run_job(run_config(tmp_path, eval={"benchmarks": BENCHMARKS[:1]}))  # another benchmark list re-runs it
    assert attempts() == 2
    report = read_decontamination_report(LocalStore(tmp_path))
    assert report is not None and report.benchmarks == {"gsm8k": 5} and "t-latex" not in report.removed

    run_job(run_config(tmp_path, eval={"benchmarks": BENCHMARKS[:1]}, decontaminate={"action": "flag"}))
    assert attempts() == 3
    run_job(run_config(tmp_path, eval={"benchmarks": BENCHMARKS[:1]}, decontaminate={"action": "flag", "progress": False}))
    assert attempts() == 3  # progress does not change what the stage produces


def test_the_run_decontaminates_before_it_generates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import polya.generate.stage as generate_stage

    seen: list[list[str]] = []

    class Generated:
        summary = {"samples": 0}

    def fake_generate(cfg: Any) -> Generated:
        # What generate would read when it starts: the report is there and names the ids to leave out.
        seen.append(generate_stage.excluded_questions(cfg))
        return Generated()

    monkeypatch.setattr(generate_stage, "run", fake_generate)
    out = run_job(run_config(tmp_path, stages=["generate", "decontaminate"]))
    assert list(out.stages) == ["decontaminate", "generate"]
    assert seen == [sorted(CONTAMINATED)]


# ----- the command ---------------------------------------------------------------------------------


def test_cli_help_documents_every_setting() -> None:
    from click.testing import CliRunner

    shown = CliRunner().invoke(cli, ["decontaminate", "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    for option in ("--ngrams", "--mask-numbers", "--exact", "--action", "--run-dir", "--data.source", "--benchmarks", "--config", "--set"):
        assert option in text, option
    assert "open-r1" in text and "lm-eval-harness" in text and "drop|flag" in text
    assert "decontaminate/report.json" in text
    top = CliRunner().invoke(cli, ["--help"]).output
    assert "decontaminate" in top


def test_cli_runs_the_stage_and_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    benchmarks = json.dumps(BENCHMARKS)
    main(["decontaminate", "--run-dir", str(tmp_path), "--data.source", TRAIN, "--benchmarks", benchmarks, "--set", "ngrams=[13]"])
    lines = capsys.readouterr().out.strip().splitlines()
    printed = json.loads(lines[0])
    assert printed["removed"] == 5 and printed["report"] == str(tmp_path / "decontaminate" / "report.md")
    assert lines[1].startswith("5 of 8 training questions overlap gsm8k, math500 (word n-grams, n = 13; numbers masked")
    assert RunLayout.decontaminate.report == "decontaminate/report.json"


def test_cli_refuses_bad_settings_before_reading_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["decontaminate", "--run-dir", str(tmp_path), "--action", "remove"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "action" in err and "'drop' or 'flag'" in err
    assert not (tmp_path / "manifest.json").exists()
