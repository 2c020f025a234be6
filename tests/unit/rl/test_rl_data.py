"""RL prompts: the evaluation prompt by default, overlong prompts left out, too few questions refused."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from polya.core.errors import DataError
from polya.heuristics.catalog import HeuristicCatalog
from polya.rl.config import RlConfig
from polya.rl.data import build_prompt, load_prompts


def test_default_prompt_is_the_catalogs_plain_prompt() -> None:
    catalog = HeuristicCatalog.load()
    messages = build_prompt("What is 2 + 2?", RlConfig())
    assert messages[0] == {"role": "system", "content": catalog.system_prompt.strip()}
    assert "What is 2 + 2?" in messages[1]["content"] and catalog.answer_format.strip() in messages[1]["content"]


def test_empty_system_prompt_and_format_leave_only_the_question() -> None:
    messages = build_prompt("What is 2 + 2?", RlConfig(system_prompt="", answer_format=""))
    assert messages == [{"role": "user", "content": "Problem: What is 2 + 2?"}]


def test_load_prompts_filters_long_prompts_and_checks_the_count(embedded_checkpoint: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(embedded_checkpoint)
    config = RlConfig(data={"synthetic": {"count": 6}}, group_size=2, batch_size=4)
    prompts = load_prompts(config, tokenizer)
    assert len(prompts.rows) == 6 and prompts.dropped_too_long == 0
    assert set(prompts.rows[0]) == {"prompt", "answer", "question_id"}
    with pytest.raises(DataError, match="max_prompt_length=16"):
        load_prompts(config.model_copy(update={"max_prompt_length": 16}), tokenizer)
