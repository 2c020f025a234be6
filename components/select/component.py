"""KFP component ``select``: keep correct solutions, score heuristic adherence, write the arms' SFT datasets.

Thin wrapper over ``polya.pipeline.steps.select_step`` -> ``polya.select.stage.run``.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output


@dsl.component(base_image="polya/cpu:0.1.0", install_kfp_package=False)
def select(
    generations: Input[Dataset],
    datasets: Output[Dataset],
    metrics: Output[Metrics],
    config_yaml: str = "",
    arms: str = "",
    n_per_question: int = 0,
    verifier_endpoint: str = "",
):
    """Build D_Pólya and the baseline datasets from a generations artifact.

    Args:
        generations: Generations artifact of the generate component (read only).
        datasets: Output run folder holding select/<arm>/train.jsonl, dataset cards and select/report.json.
        metrics: Examples and questions per arm.
        config_yaml: SelectConfig settings as YAML/JSON; the parameters below override it when set.
        arms: Comma-separated arms (polya, star, wrong_answer, breadth, depth).
        n_per_question: The paper's n when above 0.
        verifier_endpoint: Verifier service URL for reverify; empty: in-process.
    """
    import logging

    from polya.pipeline.steps import log_metrics, select_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arms_out = select_step(config_yaml, generations.path, datasets.path, arms=arms, n_per_question=n_per_question, verifier_endpoint=verifier_endpoint)
    log_metrics(metrics, {name: {"examples": arm["examples"], "questions": arm["questions"]} for name, arm in arms_out.items()})
    datasets.metadata.update({name: arm["examples"] for name, arm in arms_out.items()})
