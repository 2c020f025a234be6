"""KFP component ``rl``: GRPO with verifiable rewards, from an SFT model or (no input) the base model.

Thin wrapper over ``polya.pipeline.steps.rl.rl_step`` -> ``polya.rl.stage.run``. With ``cluster``
set (workers > 0) it submits a KubeRay RayJob (head + GPU workers) running ``polya rl``, waits
for it, and downloads the final checkpoint from MinIO.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Input, Metrics, Model, Output


@dsl.component(base_image="polya/trainer:0.1.0", install_kfp_package=False)
def rl(
    rl_model: Output[Model],
    metrics: Output[Metrics],
    model: Optional[Input[Model]] = None,
    config_yaml: str = "",
    start: str = "base",
    base_model: Optional[str] = None,
    group_size: Optional[int] = None,
    max_steps: Optional[int] = None,
    checkpoint_root: Optional[str] = None,
    cluster: Optional[str] = None,
):
    """Run GRPO and output the final HF checkpoint.

    Args:
        rl_model: Output HF checkpoint folder (plus polya-summary.json).
        metrics: What the stage reports.
        model: Model artifact to start from (an SFT output); none: start from base_model (vanilla RL).
        config_yaml: RlConfig settings as YAML/JSON.
        start: The arm the policy comes from (base or <dataset>_sft): RlConfig.start.
        base_model: RlConfig.model when there is no input model.
        group_size: RlConfig.group_size when set.
        max_steps: RlConfig.max_steps when set.
        checkpoint_root: Where checkpoints live (s3:// prefix or a mounted PVC path); unset: the pod's cache.
        cluster: JSON of a ClusterTarget (kind rayjob); unset: run in this pod.
    """
    import logging

    from polya.pipeline.steps.common import log_metrics
    from polya.pipeline.steps.rl import rl_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = rl_step(config_yaml, model.path if model is not None else None, rl_model.path, start=start, model=base_model,
                      group_size=group_size, max_steps=max_steps, checkpoint_root=checkpoint_root, cluster=cluster)
    log_metrics(metrics, {k: v for k, v in summary.items() if not isinstance(v, dict)})
    rl_model.metadata.update({"stage": "rl", "start": start, "final": summary["final"]})
