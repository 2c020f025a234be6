"""What each stage leaves in a run directory, as typed models, each read through one function.

The files are JSON written by the stages (``decontaminate/report.json``, ``generate/summary.json``, ``select/report.json``, a
training output's ``summary.json``, ``eval/results.json``) and read by other stages, by
``polya run``, by the KFP steps and by people. Their shape is defined here once: a writer builds
the model and stores ``model.dump()``; a reader calls ``read_*`` and gets the model back (or a
clear error naming the file). Fields a writer adds beyond the ones typed here are kept
(``extra="allow"``), so a report can grow without breaking older readers.

Generation records (``generate/generations/**.jsonl``) are many small rows: they stay plain
dicts, read through :func:`iter_generations`, which checks the fields every reader relies on.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from polya.core.errors import ConfigError, DataError
from polya.core.layout import RunLayout, TrainingLayout
from polya.core.store import ArtifactStore
from polya.core.store.shards import read_shards

O = TypeVar("O", bound="StageOutput")


class StageOutput(BaseModel):
    """Base of the typed outputs: unknown keys are kept, values are validated."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    def dump(self) -> dict[str, Any]:
        """JSON-safe dict of every field (extra keys included), for ``store.write_json``."""
        return self.model_dump(mode="json")


class StageSummary(StageOutput):
    """Base of a stage's top-level summary file: what every stage records besides its own results."""

    peak_rss_mib: float | None = Field(
        default=None, description="Peak resident memory of the stage's process, MiB (polya.core.memory.peak_rss_mib; None: not recorded)."
    )
    peak_rss_mib_children: float | None = Field(
        default=None, description="Peak resident memory of the largest child process the stage had waited for (e.g. a model server it stopped), MiB."
    )


