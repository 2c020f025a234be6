"""Join the ``generate/`` folders of the N shards of one generation (``shard.count`` N) into one.

Each shard is a generate run that asked only its part of the questions (:mod:`polya.data.sharding`).
``merge_shards(sources, run_dir)`` writes into ``<run_dir>/generate/`` what the select stage reads
from one unsplit run:

    config.json         the shards' identity and settings, less the shard (they must agree on everything else)
    questions.jsonl     every shard's questions, in shard order
    generations/...     every shard's record files, renumbered per folder (records are not rewritten)
    summary.json        the shards' summaries added up (counts summed, shared settings kept, peaks the largest)

and records the ``generate`` stage as done in the run's manifest. It fails, naming the shard, when
a shard has not finished, when the shards were made with other settings, when their indexes are
not each of 0 .. N-1 once, when two shards hold the same question, or when a shard's summary
does not count the records it holds.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from polya.core.errors import ConfigError, DataError
from polya.core.layout import RunLayout
from polya.core.manifest import record_stage
from polya.core.outputs import GenerateSummary, iter_generations
from polya.core.store import open_store
from polya.core.store.base import ArtifactStore
from polya.core.store.shards import shard_paths
from polya.data.sharding import QuestionShard

logger = logging.getLogger(__name__)

STAGE = "generate"

SAME = ("heuristics", "rounds_configured", "plain", "excluded_questions", "solved_before")
"""Summary fields every shard has alike (settings, not counts)."""
LARGEST = ("peak_rss_mib", "peak_rss_mib_children", "elapsed_s")
"""Summary fields that are the largest shard's (the shards ran side by side)."""
RATES = {"pair_solve_rate": ("pairs_solved", "pairs")}
"""Summary fields computed again from the summed counts."""


def add_summaries(summaries: list[dict[str, Any]], where: list[str]) -> dict[str, Any]:
    """The summaries of the shards as one: counts added, :data:`SAME` fields checked alike, :data:`LARGEST` the largest."""

    def add(values: list[Any], key: str, path: str) -> Any:
        given = [v for v in values if v is not None]
        if not given:
            return None
        if path in SAME or isinstance(given[0], (str, list)):
            if any(v != given[0] for v in given):
                shown = "; ".join(f"{w}: {v!r}" for w, v in zip(where, values))
                raise DataError(f"the shards' summaries differ in {path} ({shown}): they are not shards of one generation")
            return given[0]
        if key in LARGEST:
            return max(given)
        if isinstance(given[0], bool):
            return any(given)
        if isinstance(given[0], (int, float)):
            return sum(given)
        if isinstance(given[0], dict):
            keys = list(dict.fromkeys(k for v in given for k in v))
            return {k: add([v.get(k) for v in given], k, f"{path}.{k}") for k in keys}
        raise DataError(f"cannot add the shards' {path} values {given!r}")

    keys = list(dict.fromkeys(k for s in summaries for k in s))
    merged = {k: add([s.get(k) for s in summaries], k, k) for k in keys}
    for rate, (part, whole) in RATES.items():
        if rate in merged:
            merged[rate] = round(merged[part] / merged[whole], 4) if merged.get(whole) else 0.0
    if isinstance(merged.get("this_invocation"), dict):
        run = merged["this_invocation"]
        run["completion_tokens_per_s"] = round(run["new_completion_tokens"] / run["elapsed_s"], 2) if run.get("elapsed_s") else 0.0
    return merged


@dataclass
class Shard:
    """One finished shard: where it is, which shard it is, and what its ``generate/`` holds."""

    store: ArtifactStore
    where: str
    shard: QuestionShard
    identity: dict[str, Any]
    """The settings that decide what was generated, less the shard."""
    settings: dict[str, Any]
    questions: list[dict[str, Any]]
    summary: dict[str, Any]

    @classmethod
    def read(cls, run_dir: str) -> "Shard":
        store = open_store(run_dir)
        paths, where = RunLayout.generate, store.uri(RunLayout.generate.root)
        missing = [p for p in (paths.config, paths.questions, paths.summary) if not store.exists(p)]
        if missing:
            raise ConfigError(f"{where} is not a finished generation (no {', '.join(missing)}): run that shard's generate task again")
        config = store.read_json(paths.config)
        identity = dict(config.get("identity") or {})
        try:  # no shard: the whole question set, shard 0 of 1
            shard = QuestionShard.model_validate(identity.pop("shard", None) or {})
        except ValueError as exc:
            raise DataError(f"{where}/config.json names an invalid shard: {exc}") from None
        settings = {k: v for k, v in (config.get("config") or {}).items() if k != "shard"}
        return cls(store, where, shard, identity, settings, store.read_jsonl(paths.questions), store.read_json(paths.summary))


