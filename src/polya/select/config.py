"""``SelectConfig``: every setting of the selection stage (``polya select --help``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from polya.core.config import StageConfig, http_url
from polya.heuristics.catalog import HeuristicIds
from polya.serving.config import JUDGE_API_KEY_ENV
from polya.verify.config import JudgeSettings

DATASETS = ("polya", "star", "wrong_answer", "breadth", "depth", "distill")
"""The SFT datasets ``polya select`` can build from one run's generations (those of the paper's arms);
``polya@<n>`` (:func:`dataset_rule`) is ``polya`` with n solutions per question."""

BASELINE_DATASETS = ("star", "breadth", "depth")
"""The datasets that draw from ``baseline_source`` (by default the plain prompt's generations); the
others (polya, wrong_answer, distill) draw from the heuristic prompts."""

MAX_N_PER_QUESTION = 64
_POLYA_AT = re.compile(r"^polya@(\d+)$")


def dataset_rule(name: str) -> tuple[str, int | None]:
    """The rule a dataset name stands for and its own n: ``polya@4`` -> (``polya``, 4); ``star`` -> (``star``, None).

    The Pólya(n) sweep of the paper is ``polya@1``, ``polya@4``, ``polya@16``, ``polya@64`` in one run.
    Raises ValueError for an unknown name, listing the valid ones.
    """
    if name in DATASETS:
        return name, None
    match = _POLYA_AT.match(name)
    if match and 1 <= int(match.group(1)) <= MAX_N_PER_QUESTION:
        return "polya", int(match.group(1))
    raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}, or polya@<n> with n in 1..{MAX_N_PER_QUESTION} (e.g. polya@4)")


ScorerKind = Literal["offline", "llm_judge", "reward_model"]



class ScorerConfig(StageConfig):
    """How heuristic adherence is scored: a cheap offline cue score, an LLM judge, or a reward model."""

    kind: ScorerKind = Field(
        default="offline",
        description=(
            "offline: deterministic score from each heuristic's visible cues, no model; llm_judge: a rubric prompt to "
            "any OpenAI-compatible endpoint, answered 1-10; reward_model: a transformers sequence-classification model."
        ),
    )
    endpoint: Annotated[str | None, http_url("http://judge:8000/v1")] = Field(
        default=None, description="llm_judge: base URL of the OpenAI-compatible server (e.g. http://judge:8000/v1)."
    )
    model: str | None = Field(
        default=None,
        description=(
            "llm_judge: model name to request (unset: the first one the endpoint serves). reward_model: HF hub id or "
            "local checkpoint directory of a sequence-classification model (required)."
        ),
    )
    api_key: str | None = Field(
        default=None,
        description=f"llm_judge: bearer token (also read from ${JUDGE_API_KEY_ENV}, then $POLYA_API_KEY / $OPENAI_API_KEY).",
    )
    concurrency: int = Field(default=16, ge=1, le=1024, description="llm_judge: requests in flight at once.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="llm_judge: sampling temperature of the first try.")
    retry_temperature: float = Field(
        default=0.7, ge=0.0, le=2.0, description="llm_judge: temperature of the re-asks after an unparseable answer."
    )
    max_tokens: int = Field(default=32, ge=1, le=4096, description="llm_judge: completion tokens allowed for the verdict.")
    parse_attempts: int = Field(
        default=3, ge=1, le=10,
        description="llm_judge: tries per solution until the reply holds a score 1-10; after that the score is null (counted as unparseable).",
    )
    request_timeout_s: float = Field(default=300.0, gt=0, description="llm_judge: seconds one request may take.")
    max_retries: int = Field(
        default=4, ge=0, le=20, description="llm_judge: retries per request on transient failures (connection errors, 429, 5xx)."
    )
    max_solution_chars: int = Field(
        default=6000, ge=200, description="llm_judge: solutions longer than this are cut (head and tail kept) in the judge prompt."
    )
    batch_size: int = Field(default=8, ge=1, le=4096, description="reward_model: sequences per forward pass.")
    max_length: int = Field(default=2048, ge=16, description="reward_model: tokens per (prompt + solution); longer ones are truncated.")
    device: str = Field(default="auto", description="reward_model: torch device (auto: cuda when available, else cpu).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="reward_model: weights dtype (auto: bfloat16 on GPU, float32 on CPU)."
    )
    reward_output: Literal["auto", "logit", "probability"] = Field(
        default="auto",
        description="reward_model: logit (num_labels=1) or the probability of positive_label (num_labels>1); auto picks by num_labels.",
    )
    positive_label: int | None = Field(
        default=None, ge=0, description="reward_model: class index counted as adherent (unset: the last class)."
    )
    use_chat_template: bool = Field(
        default=True,
        description="reward_model: format (instruction, solution) with the tokenizer's chat template when it has one; else plain text.",
    )
    min_words: int = Field(
        default=20, ge=0, description="offline: solutions with fewer words lose 2 points (a bare answer shows no heuristic)."
    )
    on_unscored: Literal["drop", "rank_last"] = Field(
        default="drop",
        description="What happens to a solution whose score is null (unparseable judge answer): drop it, or keep it ranked below every scored one.",
    )

    @model_validator(mode="after")
    def _needs_for_kind(self) -> "ScorerConfig":
        if self.kind == "llm_judge" and not self.endpoint:
            raise ValueError("scorer.kind llm_judge needs scorer.endpoint (an OpenAI-compatible URL such as http://judge:8000/v1)")
        if self.kind == "reward_model" and not self.model:
            raise ValueError("scorer.kind reward_model needs scorer.model (an HF hub id or a local sequence-classification checkpoint)")
        return self

    def identity(self) -> dict[str, object]:
        """The settings that decide a score (cached scores are reused only when these match)."""
        if self.kind == "llm_judge":
            return {
                "kind": self.kind, "model": self.model, "temperature": self.temperature, "retry_temperature": self.retry_temperature,
                "max_tokens": self.max_tokens, "parse_attempts": self.parse_attempts, "max_solution_chars": self.max_solution_chars,
            }
        if self.kind == "reward_model":
            return {
                "kind": self.kind, "model": self.model, "max_length": self.max_length, "reward_output": self.reward_output,
                "positive_label": self.positive_label, "use_chat_template": self.use_chat_template, "dtype": self.dtype,
            }
        return {"kind": self.kind, "min_words": self.min_words}


class DedupConfig(StageConfig):
    """Near-duplicate removal among the solutions kept for one question."""

    method: Literal["normalized", "ngram", "none"] = Field(
        default="ngram",
        description=(
            "normalized: identical text after lower-casing and collapsing whitespace (numbers kept); ngram: Jaccard "
            "similarity of word n-gram sets >= threshold; none: keep duplicates."
        ),
    )
    threshold: float = Field(default=0.8, gt=0.0, le=1.0, description="ngram: Jaccard similarity at or above which two solutions are duplicates.")
    ngram: int = Field(default=3, ge=1, le=8, description="ngram: words per n-gram.")


class DiversityConfig(StageConfig):
    """The Vendi score reported for each dataset (TF-IDF word n-gram cosine similarity)."""

    ngram_max: int = Field(default=2, ge=1, le=4, description="Word n-grams of length 1..ngram_max are the TF-IDF features.")
    max_overall: int = Field(
        default=1000, ge=2, le=20000,
        description="The dataset-wide Vendi score uses at most this many examples (a deterministic sample); per-question scores use all.",
    )


class SelectConfig(JudgeSettings):
    """Build the SFT datasets (D_Pólya and the paper's baselines) from a run's verified generations."""

    run_dir: str = Field(
        default="runs/polya",
        description="Run directory (local path or s3:// URI) holding generate/ output. Output goes to <run_dir>/select/.",
    )
    RENAMED = {"arms": "datasets"}

    datasets: list[str] = Field(
        default_factory=lambda: ["polya", "star"],
        description=(
            "SFT datasets to build, each in select/<dataset>/: polya (best correct per question x heuristic, n per question), "
            "polya@<n> (the same with its own n: the paper's Pólya(n) sweep, e.g. polya@1, polya@4, polya@16, polya@64), "
            "star (one correct per question), wrong_answer (incorrect, diverse: the control), breadth and depth (fixed budget), "
            "distill (the polya rule on a teacher model's generations: polya run builds it in <run_dir>/distill/)."
        ),
    )
    n_per_question: int = Field(
        default=16, ge=1, le=64, description="The paper's n: most solutions kept per question (top scores across heuristics)."
    )
    per_pair: int = Field(
        default=1, ge=1, le=64,
        description="Most solutions kept per (question, heuristic); the paper keeps 1. Raise it to reach n above the number of heuristics.",
    )
    min_score: float | None = Field(
        default=None, description="Drop solutions scoring below this (unset: keep every scored one). Offline and judge scores are 0-10."
    )
    budget: int | None = Field(
        default=None, ge=1,
        description=(
            "breadth / depth: examples in each (the paper: 7408 = 7408 questions x 1 vs 463 x 16). "
            "Unset: the star arm's size, so breadth and depth match it."
        ),
    )
    seed: int = Field(default=0, description="Seed of the deterministic order in which breadth and depth pick questions.")
    baseline_source: Literal["plain", "heuristics"] = Field(
        default="plain",
        description=(
            "What star, breadth and depth draw from. plain: the plain step-by-step prompt's generations (generate.plain; as in STaR, "
            "so STaR and Pólya differ only in heuristic diversity); heuristics: the Pólya-prompted ones. polya, wrong_answer and "
            "distill always draw from the heuristic prompts."
        ),
    )
    rationalized: bool = Field(
        default=True,
        description=(
            "With baseline_source plain: rationalized solutions (generate.rationalization: asked with the answer as a hint, stored "
            "without it) may enter star, breadth and depth, ranked after every unaided one, as in STaR."
        ),
    )
    heuristics: HeuristicIds = Field(
        default_factory=lambda: ["all"], description="Heuristic ids whose solutions may be selected, or [all]."
    )
    catalog: str | None = Field(
        default=None,
        description="Heuristic catalog YAML (rubrics, cues, instructions). Unset: the one the generate stage used, else the packaged one.",
    )
    prompt: Literal["question", "plain", "heuristic"] = Field(
        default="question",
        description=(
            "User turn of each training example. question: the question text only (the model learns to pick an approach); "
            "plain: the question with the catalog's answer-format sentence; heuristic: the heuristic's instruction, the "
            "question and the answer-format sentence (zero-shot generation prompt)."
        ),
    )
    system_prompt: bool = Field(default=False, description="Put the catalog's system prompt first in every example's messages.")
    scorer: ScorerConfig = Field(default_factory=ScorerConfig, description="Heuristic-adherence scorer.")
    dedup: DedupConfig = Field(default_factory=DedupConfig, description="Near-duplicate removal within a question.")
    diversity: DiversityConfig = Field(default_factory=DiversityConfig, description="Vendi score settings.")
    exclude_truncated: bool = Field(
        default=True, description="Never select solutions cut off by the token limit (finish_reason 'length'), correct or not."
    )
    undecided: Literal["drop", "incorrect"] = Field(
        default="drop",
        description=(
            "Generations whose verdict stayed undecided (status timeout / error: the judge ran out of time or failed): "
            "drop: in no dataset (reason 'undecided'); incorrect: treated as wrong answers (they may enter wrong_answer)."
        ),
    )
    reverify: bool = Field(
        default=False, description="Judge every generation again with the verifier library instead of trusting its stored 'correct'."
    )
    output_format: Literal["jsonl", "parquet"] = Field(
        default="jsonl", description="File format of each dataset: select/<dataset>/train.jsonl or train.parquet."
    )
    progress: bool = Field(default=True, description="Show progress bars while judging and scoring.")

    @field_validator("datasets")
    @classmethod
    def _datasets_non_empty_unique(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"datasets must name at least one of: {', '.join(DATASETS)}")
        for name in value:
            dataset_rule(name)
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _per_pair_within_n(self) -> "SelectConfig":
        if self.per_pair > self.n_per_question:
            raise ValueError(f"per_pair ({self.per_pair}) must be <= n_per_question ({self.n_per_question})")
        return self
