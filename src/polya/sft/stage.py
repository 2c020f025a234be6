"""The mid-training stage: TRL's SFTTrainer on the selected solutions, loss on the assistant turn only.

``run(config)`` is the one entry point; the CLI, the KFP component and the tests all call it.

Layout under the output (``<run_dir>/sft/<dataset>/`` by default, :class:`polya.core.layout.TrainingLayout`)::

    config.json              settings that decide what is trained (checked on resume)
    checkpoint-N/            every save_steps: HF model + tokenizer + optimizer/scheduler/RNG state
    final/                   the trained model in HF format (save_pretrained + tokenizer); vLLM loads it
    adapter/                 LoRA only: the adapter alone (final/ holds base + adapter merged)
    metrics.jsonl            one line per logging step: loss, learning_rate, tokens, tokens_per_s, ...
    summary.json             the run's result: steps, losses, tokens/s, peak memory, resumed_from

Running the same command again resumes from the last complete checkpoint (``resume: auto``).
With an ``s3://`` output the trainer writes to a local folder (``local_dir``), each checkpoint is
uploaded as soon as it is saved, and a fresh machine downloads the last one before resuming.

On CPU (and on one GPU) it runs as a plain process::

    polya sft --run-dir runs/demo                                     # embedded SmolLM2-135M, CPU
    polya sft --run-dir runs/exp --model Qwen/Qwen2.5-3B --packing true --bf16 on

On N GPUs, launch the same command through accelerate, torchrun or deepspeed with a ZeRO preset
(``configs/deepspeed/zero2.json``, ``zero3.json``, ``zero3_offload.json``)::

    accelerate launch --num_processes 8 -m polya.cli.main sft --deepspeed zero3 --run-dir s3://b/runs/exp ...
    torchrun --nproc_per_node 8 -m polya.cli.main sft --deepspeed zero2 ...
    deepspeed --num_gpus 8 --no_local_rank --module polya.cli.main sft --deepspeed zero3_offload ...

(``--no_local_rank``: the deepspeed launcher would otherwise append ``--local_rank``, which polya
does not take; every launcher sets the LOCAL_RANK variable that the trainer reads.) Only the
main process writes metrics, the summary and the manifest and uploads checkpoints. Under ZeRO each
rank saves its shard of the optimizer state into ``checkpoint-N/global_stepN/``: on several nodes
put ``local_dir`` on storage every node shares, or an uploaded checkpoint lacks the other nodes'
shards. More in docs/sft.md.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polya.core.errors import ConfigError
from polya.core.manifest import record_stage
from polya.core.memory import peak_memory
from polya.core.store import ArtifactStore, open_store
from polya.models import load_config_and_tokenizer
from polya.models.memory import MemoryEstimate, MemoryLimit
from polya.sft.callbacks import SftMetricsCallback
from polya.sft.config import STAGE, SftConfig
from polya.sft.data import (
    ChatDataset,
    LossMask,
    build_train_dataset,
    exists,
    load_chat_dataset,
    longest_example_tokens,
    resolve_loss_mask,
)
from polya.sft.trainer import FLASH_KERNELS, PolyaSFTTrainer, uses_packed_rows
from polya.training import checkpoints as ckpt
from polya.training import zero

logger = logging.getLogger(__name__)

ADAPTER = "adapter"


@dataclass
class SftOutputs:
    """What the stage produced and where."""

    run_dir: str
    output_uri: str
    final_uri: str
    local_dir: str
    summary: dict[str, Any]
    adapter_uri: str | None = None


@dataclass
class Plan:
    """Everything preflight checked and resolved, before any model weights load."""

    dataset: ChatDataset
    model_path: str
    tokenizer: Any
    loss_mask: LossMask
    deepspeed_path: Path | None
    cuda: bool
    bf16: bool
    world_size: int
    output_store: ArtifactStore
    work_dir: Path
    remote: bool
    estimated_steps: int
    notes: list[str] = field(default_factory=list)
    memory_estimate: int | None = None
    """Bytes :func:`check_memory` estimated for this process (None with ``memory_check: off``)."""


# ----- small helpers ------------------------------------------------------------------------
def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _dataset_uri(config: SftConfig) -> str:
    if config.data_file:
        return config.data_file
    candidates = config.default_data_files()
    for candidate in candidates:
        if exists(candidate):
            return candidate
    raise ConfigError(
        f"dataset: no training data for select dataset {config.dataset!r} at {' or '.join(candidates)}; run `polya select` first "
        "(or set data_file to a JSONL/Parquet file of chat rows)"
    )


def _hidden_size(model_config: Any) -> int:
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    size = getattr(text, "hidden_size", None) or getattr(text, "d_model", None)
    return int(size) if size else 4096


# ----- preflight ----------------------------------------------------------------------------
def check_memory(
    config: SftConfig, model_path: str, model_config: Any, *, cuda: bool, bf16: bool, world_size: int,
    deepspeed_path: Path | None, limit: MemoryLimit | None = None, longest: int | None = None,
) -> MemoryEstimate | None:
    """Refuse (``memory_check`` error) or warn about settings whose estimated memory exceeds this
    machine's ``limit`` (default: the cgroup limit or MemTotal; with CUDA, this rank's GPU), before any
    weights load. :mod:`polya.training.memory` has the estimate and its calibration.

    A packed row is ``max_seq_length`` tokens; an unpacked row is as long as its batch's longest
    example, so without packing the rows are ``longest`` tokens (the dataset's longest example, when
    given) up to ``max_seq_length``."""
    if config.memory_check == "off":
        return None
    seq_len = config.max_seq_length if config.packing or longest is None else min(config.max_seq_length, longest)
    rows_of = f"max_seq_length {seq_len}" if seq_len == config.max_seq_length else f"rows of the longest example, {seq_len} tokens"
    from polya.models.memory import ModelShape, gpu_memory, memory_limit
    from polya.training.memory import MachineShare, TrainingSetup, check_training_memory

    attn = config.attn_implementation
    zero_opt = (zero.read_config(deepspeed_path).get("zero_optimization") or {}) if deepspeed_path else {}
    setup = TrainingSetup(
        rows=config.batch_size, seq_len=seq_len, dtype=config.dtype, mixed_bf16=bf16,
        attention="flash" if attn in FLASH_KERNELS else ("eager" if attn == "eager" else "sdpa"),
        gradient_checkpointing=config.gradient_checkpointing,
        lora_targets=tuple(config.lora.target_modules) if config.lora.enabled else None, lora_rank=config.lora.r,
        zero_stage=zero_opt.get("stage") if deepspeed_path else None,
        offload_optimizer=(zero_opt.get("offload_optimizer") or {}).get("device") in ("cpu", "nvme"),
        offload_params=(zero_opt.get("offload_param") or {}).get("device") in ("cpu", "nvme"),
        world_size=world_size, on_gpu=cuda,
    )
    hints = [
        "gradient_checkpointing true" if not config.gradient_checkpointing else "",
        "packing false (rows only as long as each batch's longest example)" if config.packing else "",
        "attn_implementation sdpa (eager keeps every layer's seq x seq scores)" if attn == "eager" else "",
        "lora.enabled true (only adapters are trained)" if not config.lora.enabled else "",
        "deepspeed zero2/zero3 over several GPUs" if cuda and deepspeed_path is None else "",
        "dtype bfloat16" if config.dtype == "float32" else "",
    ]
    share = MachineShare(learners=1 if cuda else int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return check_training_memory(
        ModelShape.read(model_path, model_config), setup, share, mode=config.memory_check,
        limit=limit or (gpu_memory(_local_rank()) if cuda else memory_limit()),
        what=f"sft of {config.model} (batch_size {config.batch_size} x {rows_of}, packing {str(config.packing).lower()})",
        rows_name="batch_size", length_name="max_seq_length", hints=tuple(h for h in hints if h),
        accumulation=("grad_accumulation", config.grad_accumulation),
    )


def preflight(config: SftConfig) -> Plan:
    """Check everything a user can get wrong, before any model weights load.

    Dataset present and made of chat rows; DeepSpeed file found, parsed and accepted by DeepSpeed
    (with GPUs present); peft importable for LoRA; model and tokenizer resolvable, the tokenizer
    with a chat template that supports the loss mask; the estimated memory fits this machine
    (:func:`check_memory`); the output store reachable.
    """
    import torch

    cuda = torch.cuda.is_available()
    bf16 = {"on": True, "off": False}.get(config.bf16, cuda and torch.cuda.is_bf16_supported())
    world_size = int(os.environ.get("WORLD_SIZE", "1"))

    dataset = load_chat_dataset(_dataset_uri(config), config.data_file_format)

    if config.lora.enabled:
        if importlib.util.find_spec("peft") is None:
            raise ConfigError("lora.enabled needs the peft package: pip install peft (or set lora.enabled false)")

    deepspeed_path = zero.resolve_path(config.deepspeed) if config.deepspeed else None
    if deepspeed_path is not None and not cuda:
        raise ConfigError(
            f"deepspeed ({config.deepspeed}) trains on CUDA GPUs and none is visible; unset deepspeed for the "
            "single-process CPU path, or run on a GPU machine"
        )

    model_path, model_config, tokenizer = load_config_and_tokenizer(config.model)
    loss_mask = resolve_loss_mask(config.loss_mask, tokenizer)

    per_step = config.batch_size * config.grad_accumulation * world_size
    estimated = config.max_steps or max(1, int(-(-len(dataset) // per_step) * config.epochs))
    if deepspeed_path is not None:
        zero.check_config(
            deepspeed_path, config, per_device_batch=config.batch_size, grad_accumulation=config.grad_accumulation,
            hidden_size=_hidden_size(model_config), num_training_steps=estimated, bf16=bf16, world_size=world_size,
        )

    longest = None if config.packing or config.memory_check == "off" else longest_example_tokens(dataset, tokenizer)
    estimate = check_memory(
        config, model_path, model_config, cuda=cuda, bf16=bf16, world_size=world_size, deepspeed_path=deepspeed_path, longest=longest,
    )

    output_store = open_store(config.output_uri)
    plan = Plan(
        dataset=dataset, model_path=model_path, tokenizer=tokenizer, loss_mask=loss_mask, deepspeed_path=deepspeed_path,
        cuda=cuda, bf16=bf16, world_size=world_size, output_store=output_store,
        work_dir=ckpt.work_dir(STAGE, config.output_uri, config.local_dir, config.remote), remote=config.remote, estimated_steps=estimated,
        memory_estimate=estimate.total if estimate is not None else None,
    )
    if loss_mask == "prompt_completion":
        plan.notes.append("chat template has no {% generation %} markers: prompt/completion rows, loss on the last assistant turn")
    return plan


# ----- the stage ----------------------------------------------------------------------------
def manifest_config(config: SftConfig, dataset_sha256: str | None = None) -> dict[str, Any]:
    """What the run manifest records for the stage: the settings plus the dataset's digest."""
    return {**config.model_dump(mode="json"), "inputs": {"dataset_sha256": dataset_sha256}}


