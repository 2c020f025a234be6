"""Where everything of a run lives: the only place that spells the paths of a run directory.

A run directory (a local folder or an ``s3://`` prefix) is shared by every stage::

    manifest.json                                   the run manifest (polya.core.manifest)
    logs/                                           logs of the servers polya started
    decontaminate/report.json, report.md            training questions that overlap the benchmarks, and what was done
    generate/config.json, questions.jsonl, summary.json
    generate/generations/round-NN/part-*.jsonl      one record per sample
    select/report.json                              every dataset's statistics
    select/<dataset>/train.jsonl | train.parquet    one SFT dataset, with README.md (its card)
    select/scores/<scorer id>/                      cached adherence scores
    sft/<dataset>/                                  a training output (see TrainingLayout)
    rl/<start>/                                     a training output, GRPO from base or <dataset>_sft
    eval/benchmarks/<benchmark>/questions.jsonl     the questions, frozen at first use (+ spec.json)
    eval/<arm>/<benchmark>/samples.jsonl            every sample with its verdict (+ part.json, composition.jsonl)
    eval/results.json, report.md, plots/            the comparison
    iterations/<dataset>/iter-NN/                   outer bootstrap loop: iteration NN (>= 2), a run of its own
    iterations/summary.json, summary.md             the per-iteration table

Stages and readers ask :class:`RunLayout` for a path instead of writing the string themselves, so
the contract between a stage that writes a file and the stages that read it is written once.
Paths are relative to the run directory's store (``open_store(run_dir)``); :meth:`RunLayout.uri`
gives the full location.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"


def join_uri(root: str, *parts: str) -> str:
    """Join a local path or an ``s3://`` URI with sub-paths (empty parts are skipped)."""
    root = root.rstrip("/") if root not in ("", "/") else root
    tail = [p.strip("/") for p in parts if p and p.strip("/")]
    if not tail:
        return root
    if not root:
        return "/".join(tail)
    return "/".join([root.rstrip("/"), *tail]) if root != "/" else "/" + "/".join(tail)


def cache_dir() -> Path:
    """Root of polya's on-disk cache (converted checkpoints, downloaded models, training work folders):
    ``$POLYA_CACHE_DIR``, default ``~/.cache/polya``."""
    root = os.environ.get("POLYA_CACHE_DIR") or os.path.join(Path.home(), ".cache", "polya")
    return Path(root)


def _derive(layout: object, root: str, names: dict[str, str]) -> None:
    """Set each named attribute of a frozen layout to ``root``/its file name (computed once, at creation)."""
    for attribute, name in names.items():
        object.__setattr__(layout, attribute, join_uri(root, name))


@dataclass(frozen=True)
class TrainingLayout:
    """The output folder of a training stage (``polya sft``, ``polya rl``), relative to a store.

    ``prefix`` is the folder inside the store ('' when the store *is* the output folder)::

        config.json          the identity: settings that decide what is trained (checked on resume)
        checkpoint-N/        resumable checkpoints (HF model + optimizer state); polya-upload-complete.json marks an uploaded one whole
        final/               the trained model in HF format
        adapter/             LoRA only: the adapter alone
        metrics.jsonl        one line per logging step
        learner.json         RL: what the first learner worker reported
        summary.json         the run's result (written last)
    """

    prefix: str = ""

    FINAL = "final"
    SUMMARY = "summary.json"
    IDENTITY = "config.json"
    METRICS = "metrics.jsonl"
    ADAPTER = "adapter"
    LEARNER_RESULT = "learner.json"
    UPLOAD_MARKER = "polya-upload-complete.json"

    def __post_init__(self) -> None:
        _derive(self, self.prefix, {
            "final": self.FINAL, "summary": self.SUMMARY, "identity": self.IDENTITY, "metrics": self.METRICS,
            "adapter": self.ADAPTER, "learner_result": self.LEARNER_RESULT,
        })

    def checkpoint(self, step: int) -> str:
        return join_uri(self.prefix, f"checkpoint-{step}")


@dataclass(frozen=True)
class DecontaminateLayout:
    """``decontaminate/`` of a run: ``report.json`` (every match, the ids left out) and ``report.md`` (the same, to read)."""

    root: str = "decontaminate"

    def __post_init__(self) -> None:
        _derive(self, self.root, {"report": "report.json", "report_md": "report.md"})


@dataclass(frozen=True)
class GenerateLayout:
    """``generate/`` of a run: ``config.json`` (the identity, checked on resume), ``questions.jsonl``
    (frozen at the first start), ``generations/round-NN/part-*.jsonl``, ``generations/rationalization/part-*.jsonl``
    (the plain condition asked again with the answer as a hint) and ``summary.json``; in an iteration of
    the outer bootstrap loop also ``solved_before.json`` (questions solved by earlier iterations, left out)."""

    root: str = "generate"

    def __post_init__(self) -> None:
        _derive(self, self.root, {
            "config": "config.json", "questions": "questions.jsonl", "generations": "generations", "summary": "summary.json",
            "solved_before": "solved_before.json",
        })

    def round(self, index: int) -> str:
        """Folder of one bootstrap round's shards."""
        return f"{self.generations}/round-{index:02d}"

    def rationalization(self) -> str:
        """Folder of the rationalization pass's shards (after the bootstrap rounds)."""
        return f"{self.generations}/rationalization"


