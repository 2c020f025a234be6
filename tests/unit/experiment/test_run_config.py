"""polya run's config: arm names -> how each model is made, presets, and the settings each stage gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from polya.core.config import load_config
from polya.core.errors import ConfigError
from polya.experiment.arms import DEFAULT_ARMS, parse_arm, valid_arm_names
from polya.experiment.config import RunConfig


def test_arm_names_say_how_the_model_is_made() -> None:
    assert parse_arm("base") == parse_arm("base") and parse_arm("base").sft_dataset is None and not parse_arm("base").rl
    assert (parse_arm("rl").sft_dataset, parse_arm("rl").rl, parse_arm("rl").start) == (None, True, "base")
    assert (parse_arm("polya_sft").sft_dataset, parse_arm("polya_sft").rl) == ("polya", False)
    both = parse_arm("wrong_answer_sft_rl")
    assert (both.sft_dataset, both.rl, both.start) == ("wrong_answer", True, "wrong_answer_sft")
    assert set(DEFAULT_ARMS) <= set(valid_arm_names())
    with pytest.raises(ValueError, match="unknown arm 'polya'.*polya_sft"):
        parse_arm("polya")


def test_default_arms_are_the_papers_comparison_and_models_chain(tmp_path) -> None:
    config = RunConfig(run_dir=str(tmp_path))
    assert config.arms == ["base", "polya_sft", "rl", "polya_sft_rl"]
    assert config.sft_datasets() == ["polya"]
    assert config.rl_starts() == ["base", "polya_sft"]
    sft = config.sft_config("polya")
    assert (sft.dataset, sft.model, sft.run_dir) == ("polya", config.model, str(tmp_path))
    assert config.model_of("polya_sft") == f"{tmp_path}/sft/polya/final"
    # GRPO after SFT starts from the SFT checkpoint and writes its own folder.
    after_sft = config.rl_config("polya_sft")
    assert after_sft.model == f"{tmp_path}/sft/polya/final"
    assert after_sft.output_uri == f"{tmp_path}/rl/polya_sft"
    assert config.rl_config("base").model == config.model
    arms = config.eval_config().arms
    assert arms == {
        "base": config.model,
        "polya_sft": f"{tmp_path}/sft/polya/final",
        "rl": f"{tmp_path}/rl/base/final",
        "polya_sft_rl": f"{tmp_path}/rl/polya_sft/final",
    }
    assert config.eval_config().run_dir == str(tmp_path)


def test_the_run_model_is_the_generation_model() -> None:
    config = RunConfig(model="/models/mine")
    assert config.generate.server.model == "/models/mine"
    assert config.eval_config().arms["base"] == "/models/mine"


def test_select_builds_every_dataset_an_arm_trains_on() -> None:
    config = RunConfig(arms=["base", "star_sft", "polya@1_sft_rl", "polya@16_sft_rl", "distill_sft"], select={"datasets": ["polya"]})
    assert config.select.datasets == ["polya", "polya@1", "polya@16", "star"]  # distill: the teacher's select builds it
    assert config.sft_datasets() == ["distill", "polya@1", "polya@16", "star"]
    assert config.rl_starts() == ["polya@16_sft", "polya@1_sft"]
    assert config.model_of("polya@16_sft_rl").endswith("rl/polya@16_sft/final")


def test_distill_arms_train_on_the_teachers_dataset(tmp_path: Path) -> None:
    config = RunConfig(run_dir=str(tmp_path), arms=["base", "distill_sft_rl"], distill={"model": "/models/teacher"})
    assert config.uses_distill()
    teacher = config.distill_generate_config()
    assert teacher.run_dir == f"{tmp_path}/distill" and teacher.server.model == "/models/teacher"
    assert teacher.sampling == config.generate.sampling and teacher.data == config.generate.data  # same questions and prompts
    select = config.distill_select_config()
    assert select.run_dir == f"{tmp_path}/distill" and select.datasets == ["distill"]
    sft = config.sft_config("distill")
    assert sft.data_file == f"{tmp_path}/distill/select/distill/train.jsonl"
    assert sft.output_uri == f"{tmp_path}/sft/distill"
    assert config.rl_config("distill_sft").model == f"{tmp_path}/sft/distill/final"
    assert RunConfig(arms=["base", "distill_sft"]).distill_generate_config().server.model == config.model  # the stand-in
    assert not RunConfig(arms=["base", "polya_sft"]).uses_distill()


def test_without_arms_keeps_a_comparison() -> None:
    config = RunConfig(arms=["base", "polya_sft", "polya_sft_rl"])
    assert config.without_arms(["polya_sft", "polya_sft_rl"]).arms == ["base"]
    assert RunConfig(arms=["polya_sft"]).without_arms(["polya_sft"]).arms == ["base"]


def test_paper_preset_lies_under_the_users_settings(tmp_path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("preset: paper\nrun_dir: s3://bucket/exp\nsft:\n  epochs: 1\n", encoding="utf-8")
    config = load_config(RunConfig, file)
    assert config.model == "meta-llama/Llama-3.2-3B-Instruct"
    assert config.generate.server.model == config.model
    assert config.select.n_per_question == 16
    assert config.rl.group_size == 16 and config.rl.beta == 0.0
    assert config.rl.max_prompt_length == 1024 and config.rl.max_completion_length == 3072
    assert config.eval.sampling.n == 64 and max(config.eval.sampling.ks or [64]) == 64
    assert config.sft.epochs == 1 and config.sft.deepspeed == "zero2"  # the user's epochs win
    assert "polya@16_sft_rl" in config.arms and "star_sft" in config.arms and "distill_sft_rl" in config.arms
    assert config.generate.data.source == "hf:openai/gsm8k"


def test_unknown_preset_is_rejected_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="preset.*cpu-demo.*paper"):
        load_config(RunConfig, None, {"preset": "gpu"})
