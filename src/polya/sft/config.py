"""``SftConfig``: every setting of the mid-training stage (``polya sft --help``).

Pure value checks happen here (pydantic, before anything is read); the checks that need files or
the network (the dataset exists and holds chat rows, the DeepSpeed file parses and DeepSpeed
accepts it, peft is installed for LoRA) run in :func:`polya.sft.stage.preflight`, still before
any model weights load.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from polya.config.base import StageConfig
from polya.models.embedded import EMBEDDED_MODEL

STAGE = "sft"

DEEPSPEED_PRESETS = ("zero2", "zero3", "zero3_offload")
"""Names accepted by ``deepspeed`` for the configs shipped in ``configs/deepspeed/``."""

LORA_DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

OPERATIONAL_FIELDS = frozenset(
    {"save_steps", "save_total_limit", "logging_steps", "metrics_port", "progress", "local_dir", "resume", "dataloader_workers"}
)
"""Settings that may change between a run and its resumption (they do not change what is trained)."""


def check_run_dir(value: str) -> str:
    """A training stage's run_dir: not blank, without a trailing slash."""
    if not value.strip():
        raise ValueError("run_dir must be a local path or an s3://bucket/prefix URI, not empty")
    return value.rstrip("/") if value != "/" else value


def check_deepspeed(value: str | None) -> str | None:
    """A ``deepspeed`` setting: unset, a preset name, or a path to a JSON file."""
    if value is None or value in DEEPSPEED_PRESETS:
        return value
    if not value.endswith(".json"):
        raise ValueError(f"deepspeed must be one of {', '.join(DEEPSPEED_PRESETS)} or a path to a .json file")
    return value


class LoraConfig(StageConfig):
    """LoRA adapters through peft instead of updating every weight."""

    enabled: bool = Field(default=False, description="Train LoRA adapters (needs the peft package) instead of all weights.")
    r: int = Field(default=16, ge=1, le=1024, description="LoRA rank: the inner dimension of each adapter.")
    alpha: int = Field(default=32, ge=1, le=65536, description="LoRA scaling numerator (the update is scaled by alpha / r).")
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0, description="Dropout on the adapter's input during training.")
    target_modules: list[str] = Field(
        default_factory=lambda: list(LORA_DEFAULT_TARGETS),
        description="Module names (suffixes) that get adapters, e.g. [q_proj, v_proj], or [all-linear] for every linear layer but the output head.",
    )
    merge: bool = Field(
        default=True,
        description="Write <output>/final as the base model with the adapter merged in (a plain checkpoint vLLM loads); the adapter alone always goes to <output>/adapter.",
    )

    @field_validator("target_modules")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value if v and v.strip()]
        if not cleaned:
            raise ValueError(
                "lora.target_modules must name at least one module, e.g. [q_proj, k_proj, v_proj, o_proj] or [all-linear]"
            )
        return cleaned


