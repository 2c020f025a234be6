"""The learner role: what each Ray Train worker runs (TRL's GRPOTrainer over DDP or DeepSpeed).

:func:`train_loop` is handed to ``ray.train.torch.TorchTrainer``; Ray starts ``num_workers``
processes, sets up the torch process group (gloo on CPU, NCCL on GPUs) and the RANK / LOCAL_RANK /
WORLD_SIZE variables, and each process runs the function. TRL's trainer then sees an ordinary
distributed launch: each worker generates its share of every group (HF generate, or vLLM colocated
or on the rollout server), sends the completions to the reward worker, and the gradients are
averaged across workers. Only the first worker writes metrics, checkpoints and the final model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from polya.core.layout import TrainingLayout
from polya.core.memory import peak_rss_mib
from polya.rl.config import RlConfig
from polya.training.checkpoints import FINAL, METRICS_FILE, replace_dir

logger = logging.getLogger(__name__)

LEARNER_RESULT = TrainingLayout.LEARNER_RESULT
"""Written by the first learner worker at the end: steps, loss, tokens, world size."""


def grpo_args(
    config: RlConfig, work_dir: str, *, deepspeed_path: str | None, bf16: bool, rollout_url: str | None,
    reward_weights: list[float], is_main: bool,
) -> Any:
    """TRL's ``GRPOConfig`` for this run (one worker's view: per-worker batch, the global group logic)."""
    from trl import GRPOConfig

    vllm = config.rollout_engine == "vllm"
    extra: dict[str, Any] = {}
    if vllm:
        extra.update(
            vllm_mode=config.rollout.vllm_mode,
            vllm_gpu_memory_utilization=config.rollout.gpu_memory_utilization,
            vllm_max_model_length=config.max_prompt_length + config.max_completion_length,
            vllm_server_timeout=config.rollout.server_timeout_s,
        )
        if rollout_url:
            extra["vllm_server_base_url"] = rollout_url
    common = config.trainer_arguments(
        output_dir=work_dir, bf16=bf16, use_cpu=not config.use_gpu, deepspeed=deepspeed_path, progress=config.progress and is_main,
    )
    return GRPOConfig(
        **common,
        per_device_train_batch_size=config.per_worker_batch,
        gradient_accumulation_steps=1,
        num_generations=config.group_size,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        top_p=config.top_p,
        beta=config.beta,
        epsilon=config.epsilon,
        epsilon_high=config.epsilon_high,
        loss_type=config.loss_type,
        scale_rewards=config.scale_rewards,
        num_iterations=config.num_iterations,
        reward_weights=reward_weights,
        use_vllm=vllm,
        data_seed=config.seed,
        log_completions=False,
        ddp_backend=("nccl" if config.use_gpu else "gloo") if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        **extra,
    )


def train_loop(loop_config: dict[str, Any]) -> None:
    """One learner worker: build the GRPOTrainer, train (resuming when told), save final/, report."""
    import ray.train
    import torch
    import torch.distributed as dist
    from datasets import Dataset
    from transformers import AutoTokenizer

    from polya.rl.callbacks import RlMetricsCallback
    from polya.rl.reward import VerifierRewards
    from polya.rl.trainer import PolyaGRPOTrainer

    config = RlConfig.model_validate(loop_config["config"])
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    context = ray.train.get_context()
    rank = context.get_world_rank()
    is_main = rank == 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not is_main:
        logging.getLogger("polya").setLevel(logging.WARNING)

    work_dir = Path(loop_config["work_dir"])
    reward_worker = loop_config["reward_worker"]
    rewards = VerifierRewards(reward_worker)
    funcs, weights = rewards.functions(config.reward.format, config.reward.correct)
    args = grpo_args(
        config, str(work_dir), deepspeed_path=loop_config.get("deepspeed_path"), bf16=bool(loop_config["bf16"]),
        rollout_url=loop_config.get("rollout_url"), reward_weights=weights, is_main=is_main,
    )

    callbacks: list[Any] = []
    if is_main:
        if config.metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(config.metrics_port)
            logger.info("Prometheus metrics on port %s", config.metrics_port)
        stats = (lambda step: ray.get(reward_worker.stats.remote(step))) if hasattr(reward_worker, "stats") else None
        callbacks.append(RlMetricsCallback(work_dir / METRICS_FILE, stats=stats, correct_weight=config.reward.correct))
        if loop_config.get("remote"):
            from polya.core.store import open_store
            from polya.training.callbacks import CheckpointUploadCallback

            callbacks.append(CheckpointUploadCallback(open_store(loop_config["output_uri"]), work_dir))

    tokenizer = AutoTokenizer.from_pretrained(loop_config["model_path"], padding_side="left", truncation_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = PolyaGRPOTrainer(
        model=loop_config["model_path"],
        reward_funcs=funcs,
        args=args,
        train_dataset=Dataset.from_list(loop_config["rows"]),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    checkpoint = loop_config.get("checkpoint")
    if checkpoint and is_main:
        logger.info("resuming from %s", checkpoint)
    result = trainer.train(resume_from_checkpoint=checkpoint)

    def write_final(tmp: Path) -> None:
        if dist.is_initialized():
            dist.barrier()  # the main process has cleared the temporary folder
        trainer.save_model(str(tmp))
        if is_main:
            tokenizer.save_pretrained(str(tmp))

    replace_dir(work_dir / FINAL, write_final, is_main)
    if dist.is_initialized():
        dist.barrier()

    state = trainer.state
    learner_result = {
        "global_step": int(state.global_step),
        "max_steps": int(state.max_steps),
        "epoch": round(float(state.epoch or 0.0), 4),
        "train_loss": float(result.training_loss) if result.training_loss is not None else None,
        "train_runtime_s": round(float(result.metrics.get("train_runtime", 0.0)), 3),
        "tokens": int(state.num_input_tokens_seen or 0),
        "world_size": int(args.world_size),
        "peak_rss_mib_rank0": peak_rss_mib(),
    }
    if is_main:
        publish_learner_outputs(loop_config, work_dir, learner_result)
    ray.train.report({"global_step": learner_result["global_step"]})


def publish_learner_outputs(loop_config: dict[str, Any], work_dir: Path, learner_result: dict[str, Any]) -> None:
    """First worker only: write the learner's result (and, for an s3:// output, final/ and metrics) to the output store.

    The driver may run on another node; it reads everything from the store, never from this node's disk.
    """
    from polya.core.store import open_store

    store = open_store(loop_config["output_uri"])
    if loop_config.get("remote"):
        for stale in store.list(FINAL):
            store.delete(stale)
        store.upload_dir(work_dir / FINAL, FINAL)
        if (work_dir / METRICS_FILE).is_file():
            store.upload_file(work_dir / METRICS_FILE, METRICS_FILE)
    store.write_json(LEARNER_RESULT, learner_result)

