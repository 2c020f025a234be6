"""KFP component ``decontaminate``: leave out (or flag) the training questions that overlap the evaluation benchmarks.

Thin wrapper over ``polya.pipeline.steps.decontaminate.decontaminate_step`` -> ``polya.experiment.decontaminate.run``.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Output


@dsl.component(base_image="polya/cpu:0.1.0", install_kfp_package=False)
def decontaminate(
    questions: Input[Dataset],
    clean: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[Markdown],
    config_yaml: str = "",
    eval_config_yaml: str = "",
    benchmarks: Optional[str] = None,
    action: Optional[str] = None,
):
    """Compare the training questions with the benchmarks by word n-grams and normalised exact match.

    Args:
        questions: Questions artifact of the data component.
        clean: Output questions artifact (questions.jsonl: the questions to generate for) holding decontaminate/report.json and report.md.
        metrics: Questions checked, contaminated, removed, and per benchmark.
        report: decontaminate/report.md for the KFP UI: every match.
        config_yaml: DecontaminateConfig settings as YAML/JSON (ngrams, mask_numbers, exact, action, benchmarks).
        eval_config_yaml: EvalConfig settings as YAML/JSON: its benchmarks are checked unless config_yaml or benchmarks name others.
        benchmarks: Comma-separated benchmark names when set (the eval tasks' benchmarks parameter).
        action: drop (leave contaminated questions out) or flag (keep them, list them in the report) when set.
    """
    import logging
    import shutil

    from polya.pipeline.steps.common import log_metrics
    from polya.pipeline.steps.decontaminate import decontaminate_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = decontaminate_step(config_yaml, questions.path, clean.path, eval_config_yaml=eval_config_yaml, benchmarks=benchmarks,
                                 action=action)
    log_metrics(metrics, {k: v for k, v in summary.items() if k != "action"})
    shutil.copyfile(f"{clean.path}/decontaminate/report.md", report.path)
    clean.metadata.update({k: summary[k] for k in ("questions", "contaminated", "removed", "kept", "action")})
