"""``SftConfig``: every setting of the mid-training stage (``polya sft --help``).

Pure value checks happen here (pydantic, before anything is read); the checks that need files or
the network (the dataset exists and holds chat rows, the DeepSpeed file parses and DeepSpeed
accepts it, peft is installed for LoRA) run in :func:`polya.sft.stage.preflight`, still before
any model weights load.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from polya.core.config import StageConfig, location
from polya.core.layout import RunLayout, TrainingLayout
from polya.training.config import TrainingConfig

STAGE = "sft"

LORA_DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


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


class SftConfig(TrainingConfig):
    """Supervised fine-tuning (mid-training) on the selected solutions with TRL's SFTTrainer."""

    OPERATIONAL: ClassVar[frozenset[str]] = TrainingConfig.OPERATIONAL | {"dataloader_workers"}
    RENAMED = {"arm": "dataset", "dataset_format": "data_file_format"}

    dataset: str = Field(
        default="polya",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_@-]*$",
        description="The select dataset to train on (polya, polya@<n>, star, wrong_answer, breadth, depth, distill): read from <run_dir>/select/<dataset>/, written to <run_dir>/sft/<dataset>/ (the <dataset>_sft arm).",
    )
    data_file: Annotated[str | None, location("a path or an s3:// URI")] = Field(
        default=None,
        description="Train on this local or s3:// JSONL/Parquet file of chat rows {messages: [{role, content}, ...]} instead of the select dataset's train.jsonl (or train.parquet).",
    )
    data_file_format: Literal["auto", "jsonl", "parquet"] = Field(
        default="auto", description="Format of the training file; auto: from its extension (.jsonl/.json or .parquet)."
    )
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
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2", "flash_attention_3"] = Field(
        default="auto", description="Attention kernel; auto: sdpa (flash_attention_2 needs the flash-attn package on GPUs)."
    )
    dataloader_workers: int = Field(default=0, ge=0, le=64, description="Background processes that prepare batches (0: in the training process).")

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_is_a_name(cls, value: object) -> object:
        if isinstance(value, str) and ("/" in value or value.endswith((".jsonl", ".json", ".parquet"))):
            raise ValueError(
                f"dataset names a select dataset (polya, polya@<n>, star, wrong_answer, breadth, depth, distill), not a file ({value!r}); "
                "give a training file as data_file"
            )
        return value

    @model_validator(mode="after")
    def _file_format_known(self) -> "SftConfig":
        if self.data_file is not None and self.data_file_format == "auto" and not self.data_file.endswith((".jsonl", ".json", ".parquet")):
            raise ValueError(
                f"data_file {self.data_file!r} has no .jsonl/.json/.parquet extension; set data_file_format to jsonl or parquet"
            )
        return self

    # ----- derived locations -------------------------------------------------------------
    @property
    def layout(self) -> TrainingLayout:
        """``<run_dir>/sft/<dataset>``: one output folder (and manifest record) per trained dataset."""
        return RunLayout.sft(self.dataset)

    def default_data_files(self) -> list[str]:
        """Where the select stage writes this dataset, in the order they are tried."""
        layout = RunLayout(self.run_dir)
        return [layout.uri(path) for path in layout.select.data_files(self.dataset)]
