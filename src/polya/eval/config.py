"""``EvalConfig``: every setting of the evaluation stage (``polya eval --help``).

Sampling presets (``sampling.preset``) fill every sampling setting the config does not set itself:

| preset | n | temperature | top_p | max_tokens | ks (unless set) |
| --- | --- | --- | --- | --- | --- |
| ``greedy`` | 1 | 0.0 | 1.0 | 3072 | [1] |
| ``pass@k`` | 64 | 1.0 | 1.0 | 3072 | [1, 2, 4, 8, 16, 32, 64] |
| ``cpu-demo`` (default) | 4 | 1.0 | 1.0 | 256 | [1, 2, 4] |
| ``custom`` | the values of cpu-demo, to change one by one | | | | |

``ks`` defaults to the powers of two up to ``n``, so ``--sampling.preset pass@k --sampling.n 16``
reports pass@1..16.

The paper reports pass@k for k = 1..64 from 64 samples per question (temperature not public;
1.0 is the usual choice for pass@k curves); the response budget of its RL runs is 3,072 tokens.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from polya.core.config import StageConfig, http_url, with_default
from polya.data.config import ColumnsConfig
from polya.data.sources.normalize import ANSWER_COLUMNS, ID_COLUMNS, QUESTION_COLUMNS
from polya.eval.benchmarks import BENCHMARKS, SYNTHETIC_EVAL_SEED
from polya.metrics import default_ks
from polya.models import EMBEDDED_MODEL
from polya.sampling.config import RequestSettings, SamplingParams
from polya.serving.config import JUDGE_API_KEY_ENV, ServerConfig
from polya.verify.config import JudgeSettings

STAGE = "eval"

Preset = Literal["greedy", "pass@k", "cpu-demo", "custom"]

SAMPLING_PRESETS: dict[str, dict[str, Any]] = {
    "greedy": {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 3072},
    "pass@k": {"n": 64, "temperature": 1.0, "top_p": 1.0, "max_tokens": 3072},
    "cpu-demo": {"n": 4, "temperature": 1.0, "top_p": 1.0, "max_tokens": 256},
    "custom": {"n": 4, "temperature": 1.0, "top_p": 1.0, "max_tokens": 256},
}
"""Values each preset fills in (settings given explicitly always win)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


JudgeUrl = Annotated[str | None, http_url("http://localhost:8000/v1")]
"""A base URL of an OpenAI-compatible server."""