class SftConfig(StageConfig):
    """Supervised fine-tuning (mid-training) on the selected solutions with TRL's SFTTrainer."""

    run_dir: str = Field(
        default="runs/polya",
        description="Run directory: a local path or an s3://bucket/prefix URI. Input defaults to <run_dir>/select/<arm>/, output to <run_dir>/sft/<arm>/.",
    )
    arm: str = Field(
        default="polya",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Which dataset of the select stage to train on (polya, star, wrong_answer, breadth, depth); also names the output folder.",
    )
    dataset: str | None = Field(
        default=None,
        description="Training data: a local or s3:// JSONL/Parquet file of chat rows {messages: [{role, content}, ...]}; default <run_dir>/select/<arm>/train.jsonl (or train.parquet).",
    )
    dataset_format: Literal["auto", "jsonl", "parquet"] = Field(
        default="auto", description="Format of the dataset file; auto: from its extension (.jsonl/.json or .parquet)."
    )
    model: str = Field(
        default=EMBEDDED_MODEL,
        description=f"Model to fine-tune: '{EMBEDDED_MODEL}' (the embedded default), an HF hub id, or a local checkpoint directory.",
    )
    output: str | None = Field(
        default=None,
        description="Where checkpoints, the final model, metrics and the summary go (local path or s3:// URI); default <run_dir>/sft/<arm>.",
    )
    local_dir: str | None = Field(
        default=None,
        description="Local folder the trainer writes to when output is s3:// (checkpoints are uploaded from it); default $POLYA_CACHE_DIR/sft/<digest of output>. Ignored for a local output.",
    )
    epochs: float = Field(default=3.0, gt=0.0, le=1000.0, description="Passes over the dataset (ignored when max_steps is set).")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many optimizer steps (overrides epochs); unset: train for epochs.")
    learning_rate: float = Field(default=1e-5, gt=0.0, le=1.0, description="Peak learning rate of AdamW.")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        default="cosine", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0, description="Fraction of the optimizer steps spent warming the learning rate up from 0.")
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="Clip the gradient norm to this value.")
    batch_size: int = Field(default=8, ge=1, le=4096, description="Sequences (or packed rows) per device per forward pass.")
    grad_accumulation: int = Field(
        default=1, ge=1, le=4096, description="Forward passes per optimizer step; the global batch is batch_size x grad_accumulation x GPUs."
    )
    max_seq_length: int = Field(
        default=2048, ge=32, le=1_048_576, description="Tokens per training row; longer examples are truncated (packing: length of each packed row)."
    )
    packing: bool = Field(
        default=False,
        description="Pack several examples into each row (best-fit decreasing, padding-free, attention kept within each example): no padding, more tokens/s.",
    )
    loss_mask: Literal["auto", "generation_markers", "prompt_completion"] = Field(
        default="auto",
        description=(
            "How the loss is restricted to the assistant's tokens. generation_markers: TRL's assistant_only_loss, needs a chat "
            "template with {% generation %} markers (the tokenizer's, or TRL's training version of it); prompt_completion: each "
            "row becomes prompt (every turn before the last assistant turn, with the generation prompt) + completion (the last "
            "assistant turn and its end-of-turn token), loss on the completion only; auto: generation_markers when the template "
            "supports it, else prompt_completion."
        ),
    )
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapters (off: full fine-tuning).")
    bf16: Literal["auto", "on", "off"] = Field(
        default="auto", description="bfloat16 mixed precision; auto: on when a CUDA GPU with bf16 support is present, off on CPU."
    )
    dtype: Literal["float32", "bfloat16", "auto"] = Field(
        default="float32",
        description="dtype the weights are loaded and updated in: float32 master weights (with bf16 autocast on GPU) is standard; bfloat16 halves memory; auto: the checkpoint's dtype.",
    )
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2", "flash_attention_3"] = Field(
        default="auto", description="Attention kernel; auto: sdpa (flash_attention_2 needs the flash-attn package on GPUs)."
    )
    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in the backward pass: much less memory for about a third more compute."
    )
    save_steps: int = Field(default=200, ge=1, description="Save a resumable checkpoint-N (HF format + optimizer state) every this many steps.")
    save_total_limit: int | None = Field(
        default=2, ge=1, description="Keep at most this many checkpoint-N folders (oldest deleted, in the store too); unset: keep all."
    )
    logging_steps: int = Field(default=10, ge=1, description="Log loss, learning rate and tokens/s every this many steps.")
    seed: int = Field(default=0, description="Seed for adapter initialisation, data order and dropout.")
    deepspeed: str | None = Field(
        default=None,
        description=f"DeepSpeed config: one of {', '.join(DEEPSPEED_PRESETS)} (the repo's configs/deepspeed/<name>.json) or a path to a JSON file; GPUs only, launched with accelerate/torchrun/deepspeed. Unset: plain single-process training.",
    )
    resume: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: continue from the last complete checkpoint in output (downloaded from the store when output is s3://), or skip training when output holds a finished run with the same settings; off: start from step 0 and delete checkpoints already in output.",
    )
    dataloader_workers: int = Field(default=0, ge=0, le=64, description="Background processes that prepare batches (0: in the training process).")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="Serve Prometheus metrics (loss, learning rate, tokens/s) on this port while training (unset: off).")
    progress: bool = Field(default=True, description="Show a progress bar.")

    @field_validator("run_dir")
    @classmethod
    def _run_dir(cls, value: str) -> str:
        return check_run_dir(value)

    @field_validator("dataset", "output", "local_dir")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a path or an s3:// URI, or unset (null) for the default")
        return value.rstrip("/") if value else value

    @field_validator("deepspeed")
    @classmethod
    def _deepspeed(cls, value: str | None) -> str | None:
        return check_deepspeed(value)

    @model_validator(mode="after")
    def _consistent(self) -> "SftConfig":
        if self.dataset is not None and self.dataset_format == "auto" and not self.dataset.endswith((".jsonl", ".json", ".parquet")):
            raise ValueError(
                f"dataset {self.dataset!r} has no .jsonl/.json/.parquet extension; set dataset_format to jsonl or parquet"
            )
        if self.local_dir is not None and self.local_dir.startswith("s3://"):
            raise ValueError("local_dir must be a local folder, not an s3:// URI")
        return self

    # ----- derived locations -------------------------------------------------------------
    @property
    def output_uri(self) -> str:
        """Where the stage's results go (``<run_dir>/sft/<arm>`` unless ``output`` is set)."""
        return self.output or f"{self.run_dir}/{STAGE}/{self.arm}"

    @property
    def manifest_stage(self) -> str:
        """The stage's name in the run manifest: ``sft/<arm>`` (one record per trained arm)."""
        return f"{STAGE}/{self.arm}"

    def default_dataset_candidates(self) -> list[str]:
        """Where the select stage writes this arm's data, in the order they are tried."""
        base = f"{self.run_dir}/select/{self.arm}"
        return [f"{base}/train.jsonl", f"{base}/train.parquet"]

    def identity(self) -> dict[str, Any]:
        """The settings that decide what is trained; resuming with other values is refused."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in OPERATIONAL_FIELDS}
