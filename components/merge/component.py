"""KFP component ``merge``: join the generations of the shards of one generation (the build's ``generate.shards``) into one.

Thin wrapper over ``polya.pipeline.steps.generate.merge_step`` -> ``polya.generate.merge.merge_shards``.
KFP cannot pass a list of artifacts from separate tasks, so the shards' generations come in up to
16 optional slots, in any order (each shard's ``generate/config.json`` says which shard it is).
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

SLOTS = 16


@dsl.component(base_image="polya/cpu:0.1.0", install_kfp_package=False)
def merge(
    generations: Output[Dataset],
    metrics: Output[Metrics],
    generations_1: Optional[Input[Dataset]] = None,
    generations_2: Optional[Input[Dataset]] = None,
    generations_3: Optional[Input[Dataset]] = None,
    generations_4: Optional[Input[Dataset]] = None,
    generations_5: Optional[Input[Dataset]] = None,
    generations_6: Optional[Input[Dataset]] = None,
    generations_7: Optional[Input[Dataset]] = None,
    generations_8: Optional[Input[Dataset]] = None,
    generations_9: Optional[Input[Dataset]] = None,
    generations_10: Optional[Input[Dataset]] = None,
    generations_11: Optional[Input[Dataset]] = None,
    generations_12: Optional[Input[Dataset]] = None,
    generations_13: Optional[Input[Dataset]] = None,
    generations_14: Optional[Input[Dataset]] = None,
    generations_15: Optional[Input[Dataset]] = None,
    generations_16: Optional[Input[Dataset]] = None,
):
    """Merge the shards' generations artifacts into one that the select component reads.

    Args:
        generations: Output run folder holding generate/ (config, every shard's questions and records, the summed summary) and manifest.json.
        metrics: Samples, correct samples, pairs solved, completion tokens of all shards together.
        generations_1: Generations artifact of one shard's generate task (generations_2 ... the other shards'); read only.
    """
    import logging

    from polya.pipeline.steps.common import log_metrics
    from polya.pipeline.steps.generate import merge_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    slots = [
        generations_1, generations_2, generations_3, generations_4, generations_5, generations_6, generations_7, generations_8,
        generations_9, generations_10, generations_11, generations_12, generations_13, generations_14, generations_15, generations_16,
    ]
    summary = merge_step([s.path for s in slots if s is not None], generations.path)
    log_metrics(metrics, summary)
    generations.metadata.update(summary)
