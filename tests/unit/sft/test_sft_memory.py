"""The memory check refuses the issue's setting before any weights load, against this machine's real limit.

Issue 20: ``polya sft --packing true`` with the defaults (batch_size 8, max_seq_length 2048) on the
embedded model grew to 24 GB and was killed on the 24 GiB reference machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from polya.core.errors import ConfigError
from polya.models.memory import GIB, memory_limit
from polya.sft.config import SftConfig
from polya.sft.stage import SftStage, preflight, run


@pytest.fixture()
def no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the stage gets as far as building the trainer (which loads the weights)."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model's weights were about to load")

    monkeypatch.setattr(SftStage, "build_trainer", refuse)


def test_the_issue_setting_is_refused_before_weights_load(tmp_path: Path, chat_jsonl: Path, no_weights: None) -> None:
    if memory_limit().bytes > 40 * GIB:
        pytest.skip("this machine has room for the issue's setting (about 42 GiB)")
    config = SftConfig(run_dir=str(tmp_path / "run"), packing=True, batch_size=8, max_seq_length=2048, progress=False)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        run(config)
    assert time.monotonic() - started < 60
    message = str(info.value)
    assert message.startswith("sft of embedded:smollm2-135m-instruct (batch_size 8 x max_seq_length 2048, packing true) needs about")
    for knob in ("lower batch_size (the largest that fits at max_seq_length 2048: ", "or max_seq_length (the largest that fits at batch_size 8: ",
                 "grad_accumulation", "gradient_checkpointing true", "packing false", "lora.enabled true", "memory_check off"):
        assert knob in message
    assert not (tmp_path / "run" / "sft").exists()


def test_the_largest_values_named_fit(tmp_path: Path, chat_jsonl: Path) -> None:
    config = SftConfig(run_dir=str(tmp_path / "run"), packing=True, batch_size=8, max_seq_length=2048)
    try:
        preflight(config)
        pytest.skip("this machine has room for the issue's setting")
    except ConfigError as exc:
        message = str(exc)
    rows = int(message.split("at max_seq_length 2048: ")[1].split(")")[0])
    length = int(message.split("at batch_size 8: ")[1].split(")")[0])
    assert 1 <= rows < 8 and 32 <= length < 2048
    preflight(config.model_copy(update={"batch_size": rows}))
    preflight(config.model_copy(update={"max_seq_length": length}))


def test_small_settings_and_memory_check_off_pass(tmp_path: Path, chat_jsonl: Path) -> None:
    preflight(SftConfig(run_dir=str(tmp_path / "run"), packing=True, batch_size=2, max_seq_length=256))
    preflight(SftConfig(run_dir=str(tmp_path / "run"), packing=True, batch_size=8, max_seq_length=2048, memory_check="off"))


def test_unpacked_rows_are_as_long_as_the_longest_example(tmp_path: Path, chat_jsonl: Path) -> None:
    """Without packing a row holds one example padded to its batch's longest: the defaults (batch_size 8,
    max_seq_length 2048) fit on short data, and the estimate grows with the data's longest example."""
    from polya.models.resolve import load_config_and_tokenizer
    from polya.sft.data import load_chat_dataset, longest_example_tokens
    from polya.sft.stage import check_memory

    defaults = SftConfig(run_dir=str(tmp_path / "run"), progress=False)
    assert (defaults.packing, defaults.batch_size, defaults.max_seq_length) == (False, 8, 2048)
    plan = preflight(defaults)
    model_path, model_config, tokenizer = load_config_and_tokenizer(defaults.model)
    longest = longest_example_tokens(load_chat_dataset(str(chat_jsonl)), tokenizer)
    assert 10 < longest < 2048
    short = check_memory(defaults, model_path, model_config, cuda=False, bf16=False, world_size=1, deepspeed_path=None, longest=longest)
    assert short is not None and plan.memory_estimate == short.total
    assert f"rows of the longest example, {longest} tokens" in short.what
    # Long examples: the same settings would fill every row to max_seq_length, and are refused here.
    if memory_limit().bytes < 40 * GIB:
        with pytest.raises(ConfigError, match=r"batch_size 8 x max_seq_length 2048, packing false"):
            check_memory(defaults, model_path, model_config, cuda=False, bf16=False, world_size=1, deepspeed_path=None, longest=4000)
