"""The selection stage on generation records written exactly as ``polya generate`` writes them."""

from __future__ import annotations

from collections import Counter
import json
import logging
from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq
import pytest
import yaml

from polya.cli.main import main
from polya.core.config import load_config
from polya.core.errors import ConfigError
from polya.core.manifest import RunManifest
from polya.core.store import LocalStore
from polya.experiment.config import STAGES, RunConfig
from polya.experiment.run import run as run_job
from polya.heuristics import HeuristicCatalog
from polya.select.config import SelectConfig
from polya.select.scorers import offline_score
from polya.select.stage import manifest_config
from support.select_runs import ids, rows, select

CATALOG = HeuristicCatalog.load()
ARMS = ["polya", "star", "wrong_answer", "breadth", "depth"]


def offline(heuristic: str, text: str) -> float:
    return offline_score(CATALOG.get(heuristic), text).score


@pytest.fixture()
def scenario(tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str]) -> Path:
    """Three questions: correct and incorrect, several heuristics, a truncated and an unanswered wrong one."""
    wrong = texts["backward"].replace("\\boxed{4}", "\\boxed{5}")
    records = [
        record("q1", "working_backward", 0, True, texts["backward"]),
        record("q1", "working_backward", 1, True, texts["plain"]),
        record("q1", "decomposition", 0, True, texts["decomposed"]),
        record("q1", "step_by_step_justification", 0, True, texts["steps"]),
        record("q1", "decomposition", 1, False, texts["decomposed"].replace("\\boxed{4}", "\\boxed{5}")),
        record("q2", "working_backward", 0, False, wrong),
        record("q2", "draw_figure_or_table", 0, True, texts["table"]),
        record("q2", "analogy", 0, True, texts["plain"], round_index=2),
        record("q3", "working_backward", 0, False, wrong, finish_reason="length"),
        record("q3", "decomposition", 0, False, "I am not sure how to do this one at all.", extracted=None),
    ]
    questions = [{"id": q, "question": f"Question {q}: what is 2 + 2?", "answer": "4", "source": "test"} for q in ("q1", "q2", "q3")]
    write(tmp_path, records, questions)
    return tmp_path


# ----- the polya arm ----------------------------------------------------------------------------


def test_polya_keeps_the_best_correct_solution_per_question_and_heuristic(scenario: Path) -> None:
    out = select(scenario, datasets=ARMS)
    kept = rows(scenario, "polya")
    assert all(r["correct"] for r in kept)
    assert set(ids(scenario, "polya")) == {
        "q1|working_backward|r1|s0",  # beats the plain solution of the same pair
        "q1|decomposition|r1|s0",
        "q1|step_by_step_justification|r1|s0",
        "q2|draw_figure_or_table|r1|s0",
        "q2|analogy|r2|s0",
    }
    report = out.report["datasets"]["polya"]
    assert report["rejections"] == {"incorrect": 4, "not_best_in_pair": 1}
    assert report["per_heuristic"] == {
        "analogy": 1, "working_backward": 1, "decomposition": 1, "draw_figure_or_table": 1, "step_by_step_justification": 1
    }
    assert report["per_round"] == {"1": 4, "2": 1}
    # Question order, then best first within a question.
    q1 = [r for r in kept if r["question_id"] == "q1"]
    assert [r["score"] for r in q1] == sorted((r["score"] for r in q1), reverse=True)
    assert [r["question_id"] for r in kept] == ["q1", "q1", "q1", "q2", "q2"]


def test_every_generation_is_accounted_for_once_in_every_arm(scenario: Path) -> None:
    out = select(scenario, datasets=ARMS, budget=1)
    for arm, report in out.report["datasets"].items():
        assert report["examples"] + sum(report["rejections"].values()) == 10, arm