class EvalSamplingConfig(SamplingParams):
    """How many samples per question and how they are drawn."""

    PRESETS = SAMPLING_PRESETS
    OPERATIONAL = frozenset({"ks", "preset", "per_request_seed"})
    """``ks`` only changes the report; the preset's values are part of the identity themselves."""

    preset: Preset = Field(
        default="cpu-demo",
        description="greedy (n=1, temperature 0), pass@k (n=64, temperature 1.0, k=1..64), cpu-demo (n=4, 256 tokens) or custom; fills every setting not given.",
    )
    n: int = Field(default=4, ge=1, le=1024, description="Samples per question.")
    repeats: int = Field(
        default=1, ge=1, le=64,
        description=(
            "Draw the n samples this many times with different seeds (seed, seed+1, ...): pass@k pools all n x repeats samples "
            "of a question, and the results also give pass@k of each repeat and their spread."
        ),
    )
    ks: list[int] | None = Field(
        default=None, description="k values of pass@k (each <= n); unset: powers of two up to n (1, 2, 4, ..., n)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "EvalSamplingConfig":
        if self.temperature == 0.0 and self.n > 1:
            raise ValueError(
                f"n={self.n} samples at temperature 0 are {self.n} copies of the greedy answer; use n=1 (preset greedy) or temperature > 0"
            )
        if self.ks is not None:
            if not self.ks:
                raise ValueError("ks must not be empty (leave it unset for powers of two up to n)")
            bad = [k for k in self.ks if k < 1 or k > self.n]
            if bad:
                raise ValueError(f"ks {bad} are outside 1..n={self.n}: pass@k needs at least k samples per question")
        return self

    def resolved_ks(self) -> list[int]:
        """The k values reported: ``ks``, or powers of two up to ``n``."""
        return sorted(set(self.ks)) if self.ks else default_ks(self.n)



class BenchmarkColumns(ColumnsConfig):
    """Which columns of a benchmark's rows hold each part of a question; unset ones are auto-detected.

    The training data's column settings (:class:`polya.data.config.ColumnsConfig`) plus the parts
    only multiple-choice and code benchmarks have. Each benchmark takes the roles its registry
    entry lists (:attr:`polya.eval.benchmarks.Benchmark.columns`).
    """

    question: str | None = with_default(
        ColumnsConfig, "question", None,
        description=f"Column with the question (HumanEval: the prompt). Unset: the benchmark's upstream column, else the first of {', '.join(QUESTION_COLUMNS)}.",
    )
    answer: str | None = with_default(
        ColumnsConfig, "answer", None,
        description=(
            "Column with the answer. Math: the final answer (GSM8K's '#### x' and '\\boxed{x}' are extracted; a list, or the text "
            "of a list of strings, is joined with ', '). Multiple choice: the correct option's 0-based index, its letter or its text. "
            f"Unset: the benchmark's upstream column, else the first of {', '.join(ANSWER_COLUMNS)}."
        ),
    )
    solution: str | None = with_default(
        ColumnsConfig, "solution", None,
        description="Math: column with a worked solution, whose \\boxed{} answer is used when a row has no answer. Unset: 'solution'.",
    )
    id: str | None = with_default(
        ColumnsConfig, "id", None,
        description=f"Column with a unique id. Unset: the benchmark's upstream id column, else the first of {', '.join(ID_COLUMNS)}, else <benchmark>-<row index>.",
    )
    choices: str | None = Field(default=None, description="Multiple choice: column with the options (a list, or its text). Unset: choices, options.")
    context: str | None = Field(default=None, description="Multiple choice: column with the narrative shown before the question (MuSR's). Unset: narrative, context.")
    tests: str | None = Field(default=None, description="Code: column with the test code (HumanEval's def check(candidate): ...). Unset: test, tests.")
    entry_point: str | None = Field(default=None, description="Code: column with the name of the function under test. Unset: entry_point.")

    def mapped(self) -> dict[str, str]:
        """Role -> column, for the roles given a column."""
        return {role: column for role, column in self.model_dump().items() if column is not None}


class BenchmarkSpec(StageConfig):
    """One benchmark to evaluate: a registry name, optionally read from a local file."""

    name: str = Field(description=f"Benchmark from the registry: {', '.join(BENCHMARKS)}.")
    path: str | None = Field(
        default=None,
        description="Read the questions from this local (or s3://) .jsonl/.json/.parquet/.csv file instead of the hub (upstream columns, common alternatives, or those named in columns).",
    )
    hub_id: str | None = Field(default=None, description="Override the registry's Hugging Face hub id (a mirror).")
    subset: str | None = Field(default=None, description="Override the hub subset (config name).")
    split: str | None = Field(default=None, description="Override the hub split.")
    limit: int | None = Field(default=None, gt=0, description="Evaluate only the first N questions (unset: all; synthetic: 16).")
    seed: int = Field(default=SYNTHETIC_EVAL_SEED, description="Generator seed of the synthetic benchmark (ignored by the others).")
    columns: BenchmarkColumns = Field(
        default_factory=BenchmarkColumns,
        description="Columns of the rows that hold the question, answer, ... (e.g. {question: problem, answer: final_answer}); unset ones are auto-detected.",
    )

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in BENCHMARKS:
            raise ValueError(f"unknown benchmark '{value}'; valid: {', '.join(BENCHMARKS)}")
        return value

    @model_validator(mode="after")
    def _columns_of_the_benchmark(self) -> "BenchmarkSpec":
        roles = BENCHMARKS[self.name].columns
        unknown = sorted(set(self.columns.mapped()) - set(roles))
        if unknown:
            raise ValueError(f"columns {unknown} do not apply to benchmark '{self.name}'; its columns: {', '.join(roles)}")
        return self

    def identity(self) -> dict[str, Any]:
        out = super().identity()
        if not self.columns.mapped():
            del out["columns"]  # questions and parts stored before the setting existed stay valid
        return out


class CompositionJudgeConfig(StageConfig):
    """The composition analysis: an LLM judge labels which Pólya heuristics each solution uses."""

    enabled: bool = Field(default=False, description="Run the composition analysis (needs endpoint).")
    endpoint: JudgeUrl = Field(default=None, description="Base URL of the judge's OpenAI-compatible server (e.g. http://judge:8000/v1).")
    model: str | None = Field(default=None, description="Model name to request (unset: the first one the endpoint serves).")
    api_key: str | None = Field(default=None, description=f"Bearer token (also read from ${JUDGE_API_KEY_ENV}, then $POLYA_API_KEY / $OPENAI_API_KEY).")
    catalog: str | None = Field(default=None, description="Heuristic catalog YAML the labels come from (default: the packaged Pólya catalog).")
    benchmarks: list[str] | None = Field(
        default=None, description="Benchmarks to analyse (unset: every evaluated math benchmark; the paper analyses aime24)."
    )
    only_correct: bool = Field(default=True, description="Label only correct solutions (the paper's analysis); false: every sample.")
    max_solutions: int = Field(default=64, ge=1, le=100_000, description="At most this many solutions per (arm, benchmark), taken in a fixed order.")
    max_tokens: int = Field(default=96, ge=8, le=4096, description="Completion tokens allowed for the judge's reply.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Judge sampling temperature.")
    concurrency: int = Field(default=8, ge=1, le=1024, description="Judge requests in flight at once.")
    max_solution_chars: int = Field(default=6000, ge=200, description="Longer solutions are cut (head and tail kept) in the judge prompt.")

    @model_validator(mode="after")
    def _endpoint_when_enabled(self) -> "CompositionJudgeConfig":
        if self.enabled and not self.endpoint:
            raise ValueError("judge.enabled needs judge.endpoint (an OpenAI-compatible server, e.g. http://judge:8000/v1)")
        return self

    def identity(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include={"model", "catalog", "max_tokens", "temperature", "max_solution_chars"})


def _default_benchmarks() -> list[dict[str, Any]]:
    # Plain mappings (validated into BenchmarkSpec by validate_default) so --help can print them.
    return [{"name": "synthetic", "limit": 8}]


class EvalServerConfig(ServerConfig):
    """The vLLM server started for each arm: every server setting but the model, which is the arm's."""

    model: str = Field(
        default=EMBEDDED_MODEL, exclude=True,
        description="Not used by eval (and not printed): each arm's server serves that arm's model, see arms.",
    )
    endpoints: list[str] = Field(
        default_factory=list, exclude=True,
        description="Not used by eval (and not printed): running servers are eval's own endpoint / endpoints, one per arm.",
    )


def _names_as_specs(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


def _unique_benchmarks(value: list[BenchmarkSpec]) -> list[BenchmarkSpec]:
    if not value:
        raise ValueError(f"benchmarks must name at least one benchmark; valid: {', '.join(BENCHMARKS)}")
    names = [b.name for b in value]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"benchmarks {dupes} are listed twice")
    return value


BenchmarkSpecs = Annotated[list[BenchmarkSpec], BeforeValidator(_names_as_specs), AfterValidator(_unique_benchmarks)]
"""A list of benchmarks, each a name (``gsm8k``) or a mapping (``{name: gsm8k, limit: 100}``), none twice."""


class EvalConfig(RequestSettings, JudgeSettings):
    """pass@k evaluation of one or more models (arms) on math and out-of-distribution benchmarks."""

    run_dir: str = Field(default="runs/polya", description="Run directory: a local path or an s3://bucket/prefix URI. Output goes to <run_dir>/eval/.")
    arms: dict[str, str] = Field(
        default_factory=lambda: {"base": EMBEDDED_MODEL},
        description=f"Arm name -> model: an HF hub id, a local checkpoint directory, an s3:// checkpoint URI, or '{EMBEDDED_MODEL}'.",
    )
    benchmarks: BenchmarkSpecs = Field(
        default_factory=_default_benchmarks,  # type: ignore[arg-type]
        validate_default=True,
        description="Benchmarks to run: names ([gsm8k, math500]) or mappings ({name: gsm8k, path: test.jsonl, limit: 100, columns: {question: problem}}).",
    )
    sampling: EvalSamplingConfig = Field(default_factory=EvalSamplingConfig, description="Samples per question and sampling parameters.")
    server: EvalServerConfig = Field(
        default_factory=EvalServerConfig,
        description="Settings of the vLLM server started for each arm (its model comes from arms; use endpoint/endpoints for running servers).",
    )
    endpoint: JudgeUrl = Field(
        default=None, description="Base URL of a running OpenAI-compatible server for the single arm (no server is started)."
    )
    endpoints: dict[str, Annotated[str, http_url("http://localhost:8000/v1")]] = Field(default_factory=dict, description="Arm name -> base URL of a running server serving that arm.")
    system_prompt: str | None = Field(default=None, description="Override the system prompt (math: the catalog's; code and choice: none).")
    catalog: str | None = Field(
        default=None,
        description="Heuristic catalog YAML whose system prompt and answer-format sentence make the math prompt (default: the packaged Pólya catalog, the one generation used).",
    )
    code_timeout_s: float = Field(default=10.0, gt=0, le=600, description="Seconds one HumanEval program and its tests may run in the sandbox.")
    diversity_ngram_max: int = Field(default=2, ge=1, le=4, description="Word n-grams 1..N are the TF-IDF features of the Vendi score.")
    judge: CompositionJudgeConfig = Field(default_factory=CompositionJudgeConfig, description="Composition analysis (LLM judge of heuristics); off by default.")
    progress: bool = Field(default=True, description="Show progress bars.")

    @field_validator("arms")
    @classmethod
    def _arm_names(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError(f"arms must name at least one model, e.g. {{base: {EMBEDDED_MODEL}}}")
        for name, model in value.items():
            if not _NAME.match(name):
                raise ValueError(f"arm name {name!r} must match {_NAME.pattern} (it names a folder)")
            if not str(model).strip():
                raise ValueError(f"arm {name!r} has an empty model")
        return value

    @model_validator(mode="after")
    def _endpoints_match_arms(self) -> "EvalConfig":
        if self.endpoint and len(self.arms) != 1:
            raise ValueError(
                f"endpoint serves one model but {len(self.arms)} arms are set ({', '.join(self.arms)}); "
                "use endpoints: {arm: url, ...} for running servers, or leave both unset to start one server per arm"
            )
        unknown = sorted(set(self.endpoints) - set(self.arms))
        if unknown:
            raise ValueError(f"endpoints names arms {unknown} that are not in arms ({', '.join(self.arms)})")
        if self.server.endpoint or self.server.endpoints:
            raise ValueError("server.endpoint(s) is not used by eval; set endpoint (one arm) or endpoints (per arm)")
        if self.server.model != EMBEDDED_MODEL:
            raise ValueError("server.model is not used by eval; name the models in arms: {name: model, ...}")
        return self

    def arm_endpoint(self, arm: str) -> str | None:
        """The running server to use for ``arm``, or None to start one."""
        return self.endpoints.get(arm) or (self.endpoint if len(self.arms) == 1 else None)
