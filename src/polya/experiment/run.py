"""``polya run``: the experiment end to end, stage by stage, resumable.

decontaminate (the training questions against eval's benchmarks) -> generate -> select -> sft (one
model per ``<dataset>_sft`` arm) -> rl (one per ``*rl`` arm) -> eval (every arm) -> the comparison
report. With ``outer_loop.iterations`` K > 1, the sft stage goes on with iterations 2..K of generate
-> select -> SFT per dataset, each generating with the previous iteration's SFT model in
``<run_dir>/iterations/<dataset>/iter-NN/`` (see :mod:`polya.experiment.iterations`). With a ``distill_*`` arm, generate and select also run for the teacher model in
``<run_dir>/distill/`` (its own manifest), whose ``distill`` dataset that arm trains on. Each stage
is skipped when the run manifest says it finished with the same settings and its artifacts are
intact, or resumes what it had finished: generate skips stored requests, sft and rl resume from
their last checkpoint, eval skips the finished (arm, benchmark) parts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from polya.core.layout import RunLayout
from polya.core.manifest import RunManifest
from polya.core.outputs import read_select_report
from polya.core.store import open_store
from polya.experiment.arms import parse_arm
from polya.experiment.config import DISTILL, RunConfig
from polya.experiment.decontaminate import share_report

logger = logging.getLogger(__name__)


@dataclass
class RunOutputs:
    run_dir: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    report_uri: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    """Arms left out, with the reason (an empty SFT dataset: the model solved nothing to learn from)."""
    iterations: list[dict[str, Any]] = field(default_factory=list)
    """The outer bootstrap loop's per-iteration table (empty when the loop is off)."""


def _skip(manifest: RunManifest, stage: str, settings: dict[str, Any], outputs: RunOutputs, prefix: str = "") -> bool:
    if not manifest.is_done(stage, settings):
        return False
    logger.info("stage %s%s already done with these settings; skipping", prefix, stage)
    record = manifest.stage(stage)
    outputs.stages[prefix + stage] = dict(record.outputs) if record else {}
    return True


def empty_datasets(config: RunConfig) -> dict[str, str]:
    """Select datasets the arms need that hold no examples, with the reason (from select's report)."""
    empty = {}
    for dataset in config.sft_datasets():
        run_dir = RunLayout(config.run_dir).distill().root if dataset == DISTILL else config.run_dir
        report = read_select_report(open_store(run_dir))
        reason = report.empty_reason(dataset) if report is not None else None
        if reason:
            empty[dataset] = f"{reason}; raise the generate budgets or use a stronger model"
    return empty


def _run_stage(stage: str, name: str, stage_config: Any, outputs: RunOutputs) -> dict[str, Any]:
    """Run (or skip, when its manifest says it is done with these settings) one stage run ``name``."""
    prefix = name[: -len(stage)] if name.endswith(f"/{stage}") else ""  # "distill/": the teacher's run
    if stage == "decontaminate":
        from polya.experiment.decontaminate import run as run_decontaminate

        manifest = RunManifest.load_or_create(open_store(stage_config.run_dir))
        if _skip(manifest, stage, stage_config.identity(), outputs):
            return {}
        return {name: run_decontaminate(stage_config).summary}
    if stage == "generate":
        from polya.generate.stage import manifest_config as generate_manifest
        from polya.generate.stage import run as run_generate

        if prefix:  # the teacher (or an iteration) answers the same decontaminated questions: its run gets the run's report
            share_report(outputs.run_dir, stage_config.run_dir)
        manifest = RunManifest.load_or_create(open_store(stage_config.run_dir))
        if _skip(manifest, stage, generate_manifest(stage_config), outputs, prefix):
            return {}
        return {name: run_generate(stage_config).summary}
    if stage == "select":
        from polya.select.stage import manifest_config
        from polya.select.stage import run as run_select

        manifest = RunManifest.load_or_create(open_store(stage_config.run_dir))
        if _skip(manifest, stage, manifest_config(stage_config), outputs, prefix):
            return {}
        return {name: run_select(stage_config).summary}
    if stage == "sft":  # each training resumes from its last checkpoint and does nothing once finished
        from polya.sft.stage import run as run_sft

        return {name: run_sft(stage_config).summary}
    if stage == "rl":
        from polya.rl.stage import run as run_rl

        return {name: run_rl(stage_config).summary}
    from polya.eval.stage import run as run_eval

    evaluated = run_eval(stage_config)
    return {name: evaluated.results, "_report_uri": evaluated.report_uri}