def test_n_per_question_keeps_the_top_scores_across_heuristics(scenario: Path, texts: dict[str, str]) -> None:
    out = select(scenario, n_per_question=2)
    q1 = [r for r in rows(scenario, "polya") if r["question_id"] == "q1"]
    expected = sorted(
        [("working_backward", texts["backward"]), ("decomposition", texts["decomposed"]), ("step_by_step_justification", texts["steps"])],
        key=lambda ht: -offline(*ht),
    )[:2]
    assert [r["heuristic"] for r in q1] == [h for h, _ in expected]
    assert out.report["datasets"]["polya"]["rejections"]["over_cap"] == 1


def test_per_pair_keeps_more_than_one_solution_of_a_pair(scenario: Path) -> None:
    select(scenario, per_pair=2)
    assert "q1|working_backward|r1|s1" in ids(scenario, "polya")
    with pytest.raises(ConfigError, match=r"per_pair \(8\) must be <= n_per_question \(4\)"):
        load_config(SelectConfig, overrides={"per_pair": 8, "n_per_question": 4})


def test_dedup_normalized_and_ngram(tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str]) -> None:
    same_but_spacing = texts["decomposed"].upper().replace("\n", "\n\n  ")
    one_word_changed = texts["decomposed"].replace("Bob gives her", "Bob hands her")
    write(tmp_path, [
        record("q1", "decomposition", 0, True, texts["decomposed"]),
        record("q1", "analogy", 0, True, same_but_spacing),
        record("q1", "specialization", 0, True, one_word_changed),
        record("q1", "working_backward", 0, True, texts["backward"]),
    ])
    normalized = select(tmp_path, dedup={"method": "normalized"})
    assert "q1|analogy|r1|s0" not in ids(tmp_path, "polya")
    assert "q1|specialization|r1|s0" in ids(tmp_path, "polya")
    assert normalized.report["datasets"]["polya"]["rejections"] == {"duplicate": 1}

    ngram = select(tmp_path, dedup={"method": "ngram", "threshold": 0.6})
    assert set(ids(tmp_path, "polya")) == {"q1|decomposition|r1|s0", "q1|working_backward|r1|s0"}
    assert ngram.report["datasets"]["polya"]["rejections"] == {"duplicate": 2}

    select(tmp_path, dedup={"method": "none"})
    assert len(ids(tmp_path, "polya")) == 4


def test_ties_are_broken_by_round_then_catalog_order(tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str]) -> None:
    text = texts["plain"]
    write(tmp_path, [
        record("q1", "check_and_look_back", 0, True, text, round_index=2),
        record("q1", "restate_problem", 0, True, text, round_index=1),
        record("q1", "bright_idea", 0, True, text, round_index=1),
    ])
    scores = {h: offline(h, text) for h in ("check_and_look_back", "restate_problem", "bright_idea")}
    assert len(set(scores.values())) == 1  # the plain text shows none of their cues: a tie
    select(tmp_path, n_per_question=1, dedup={"method": "none"})
    assert ids(tmp_path, "polya") == ["q1|bright_idea|r1|s0"]  # round 1, and bright_idea precedes restate_problem


def test_min_score_and_heuristic_filter(scenario: Path) -> None:
    out = select(scenario, min_score=9.0, heuristics=["working_backward", "decomposition", "analogy"])
    report = out.report["datasets"]["polya"]
    assert all(r["score"] >= 9.0 and r["heuristic"] in {"working_backward", "decomposition", "analogy"} for r in rows(scenario, "polya"))
    assert report["rejections"]["heuristic_not_selected"] == 2
    assert report["rejections"]["below_min_score"] >= 1
    with pytest.raises(ConfigError, match="unknown heuristic id"):
        select(scenario, heuristics=["nonsense"])


# ----- the other arms ---------------------------------------------------------------------------