def _check_fit(shards: list[Shard]) -> None:
    """The shards are shard 0 .. N-1 of N once each, made with the same settings, of disjoint questions, each counting its records."""
    count = len(shards)
    if [(s.shard.index, s.shard.count) for s in shards] != [(i, count) for i in range(count)]:
        shown = ", ".join(f"{s.shard.index} of {s.shard.count}" for s in shards)
        raise DataError(
            f"{count} shards must be shard 0 .. {count - 1} of {count} once each; these are shards {shown} ({', '.join(s.where for s in shards)})"
        )
    first = shards[0]
    for other in shards[1:]:
        changed = sorted(k for k in set(other.identity) | set(first.identity) if other.identity.get(k) != first.identity.get(k))
        if changed:
            raise DataError(
                f"{other.where} was generated with other settings than {first.where} (differ: {', '.join(changed)}): not shards of one generation"
            )
    owner: dict[str, str] = {}
    overlap: list[str] = []
    for shard in shards:
        for q in shard.questions:
            qid = str(q["id"])
            if qid in owner:
                overlap.append(f"{qid} ({owner[qid]} and {shard.where})")
            owner.setdefault(qid, shard.where)
    if overlap:
        raise DataError(
            f"the shards must hold disjoint questions, but {len(overlap)} are in two: {'; '.join(overlap[:5])}{' ...' if len(overlap) > 5 else ''}"
        )
    for shard in shards:
        held = sum(1 for _ in iter_generations(shard.store, check=False))
        if held != shard.summary.get("samples"):
            raise DataError(
                f"{shard.where}/summary.json counts {shard.summary.get('samples')} samples but the shard holds {held} records: "
                "run that shard's generate task again to finish it and rewrite its summary"
            )


def merge_shards(sources: list[str], run_dir: str) -> GenerateSummary:
    """Join the ``generate/`` folders of the run directories ``sources`` (the N shards, any order) into ``run_dir``."""
    if not sources:
        raise ConfigError("merge_shards needs the run directories of the shards, got none")
    shards = sorted((Shard.read(s) for s in sources), key=lambda s: s.shard.index)
    _check_fit(shards)
    summary = GenerateSummary.model_validate(add_summaries([s.summary for s in shards], [s.where for s in shards]))

    out, paths = open_store(run_dir), RunLayout.generate
    if out.exists(paths.config) or out.list(paths.generations):
        raise ConfigError(f"{out.uri(paths.root)} already holds generations: merge the shards into an empty run directory")
    count, settings = len(shards), shards[0].settings
    with record_stage(out, STAGE, {**settings, "shards": count}) as record:
        out.write_json(paths.config, {"identity": shards[0].identity, "config": settings, "shards": count})
        out.write_jsonl(paths.questions, (q for shard in shards for q in shard.questions))
        next_part: dict[str, int] = {}
        for shard in shards:  # the files as they are, numbered on per folder: the readers' order is shard 0's records first
            for path in shard_paths(shard.store, paths.generations):
                folder = path.rsplit("/", 1)[0]
                part = next_part.get(folder, 0)
                next_part[folder] = part + 1
                out.write_bytes(f"{folder}/part-{part:06d}-{secrets.token_hex(4)}.jsonl", shard.store.read_bytes(path))
        out.write_json(paths.summary, summary.dump())
        record.artifacts = [paths.config, paths.questions, paths.summary, *out.list(paths.generations)]
        record.outputs = {k: getattr(summary, k) for k in ("samples", "correct_samples", "pairs_solved", "pairs")}
    logger.info(
        "merged %s shards: %s questions, %s samples (%s correct), %s/%s pairs solved",
        count, summary.questions, summary.samples, summary.correct_samples, summary.pairs_solved, summary.pairs,
    )
    return summary
