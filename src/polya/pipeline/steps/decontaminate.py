"""The ``decontaminate`` step: the decontaminate stage on a questions artifact; the output is the clean questions artifact.

The output folder is both a questions artifact (``questions.jsonl``: the questions generation
keeps, read by the generate component) and a run directory holding ``decontaminate/report.json``,
``report.md`` and ``manifest.json`` (read by the select component for its dataset cards).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from polya.core.config import deep_merge, parse_settings_text, validate_config
from polya.pipeline.steps.common import given, prepare_output, split_list
from polya.pipeline.steps.data import QUESTIONS_FILE, questions_file

logger = logging.getLogger(__name__)


def decontaminate_step(
    config_yaml: str, questions_dir: str, output_dir: str, eval_config_yaml: str = "", benchmarks: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    """Compare the questions artifact with the benchmarks; write the questions to keep and the report; return the counts.

    The benchmarks are, by precedence: ``benchmarks`` (names), ``config_yaml``'s, ``eval_config_yaml``'s
    (the eval tasks' settings, so both check the same benchmarks), the stage's default.
    """
    from polya.data.loader import write_questions
    from polya.experiment.decontaminate import DecontaminateConfig, run

    out = prepare_output(output_dir)
    evaluated = parse_settings_text(eval_config_yaml, "eval_config_yaml").get("benchmarks")
    data = deep_merge({"benchmarks": evaluated} if evaluated else {}, parse_settings_text(config_yaml, "config_yaml"))
    forced = given({"run_dir": str(out), "data": {"source": questions_file(questions_dir), "format": "jsonl"}},
                   benchmarks=split_list(benchmarks), action=action or None)
    result = run(validate_config(DecontaminateConfig, deep_merge(data, forced), "component config_yaml + pipeline parameters"))
    kept = write_questions(result.kept, out / QUESTIONS_FILE)
    summary = {**result.summary, "kept": kept}
    (out / "data.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    logger.info("decontaminate: %s -> %s", result.report.summary(), out)
    return summary
