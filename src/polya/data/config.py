"""``DataConfig``: where the questions come from and how to read them."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from polya.core.config import StageConfig
from polya.data.synthetic import DIFFICULTIES, template_names

SourceFormat = Literal["auto", "jsonl", "parquet", "hf"]
ResolvedFormat = Literal["synthetic", "jsonl", "parquet", "hf"]
OnError = Literal["raise", "skip"]

SYNTHETIC_SOURCE = "synthetic"
HF_PREFIX = "hf:"
S3_PREFIX = "s3://"
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")


T = TypeVar("T")


def _only_known(value: list[T], valid: list[T], field: str, unknown: str, valid_text: str, empty_note: str = "") -> list[T]:
    """``value`` when it is a non-empty list of ``valid`` entries; else an error naming the valid ones."""
    if not value:
        raise ValueError(f"{field} must not be empty{empty_note}; {valid_text}")
    bad = [v for v in value if v not in valid]
    if bad:
        raise ValueError(f"unknown {unknown} {bad}; {valid_text}")
    return value


class ColumnsConfig(StageConfig):
    """Which source columns hold the question, answer, solution and id (auto-detected when unset)."""

    question: str | None = Field(
        default=None,
        description="Column with the problem text. Unset: the first of question, problem, prompt, query.",
    )
    answer: str | None = Field(
        default=None,
        description=(
            "Column with the final answer (GSM8K's '#### x' and '\\boxed{x}' are extracted). "
            "Unset: the first of answer, final_answer, expected_answer, else the boxed answer in the solution."
        ),
    )
    solution: str | None = Field(
        default=None,
        description="Column with the worked solution. Unset: 'solution' when present (GSM8K's answer text otherwise).",
    )
    id: str | None = Field(
        default=None,
        description="Column with a unique id. Unset: the first of id, unique_id, uid, question_id, problem_id, else <file stem>-<row index>.",
    )


class SyntheticConfig(StageConfig):
    """The built-in generator of grade-school word problems (used when source is 'synthetic')."""

    count: int = Field(default=200, gt=0, description="How many problems to generate.")
    difficulties: list[int] = Field(
        default_factory=lambda: list(DIFFICULTIES),
        description="Difficulty levels to cycle through: 1 (one or two steps) to 3 (four or more steps).",
    )
    templates: list[str] | None = Field(
        default=None,
        description=f"Templates to cycle through (default all): {', '.join(template_names())}.",
    )

    @field_validator("difficulties")
    @classmethod
    def _known_difficulties(cls, value: list[int]) -> list[int]:
        return _only_known(value, list(DIFFICULTIES), "difficulties", "difficulty", f"valid values: {list(DIFFICULTIES)}")

    @field_validator("templates")
    @classmethod
    def _known_templates(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        valid = template_names()
        return _only_known(value, valid, "templates", "template(s)", f"valid templates: {', '.join(valid)}", " (leave it unset for all)")


def resolve_format(source: str, fmt: str = "auto") -> ResolvedFormat:
    """Decide how to read ``source``; raises ``ValueError`` naming the fields when it cannot.

    >>> resolve_format("synthetic"), resolve_format("hf:openai/gsm8k"), resolve_format("s3://b/q.parquet")
    ('synthetic', 'hf', 'parquet')
    """
    source = source.strip()
    if not source:
        raise ValueError("source must not be empty; use 'synthetic', a .jsonl/.parquet path, an s3:// URI or hf:<hub_id>")
    if source == SYNTHETIC_SOURCE:
        if fmt != "auto":
            raise ValueError(f"format must be 'auto' when source is 'synthetic' (got format={fmt!r})")
        return "synthetic"
    if source.startswith(HF_PREFIX):
        if fmt not in ("auto", "hf"):
            raise ValueError(f"format must be 'auto' or 'hf' for an hf: source (got format={fmt!r})")
        if not source[len(HF_PREFIX) :].strip():
            raise ValueError("source 'hf:' needs a hub id or a local file after the prefix, e.g. hf:openai/gsm8k")
        return "hf"
    is_s3 = source.startswith(S3_PREFIX)
    if fmt == "hf":
        if is_s3:
            raise ValueError("format 'hf' cannot read s3:// URIs; use format auto, jsonl or parquet")
        return "hf"
    if fmt in ("jsonl", "parquet"):
        return fmt  # type: ignore[return-value]
    suffix = PurePosixPath(source).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise ValueError(
        f"cannot tell the format of source {source!r} from its suffix {suffix or '(none)'}; valid suffixes: "
        f"{', '.join(JSONL_SUFFIXES + PARQUET_SUFFIXES)}. Set format to jsonl, parquet or hf "
        f"(hf reads .json/.csv files through the datasets library)"
    )


class DataConfig(StageConfig):
    """Where the questions come from and how to read them."""

    source: str = Field(
        default=SYNTHETIC_SOURCE,
        description=(
            "Question source: 'synthetic' (built-in generator), a local .jsonl/.parquet path, "
            "an s3://bucket/key.jsonl|.parquet URI, or hf:<hub_id> (Hugging Face datasets)."
        ),
    )
    format: SourceFormat = Field(
        default="auto",
        description="How to read the source: auto (by suffix or prefix), jsonl, parquet, or hf (the datasets library).",
    )
    split: str = Field(default="train", description="Dataset split to load (hf sources only).")
    subset: str | None = Field(default=None, description="Dataset config/subset name, e.g. 'main' for openai/gsm8k (hf sources only).")
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig, description="Column names in the source; unset ones are auto-detected.")
    limit: int | None = Field(default=None, gt=0, description="Keep at most this many questions (after shuffling); unset keeps all.")
    shuffle: bool = Field(default=False, description="Shuffle the questions with `seed` before applying `limit`.")
    seed: int = Field(default=0, description="Seed for shuffling and for the synthetic generator.")
    on_error: OnError = Field(
        default="raise",
        description="What to do with a malformed row or duplicate id: raise (stop with the file and line) or skip (count and go on).",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig, description="Settings of the built-in synthetic generator.")

    @model_validator(mode="after")
    def _format_matches_source(self) -> "DataConfig":
        try:
            resolve_format(self.source, self.format)
        except ValueError as exc:
            raise ValueError(f"source/format: {exc}") from None
        return self

    def resolved_format(self) -> ResolvedFormat:
        """The concrete reader for this source: synthetic, jsonl, parquet or hf."""
        return resolve_format(self.source, self.format)
