"""``polya run``: the experiment end to end, stage by stage, resumable.

decontaminate (the training questions against eval's benchmarks) -> generate -> select -> sft (one
model per ``<dataset>_sft`` arm) -> rl (one per ``*rl`` arm) -> eval (every arm) -> the comparison
report. Each stage is skipped when the run manifest says it finished with the same settings and
its artifacts are intact, or resumes what it had finished: generate skips stored requests, sft and
rl resume from their last checkpoint, eval skips the finished (arm, benchmark) parts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from polya.core.manifest import RunManifest
from polya.core.outputs import read_select_report
from polya.core.store import open_store
from polya.experiment.arms import parse_arm
from polya.experiment.config import RunConfig

logger = logging.getLogger(__name__)


@dataclass
class RunOutputs:
    run_dir: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    report_uri: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    """Arms left out, with the reason (an empty SFT dataset: the model solved nothing to learn from)."""


def _skip(manifest: RunManifest, stage: str, settings: dict[str, Any], outputs: RunOutputs) -> bool:
    if not manifest.is_done(stage, settings):
        return False
    logger.info("stage %s already done with these settings; skipping", stage)
    record = manifest.stage(stage)
    outputs.stages[stage] = dict(record.outputs) if record else {}
    return True


def empty_datasets(config: RunConfig) -> dict[str, str]:
    """Select datasets the arms need that hold no examples, with the reason (from select's report)."""
    report = read_select_report(open_store(config.run_dir))
    if report is None:
        return {}
    empty = {}
    for dataset in config.sft_datasets():
        reason = report.empty_reason(dataset)
        if reason:
            empty[dataset] = f"{reason}; raise the generate budgets or use a stronger model"
    return empty


def run(config: RunConfig) -> RunOutputs:
    """Run every configured stage in order, for the configured arms."""
    outputs = RunOutputs(config.run_dir)
    manifest = RunManifest.load_or_create(open_store(config.run_dir))
    logger.info("run %s: arms %s, stages %s", config.run_dir, ", ".join(config.arms), ", ".join(config.stages))
    for stage in config.stages:
        if stage in ("sft", "rl", "eval") and not outputs.skipped:
            for dataset, reason in empty_datasets(config).items():
                for arm in config.arms:
                    if parse_arm(arm).sft_dataset == dataset:
                        outputs.skipped[arm] = reason
                        logger.warning("arm %s is left out: %s", arm, reason)
            if outputs.skipped:
                config = config.without_arms(list(outputs.skipped))
        if stage == "decontaminate":
            from polya.experiment.decontaminate import run as run_decontaminate

            if _skip(manifest, stage, config.decontaminate.identity(), outputs):
                continue
            outputs.stages[stage] = run_decontaminate(config.decontaminate).summary
        elif stage == "generate":
            from polya.generate.stage import manifest_config as generate_manifest
            from polya.generate.stage import run as run_generate

            if _skip(manifest, stage, generate_manifest(config.generate), outputs):
                continue
            outputs.stages[stage] = run_generate(config.generate).summary
        elif stage == "select":
            from polya.select.stage import manifest_config
            from polya.select.stage import run as run_select

            if _skip(manifest, stage, manifest_config(config.select), outputs):
                continue
            outputs.stages[stage] = run_select(config.select).summary
        elif stage == "sft":
            from polya.sft.stage import run as run_sft

            # Each arm's training resumes from its last checkpoint and does nothing once finished.
            for dataset in config.sft_datasets():
                sft_config = config.sft_config(dataset)
                outputs.stages[sft_config.manifest_stage] = run_sft(sft_config).summary
        elif stage == "rl":
            from polya.rl.stage import run as run_rl

            for start in config.rl_starts():
                rl_config = config.rl_config(start)
                outputs.stages[rl_config.manifest_stage] = run_rl(rl_config).summary
        elif stage == "eval":
            from polya.eval.stage import run as run_eval

            evaluated = run_eval(config.eval_config())
            outputs.stages[stage] = evaluated.results
            outputs.report_uri = evaluated.report_uri
        manifest = RunManifest.load_or_create(open_store(config.run_dir))
    return outputs
