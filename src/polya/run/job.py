"""``polya run``: the experiment end to end, stage by stage, resumable.

Each stage is skipped when the run manifest says it finished with the same settings and its
artifacts are intact; otherwise it runs (and itself resumes whatever it had finished).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from polya.run.config import RunConfig
from polya.run.manifest import RunManifest
from polya.store import open_store

logger = logging.getLogger(__name__)


@dataclass
class RunOutputs:
    run_dir: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)


def run(config: RunConfig) -> RunOutputs:
    """Run every configured stage in order."""
    outputs = RunOutputs(config.run_dir)
    manifest = RunManifest.load_or_create(open_store(config.run_dir))
    for stage in config.stages:
        if stage == "generate":
            from polya.generate.stage import run as run_generate

            stage_config = config.generate
            if manifest.is_done(stage, stage_config.model_dump(mode="json")):
                logger.info("stage %s already done with these settings; skipping", stage)
                record = manifest.stage(stage)
                outputs.stages[stage] = dict(record.outputs) if record else {}
                continue
            result = run_generate(stage_config)
            outputs.stages[stage] = result.summary
            manifest = RunManifest.load_or_create(open_store(config.run_dir))
        elif stage == "select":
            from polya.select.stage import manifest_config
            from polya.select.stage import run as run_select

            if manifest.is_done(stage, manifest_config(config.select)):
                logger.info("stage %s already done with these settings and generations; skipping", stage)
                record = manifest.stage(stage)
                outputs.stages[stage] = dict(record.outputs) if record else {}
                continue
            selected = run_select(config.select)
            outputs.stages[stage] = selected.summary
            manifest = RunManifest.load_or_create(open_store(config.run_dir))
        elif stage == "sft":
            from polya.sft.stage import run as run_sft

            # The stage resumes from its last checkpoint and does nothing when already finished.
            trained = run_sft(config.sft)
            outputs.stages[stage] = trained.summary
            manifest = RunManifest.load_or_create(open_store(config.run_dir))
    return outputs