def _read(model: type[O], store: ArtifactStore, path: str) -> O | None:
    if not store.exists(path):
        return None
    data = store.read_json(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
        raise DataError(
            f"{store.uri(path)} is not a valid {model.__name__} ({where}: {first.get('msg')}); it was written by another "
            "polya version or edited by hand: run the stage again to rewrite it"
        ) from None


# ----- decontaminate ---------------------------------------------------------------------------


class ContaminationMatch(StageOutput):
    """One training question that overlaps one benchmark question."""

    question_id: str
    question: str
    benchmark: str
    benchmark_id: str
    benchmark_question: str
    exact: bool = Field(default=False, description="The normalised texts are equal.")
    ngrams: list[int] = Field(default_factory=list, description="The n-gram sizes whose shared share reached the setting.")
    shared: dict[str, int] = Field(default_factory=dict, description="n -> distinct n-grams of that size the two share.")
    share: dict[str, float] = Field(default_factory=dict, description="n -> shared n-grams / the shorter question's n-grams.")
    spans: list[str] = Field(default_factory=list, description="Shared stretches of the training question (normalised, numbers as <num>), longest first.")

    def reason(self) -> str:
        """Why the two match, in words: ``exact``, ``13-gram (11 shared, 85%)``, ..."""
        parts = ["exact"] if self.exact else []
        parts += [f"{n}-gram ({self.shared[str(n)]} shared, {self.share[str(n)]:.0%})" for n in self.ngrams]
        return ", ".join(parts)


class DecontaminationReport(StageSummary):
    """``decontaminate/report.json``: the training questions that overlap the benchmarks, and what was done with them."""

    action: Literal["drop", "flag"]
    settings: dict[str, Any] = Field(description="ngrams, mask_numbers, exact: how questions were compared.")
    data: dict[str, Any] = Field(description="The data settings whose questions were checked (generate must use the same).")
    questions: int = Field(description="Training questions checked.")
    benchmarks: dict[str, int] = Field(description="Benchmark -> its questions checked against.")
    contaminated: list[str] = Field(description="Ids of the training questions with at least one match.")
    removed: list[str] = Field(description="Ids left out of generation (the contaminated ones with action drop; none with flag).")
    per_benchmark: dict[str, int] = Field(default_factory=dict, description="Benchmark -> training questions matching it.")
    near_misses: dict[str, int] = Field(
        default_factory=dict, description="n -> question pairs that share n-grams of that size but do not match (too small a share)."
    )
    matches: list[ContaminationMatch] = Field(default_factory=list)

    def method(self) -> str:
        """How questions were compared, in words: ``word n-grams, n = 8, 13; numbers masked; normalised exact match``."""
        sizes = ", ".join(str(n) for n in self.settings.get("ngrams", {}))
        how = f"word n-grams, n = {sizes}" + ("; numbers masked" if self.settings.get("mask_numbers") else "")
        return how + ("; normalised exact match" if self.settings.get("exact") else "")

    def hit(self) -> list[str]:
        """The benchmarks some training question overlaps."""
        return [name for name, count in self.per_benchmark.items() if count]

    def summary(self) -> str:
        """One sentence: how many questions, with which benchmarks, by which test, and what was done."""
        if not self.contaminated:
            return f"No training question of {self.questions} overlaps {', '.join(self.benchmarks) or 'no benchmarks'} ({self.method()})."
        first = f"{len(self.contaminated)} of {self.questions} training questions overlap {', '.join(self.hit())} ({self.method()})"
        if self.action == "drop":
            return f"{first}; removed before generation."
        return f"{first}; flagged and kept (action flag)."

    def removed_for(self, data: Mapping[str, Any]) -> list[str]:
        """The ids to leave out of the questions ``data`` describes; a report made for other data is an error.

        ``data`` is a ``DataConfig``'s ``identity()``: the decontamination only covers the questions it read.
        """
        if dict(data) != self.data:
            changed = sorted(k for k in set(data) | set(self.data) if data.get(k) != self.data.get(k))
            raise ConfigError(
                f"{RunLayout.decontaminate.report} was made for other training questions (data settings that differ: {', '.join(changed)}); "
                "run `polya decontaminate` with the data settings of generate, or remove the decontaminate/ folder of the run"
            )
        return list(self.removed)


def read_decontamination_report(store: ArtifactStore) -> DecontaminationReport | None:
    """The decontaminate stage's report of the run in ``store``, or None when it did not run."""
    return _read(DecontaminationReport, store, RunLayout.decontaminate.report)


# ----- generate --------------------------------------------------------------------------------

GENERATION_FIELDS = ("id", "question_id", "heuristic", "completion", "correct")
"""Fields every generation record has (written by ``polya generate``)."""


def iter_generations(store: ArtifactStore, check: bool = True) -> Iterator[dict[str, Any]]:
    """Every generation record of the run in ``store``, deduplicated by id, in write order.

    With ``check``, a record that lacks one of :data:`GENERATION_FIELDS` raises :class:`DataError`.
    """
    seen: set[str] = set()
    folder = RunLayout.generate.generations
    for rec in read_shards(store, folder):
        if check:
            missing = [k for k in GENERATION_FIELDS if k not in rec]
            if missing:
                raise DataError(
                    f"generation record {rec.get('id', '?')!r} in {store.uri(folder)} lacks {', '.join(missing)} "
                    "(records must be written by `polya generate`)"
                )
        if rec["id"] not in seen:
            seen.add(rec["id"])
            yield rec


class GenerateSummary(StageSummary):
    """``generate/summary.json``: what was generated and how much of it was right."""

    questions: int
    heuristics: list[str]
    pairs: int = Field(description="(question, condition) pairs asked for: the heuristics, plus the plain prompt when on.")
    pairs_solved: int
    questions_solved: int
    samples: int
    correct_samples: int
    undecided_samples: int = Field(default=0, description="Samples whose verdict stayed timeout / error (not correct, not wrong).")
    completion_tokens: int
    rounds: dict[str, dict[str, int]] = Field(default_factory=dict)
    per_heuristic: dict[str, dict[str, int]] = Field(default_factory=dict)
    plain: bool = Field(default=False, description="Whether the plain condition (heuristic 'plain') was generated.")
    rationalization: dict[str, int] | None = Field(
        default=None,
        description="The rationalization pass, counted apart from the rounds: questions_asked, samples, correct, questions_solved, completion_tokens.",
    )


def read_generate_summary(store: ArtifactStore) -> GenerateSummary | None:
    """The generate stage's summary of the run in ``store``, or None before the stage finished."""
    return _read(GenerateSummary, store, RunLayout.generate.summary)


# ----- select ----------------------------------------------------------------------------------


class DatasetReport(StageOutput):
    """One SFT dataset in ``select/report.json``."""

    path: str = Field(description="The training file, relative to the run directory.")
    card: str = Field(description="The dataset card, relative to the run directory.")
    examples: int
    questions: int
    rejections: dict[str, int] = Field(default_factory=dict, description="Generations left out, by reason.")
    notes: list[str] = Field(default_factory=list)
    source: str = Field(default="heuristics", description="The prompt condition drawn from: heuristics, or plain (the plain step-by-step prompt).")
    rationalized: int = Field(default=0, description="Examples that are rationalized solutions (asked with the answer as a hint, stored without it).")


class SelectReport(StageSummary):
    """``select/report.json``: every dataset's statistics, the scorer and the inputs."""

    run_id: str
    datasets: dict[str, DatasetReport]
    inputs: dict[str, Any] = Field(default_factory=dict)
    scorer: dict[str, Any] = Field(default_factory=dict)

    def empty_reason(self, dataset: str) -> str | None:
        """Why ``dataset`` holds no examples (its rejections), or None when it has some."""
        report = self.datasets.get(dataset)
        if report is not None and report.examples > 0:
            return None
        rejections = report.rejections if report is not None else {}
        why = ", ".join(f"{count} {reason}" for reason, count in rejections.items()) or "no generations"
        return f"select/{dataset} holds no examples ({why})"


def read_select_report(store: ArtifactStore) -> SelectReport | None:
    """The select stage's report of the run in ``store``, or None before the stage finished."""
    return _read(SelectReport, store, RunLayout.select.report)


# ----- training --------------------------------------------------------------------------------


class TrainingSummary(StageSummary):
    """A training output's ``summary.json`` (``polya sft``, ``polya rl``), written when training ended."""

    model: str = Field(description="The model training started from.")
    global_step: int
    final: str = Field(description="Where the trained model is (HF checkpoint folder).")
    identity_sha256: str = Field(description="Digest of the settings that decided what was trained.")
    completed: bool = False
    resumed_from: str | None = None
    tokens: int | None = None
    train_loss: float | None = None
    stage: str | None = Field(default=None, description="sft or rl (None: written before this field existed).")
    seed: int | None = None
    run_dir: str | None = Field(default=None, description="The run directory the training belonged to (its manifest, its data).")
    manifest_stage: str | None = Field(default=None, description="The training's record in that run's manifest, e.g. sft/polya.")
    packages: dict[str, str] = Field(default_factory=dict, description="Python and key package versions of the training process.")
    gpus: float | None = Field(default=None, description="GPUs the training used (0: CPU).")


def read_training_summary(store: ArtifactStore, layout: TrainingLayout = TrainingLayout()) -> TrainingSummary | None:
    """The summary of the training output at ``layout`` in ``store``, or None when training did not finish."""
    return _read(TrainingSummary, store, layout.summary)


# ----- eval ------------------------------------------------------------------------------------


class BenchmarkResult(StageOutput):
    """One (arm, benchmark) of ``eval/results.json``."""

    title: str = ""
    kind: str = "math"
    questions: int
    samples: int
    accuracy: float
    pass_at_k: dict[str, float] = Field(description="k -> pass@k (0..1), k as a string, over decided samples.")
    pass_at_k_interval: dict[str, list[float]] = Field(
        default_factory=dict, description="k -> [low, high]: 95% bootstrap interval of pass@k over questions."
    )
    pass_at_k_questions: dict[str, int] = Field(
        default_factory=dict, description="k -> questions in that estimate (those with >= k decided samples)."
    )
    per_question: dict[str, list[int]] = Field(
        default_factory=dict, description="Question id -> [decided samples, correct samples]: what intervals and paired comparisons use."
    )
    undecided: int = Field(default=0, description="Samples whose verdict stayed timeout / error: neither right nor wrong.")
    questions_solved: int = 0


class ArmResult(StageOutput):
    """One arm of ``eval/results.json``."""

    model: str
    benchmarks: dict[str, BenchmarkResult]
    average: dict[str, Any] = Field(default_factory=dict)
    compute: dict[str, Any] = Field(
        default_factory=dict, description="What making the arm's model cost: tokens generated, trained on, rolled out; wall time; GPU-hours."
    )
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="Seeds, package versions and data digests of the training stages and of the evaluation."
    )


class EvalResults(StageSummary):
    """``eval/results.json``: pass@k and more per arm and benchmark."""

    ks: list[int]
    benchmarks: list[str]
    arms: dict[str, ArmResult]
    sampling: dict[str, Any] = Field(default_factory=dict)
    comparisons: list[dict[str, Any]] = Field(
        default_factory=list, description="Paired comparisons of every pair of arms (polya.eval.statistics.compare_arms)."
    )

    def pass_at_k(self) -> dict[str, dict[str, dict[str, float]]]:
        """arm -> benchmark -> {k: pass@k}."""
        return {arm: {name: b.pass_at_k for name, b in data.benchmarks.items()} for arm, data in self.arms.items()}


def read_eval_results(store: ArtifactStore, path: str = RunLayout.eval.results) -> EvalResults | None:
    """Eval results at ``path`` of ``store`` (default: the run's ``eval/results.json``), or None when absent."""
    return _read(EvalResults, store, path)
