"""KFP component ``sft``: mid-training (TRL SFTTrainer) on one select dataset.

Thin wrapper over ``polya.pipeline.steps.sft.sft_step`` -> ``polya.sft.stage.run``. With ``cluster``
set (nodes > 1) it submits a Kubeflow Trainer v2 TrainJob (or a Training Operator v1 PyTorchJob):
torchrun + DeepSpeed over N GPU nodes; it waits for it and downloads the final checkpoint from MinIO.
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image="polya/trainer:0.1.0", install_kfp_package=False)
def sft(
    datasets: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    config_yaml: str = "",
    dataset: str = "polya",
    base_model: Optional[str] = None,
    max_steps: Optional[int] = None,
    learning_rate: Optional[float] = None,
    checkpoint_root: Optional[str] = None,
    cluster: Optional[str] = None,
):
    """Fine-tune the base model on select/<dataset>/ and output the final HF checkpoint.

    Args:
        datasets: Datasets artifact of the select component.
        model: Output HF checkpoint folder (plus polya-summary.json).
        metrics: Steps, losses, tokens/s.
        config_yaml: SftConfig settings as YAML/JSON (e.g. deepspeed: zero3, lora, batch sizes).
        dataset: Which select dataset to train on (the <dataset>_sft arm).
        base_model: SftConfig.model when set.
        max_steps: SftConfig.max_steps when set.
        learning_rate: SftConfig.learning_rate when set.
        checkpoint_root: Where checkpoints live (s3:// prefix or a mounted PVC path); unset: the pod's cache.
        cluster: JSON of a ClusterTarget (kind trainjob or pytorchjob) to train on N nodes; unset: train in this pod.
    """
    import logging

    from polya.pipeline.steps.common import log_metrics
    from polya.pipeline.steps.sft import sft_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = sft_step(config_yaml, datasets.path, model.path, dataset=dataset, model=base_model, max_steps=max_steps,
                       learning_rate=learning_rate, checkpoint_root=checkpoint_root, cluster=cluster)
    log_metrics(metrics, {k: v for k, v in summary.items() if not isinstance(v, dict)})
    model.metadata.update({"dataset": dataset, "stage": "sft", "final": summary.get("final", "")})
