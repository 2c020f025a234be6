"""KFP component ``data``: load the training questions (synthetic, JSONL, Parquet, s3://, hf:) into a questions artifact.

Thin wrapper: the work is ``polya.pipeline.steps.data.data_step`` -> ``polya.data.loader.load_questions``.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Output


@dsl.component(base_image="polya/cpu:0.1.0", install_kfp_package=False)
def data(questions: Output[Dataset], config_yaml: str = "", source: Optional[str] = None, limit: Optional[int] = None) -> int:
    """Load the questions a DataConfig describes and write ``questions.jsonl``.

    Args:
        questions: Output folder with questions.jsonl (normalized records) and data.json.
        config_yaml: DataConfig settings as YAML/JSON (polya generate --print-config shows the data: section).
        source: Overrides data.source when set ('synthetic', a .jsonl/.parquet path, s3://..., hf:<id>).
        limit: Overrides data.limit when set.

    Returns:
        The number of questions written.
    """
    import logging

    from polya.pipeline.steps.data import data_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = data_step(config_yaml, questions.path, source=source, limit=limit)
    questions.metadata["questions"] = summary["questions"]
    questions.metadata["source"] = summary["source"]
    return int(summary["questions"])
