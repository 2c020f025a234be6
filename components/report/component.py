"""KFP component ``report``: compare the evaluations of the arms (tables and plots across models).

Thin wrapper over ``polya.pipeline.steps.report.report_step`` -> ``polya.eval.report.write_comparison``.
KFP cannot pass a list of artifacts from separate tasks, so the evaluations come in up to
12 optional slots, named by ``labels`` in slot order.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output

SLOTS = 12


@dsl.component(base_image="polya/cpu:0.1.0", install_kfp_package=False)
def report(
    comparison: Output[Dataset],
    summary: Output[Markdown],
    labels: str,
    eval_1: Optional[Input[Dataset]] = None,
    eval_2: Optional[Input[Dataset]] = None,
    eval_3: Optional[Input[Dataset]] = None,
    eval_4: Optional[Input[Dataset]] = None,
    eval_5: Optional[Input[Dataset]] = None,
    eval_6: Optional[Input[Dataset]] = None,
    eval_7: Optional[Input[Dataset]] = None,
    eval_8: Optional[Input[Dataset]] = None,
    eval_9: Optional[Input[Dataset]] = None,
    eval_10: Optional[Input[Dataset]] = None,
    eval_11: Optional[Input[Dataset]] = None,
    eval_12: Optional[Input[Dataset]] = None,
):
    """Write the comparison of the given evaluation artifacts.

    Args:
        comparison: Output folder written by write_comparison (tables, plots).
        summary: The comparison's Markdown report for the KFP UI (when one was written).
        labels: Comma-separated arm names, one per filled slot, in slot order.
        eval_1: Evaluation artifact of the first arm (eval_2 ... the next ones).
    """
    import logging
    import os
    import shutil

    from polya.pipeline.steps.common import split_list
    from polya.pipeline.steps.report import report_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    slots = [eval_1, eval_2, eval_3, eval_4, eval_5, eval_6, eval_7, eval_8, eval_9, eval_10, eval_11, eval_12]
    filled = [s for s in slots if s is not None]
    names = split_list(labels) or []
    if len(names) != len(filled):
        raise ValueError(f"labels names {len(names)} arms ({labels!r}) but {len(filled)} evaluation slots are filled")
    files = report_step({name: art.path for name, art in zip(names, filled)}, comparison.path)
    comparison.metadata["files"] = files
    markdown = [f for f in files if f.endswith(".md")]
    if markdown:
        shutil.copyfile(os.path.join(comparison.path, markdown[0]), summary.path)
    else:
        with open(summary.path, "w", encoding="utf-8") as handle:
            handle.write("# Comparison\n\n" + "\n".join(f"- {f}" for f in files) + "\n")
