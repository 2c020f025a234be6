"""The ``iterate`` step: close iteration k of the outer bootstrap loop for one dataset.

From the decontaminated questions, iteration k's datasets artifact (select's) and the previous
``iterate`` output (``earlier``, none for k = 1) it writes what iteration k+1 needs, with the
rules of :mod:`polya.experiment.iterations` (the same functions ``polya run`` uses):

- a questions artifact of the questions iteration k+1 asks (``star``: the ones no iteration 1..k
  solved; ``rest_em``: all);
- a datasets artifact (``select/<dataset>/train.jsonl``) of the rows iteration k's SFT trains on,
  each tagged ``iteration`` (``star``: iterations 1..k; ``rest_em``: k only), plus ``iteration.json``
  (the ids solved so far, read by the next ``iterate``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from polya.core.errors import ConfigError, DataError
from polya.core.layout import RunLayout
from polya.core.store import open_store
from polya.pipeline.steps.common import prepare_output, stage_config
from polya.pipeline.steps.data import QUESTIONS_FILE, questions_file
from polya.pipeline.steps.select import dataset_file

logger = logging.getLogger(__name__)

STATE_FILE = "iteration.json"
"""In an ``iterate`` output's datasets artifact: the dataset, iteration, style and the ids solved so far."""


def _earlier(earlier_dir: str, dataset: str, iteration: int) -> tuple[list[dict[str, Any]], set[str]]:
    """The rows and solved ids of the previous ``iterate`` output, checked to be iteration ``iteration - 1`` of ``dataset``."""
    from polya.experiment.iterations import dataset_rows

    path = Path(earlier_dir) / STATE_FILE
    if not path.is_file():
        raise ConfigError(f"earlier artifact {earlier_dir} holds no {STATE_FILE} (produce it with the iterate component)")
    state = json.loads(path.read_text(encoding="utf-8"))
    if (state.get("dataset"), state.get("iteration")) != (dataset, iteration - 1):
        raise ConfigError(
            f"earlier artifact {earlier_dir} closes iteration {state.get('iteration')} of {state.get('dataset')!r}; "
            f"iteration {iteration} of {dataset!r} needs iteration {iteration - 1} of it"
        )
    return dataset_rows(RunLayout(earlier_dir), dataset) or [], set(state.get("solved", []))


def iterate_step(
    config_yaml: str, questions_dir: str, datasets_dir: str, next_questions_dir: str, data_dir: str, dataset: str, iteration: int,
    earlier_dir: str | None = None,
) -> dict[str, Any]:
    """Write the questions iteration ``iteration + 1`` asks and the rows iteration ``iteration``'s SFT trains on; return the counts.

    ``config_yaml`` holds the ``OuterLoopConfig`` (the build's ``outer_loop``). In the ``star`` style,
    when every question is solved, the next iteration asks them all again (a task cannot be skipped
    at run time; ``polya run`` skips that generation instead) and a warning says so.
    """
    from polya.data.loader import read_questions, write_questions
    from polya.experiment.config import OuterLoopConfig
    from polya.experiment.iterations import dataset_rows, loop_rows, questions_to_ask, solved_ids

    loop = stage_config(OuterLoopConfig, config_yaml, {})
    if iteration < 1 or (iteration > 1) != bool(earlier_dir):
        raise ConfigError(f"iteration {iteration}: iteration 1 takes no earlier artifact, every later one the previous iterate output")
    records = read_questions(questions_file(questions_dir))
    rows = dataset_rows(RunLayout(datasets_dir), dataset)
    if rows is None:
        dataset_file(datasets_dir, dataset)  # raises, naming the datasets present
    earlier_rows, solved_before = _earlier(earlier_dir, dataset, iteration) if earlier_dir else ([], set())
    solved_now = solved_ids(rows or [])
    solved = solved_before | solved_now
    train = loop_rows(loop.style, iteration, rows or [], earlier_rows)
    if iteration > 1 and not train:
        which = f"iterations 1..{iteration}" if loop.style == "star" else f"iteration {iteration}"
        raise DataError(f"{which} of {dataset} selected no example, so there is nothing to fine-tune on")
    ask = set(questions_to_ask(loop.style, [r.id for r in records], solved))
    if not ask:
        logger.warning("iterate: every question of %s is solved after iteration %s; the next iteration asks them all again", dataset, iteration)
        ask = {r.id for r in records}
    asked = write_questions([r for r in records if r.id in ask], prepare_output(next_questions_dir) / QUESTIONS_FILE)
    out = prepare_output(data_dir)
    open_store(str(out)).write_jsonl(RunLayout.select.data_file(dataset), train)
    summary = {
        "iteration": iteration, "questions": len(records), "solved": len(solved_now), "solved_new": len(solved_now - solved_before),
        "solved_total": len(solved), "next_questions": asked, "sft_examples": len(train),
    }
    state = {"dataset": dataset, "iteration": iteration, "style": loop.style, **summary, "solved": sorted(solved)}
    (out / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")
    (Path(next_questions_dir) / "data.json").write_text(json.dumps({"questions": asked, "dataset": dataset, "after_iteration": iteration}, indent=2), encoding="utf-8")
    logger.info("iterate: %s iteration %s: %s", dataset, iteration, summary)
    return summary
