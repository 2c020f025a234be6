"""KFP component ``iterate``: close one iteration of the outer bootstrap loop (STaR / ReST-EM) for one dataset.

Thin wrapper over ``polya.pipeline.steps.iterate.iterate_step``, which applies the loop's rules of
``polya.experiment.iterations`` (the same as ``polya run``'s).
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output


@dsl.component(base_image="polya/cpu:0.1.0", install_kfp_package=False)
def iterate(
    questions: Input[Dataset],
    datasets: Input[Dataset],
    next_questions: Output[Dataset],
    data: Output[Dataset],
    metrics: Output[Metrics],
    earlier: Optional[Input[Dataset]] = None,
    config_yaml: str = "",
    dataset: str = "polya",
    iteration: int = 1,
):
    """Write the questions the next iteration asks and the rows this iteration's SFT trains on.

    Args:
        questions: Questions artifact of the decontaminate component (its clean output): every question of the loop.
        datasets: Datasets artifact of this iteration's select component.
        next_questions: Output questions artifact: what the next iteration's generate asks (star: the unsolved ones; rest_em: all).
        data: Output datasets artifact: select/<dataset>/train.jsonl, the rows this iteration's SFT trains on (tagged iteration), and iteration.json.
        metrics: Questions, solved (new, total), next questions, SFT examples.
        earlier: The previous iteration's iterate output (data); none for iteration 1.
        config_yaml: OuterLoopConfig settings as YAML/JSON (iterations, style).
        dataset: The select dataset of the loop (the <dataset>_sft arms).
        iteration: This iteration's number (1: the pipeline's own select).
    """
    import logging

    from polya.pipeline.steps.common import log_metrics
    from polya.pipeline.steps.iterate import iterate_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = iterate_step(config_yaml, questions.path, datasets.path, next_questions.path, data.path, dataset=dataset, iteration=iteration,
                           earlier_dir=earlier.path if earlier else None)
    log_metrics(metrics, summary)
    data.metadata.update({"dataset": dataset, "iteration": iteration, "examples": summary["sft_examples"]})
    next_questions.metadata.update({"questions": summary["next_questions"]})
