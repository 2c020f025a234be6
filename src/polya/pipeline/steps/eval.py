"""The ``eval`` step: one arm (a model artifact or the base model) on the benchmarks; the output is the eval run directory."""

from __future__ import annotations

from typing import Any, Mapping

from polya.core.config import deep_merge, parse_settings_text, validate_config
from polya.core.outputs import EvalResults
from polya.pipeline.steps.common import given, prepare_output, split_list


def eval_config(
    config_yaml: str, model_dir_in: str | None, output_dir: str, model: str | None = None, benchmarks: str | None = None,
    label: str | None = None,
) -> Any:
    """The ``EvalConfig`` of one eval task: the input model artifact (or ``model``) as the arm ``label``.

    The model replaces any ``arms`` of ``config_yaml`` (one evaluation task, one arm), and of its
    ``endpoints`` (running servers by arm, shared by every eval task of a pipeline) only this arm's
    is kept; with neither a model artifact nor ``model``, the config's arms are evaluated.
    """
    from polya.eval.config import EvalConfig

    data = parse_settings_text(config_yaml, "config_yaml")
    target = model_dir_in or model
    forced: dict[str, Any] = {"run_dir": str(prepare_output(output_dir))}
    if target:
        arm = label or "model"
        data.pop("arms", None)
        if isinstance(data.get("endpoints"), dict):
            data["endpoints"] = {name: url for name, url in data["endpoints"].items() if name == arm}
        forced["arms"] = {arm: target}
    given(forced, benchmarks=split_list(benchmarks))
    return validate_config(EvalConfig, deep_merge(data, forced), "component config_yaml + pipeline parameters")


def eval_step(
    config_yaml: str, model_dir_in: str | None, output_dir: str, model: str | None = None, benchmarks: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Evaluate the input model artifact (or ``model``) as the arm ``label`` (see :func:`eval_config`); return the eval results."""
    from polya.eval.stage import run

    out = run(eval_config(config_yaml, model_dir_in, output_dir, model=model, benchmarks=benchmarks, label=label))
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
