"""The ``rl`` step: GRPO from the input model artifact (or the base model: vanilla RL)."""

from __future__ import annotations

from typing import Any

from polya.core.config import parse_settings_text
from polya.core.layout import TrainingLayout, join_uri
from polya.core.store import copy_folder_in, copy_folder_out
from polya.pipeline.steps.cluster import require_s3, submit_and_wait, training_run
from polya.pipeline.steps.common import (
    given,
    read_summary,
    stage_config,
    write_summary,
)


def rl_step(
    config_yaml: str, model_dir_in: str | None, model_dir: str, start: str = "base", model: str | None = None,
    group_size: int | None = None, max_steps: int | None = None, checkpoint_root: str | None = None, cluster: str | None = None,
    api_client: Any | None = None,
) -> dict[str, Any]:
    """GRPO from ``model_dir_in`` (an SFT artifact) or ``model`` (no artifact: vanilla RL), as the arm starting at ``start``.

    In the pod: ``polya.rl.stage.run``. With a ``rayjob`` cluster target: the input model goes to
    MinIO, a RayJob runs ``polya rl`` on its head (``ray_address: auto``, the KubeRay cluster) with
    the model's ``s3://`` URI, and ``final/`` is downloaded from MinIO.
    """
    from polya.pipeline.jobs import job_name
    from polya.rl.config import RlConfig

    source = model_dir_in or model
    digest, run_dir, target = training_run("rl", checkpoint_root, cluster, config=config_yaml, start=start, model=source,
                                           group_size=group_size, max_steps=max_steps, model_summary=read_summary(model_dir_in))
    forced = given({"run_dir": run_dir, "start": start}, model=source or None, group_size=group_size, max_steps=max_steps)
    if target is None:
        from polya.rl.stage import run

        final_uri = run(stage_config(RlConfig, config_yaml, forced)).final_uri
    else:
        require_s3(run_dir, target)
        if model_dir_in:
            forced["model"] = copy_folder_out(model_dir_in, join_uri(run_dir, "inputs", "model"))
        if not parse_settings_text(config_yaml, "config_yaml").get("ray_address"):
            forced["ray_address"] = "auto"
        cfg = stage_config(RlConfig, config_yaml, forced)
        config_file = "/tmp/polya-rl.yaml"
        submit_and_wait(target, job_name("polya-rl", digest), "rl", ["polya", "rl", "--config", config_file], cfg, config_file, api_client=api_client)
        final_uri = join_uri(cfg.output_uri, TrainingLayout.FINAL)
    copy_folder_in(final_uri, model_dir)
    summary = {"final": final_uri, "run_dir": run_dir, "from": source, "start": start}
    write_summary(model_dir, summary)
    return summary
