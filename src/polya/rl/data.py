"""RL prompts: questions from any source (``DataConfig``) as chat prompts, with the reference answer.

The prompt is the plain evaluation prompt of :func:`polya.heuristics.prompts.build_messages`
(the catalog's system prompt and answer-format sentence, no heuristic, no few-shot turns), so RL
optimises exactly what evaluation measures. Prompts longer than ``max_prompt_length`` tokens (chat
template applied) are left out, as verl's ``filter_overlong_prompts`` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from polya.core.digest import digest
from polya.core.errors import ConfigError, DataError
from polya.data import QuestionRecord, load_questions
from polya.heuristics import HeuristicCatalog, plain_messages
from polya.rl.config import RlConfig

logger = logging.getLogger(__name__)


@dataclass
class PromptSet:
    """The RL training rows and what was left out."""

    rows: list[dict[str, Any]]
    source: str
    dropped_too_long: int
    sha256: str
    longest_prompt: int = 0
    """Tokens of the longest kept prompt (chat template applied): what the memory estimate pads to."""


def build_prompt(question: str, config: RlConfig, catalog: HeuristicCatalog | None = None) -> list[dict[str, str]]:
    """The chat messages for one question: the plain prompt evaluation uses."""
    catalog = catalog or HeuristicCatalog.load()
    return plain_messages(question, catalog, system_prompt=config.system_prompt, answer_format=config.answer_format)


def prompt_rows(records: list[QuestionRecord], config: RlConfig) -> list[dict[str, Any]]:
    """One TRL row per question: ``prompt`` (chat messages), ``answer`` (the reference) and ``question_id``."""
    catalog = HeuristicCatalog.load()
    return [{"prompt": build_prompt(r.question, config, catalog), "answer": r.answer, "question_id": r.id} for r in records]


def load_prompts(config: RlConfig, tokenizer: Any) -> PromptSet:
    """Load the questions, build the prompts and drop the ones over ``max_prompt_length`` tokens."""
    questions = load_questions(config.data)
    rows = prompt_rows(list(questions.records), config)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError(f"model {config.model!r}: its tokenizer has no chat template; RL prompts are chat messages")
    kept, dropped, longest = [], 0, 0
    for row in rows:
        ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        if len(ids) > config.max_prompt_length:
            dropped += 1
            continue
        longest = max(longest, len(ids))
        kept.append(row)
    if dropped:
        logger.warning("left out %d of %d prompts longer than max_prompt_length=%d tokens", dropped, len(rows), config.max_prompt_length)
    if len(kept) < config.prompts_per_step:
        raise DataError(
            f"data: {len(kept)} usable questions from {questions.source} ({dropped} over max_prompt_length={config.max_prompt_length} tokens), "
            f"but one step needs {config.prompts_per_step} prompts (batch_size {config.batch_size} / group_size {config.group_size}); "
            "use more questions (data.limit / data.synthetic.count), a larger max_prompt_length or a smaller batch_size"
        )
    return PromptSet(rows=kept, source=questions.source, dropped_too_long=dropped, sha256=digest(kept), longest_prompt=longest)
