"""``TrainingConfig``: the settings ``polya sft`` and ``polya rl`` share, defined once.

Both stages train a model from ``model`` into an output folder (``polya.core.layout.TrainingLayout``)
with the same optimizer, precision, checkpoint and resume settings. Each stage's config extends this
class with what is its own (SFT: the dataset, packing, LoRA; RL: groups, rewards, rollouts, Ray).

Defaults are the field defaults below, for both stages. A stage whose usual starting point
differs says so in its presets (``RlConfig.PRESETS``: GRPO's learning rate 1e-6 with a constant
schedule, short CPU budgets), laid under the user's settings by the one preset mechanism of
:mod:`polya.core.config`; ``--help`` shows the values a stage really starts from.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from polya.core.config import StageConfig, location
from polya.core.layout import RunLayout, TrainingLayout
from polya.models import EMBEDDED_MODEL
from polya.models.memory import MEMORY_CHECK_HELP, MemoryCheck

DEEPSPEED_PRESETS = ("zero2", "zero3", "zero3_offload")
"""Names accepted by ``deepspeed`` for the configs shipped in ``polya/configs/deepspeed/``."""

Resume = Literal["auto", "off"]


def check_deepspeed(value: str | None) -> str | None:
    """A ``deepspeed`` setting: unset, a preset name, or a path to a JSON file."""
    if value is None or value in DEEPSPEED_PRESETS:
        return value
    if not value.endswith(".json"):
        raise ValueError(f"deepspeed must be one of {', '.join(DEEPSPEED_PRESETS)} or a path to a .json file")
    return value


class TrainingConfig(StageConfig):
    """What every training stage is set with: model, output, optimizer, precision, checkpoints, resume."""

    OPERATIONAL: ClassVar[frozenset[str]] = frozenset(
        {"save_steps", "save_total_limit", "logging_steps", "metrics_port", "progress", "local_dir", "resume", "memory_check"}
    )

    run_dir: str = Field(default="runs/polya", description="Run directory: a local path or an s3://bucket/prefix URI; the output defaults to a folder inside it.")
    model: str = Field(
        default=EMBEDDED_MODEL,
        description=f"Model to train: '{EMBEDDED_MODEL}' (the embedded default), an HF hub id, a local checkpoint directory (e.g. <run_dir>/sft/polya/final) or an s3:// URI of one (downloaded once).",
    )
    output: Annotated[str | None, location("a path or an s3:// URI")] = Field(default=None, description="Where checkpoints, final/, metrics.jsonl and summary.json go (local path or s3:// URI); default: a folder of run_dir.")
    local_dir: Annotated[str | None, location("a local folder")] = Field(
        default=None,
        description="Local folder training writes to when output is s3:// (checkpoints are uploaded from it); default $POLYA_CACHE_DIR/<stage>/<digest of output>. Ignored for a local output.",
    )
    epochs: float = Field(default=3.0, gt=0.0, le=1000.0, description="Passes over the data (ignored when max_steps is set).")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many optimizer steps (overrides epochs); unset: train for epochs.")
    learning_rate: float = Field(default=1e-5, gt=0.0, le=1.0, description="Peak learning rate of AdamW.")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        default="cosine", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0, description="Fraction of the optimizer steps spent warming the learning rate up from 0.")
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="Clip the gradient norm to this value.")
    bf16: Literal["auto", "on", "off"] = Field(
        default="auto", description="bfloat16 mixed precision; auto: on when training on CUDA GPUs that support it, off on CPU."
    )
    dtype: Literal["float32", "bfloat16", "auto"] = Field(
        default="float32",
        description="dtype the weights are loaded and updated in: float32 master weights (with bf16 autocast on GPU) is standard; bfloat16 halves memory; auto: the checkpoint's dtype.",
    )
    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in the backward pass: much less memory for about a third more compute."
    )
    deepspeed: str | None = Field(
        default=None,
        description=f"DeepSpeed ZeRO config (CUDA GPUs only): one of {', '.join(DEEPSPEED_PRESETS)} (polya/configs/deepspeed/<name>.json) or a path to a JSON file; unset: no DeepSpeed.",
    )
    memory_check: MemoryCheck = Field(default="error", description=MEMORY_CHECK_HELP)
    save_steps: int = Field(default=200, ge=1, description="Save a resumable checkpoint-N (HF model + optimizer state) every this many steps.")
    save_total_limit: int | None = Field(
        default=2, ge=1, description="Keep at most this many checkpoint-N folders (oldest deleted, in the store too); unset: keep all."
    )
    logging_steps: int = Field(default=10, ge=1, description="Write metrics every this many steps.")
    seed: int = Field(default=0, description="Seed for data order, sampling, dropout and initialisation.")
    resume: Resume = Field(
        default="auto",
        description="auto: continue from the last complete checkpoint in output (fetched from the store when output is s3://), or return at once when output holds a finished run with the same settings; off: start from step 0 and delete earlier checkpoints.",
    )
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port while training (unset: off).")
    progress: bool = Field(default=True, description="Show a progress bar.")

    @field_validator("run_dir")
    @classmethod
    def _run_dir(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("run_dir must be a local path or an s3://bucket/prefix URI, not empty")
        return value.rstrip("/") if value != "/" else value

    @field_validator("deepspeed")
    @classmethod
    def _deepspeed(cls, value: str | None) -> str | None:
        return check_deepspeed(value)

    @model_validator(mode="after")
    def _local_dir_is_local(self) -> "TrainingConfig":
        if self.local_dir is not None and self.local_dir.startswith("s3://"):
            raise ValueError("local_dir must be a local folder, not an s3:// URI")
        return self

    def trainer_arguments(self, *, output_dir: str, bf16: bool, use_cpu: bool, deepspeed: str | None, progress: bool) -> dict[str, Any]:
        """The HF ``TrainingArguments`` both TRL trainers (SFTConfig, GRPOConfig) take from these settings.

        Adam's betas and epsilon are the defaults the DeepSpeed check fills in (:mod:`polya.training.zero`).
        """
        import torch

        from polya.training.zero import ADAM_BETAS, ADAM_EPSILON

        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "auto": "auto"}[self.dtype]
        return {
            "output_dir": output_dir,
            "num_train_epochs": self.epochs,
            "max_steps": self.max_steps or -1,
            "learning_rate": self.learning_rate,
            "lr_scheduler_type": self.lr_scheduler,
            "warmup_steps": self.warmup_ratio,  # a float below 1 is a fraction of the steps
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "adam_beta1": ADAM_BETAS[0],
            "adam_beta2": ADAM_BETAS[1],
            "adam_epsilon": ADAM_EPSILON,
            "bf16": bf16,
            "fp16": False,
            "use_cpu": use_cpu,
            "gradient_checkpointing": self.gradient_checkpointing,
            "save_strategy": "steps",
            "save_steps": self.save_steps,
            "save_total_limit": self.save_total_limit,
            "logging_strategy": "steps",
            "logging_steps": self.logging_steps,
            "seed": self.seed,
            "deepspeed": deepspeed,
            "report_to": [],
            "disable_tqdm": not progress,
            "model_init_kwargs": {"dtype": dtype},
        }

    @property
    def remote(self) -> bool:
        """Whether the output is in an object store (training then writes to a local folder and uploads)."""
        return self.output_uri.startswith("s3://")

    @property
    def layout(self) -> TrainingLayout:
        """The stage's default output folder inside ``run_dir`` (each stage names its own)."""
        raise NotImplementedError

    @property
    def output_uri(self) -> str:
        """Where the stage's results go: ``output``, else :attr:`layout` inside ``run_dir``."""
        return self.output or RunLayout(self.run_dir).uri(self.layout.prefix)

    def provenance(self, stage: str, gpus: int) -> dict[str, Any]:
        """What every training summary records about where it came from (read back by eval's cost
        accounting): the stage, its seed, run directory and manifest record, package versions, GPUs used."""
        from polya.core.manifest import installed_versions

        return {
            "stage": stage, "seed": self.seed, "run_dir": self.run_dir, "manifest_stage": self.manifest_stage,
            "packages": installed_versions(), "gpus": gpus,
        }

    @property
    def manifest_stage(self) -> str:
        """The stage's name in the run manifest (one record per output folder of the run): the layout's folder."""
        return self.layout.prefix