class SftStage:
    """One execution of the stage (one process of a possibly distributed run)."""

    def __init__(self, config: SftConfig):
        self.config = config
        self.is_main = _rank() == 0

    # ----- resume bookkeeping --------------------------------------------------------------
    def _identity(self, plan: Plan) -> dict[str, Any]:
        return {**self.config.identity(), "dataset_sha256": plan.dataset.sha256}

    # ----- trainer -------------------------------------------------------------------------
    def training_args(self, plan: Plan) -> Any:
        """TRL's ``SFTConfig`` for this run."""
        from trl import SFTConfig as TrlSFTConfig

        cfg = self.config
        common = cfg.trainer_arguments(
            output_dir=str(plan.work_dir), bf16=plan.bf16, use_cpu=not plan.cuda,
            deepspeed=str(plan.deepspeed_path) if plan.deepspeed_path else None, progress=cfg.progress,
        )
        common["model_init_kwargs"]["attn_implementation"] = self._attn_implementation()
        return TrlSFTConfig(
            **common,
            per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accumulation,
            max_length=cfg.max_seq_length,
            packing=cfg.packing,
            packing_strategy="bfd",
            assistant_only_loss=plan.loss_mask == "generation_markers",
            completion_only_loss=True if plan.loss_mask == "prompt_completion" else None,
            logging_first_step=True,
            dataloader_num_workers=cfg.dataloader_workers,
            include_num_input_tokens_seen=self._token_counting(),
        )

    def _attn_implementation(self) -> str:
        return "sdpa" if self.config.attn_implementation == "auto" else self.config.attn_implementation

    def _packed_rows(self) -> bool:
        return uses_packed_rows(self.config.packing, self._attn_implementation())

    def _token_counting(self) -> str:
        """How the trainer counts tokens seen: real (non-padding) tokens in every mode."""
        if self._packed_rows():
            return "no"  # PackedRowsCollator counts them (PolyaSFTTrainer adds them up)
        return "all" if self.config.packing else "non_padding"  # flash packing is padding-free

    def peft_config(self) -> Any:
        if not self.config.lora.enabled:
            return None
        from peft import LoraConfig as PeftLoraConfig

        lora = self.config.lora
        targets: Any = "all-linear" if lora.target_modules == ["all-linear"] else lora.target_modules
        return PeftLoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets, task_type="CAUSAL_LM"
        )

    def build_trainer(self, plan: Plan, args: Any, callbacks: list[Any]) -> Any:
        """The SFTTrainer over the plan's dataset (loads the model)."""
        train_dataset = build_train_dataset(plan.dataset, plan.loss_mask)
        try:
            return PolyaSFTTrainer(
                model=plan.model_path,
                args=args,
                train_dataset=train_dataset,
                processing_class=plan.tokenizer,
                peft_config=self.peft_config(),
                callbacks=callbacks,
                packed_rows=self._packed_rows(),
            )
        except ValueError as exc:
            if "target modules" in str(exc).lower() or "target_modules" in str(exc):
                raise ConfigError(f"lora.target_modules {self.config.lora.target_modules}: {exc}") from None
            raise

    # ----- final model -----------------------------------------------------------------------
    def _save_final(self, trainer: Any, plan: Plan) -> tuple[Path, Path | None]:
        """Write final/ (and adapter/ with LoRA) atomically: into a temp folder, then renamed."""
        work = plan.work_dir
        adapter_dir: Path | None = None
        if self.config.lora.enabled:
            adapter_dir = ckpt.replace_dir(work / ADAPTER, lambda tmp: trainer.save_model(str(tmp)), self.is_main)
            if self.config.lora.merge:
                final_dir = ckpt.replace_dir(work / ckpt.FINAL, lambda tmp: self._merge_adapter(plan, adapter_dir, tmp), self.is_main)
            else:
                final_dir = adapter_dir
            return final_dir, adapter_dir
        return ckpt.replace_dir(work / ckpt.FINAL, lambda tmp: trainer.save_model(str(tmp)), self.is_main), None

    def _merge_adapter(self, plan: Plan, adapter_dir: Path | None, target: Path) -> None:
        if not self.is_main:
            return
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        assert adapter_dir is not None
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "auto": "auto"}[self.config.dtype]
        base = AutoModelForCausalLM.from_pretrained(plan.model_path, dtype=dtype)
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        merged.save_pretrained(str(target))
        plan.tokenizer.save_pretrained(str(target))

    # ----- entry -------------------------------------------------------------------------------
    def run(self) -> SftOutputs:
        cfg = self.config
        plan = preflight(cfg)
        identity = self._identity(plan)
        digest = ckpt.identity_digest(identity)
        ckpt.check_identity(plan.output_store, cfg.resume, identity, "use another output (or dataset)")

        done = ckpt.finished_summary(plan.output_store, cfg.resume, digest)
        if done is not None:
            logger.info("%s already holds a finished run with these settings; nothing to train", plan.output_store.uri())
            return self._outputs(plan, done)

        with record_stage(cfg.run_dir if self.is_main else None, cfg.manifest_stage, manifest_config(cfg, plan.dataset.sha256)) as record:
            summary = self._train(plan, identity, digest)
            names = (ckpt.FINAL, ckpt.SUMMARY, ckpt.METRICS_FILE) + ((ADAPTER,) if cfg.lora.enabled else ())
            record.artifacts = ckpt.run_artifacts(cfg.run_dir, plan.output_store, names)
            record.outputs = {k: summary.get(k) for k in ("global_step", "train_loss", "tokens", "tokens_per_s", "final", "resumed_from")}
        return self._outputs(plan, summary)

    def _train(self, plan: Plan, identity: dict[str, Any], digest: str) -> dict[str, Any]:
        cfg = self.config
        args = self.training_args(plan)  # sets up the distributed state under a launcher
        state = args.distributed_state
        plan.work_dir.mkdir(parents=True, exist_ok=True)
        if _local_rank() == 0:
            if cfg.resume == "off":
                ckpt.start_over(plan.work_dir, plan.output_store, plan.remote, (ckpt.METRICS_FILE, ckpt.SUMMARY))
            else:
                ckpt.resumable_checkpoint(plan.work_dir, plan.output_store, plan.remote)  # fetches a newer stored one
        if self.is_main:
            plan.output_store.write_json(ckpt.IDENTITY, {"identity": identity, "config": cfg.model_dump(mode="json")})
        state.wait_for_everyone()

        checkpoint = ckpt.last_local_checkpoint(plan.work_dir) if cfg.resume == "auto" else None
        resumed_step = ckpt.checkpoint_step(checkpoint.name) if checkpoint else None
        if self.is_main and resumed_step is not None:
            ckpt.trim_metrics(plan.work_dir, resumed_step)
        if checkpoint is not None:
            logger.info("resuming from %s (step %s)", checkpoint, resumed_step)

        if self.is_main and cfg.metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(cfg.metrics_port)

        metrics_cb = SftMetricsCallback(plan.work_dir / ckpt.METRICS_FILE)
        callbacks: list[Any] = [metrics_cb]
        if plan.remote:
            from polya.training.callbacks import CheckpointUploadCallback

            callbacks.append(CheckpointUploadCallback(plan.output_store, plan.work_dir))
        for note in plan.notes:
            logger.info("%s", note)
        trainer = self.build_trainer(plan, args, callbacks)
        logger.info(
            "training %s on %s examples of %s (loss mask %s, packing %s, lora %s, deepspeed %s, bf16 %s)",
            cfg.model, len(plan.dataset), plan.dataset.uri, plan.loss_mask, cfg.packing, cfg.lora.enabled,
            plan.deepspeed_path.name if plan.deepspeed_path else None, plan.bf16,
        )
        started = time.monotonic()
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        train_runtime = time.monotonic() - started
        final_dir, adapter_dir = self._save_final(trainer, plan)
        state.wait_for_everyone()

        summary = self._summary(plan, trainer, result, metrics_cb, train_runtime, resumed_step, digest, final_dir, adapter_dir)
        if self.is_main:
            self._publish(plan, summary, final_dir, adapter_dir)
        return summary

    def _summary(
        self, plan: Plan, trainer: Any, result: Any, metrics_cb: SftMetricsCallback, runtime: float,
        resumed_step: int | None, digest: str, final_dir: Path, adapter_dir: Path | None,
    ) -> dict[str, Any]:
        import torch

        cfg = self.config
        state = trainer.state
        losses = [(h["step"], h["loss"]) for h in state.log_history if "loss" in h]
        session_tokens = int(state.num_input_tokens_seen or 0) - int(getattr(trainer, "_initial_num_input_tokens_seen", 0) or 0)
        store = plan.output_store
        return {
            **cfg.provenance("sft", torch.cuda.device_count() * trainer.args.world_size if plan.cuda else 0),
            "dataset": cfg.dataset,
            "model": cfg.model,
            "data_file": plan.dataset.uri,
            "dataset_sha256": plan.dataset.sha256,
            "examples": len(plan.dataset),
            "loss_mask": plan.loss_mask,
            "packing": cfg.packing,
            "lora": cfg.lora.enabled,
            "deepspeed": str(plan.deepspeed_path) if plan.deepspeed_path else None,
            "device": f"cuda x {torch.cuda.device_count()}" if plan.cuda else "cpu",
            "world_size": trainer.args.world_size,
            "bf16": plan.bf16,
            "global_step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": round(float(state.epoch or 0.0), 4),
            "train_loss": round(float(result.training_loss), 6) if result.training_loss is not None else None,
            "first_loss": losses[0][1] if losses else None,
            "last_loss": losses[-1][1] if losses else None,
            "tokens": int(state.num_input_tokens_seen or 0),
            "session_tokens": session_tokens,
            "session_runtime_s": round(runtime, 3),
            "tokens_per_s": round(session_tokens / runtime, 2) if runtime > 0 else None,
            **peak_memory(),
            "memory_estimate_mib": round(plan.memory_estimate / 2**20, 1) if plan.memory_estimate is not None else None,
            "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if plan.cuda else None,
            "resumed_from": f"checkpoint-{resumed_step}" if resumed_step is not None else None,
            "final": store.uri(ckpt.FINAL if final_dir.name == ckpt.FINAL else ADAPTER),
            "adapter": store.uri(ADAPTER) if adapter_dir is not None else None,
            "local_dir": str(plan.work_dir),
            "identity_sha256": digest,
            "completed": True,
        }

    def _publish(self, plan: Plan, summary: dict[str, Any], final_dir: Path, adapter_dir: Path | None) -> None:
        """Write the summary; with an s3:// output, upload final/, adapter/ and metrics first."""
        store = plan.output_store
        if plan.remote:
            for folder in {final_dir, adapter_dir} - {None}:
                assert folder is not None
                for stale in store.list(folder.name):
                    store.delete(stale)
                store.upload_dir(folder, folder.name)
            from polya.training.callbacks import upload_metrics

            upload_metrics(store, plan.work_dir)
        store.write_json(ckpt.SUMMARY, summary)
        logger.info(
            "trained %s steps (loss %s -> %s, %s tokens/s); final model at %s",
            summary["global_step"], summary["first_loss"], summary["last_loss"], summary["tokens_per_s"], summary["final"],
        )

    def _outputs(self, plan: Plan, summary: dict[str, Any]) -> SftOutputs:
        return SftOutputs(
            run_dir=self.config.run_dir,
            output_uri=plan.output_store.uri(),
            final_uri=str(summary.get("final") or plan.output_store.uri(ckpt.FINAL)),
            local_dir=str(plan.work_dir),
            summary=summary,
            adapter_uri=summary.get("adapter"),
        )


def run(config: SftConfig) -> SftOutputs:
    """Run (or resume) supervised fine-tuning of ``config.model`` on ``config.dataset``."""
    return SftStage(config).run()
