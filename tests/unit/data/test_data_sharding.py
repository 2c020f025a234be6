"""The rule that splits questions into shards: disjoint, covering, stable, and roughly even."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from polya.data.sharding import QuestionShard, shard_of

IDS = [f"gsm8k-train-{i}" for i in range(2000)] + ["synthetic-0-0", "qa", "", "élan|42"]


@pytest.mark.parametrize("count", [1, 2, 3, 8, 16])
def test_every_question_is_in_exactly_one_shard(count: int) -> None:
    shards = [QuestionShard(index=k, count=count) for k in range(count)]
    for qid in IDS:
        assert [s.index for s in shards if s.contains(qid)] == [shard_of(qid, count)]
        assert 0 <= shard_of(qid, count) < count
    sizes = [sum(s.contains(q) for q in IDS) for s in shards]
    assert sum(sizes) == len(IDS) and min(sizes) > len(IDS) / count * 0.8  # no shard is left nearly idle


def test_the_shard_of_a_question_depends_on_its_id_alone() -> None:
    # Pinned values: the same on every machine and Python process (not the salted hash()), so resumed shards ask the same questions.
    assert [shard_of(f"q{i}", 2) for i in range(6)] == [1, 0, 1, 1, 1, 1]
    assert [shard_of(q, 3) for q in ("qa", "qb", "qc")] == [0, 0, 1]
    shuffled = random.Random(0).sample(IDS, len(IDS))
    assert {q: shard_of(q, 5) for q in shuffled} == {q: shard_of(q, 5) for q in IDS[:100] + IDS[100:]}


def test_shard_settings_are_checked() -> None:
    assert QuestionShard().count == 1 and QuestionShard().contains("anything")
    with pytest.raises(ValidationError, match=r"shard.index must be in 0 .. 1 \(shard.count - 1\), got 2"):
        QuestionShard(index=2, count=2)
    with pytest.raises(ValidationError, match="count"):
        QuestionShard(count=0)
    with pytest.raises(ValueError, match="at least 1 shard"):
        shard_of("q", 0)
