"""The ``generate`` step: the generate stage on a questions artifact; the output artifact is its run directory."""

from __future__ import annotations

from typing import Any

from polya.pipeline.steps.common import given, prepare_output, split_list, stage_config
from polya.pipeline.steps.data import questions_file


def generate_step(
    config_yaml: str, questions_dir: str, output_dir: str, model: str | None = None, heuristics: str | None = None,
    rounds: int | None = None, samples: int | None = None, token_budget: int | None = None, endpoint: str | None = None,
    verifier_endpoint: str | None = None, model_dir_in: str | None = None, plain: bool | None = None,
) -> dict[str, Any]:
    """Run the generate stage on the questions artifact; return the summary's counts.

    ``model_dir_in`` (a model artifact, e.g. the previous SFT of the outer loop) replaces ``model``
    and is served by vLLM in this pod: a running ``endpoint`` (serving another model) is not used.
    """
    from polya.generate.config import GenerateConfig
    from polya.generate.stage import run

    forced = {"run_dir": str(prepare_output(output_dir)), "data": {"source": questions_file(questions_dir), "format": "jsonl"}}
    if model_dir_in:
        model, endpoint = model_dir_in, None
        forced["server"] = {"endpoint": None}
    given(forced, server__model=model or None, plain=plain, heuristics=split_list(heuristics), bootstrap__rounds=rounds, bootstrap__samples=samples,
          bootstrap__token_budget=token_budget, server__endpoint=endpoint or None, verifier_endpoint=verifier_endpoint or None)
    out = run(stage_config(GenerateConfig, config_yaml, forced))
    keys = ("samples", "correct_samples", "pairs_solved", "pairs", "completion_tokens")
    return {k: out.summary[k] for k in keys if k in out.summary}
