"""The ``report`` step: the comparison of several evaluation artifacts."""

from __future__ import annotations

from typing import Mapping

from polya.core.errors import ConfigError
from polya.core.layout import RunLayout
from polya.pipeline.steps.common import prepare_output


def report_step(evaluations: Mapping[str, str], output_dir: str) -> list[str]:
    """Compare the evaluation artifacts (arm -> run directory) into ``output_dir``; return the files written."""
    from polya.eval.report import write_comparison

    if not evaluations:
        raise ConfigError("the report needs at least one evaluation artifact")
    out = prepare_output(output_dir)
    write_comparison({label: RunLayout(str(folder)).uri(RunLayout.eval.root) for label, folder in evaluations.items()}, str(out))
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
