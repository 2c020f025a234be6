"""KFP component ``sft``: mid-training (TRL SFTTrainer) on one arm's dataset.

Thin wrapper over ``polya.pipeline.steps.sft_step`` -> ``polya.sft.stage.run``. With ``cluster``
set (nodes > 1) it submits a Kubeflow PyTorchJob (torchrun + DeepSpeed over N GPU nodes), waits
for it, and downloads the final checkpoint from MinIO.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image="polya/trainer:0.1.0", install_kfp_package=False)
def sft(
    datasets: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    config_yaml: str = "",
    arm: str = "polya",
    base_model: str = "",
    max_steps: int = 0,
    learning_rate: float = 0.0,
    checkpoint_root: str = "",
    cluster: str = "",
):
    """Fine-tune the base model on select/<arm>/ and output the final HF checkpoint.

    Args:
        datasets: Datasets artifact of the select component.
        model: Output HF checkpoint folder (plus polya-summary.json).
        metrics: Steps, losses, tokens/s.
        config_yaml: SftConfig settings as YAML/JSON (e.g. deepspeed: zero3, lora, batch sizes).
        arm: Which dataset to train on.
        base_model: SftConfig.model when set.
        max_steps: SftConfig.max_steps when above 0.
        learning_rate: SftConfig.learning_rate when above 0.
        checkpoint_root: Where checkpoints live (s3:// prefix or a mounted PVC path); empty: the pod's cache.
        cluster: JSON of a ClusterTarget (kind pytorchjob) to train on N nodes; empty: train in this pod.
    """
    import logging

    from polya.pipeline.steps import log_metrics, sft_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = sft_step(config_yaml, datasets.path, model.path, arm=arm, model=base_model, max_steps=max_steps,
                       learning_rate=learning_rate, checkpoint_root=checkpoint_root, cluster=cluster)
    log_metrics(metrics, {k: v for k, v in summary.items() if not isinstance(v, dict)})
    model.metadata.update({"arm": arm, "stage": "sft", "final": summary.get("final", "")})