def _run_outer_loop(config: RunConfig, outputs: RunOutputs) -> None:
    """Iterations 2..K of the outer bootstrap loop, dataset by dataset (see :mod:`polya.experiment.iterations`).

    Each iteration is its own run directory with its own manifest, so a re-run skips the finished
    iterations' generate and select and resumes SFT from its last checkpoint. A ``rest_em``
    iteration that selects no example leaves its arms out (nothing to fine-tune on).
    """
    from polya.experiment import iterations

    for dataset in config.loop_datasets():
        if any(parse_arm(arm).sft_dataset == dataset for arm in outputs.skipped):
            continue
        for index in range(2, config.outer_loop.iterations + 1):
            stages = config.iteration_configs(dataset, index)
            prefix = RunLayout(config.run_dir).relative(config.iteration_layout(dataset, index).root)
            asked = iterations.prepare(config, dataset, index)
            logger.info("outer loop: %s iteration %s of %s asks %s questions", dataset, index, config.outer_loop.iterations, asked)
            if asked:
                for stage in ("generate", "select"):
                    outputs.stages.update(_run_stage(stage, f"{prefix}/{stage}", stages[stage], outputs))
            if config.outer_loop.style == "star":
                iterations.write_cumulative_data(config, dataset, index)
            else:
                report = read_select_report(open_store(config.iteration_layout(dataset, index).root))
                reason = report.empty_reason(dataset) if report is not None else "select did not run"
                if reason:
                    for arm in config.arms:
                        if parse_arm(arm).sft_dataset == dataset:
                            outputs.skipped[arm] = f"outer loop iteration {index}: {reason}"
                            logger.warning("arm %s is left out: %s", arm, outputs.skipped[arm])
                    break
            sft_name = RunLayout.sft(dataset).prefix
            outputs.stages.update(_run_stage("sft", f"{prefix}/{sft_name}", stages[sft_name], outputs))
    table = iterations.write_summary(config)
    outputs.iterations = table
    logger.info("outer loop: per-iteration table -> %s", RunLayout(config.run_dir).uri(RunLayout.ITERATIONS_REPORT))


def preflight(config: RunConfig) -> None:
    """What can be checked before any server starts or model loads: the adherence scorer can be had."""
    if "select" in config.stages:
        from polya.select.scorers import check_scorer

        check_scorer(config.select.scorer)


def run(config: RunConfig) -> RunOutputs:
    """Run every configured stage in order, for the configured arms."""
    preflight(config)
    outputs = RunOutputs(config.run_dir)
    store = open_store(config.run_dir)
    RunManifest.load_or_create(store)
    store.write_json(RunLayout.RUN_CONFIG, config.effective())
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
                store.write_json(RunLayout.RUN_CONFIG, config.effective())
        # Every stage runs with exactly the settings --print-config shows and run.json records.
        planned = {
            name: cfg for name, cfg in config.stage_configs().items()
            if not name.startswith(f"{RunLayout.ITERATIONS}/") and (name.split("/")[-1] == stage or name.startswith(f"{stage}/"))
        }
        for name, stage_config in planned.items():
            outputs.stages.update(_run_stage(stage, name, stage_config, outputs))
            if stage == "eval":
                outputs.report_uri = outputs.stages.pop("_report_uri", None)
        if stage == "sft" and config.loop_datasets():
            already = set(outputs.skipped)
            _run_outer_loop(config, outputs)
            if set(outputs.skipped) - already:
                config = config.without_arms(list(outputs.skipped))
                store.write_json(RunLayout.RUN_CONFIG, config.effective())
    return outputs
