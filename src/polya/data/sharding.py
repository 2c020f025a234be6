"""Which questions are in shard k of N: the one rule by which parallel workers split a question set.

A question is in shard ``shard_of(question_id, count)``: the first eight bytes of the SHA-256 of
its id, read as an integer, modulo ``count``. The rule looks at the id alone, so the shards are

- disjoint and covering: every question is in exactly one of the ``count`` shards;
- stable: an id lands in the same shard in every process and on every machine (unlike Python's
  salted ``hash``), whatever the order of the questions or which others are in the set, so a
  resumed shard asks for the same questions it asked before.

>>> [shard_of(f"q{i}", 2) for i in range(6)]
[1, 0, 1, 1, 1, 1]
>>> QuestionShard(index=0, count=2).contains("q1")
True
"""

from __future__ import annotations

import hashlib

from pydantic import Field, model_validator

from polya.core.config import StageConfig

MAX_SHARDS = 1024


def shard_of(question_id: str, count: int) -> int:
    """The shard (0 .. ``count`` - 1) question ``question_id`` is in when a set is split into ``count`` shards."""
    if count < 1:
        raise ValueError(f"a question set is split into at least 1 shard, got {count}")
    return int.from_bytes(hashlib.sha256(question_id.encode("utf-8")).digest()[:8], "big") % count


class QuestionShard(StageConfig):
    """One of ``count`` disjoint parts of the question set (:func:`shard_of` decides which questions)."""

    index: int = Field(default=0, ge=0, description="Which shard to work on, 0 .. count - 1.")
    count: int = Field(default=1, ge=1, le=MAX_SHARDS, description="Number of shards the questions are split into (1: all questions).")

    @model_validator(mode="after")
    def _index_below_count(self) -> "QuestionShard":
        if self.index >= self.count:
            raise ValueError(f"shard.index must be in 0 .. {self.count - 1} (shard.count - 1), got {self.index}")
        return self

    def contains(self, question_id: str) -> bool:
        """Whether question ``question_id`` is in this shard."""
        return self.count == 1 or shard_of(question_id, self.count) == self.index
