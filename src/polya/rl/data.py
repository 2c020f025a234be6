"""RL prompts: questions from any source (``DataConfig``) as chat prompts, with the reference answer.

The prompt is the plain evaluation prompt of :func:`polya.heuristics.prompts.build_messages`
(the catalog's system prompt and answer-format sentence, no heuristic, no few-shot turns), so RL
optimises exactly what evaluation measures. Prompts longer than ``max_prompt_length`` tokens (chat
template applied) are left out, as verl's ``filter_overlong_prompts`` does.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from polya.data import QuestionRecord, load_questions
from polya.errors import ConfigError, DataError
from polya.rl.config import RlConfig

logger = logging.getLogger(__name__)


@dataclass
class PromptSet:
    """The RL training rows and what was left out."""

    rows: list[dict[str, Any]]
    source: str
    dropped_too_long: int
    sha256: str


def build_prompt(question: str, config: RlConfig) -> list[dict[str, str]]:
    """The chat messages for one question."""
    from polya.heuristics.catalog import HeuristicCatalog
    from polya.heuristics.prompts import user_turn

    catalog = HeuristicCatalog.load()
    system = catalog.system_prompt if config.system_prompt is None else config.system_prompt
    answer_format = catalog.answer_format if config.answer_format is None else config.answer_format
    messages = [{"role": "system", "content": system.strip()}] if system.strip() else []
    content = user_turn(question, answer_format) if answer_format.strip() else f"Problem: {question.strip()}"
    messages.append({"role": "user", "content": content})
    return messages


def prompt_rows(records: list[QuestionRecord], config: RlConfig) -> list[dict[str, Any]]:
    """One TRL row per question: ``prompt`` (chat messages), ``answer`` (the reference) and ``question_id``."""
    return [{"prompt": build_prompt(r.question, config), "answer": r.answer, "question_id": r.id} for r in records]


def load_prompts(config: RlConfig, tokenizer: Any) -> PromptSet:
    """Load the questions, build the prompts and drop the ones over ``max_prompt_length`` tokens."""
    questions = load_questions(config.data)
    rows = prompt_rows(list(questions.records), config)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError(f"model {config.model!r}: its tokenizer has no chat template; RL prompts are chat messages")
    kept, dropped = [], 0
    for row in rows:
        ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        if len(ids) > config.max_prompt_length:
            dropped += 1
            continue
        kept.append(row)
    if dropped:
        logger.warning("left out %d of %d prompts longer than max_prompt_length=%d tokens", dropped, len(rows), config.max_prompt_length)
    if len(kept) < config.prompts_per_step:
        raise DataError(
            f"data: {len(kept)} usable questions from {questions.source} ({dropped} over max_prompt_length={config.max_prompt_length} tokens), "
            f"but one step needs {config.prompts_per_step} prompts (batch_size {config.batch_size} / group_size {config.group_size}); "
            "use more questions (data.limit / data.synthetic.count), a larger max_prompt_length or a smaller batch_size"
        )
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
    return PromptSet(rows=kept, source=questions.source, dropped_too_long=dropped, sha256=digest)
