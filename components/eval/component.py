"""KFP component ``eval``: pass@k on the benchmarks for one model.

Thin wrapper over ``polya.pipeline.steps.eval.eval_step`` -> ``polya.eval.stage.run``.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output


@dsl.component(base_image="polya/trainer:0.1.0", install_kfp_package=False)
def evaluate(
    evaluation: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
    model: Optional[Input[Model]] = None,
    config_yaml: str = "",
    base_model: Optional[str] = None,
    benchmarks: Optional[str] = None,
    label: str = "",
):
    """Evaluate a model artifact (or base_model) and output the eval run folder.

    Args:
        evaluation: Output run folder holding eval/results.json, eval/report.md and plots.
        metrics: The numbers of results.json, flattened (benchmark/metric).
        report: eval/report.md for the KFP UI.
        model: Model artifact to evaluate; none: base_model (the zero-shot arm).
        config_yaml: EvalConfig settings as YAML/JSON.
        base_model: The model to evaluate when there is no input model (the base arm).
        benchmarks: Comma-separated benchmark names when set.
        label: The arm's name in the comparison report, as polya run names it (e.g. polya_sft_rl).
    """
    import logging
    import os
    import shutil

    from polya.pipeline.steps.common import log_metrics
    from polya.pipeline.steps.eval import eval_metrics, eval_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    results = eval_step(config_yaml, model.path if model is not None else None, evaluation.path, model=base_model, benchmarks=benchmarks, label=label)
    log_metrics(metrics, eval_metrics(results))
    evaluation.metadata["label"] = label
    md = os.path.join(evaluation.path, "eval", "report.md")
    if os.path.isfile(md):
        shutil.copyfile(md, report.path)
    else:
        with open(report.path, "w", encoding="utf-8") as handle:
            handle.write(f"# {label or 'evaluation'}\n\nNo report.md was written; see results.json.\n")
