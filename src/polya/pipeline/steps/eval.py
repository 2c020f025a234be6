"""The ``eval`` step: one arm (a model artifact or the base model) on the benchmarks; the output is the eval run directory."""

from __future__ import annotations

from typing import Any, Mapping

from polya.core.config import deep_merge, parse_settings_text, validate_config
from polya.core.outputs import EvalResults
from polya.pipeline.steps.common import given, prepare_output, split_list


def eval_step(
    config_yaml: str, model_dir_in: str | None, output_dir: str, model: str | None = None, benchmarks: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Evaluate the input model artifact (or ``model``) as the arm ``label``; return the eval results.

    The model replaces any ``arms`` of ``config_yaml`` (one evaluation task, one arm); with neither
    a model artifact nor ``model``, the config's arms are evaluated.
    """
    from polya.eval.config import EvalConfig
    from polya.eval.stage import run

    data = parse_settings_text(config_yaml, "config_yaml")
    target = model_dir_in or model
    forced: dict[str, Any] = {"run_dir": str(prepare_output(output_dir))}
    if target:
        data.pop("arms", None)
        forced["arms"] = {label or "model": target}
    given(forced, benchmarks=split_list(benchmarks))
    out = run(validate_config(EvalConfig, deep_merge(data, forced), "component config_yaml + pipeline parameters"))
    return dict(out.results)


def eval_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """pass@k per benchmark from eval results (``<benchmark>/pass@<k>``; ``<arm>/...`` with several arms)."""
    table = EvalResults.model_validate(results).pass_at_k()
    out: dict[str, float] = {}
    for arm, benchmarks in table.items():
        prefix = f"{arm}/" if len(table) > 1 else ""
        for bench, numbers in benchmarks.items():
            for k, value in numbers.items():
                out[f"{prefix}{bench}/pass@{k}"] = float(value)
    return out
