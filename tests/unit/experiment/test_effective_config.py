"""What `polya run --print-config` shows is what runs: every stage's effective settings, its model included;
the paper preset scores adherence with a reward model and says so before anything loads when it cannot be had."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from polya.cli.main import cli
from polya.core.errors import ConfigError
from polya.experiment.config import RunConfig
from polya.experiment.run import run as run_job
from polya.select.config import ScorerConfig
from polya.select.scorers import PAPER_REWARD_MODEL, check_scorer

ARMS = ["base", "rl", "polya_sft", "polya_sft_rl", "star_sft_rl", "polya@4_sft_rl", "distill_sft_rl"]


@pytest.mark.parametrize("preset", ["cpu-demo", "paper"])
def test_every_stage_shows_the_model_and_run_dir_it_runs_with(preset: str, tmp_path: Path) -> None:
    config = RunConfig(preset=preset, run_dir=str(tmp_path), model="/models/base-3b", arms=ARMS, distill={"model": "/models/teacher"})
    stages = config.stage_configs()
    assert set(stages) == {
        "decontaminate", "distill/generate", "generate", "distill/select", "select", "sft/distill", "sft/polya", "sft/polya@4", "sft/star",
        "rl/base", "rl/distill_sft", "rl/polya@4_sft", "rl/polya_sft", "rl/star_sft", "eval",
    }
    assert stages["generate"].server.model == "/models/base-3b"  # type: ignore[attr-defined]
    assert stages["distill/generate"].server.model == "/models/teacher"  # type: ignore[attr-defined]
    assert stages["decontaminate"].data == stages["generate"].data  # type: ignore[attr-defined]
    for name, stage in stages.items():
        expected_dir = f"{tmp_path}/distill" if name.startswith("distill/") else str(tmp_path)
        assert stage.run_dir == expected_dir, name  # type: ignore[attr-defined]
        if name.startswith("sft/"):
            assert stage.model == "/models/base-3b", name  # type: ignore[attr-defined]
        if name.startswith("rl/"):
            start = name.removeprefix("rl/")
            assert stage.model == ("/models/base-3b" if start == "base" else f"{tmp_path}/sft/{start.removesuffix('_sft')}/final"), name  # type: ignore[attr-defined]
    assert stages["eval"].arms == {arm: config.model_of(arm) for arm in ARMS}  # type: ignore[attr-defined]
    # The sections of the run config itself no longer name a model the run does not use.
    dumped = config.model_dump(mode="json")
    assert dumped["sft"]["model"] == dumped["rl"]["model"] == "/models/base-3b"
    assert "model" not in dumped["eval"]["server"]  # each arm's server serves the arm's model: eval.arms says which
    assert dumped["eval"]["arms"]["polya_sft_rl"] == f"{tmp_path}/rl/polya_sft/final"
    assert "embedded:smollm2-135m-instruct" not in json.dumps(config.effective())


@pytest.mark.parametrize("preset", ["cpu-demo", "paper"])
def test_print_config_prints_a_loadable_config_and_every_stage_as_it_runs(preset: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "--preset", preset, "--run-dir", str(tmp_path), "--print-config"])
    assert result.exit_code == 0, result.output
    config = RunConfig(preset=preset, run_dir=str(tmp_path))
    printed = yaml.safe_load(result.output)  # the commented stage plan does not stop it loading as a config
    assert RunConfig.model_validate(printed).model_dump() == config.model_dump()
    comments = [line[2:] if line.startswith("# ") else line[1:] for line in result.output.splitlines() if line.startswith("#")]
    assert comments[0].startswith("Every stage as polya run will run it")
    assert yaml.safe_load("\n".join(comments[1:])) == json.loads(json.dumps(config.effective()["stages"]))


def test_the_paper_preset_has_its_own_run_dir_and_a_reward_model_scorer() -> None:
    config = RunConfig(preset="paper")
    assert config.run_dir == "runs/paper" and RunConfig().run_dir == "runs/demo"
    assert (config.select.scorer.kind, config.select.scorer.model) == ("reward_model", PAPER_REWARD_MODEL)
    assert RunConfig().select.scorer.kind == "offline"  # the demo and CPU runs keep the model-free scorer


def test_an_unreachable_reward_model_fails_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no hub here: the model is neither local nor cached
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    config = RunConfig(preset="paper", run_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"select.scorer.model 'Skywork/Skywork-Reward-V2-Llama-3.1-8B' \(the reward model .*\) cannot be had"):
        run_job(config)
    assert not (tmp_path / "run" / "generate").exists()  # generation (and its vLLM server) never started


def test_check_scorer_reads_only_a_config(tmp_path: Path) -> None:
    reward = tmp_path / "rm"
    reward.mkdir()
    (reward / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForSequenceClassification"], "num_labels": 1}))
    check_scorer(ScorerConfig(kind="reward_model", model=str(reward)))  # no weights there: only the config is read
    causal = tmp_path / "lm"
    causal.mkdir()
    (causal / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ConfigError, match="is a LlamaForCausalLM, not a sequence-classification"):
        check_scorer(ScorerConfig(kind="reward_model", model=str(causal)))
    check_scorer(ScorerConfig(kind="offline"))
