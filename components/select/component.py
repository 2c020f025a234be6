"""KFP component ``select``: keep correct solutions, score heuristic adherence, write the SFT datasets of the arms.

Thin wrapper over ``polya.pipeline.steps.select.select_step`` -> ``polya.select.stage.run``.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output


@dsl.component(base_image="polya/cpu:0.1.0", install_kfp_package=False)
def select(
    generations: Input[Dataset],
    datasets: Output[Dataset],
    metrics: Output[Metrics],
    config_yaml: str = "",
    dataset_names: Optional[str] = None,
    n_per_question: Optional[int] = None,
    verifier_endpoint: Optional[str] = None,
    decontamination: Optional[Input[Dataset]] = None,
):
    """Build D_Pólya and the baseline datasets from a generations artifact.

    Args:
        generations: Generations artifact of the generate component (read only).
        datasets: Output run folder holding select/<dataset>/train.jsonl, dataset cards and select/report.json.
        metrics: Examples and questions per dataset.
        config_yaml: SelectConfig settings as YAML/JSON; the parameters below override it when set.
        dataset_names: Comma-separated SFT datasets to build (polya, star, wrong_answer, breadth, depth).
        n_per_question: The paper's n.
        verifier_endpoint: Verifier service URL for reverify; unset: in-process.
        decontamination: Output of the decontaminate component (optional): the dataset cards say what it removed.
    """
    import logging

    from polya.pipeline.steps.common import log_metrics
    from polya.pipeline.steps.select import select_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    built = select_step(config_yaml, generations.path, datasets.path, datasets=dataset_names, n_per_question=n_per_question,
                        verifier_endpoint=verifier_endpoint, decontamination_dir=decontamination.path if decontamination else None)
    log_metrics(metrics, {name: {"examples": d["examples"], "questions": d["questions"]} for name, d in built.items()})
    datasets.metadata.update({name: d["examples"] for name, d in built.items()})