def test_star_keeps_one_correct_solution_per_question(scenario: Path) -> None:
    select(scenario, datasets=["polya"])
    best = {}
    for r in rows(scenario, "polya"):
        best[r["question_id"]] = max(best.get(r["question_id"], -1.0), r["score"])
    out = select(scenario, datasets=["star"], baseline_source="heuristics")
    star = rows(scenario, "star")
    assert [r["question_id"] for r in star] == ["q1", "q2"]
    assert all(r["correct"] for r in star)
    assert [r["score"] for r in star] == [best["q1"], best["q2"]]
    assert out.report["datasets"]["star"]["rejections"] == {"incorrect": 4, "not_best_in_question": 4}


def test_wrong_answer_keeps_only_incorrect_complete_solutions(scenario: Path) -> None:
    out = select(scenario, datasets=["wrong_answer"])
    wrong = rows(scenario, "wrong_answer")
    assert wrong and not any(r["correct"] for r in wrong)
    assert set(ids(scenario, "wrong_answer")) == {"q1|decomposition|r1|s1", "q2|working_backward|r1|s0"}
    rejections = out.report["datasets"]["wrong_answer"]["rejections"]
    assert rejections == {"correct": 6, "no_final_answer": 1, "truncated": 1}
    assert not (scenario / "select" / "polya").exists()  # only the arms asked for


@pytest.mark.parametrize("undecided", ["drop", "incorrect"])
def test_an_undecided_generation_is_dropped_or_treated_as_wrong(
    tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str], undecided: str
) -> None:
    timed_out = texts["backward"].replace("\\boxed{4}", "\\boxed{(x+1)^{300}}")
    records = [
        record("q1", "working_backward", 0, True, texts["backward"]),
        record("q1", "decomposition", 0, False, timed_out, extracted="(x+1)^{300}", status="timeout"),
        record("q1", "analogy", 0, False, texts["plain"].replace("\\boxed{4}", "\\boxed{5}")),
    ]
    write(tmp_path, records)
    out = select(tmp_path, datasets=["polya", "wrong_answer"], undecided=undecided)
    wrong = set(ids(tmp_path, "wrong_answer"))
    if undecided == "drop":
        assert wrong == {"q1|analogy|r1|s0"}
        assert out.report["datasets"]["wrong_answer"]["rejections"]["undecided"] == 1
        assert out.report["datasets"]["polya"]["rejections"]["undecided"] == 1
    else:
        assert wrong == {"q1|analogy|r1|s0", "q1|decomposition|r1|s0"}
        assert "undecided" not in out.report["datasets"]["wrong_answer"]["rejections"]
    assert set(ids(tmp_path, "polya")) == {"q1|working_backward|r1|s0"}


@pytest.fixture()
def many_questions(tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None]) -> Path:
    """Questions q0..q5; q_i has (i % 3) + 1 correct solutions, all different."""
    heuristics = ["working_backward", "decomposition", "analogy"]
    records = []
    for i in range(6):
        for j in range((i % 3) + 1):
            text = f"Solution {j} of question {i}: " + " ".join(f"w{i}x{j}y{k}" for k in range(25)) + " \\boxed{4}"
            records.append(record(f"q{i}", heuristics[j], 0, True, text))
    write(tmp_path, records)
    return tmp_path


def test_breadth_and_depth_share_a_fixed_budget(many_questions: Path) -> None:
    out = select(many_questions, datasets=["polya", "breadth", "depth"], budget=4, baseline_source="heuristics")
    breadth, depth = rows(many_questions, "breadth"), rows(many_questions, "depth")
    assert len(breadth) == 4 and len({r["question_id"] for r in breadth}) == 4
    assert len(depth) == 4
    per_question = {q: sum(1 for r in depth if r["question_id"] == q) for q in {r["question_id"] for r in depth}}
    assert sorted(per_question.values(), reverse=True)[0] == 3  # the deepest questions first (3 solutions each)
    assert len(per_question) == 2
    assert out.report["datasets"]["breadth"]["budget"] == 4 and out.report["datasets"]["depth"]["budget"] == 4
    assert out.report["datasets"]["depth"]["rejections"]["over_budget"] == 12 - 4
    # Deterministic: the same seed picks the same questions; another seed may pick others but the same sizes.
    again = select(many_questions, datasets=["breadth", "depth"], budget=4, baseline_source="heuristics")
    assert again.report["datasets"]["breadth"]["examples"] == 4 and ids(many_questions, "breadth") == [r["generation_id"] for r in breadth]