@dataclass(frozen=True)
class SelectLayout:
    """``select/`` of a run: one folder per SFT dataset, the report, the score cache."""

    root: str = "select"
    DATA_FILES = {"jsonl": "train.jsonl", "parquet": "train.parquet"}
    CARD = "README.md"

    def __post_init__(self) -> None:
        _derive(self, self.root, {"report": "report.json"})


    def dataset_dir(self, dataset: str) -> str:
        return f"{self.root}/{dataset}"

    def data_file(self, dataset: str, fmt: str = "jsonl") -> str:
        """The training file of ``dataset`` in format ``jsonl`` or ``parquet``."""
        return f"{self.dataset_dir(dataset)}/{self.DATA_FILES[fmt]}"

    def data_files(self, dataset: str) -> list[str]:
        """Every file name the dataset may be stored under, in the order readers try them."""
        return [self.data_file(dataset, fmt) for fmt in self.DATA_FILES]

    def card(self, dataset: str) -> str:
        return f"{self.dataset_dir(dataset)}/{self.CARD}"

    def scores(self, scorer_id: str) -> str:
        """Folder of the cached adherence scores of one scorer."""
        return f"{self.root}/scores/{scorer_id}"


@dataclass(frozen=True)
class EvalLayout:
    """``eval/`` of a run."""

    root: str = "eval"
    RESULTS = "results.json"
    REPORT = "report.md"
    PLOTS = "plots"

    def __post_init__(self) -> None:
        _derive(self, self.root, {"results": self.RESULTS, "report": self.REPORT, "plots": self.PLOTS})

    def benchmark_questions(self, benchmark: str) -> str:
        return f"{self.root}/benchmarks/{benchmark}/questions.jsonl"

    def benchmark_spec(self, benchmark: str) -> str:
        return f"{self.root}/benchmarks/{benchmark}/spec.json"

    def part(self, arm: str, benchmark: str) -> str:
        """Folder of one (arm, benchmark) part."""
        return f"{self.root}/{arm}/{benchmark}"

    def samples(self, arm: str, benchmark: str) -> str:
        return f"{self.part(arm, benchmark)}/samples.jsonl"

    def part_record(self, arm: str, benchmark: str) -> str:
        """What produced the part's samples; written last, so its presence means the part is whole."""
        return f"{self.part(arm, benchmark)}/part.json"

    def composition(self, arm: str, benchmark: str) -> str:
        return f"{self.part(arm, benchmark)}/composition.jsonl"



@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory ``root`` (a local path or an ``s3://`` URI)."""

    root: str

    manifest = MANIFEST
    RUN_CONFIG = "run.json"
    """``polya run``'s settings as the run uses them: the run's config and every stage's effective config."""
    decontaminate = DecontaminateLayout()
    generate = GenerateLayout()
    select = SelectLayout()
    eval = EvalLayout()

    def uri(self, path: str = "") -> str:
        """The full location of a path of this run."""
        return join_uri(self.root, path)

    @staticmethod
    def sft(dataset: str) -> TrainingLayout:
        """Output of the SFT of ``dataset`` (the ``<dataset>_sft`` arm)."""
        return TrainingLayout(f"sft/{dataset}")

    @staticmethod
    def rl(start: str) -> TrainingLayout:
        """Output of GRPO started from arm ``start`` (``base`` or ``<dataset>_sft``)."""
        return TrainingLayout(f"rl/{start}")

    ITERATIONS = "iterations"
    ITERATIONS_SUMMARY = "iterations/summary.json"
    ITERATIONS_REPORT = "iterations/summary.md"
    """The outer bootstrap loop's per-iteration table (``polya run`` with ``outer_loop.iterations`` > 1)."""

    def iteration(self, dataset: str, index: int) -> "RunLayout":
        """Iteration ``index`` (2, 3, ...) of the outer bootstrap loop of ``dataset``: ``<root>/iterations/<dataset>/iter-NN``,
        a run of its own (generate/, select/, sft/<dataset>/, manifest) whose generation samples from the SFT model of
        iteration ``index - 1`` (iteration 1 is this run's own generate, select and ``sft/<dataset>``)."""
        if index < 2:
            raise ValueError(f"iteration {index}: iteration 1 is the run itself; its own iterations start at 2")
        return RunLayout(self.uri(f"{self.ITERATIONS}/{dataset}/iter-{index:02d}"))

    def distill(self) -> "RunLayout":
        """The teacher's run inside this one (``<root>/distill``): its own generate/, select/ and manifest,
        whose ``select/distill/`` dataset the ``distill_sft`` arm trains on."""
        return RunLayout(self.uri("distill"))

    def log_dir(self) -> Path:
        """Local folder for the logs of servers polya starts: ``<run_dir>/logs`` for a local run,
        ``./polya-logs`` for an ``s3://`` run (a log file is written while the process runs)."""
        if "://" in self.root and not self.root.startswith("file://"):
            return Path.cwd() / "polya-logs"
        return Path(self.root.removeprefix("file://")) / "logs"

    def relative(self, uri: str) -> str | None:
        """``uri`` as a path of this run when it lies inside the run directory, else None."""
        root = self.root.rstrip("/") + "/"
        return uri[len(root):] if uri.startswith(root) and len(uri) > len(root) else None
