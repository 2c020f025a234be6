"""The ``generate`` step: the generate stage on a questions artifact (or one shard of it); the output artifact is its run directory.

The ``merge`` step joins the artifacts of the shards of one generation into one.
"""

from __future__ import annotations

import shutil
from typing import Any

from polya.core.layout import MANIFEST, RunLayout
from polya.pipeline.steps.common import given, prepare_output, split_list, stage_config
from polya.pipeline.steps.data import questions_file


def generate_step(
    config_yaml: str, questions_dir: str, output_dir: str, model: str | None = None, heuristics: str | None = None,
    rounds: int | None = None, samples: int | None = None, token_budget: int | None = None, endpoint: str | None = None,
    verifier_endpoint: str | None = None, model_dir_in: str | None = None, plain: bool | None = None,
    shard_index: int | None = None, shard_count: int | None = None,
) -> dict[str, Any]:
    """Run the generate stage on the questions artifact; return the summary's counts.

    ``model_dir_in`` (a model artifact, e.g. the previous SFT of the outer loop) replaces ``model``
    and is served by vLLM in this pod: a running ``endpoint`` (serving another model) is not used.
    ``shard_index`` of ``shard_count`` asks only that shard of the questions (``GenerateConfig.shard``);
    :func:`merge_step` joins the shards' artifacts.
    """
    from polya.generate.config import GenerateConfig
    from polya.generate.stage import run

    forced = {"run_dir": str(prepare_output(output_dir)), "data": {"source": questions_file(questions_dir), "format": "jsonl"}}
    if model_dir_in:
        model, endpoint = model_dir_in, None
        forced["server"] = {"endpoint": None}
    given(forced, server__model=model or None, plain=plain, heuristics=split_list(heuristics), bootstrap__rounds=rounds, bootstrap__samples=samples,
          bootstrap__token_budget=token_budget, server__endpoint=endpoint or None, verifier_endpoint=verifier_endpoint or None,
          shard__index=shard_index, shard__count=shard_count)
    out = run(stage_config(GenerateConfig, config_yaml, forced))
    return _counts(out.summary)


def merge_step(generations_dirs: list[str], output_dir: str) -> dict[str, Any]:
    """Join the generations artifacts of the shards of one generation into ``output_dir``; return the summed counts.

    The output is a generations artifact like one unsplit generate task's (``generate/`` and the
    manifest), so select reads it unchanged. Overlapping questions, missing or repeated shards and
    unfinished shards fail (:func:`polya.generate.merge.merge_shards`).
    """
    from polya.generate.merge import merge_shards

    out = prepare_output(output_dir)
    shutil.rmtree(out / RunLayout.generate.root, ignore_errors=True)  # what a retried task's first attempt left
    (out / MANIFEST).unlink(missing_ok=True)
    return _counts(merge_shards(generations_dirs, str(out)).dump())


def _counts(summary: dict[str, Any]) -> dict[str, Any]:
    """The counts of a generate summary a KFP task shows as metrics."""
    keys = ("samples", "correct_samples", "pairs_solved", "pairs", "completion_tokens")
    return {k: summary[k] for k in keys if k in summary}
