"""The one normalized question record every stage reads."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class QuestionRecord(BaseModel):
    """A training or evaluation question with its reference answer.

    ``answer`` is the final answer only (``72``, ``\\frac{1}{2}``), already extracted from GSM8K's
    ``#### 72`` or MATH's ``\\boxed{...}``; ``solution`` keeps the original worked solution when
    the source has one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable unique id within the source (used for resume and joins).")
    question: str = Field(description="The problem statement shown to the model.")
    answer: str = Field(description="The reference final answer, as a string.")
    solution: str | None = Field(default=None, description="The source's worked solution, when present.")
    source: str = Field(description="Where the record came from (source name, file or hub id).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Extra source fields (level, subject, template...).")