def test_default_budget_is_the_star_size_and_shortfalls_are_noted(many_questions: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = select(many_questions, datasets=["star", "breadth", "depth"], baseline_source="heuristics")
    assert out.datasets["breadth"].examples == out.datasets["star"].examples == 6
    assert out.datasets["depth"].examples == 6
    assert out.report["datasets"]["depth"]["questions"] == 2  # 3 + 3
    with caplog.at_level(logging.WARNING):
        short = select(many_questions, datasets=["breadth", "depth"], budget=50, baseline_source="heuristics")
    assert short.datasets["breadth"].examples == 6 and short.datasets["depth"].examples == 12
    assert "short of the budget of 50" in short.report["datasets"]["breadth"]["notes"][0]
    assert "short of the budget of 50" in (many_questions / "select" / "depth" / "README.md").read_text()
    assert any("short of the budget" in r.getMessage() for r in caplog.records)


# ----- outputs ----------------------------------------------------------------------------------


def test_outputs_cards_report_and_manifest(scenario: Path) -> None:
    out = select(scenario, datasets=["polya", "star"])
    for arm in ("polya", "star"):
        card = (scenario / "select" / arm / "README.md").read_text()
        assert card.startswith("---\nconfigs:") and "path: train.jsonl" in card
        assert f"**{out.datasets[arm].examples} examples over {out.datasets[arm].questions} questions**" in card
        assert "Vendi score" in card and "## Generations left out" in card and "`incorrect` | 4" in card
    report = json.loads((scenario / "select" / "report.json").read_text())
    assert report["inputs"]["records"] == 10 and report["inputs"]["correct"] == 6 and report["peak_rss_mib"] > 50
    assert report["inputs"]["per_heuristic"]["working_backward"] == {"samples": 4, "correct": 2}
    assert report["scorer"]["kind"] == "offline" and report["scorer"]["unscored"] == 0
    assert report["datasets"]["polya"]["diversity"]["vendi_per_question_mean"] > 1.0
    assert set(report["datasets"]) == {"polya", "star"}
    manifest = RunManifest.load_or_create(LocalStore(scenario))
    stage = manifest.stage("select")
    assert stage is not None and stage.status == "done"
    assert set(stage.artifacts) == {
        "select/report.json", "select/polya/train.jsonl", "select/polya/README.md", "select/star/train.jsonl", "select/star/README.md"
    }
    assert stage.outputs["datasets"]["polya"] == {"examples": 5, "questions": 2}


def test_prompt_modes(scenario: Path) -> None:
    select(scenario, datasets=["star"], baseline_source="heuristics")
    first = rows(scenario, "star")[0]
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    assert first["messages"][0]["content"] == "Question q1: what is 2 + 2?"

    select(scenario, datasets=["star"], prompt="plain", baseline_source="heuristics")
    user = rows(scenario, "star")[0]["messages"][0]["content"]
    assert user.startswith("Problem: Question q1") and CATALOG.answer_format.strip() in user

    select(scenario, datasets=["star"], prompt="heuristic", system_prompt=True, baseline_source="heuristics")
    example = rows(scenario, "star")[0]
    assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
    assert example["messages"][0]["content"] == CATALOG.system_prompt.strip()
    assert example["messages"][1]["content"].startswith(CATALOG.get(example["heuristic"]).instruction.strip())
    assert "Problem: Question q1" in example["messages"][1]["content"]

    select(scenario, datasets=["star"], system_prompt=True, baseline_source="heuristics")
    assert [m["role"] for m in rows(scenario, "star")[0]["messages"]] == ["system", "user", "assistant"]


def test_parquet_output_is_readable_by_pyarrow(scenario: Path) -> None:
    select(scenario, datasets=["polya"])
    as_jsonl = rows(scenario, "polya")
    out = select(scenario, datasets=["polya"], output_format="parquet")
    path = scenario / "select" / "polya" / "train.parquet"
    table = pq.read_table(path)
    assert table.to_pylist() == as_jsonl
    assert table.schema.field("messages").type.value_type.names == ["role", "content"]
    assert not (scenario / "select" / "polya" / "train.jsonl").exists()  # the stale other format is removed
    assert out.datasets["polya"].data_path == "select/polya/train.parquet"
    assert "path: train.parquet" in (scenario / "select" / "polya" / "README.md").read_text()


def test_an_empty_arm_is_written_with_a_card_that_says_so(
    tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, [record("q1", "analogy", 0, False, texts["plain"].replace("\\boxed{4}", "\\boxed{5}"))])
    with caplog.at_level(logging.WARNING):
        out = select(tmp_path, datasets=["polya", "star", "wrong_answer"], output_format="parquet")
    assert out.datasets["polya"].examples == 0 and out.datasets["wrong_answer"].examples == 1
    assert pq.read_table(tmp_path / "select" / "polya" / "train.parquet").num_rows == 0
    card = (tmp_path / "select" / "polya" / "README.md").read_text()
    assert "**Warning: this dataset is empty.**" in card
    assert any("dataset polya is empty" in r.getMessage() for r in caplog.records)
    select(tmp_path, datasets=["polya"])
    assert (tmp_path / "select" / "polya" / "train.jsonl").read_text() == ""


# ----- inputs and errors ------------------------------------------------------------------------


def test_no_generations_says_run_generate_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no generations found in .*run `polya generate --run-dir"):
        select(tmp_path / "nothing-here")
    assert not (tmp_path / "nothing-here" / "manifest.json").exists()


def test_heuristics_missing_from_the_catalog_are_refused(tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None]) -> None:
    write(tmp_path, [record("q1", "guess_and_check", 0, True, "Guess 1: 4. \\boxed{4}")])
    with pytest.raises(ConfigError, match=r"heuristics \['guess_and_check'\].*set catalog"):
        select(tmp_path)


def test_the_catalog_of_the_generate_stage_is_used(tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None]) -> None:
    catalog_file = tmp_path / "my_catalog.yaml"
    catalog_file.write_text(yaml.safe_dump({
        "system_prompt": "Solve.",
        "answer_format": "Answer in \\boxed{}.",
        "heuristics": [{
            "id": "guess_and_check", "name": "Guess and check", "description": "Guess, then check.",
            "instruction": 'Write "Guess 1:", "Guess 2:" and then "Verified:".',
            "exemplars": [{"question": "1+1?", "solution": "Guess 1: 3. Guess 2: 2. Verified: 1+1=2. \\boxed{2}"}],
        }],
    }))
    run_dir = tmp_path / "run"
    LocalStore(run_dir).child("generate").write_json("config.json", {"identity": {}, "config": {"catalog": str(catalog_file)}})
    write(run_dir, [record("q1", "guess_and_check", 0, True, "Guess 1: 3. Guess 2: 4. Verified: 2 + 2 = 4. The final answer is \\boxed{4}.")])
    out = select(run_dir, prompt="heuristic")
    assert out.report["catalog"] == str(catalog_file)
    assert rows(run_dir, "polya")[0]["messages"][0]["content"].startswith('Write "Guess 1:"')
    assert rows(run_dir, "polya")[0]["score"] == 10.0 - 2.0  # every cue found; short (< 20 words) costs 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scorer": {"kind": "llm_judge"}}, "scorer.kind llm_judge needs scorer.endpoint"),
        ({"scorer": {"kind": "reward_model"}}, "scorer.kind reward_model needs scorer.model"),
        ({"scorer": {"kind": "llm_judge", "endpoint": "judge:8000"}}, "scorer.endpoint: Value error, must be an http://"),
        ({"datasets": []}, "datasets must name at least one of: polya, star, wrong_answer, breadth, depth, distill"),
        ({"datasets": ["polya", "polya@99"]}, "unknown dataset 'polya@99'; valid: polya, star, wrong_answer, breadth, depth, distill, or polya@<n>"),
        ({"n_per_question": 65}, "n_per_question"),
        ({"n_per_question": 0}, "n_per_question"),
        ({"dedup": {"method": "exact"}}, "dedup.method"),
        ({"dedup": {"threshold": 1.5}}, "dedup.threshold"),
        ({"output_format": "csv"}, "output_format"),
        ({"prompt": "instruction"}, "prompt"),
        ({"budget": 0}, "budget"),
        ({"scorer": {"knd": "offline"}}, "scorer.knd: unknown key (did you mean 'kind'?)"),
        ({"verifier_endpoint": "verifier:8080"}, "verifier_endpoint: Value error, must be an http://"),
    ],
)
def test_config_errors_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(SelectConfig, overrides=overrides)
    assert message in str(info.value)


def test_config_every_field_has_help_text() -> None:
    from polya.core.config import field_paths
    from polya.select.config import DedupConfig, DiversityConfig, ScorerConfig

    for model in (SelectConfig, ScorerConfig, DedupConfig, DiversityConfig):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}"
    assert "scorer.kind" in field_paths(SelectConfig)


# ----- reverify, resume, polya run, CLI -----------------------------------------------------------


def test_reverify_judges_again_with_the_verifier_library(tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str]) -> None:
    write(tmp_path, [
        record("q1", "working_backward", 0, False, texts["backward"]),  # stored as wrong, but it is right
        record("q1", "decomposition", 0, True, texts["decomposed"].replace("\\boxed{4}", "\\boxed{7}")),  # stored as right, but wrong
    ])
    out = select(tmp_path, reverify=True, judge_workers=1)
    assert ids(tmp_path, "polya") == ["q1|working_backward|r1|s0"]
    assert out.report["reverify"] == {
        "judged": 2, "correct": 1, "undecided": 0, "became_correct": 1, "became_incorrect": 1, "verifier": "in-process"
    }


def test_polya_run_chains_select_and_reruns_it_only_for_new_generations(
    scenario: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str]
) -> None:
    config = RunConfig.model_validate({"run_dir": str(scenario), "stages": ["select"], "select": {"progress": False, "run_dir": "elsewhere"}})
    assert config.select.run_dir == str(scenario)
    first = run_job(config)
    assert first.stages["select"]["polya"] == {"examples": 5, "questions": 2}
    manifest = RunManifest.load_or_create(LocalStore(scenario))
    attempts = manifest.stage("select").attempts  # type: ignore[union-attr]
    run_job(config)
    assert RunManifest.load_or_create(LocalStore(scenario)).stage("select").attempts == attempts  # type: ignore[union-attr]

    before = manifest_config(config.select)
    write(scenario, [record("q3", "analogy", 0, True, texts["plain"], round_index=2)])
    assert manifest_config(config.select) != before
    third = run_job(config)
    assert RunManifest.load_or_create(LocalStore(scenario)).stage("select").attempts == attempts + 1  # type: ignore[union-attr]
    assert third.stages["select"]["polya"] == {"examples": 6, "questions": 3}


def test_polya_run_selects_the_teachers_solutions_for_the_distill_arms(
    scenario: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None], texts: dict[str, str]
) -> None:
    teacher_dir = scenario / "distill"
    teacher = [record(q, "working_backward", 0, True, texts["backward"]) for q in ("q1", "q2", "q3")]
    write(teacher_dir, [{**r, "model": "teacher-7b"} for r in teacher])
    config = RunConfig.model_validate({
        "run_dir": str(scenario), "stages": ["select"], "arms": ["base", "polya_sft", "distill_sft_rl", "polya@1_sft"],
        "select": {"progress": False},
    })
    out = run_job(config)
    assert out.stages["distill/select"]["distill"] == {"examples": 3, "questions": 3}
    # The run records what it ran with, and each stage ran with exactly that.
    recorded = json.loads((scenario / "run.json").read_text())
    assert recorded == json.loads(json.dumps(config.effective()))
    for name, run_dir in (("select", scenario), ("distill/select", teacher_dir)):
        stage = RunManifest.read(LocalStore(run_dir)).stage("select")  # type: ignore[union-attr]
        assert stage is not None and stage.config == json.loads(json.dumps(manifest_config(config.stage_configs()[name])))
    assert set(out.stages["select"]) == {"polya", "star", "polya@1"}
    card = (teacher_dir / "select" / "distill" / "README.md").read_text()
    assert "Distillation: a teacher model's correct solutions" in card and "teacher-7b" in card
    assert ids(teacher_dir, "distill") == [f"{q}|working_backward|r1|s0" for q in ("q1", "q2", "q3")]
    record_ = RunManifest.read(LocalStore(teacher_dir)).stage("select")  # type: ignore[union-attr]
    assert record_ is not None and record_.status == "done" and record_.attempts == 1
    again = run_job(config)  # nothing new: both selections are skipped
    assert again.stages["distill/select"]["datasets"] == out.stages["distill/select"]
    assert RunManifest.read(LocalStore(teacher_dir)).stage("select").attempts == 1  # type: ignore[union-attr]


def test_run_config_runs_select_after_generate() -> None:
    config = RunConfig()
    assert STAGES[:3] == ("decontaminate", "generate", "select")
    assert config.stages[:3] == ["decontaminate", "generate", "select"]
    assert config.select.run_dir == config.run_dir == config.generate.run_dir == config.sft.run_dir


def test_manifest_config_masks_the_judge_key(tmp_path: Path) -> None:
    config = SelectConfig(run_dir=str(tmp_path), scorer={"kind": "llm_judge", "endpoint": "http://judge:8000/v1", "api_key": "s3cret"})
    recorded = manifest_config(config)
    assert recorded["scorer"]["api_key"] == "***" and "s3cret" not in json.dumps(recorded)


def test_cli_select(scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["select", "--run-dir", str(scenario), "--datasets", "[polya, wrong_answer]", "--progress", "false", "--n-per-question", "2"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["polya"]["examples"] == 4 and printed["wrong_answer"]["path"] == "select/wrong_answer/train.jsonl"

    main(["select", "--scorer.kind", "llm_judge", "--scorer.endpoint", "http://judge:8000/v1", "--scorer.api-key", "k", "--print-config"])
    printed_config = yaml.safe_load(capsys.readouterr().out)
    assert printed_config["scorer"]["api_key"] == "***" and printed_config["datasets"] == ["polya", "star"]

    with pytest.raises(SystemExit) as info:
        main(["select", "--run-dir", str(scenario / "missing")])
    assert info.value.code == 2
    assert "run `polya generate --run-dir" in capsys.readouterr().err


def test_cached_judge_scores_are_reused_without_reaching_the_judge(scenario: Path) -> None:
    from polya.core.errors import ServerError
    from polya.core.store.shards import ShardWriter
    from polya.serving.vllm_server import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings = {"datasets": ["polya"], "scorer": {"kind": "llm_judge", "endpoint": dead, "model": "judge", "max_retries": 0}}
    with pytest.raises(ServerError, match="cannot reach the model server"):
        select(scenario, **settings)
    manifest = RunManifest.load_or_create(LocalStore(scenario))
    assert manifest.stage("select").status == "failed"  # type: ignore[union-attr]
    (cache_dir,) = (scenario / "select" / "scores").iterdir()
    assert json.loads((cache_dir / "scorer.json").read_text())["model"] == "judge"

    # The judge's answers, stored in the cache's format: one per correct, scoreable solution; one unparseable.
    correct = ["q1|working_backward|r1|s0", "q1|working_backward|r1|s1", "q1|decomposition|r1|s0",
               "q1|step_by_step_justification|r1|s0", "q2|draw_figure_or_table|r1|s0", "q2|analogy|r2|s0"]
    judged = {i: float(n) for n, i in enumerate(correct, start=3)}
    judged["q1|step_by_step_justification|r1|s0"] = None  # type: ignore[assignment]
    writer = ShardWriter(LocalStore(scenario).child("select"), f"scores/{cache_dir.name}")
    writer.add([{"id": i, "score": s, "detail": "cached", "attempts": 1} for i, s in judged.items()])
    writer.flush()

    out = select(scenario, **settings)
    assert out.report["scorer"]["from_cache"] == 6 and out.report["scorer"]["scored_now"] == 0
    assert out.report["scorer"]["unscored"] == 1 and out.report["datasets"]["polya"]["rejections"]["unscored"] == 1
    assert ids(scenario, "polya") == ["q1|decomposition|r1|s0", "q1|working_backward|r1|s1", "q2|analogy|r2|s0", "q2|draw_figure_or_table|r1|s0"]
    assert [r["score"] for r in rows(scenario, "polya")] == [5.0, 4.0, 8.0, 7.0]

    ranked_last = select(scenario, **{**settings, "scorer": {**settings["scorer"], "on_unscored": "rank_last"}})
    assert "unscored" not in ranked_last.report["datasets"]["polya"]["rejections"]
    assert ids(scenario, "polya")[2] == "q1|step_by_step_justification|r1|s0" and rows(scenario, "polya")[2]["score"] is None


def test_polya_at_n_keeps_n_solutions_per_question(many_questions: Path) -> None:
    out = select(many_questions, datasets=["polya@1", "polya@2", "polya"], n_per_question=16)
    per_question = {name: Counter(r["question_id"] for r in rows(many_questions, name)) for name in ("polya@1", "polya@2", "polya")}
    assert per_question["polya@1"] == {f"q{i}": 1 for i in range(6)}
    assert per_question["polya@2"] == {f"q{i}": min(2, (i % 3) + 1) for i in range(6)}
    assert per_question["polya"] == {f"q{i}": (i % 3) + 1 for i in range(6)}
    assert out.datasets["polya@2"].examples == 10
    card = (many_questions / "select" / "polya@2" / "README.md").read_text()
    assert "D_Pólya with n = 2" in card and "| `n_per_question` | `2` |" in card


def test_polya_at_n_above_the_heuristic_count_keeps_more_per_pair(tmp_path: Path, record: Callable[..., dict[str, Any]], write: Callable[..., None]) -> None:
    from polya.select.rules import polya_at_per_pair

    assert [polya_at_per_pair(n, 1, 11) for n in (1, 4, 11, 16, 64)] == [1, 1, 1, 2, 6]
    assert polya_at_per_pair(2, 5, 11) == 2  # never above n
    # Two heuristics, four distinct correct solutions each: polya@8 needs 4 per pair, polya@2 one.
    records = []
    for h in ("working_backward", "decomposition"):
        for s in range(4):
            text = f"{h} solution {s}: " + " ".join(f"t{h[:3]}{s}w{k}" for k in range(25)) + " \\boxed{4}"
            records.append(record("q1", h, s, True, text))
    write(tmp_path, records)
    select(tmp_path, datasets=["polya@8", "polya@2"], heuristics=["working_backward", "decomposition"], n_per_question=16)
    assert len(rows(tmp_path, "polya@8")) == 8
    assert Counter(r["heuristic"] for r in rows(tmp_path, "polya@2")) == {"working_backward": 1, "decomposition": 1}
