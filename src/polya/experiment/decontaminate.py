"""The decontaminate stage: the training questions that overlap the evaluation benchmarks, dropped or flagged.

``run(config)`` is the one entry point; ``polya decontaminate``, ``polya run`` (before generate)
and the KFP ``decontaminate`` component call it. It reads the training questions the data settings
describe (the ones generate reads) and the questions of every benchmark, compares them
(:mod:`polya.data.decontaminate`: word n-grams and normalised exact match) and writes::

    decontaminate/report.json   every match, the ids of the contaminated questions and of those removed
    decontaminate/report.md     the same, to read

The generate stage of the same run directory leaves out the removed questions (``action: drop``);
with ``action: flag`` nothing is removed and the report only lists them. The select stage's
dataset cards say what was removed.

The stage lives in the experiment layer because it joins two stages' inputs: the training data
(generate's) and the benchmarks (eval's), and stages do not import each other.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator

from polya.core.layout import RunLayout
from polya.core.manifest import record_stage
from polya.core.memory import peak_memory
from polya.core.outputs import ContaminationMatch, DecontaminationReport
from polya.core.store import open_store
from polya.data.config import DataConfig
from polya.data.decontaminate import (
    BenchmarkIndex,
    DecontaminationSettings,
    contaminated_ids,
    find_contamination,
)
from polya.data.loader import load_questions
from polya.data.records import QuestionRecord
from polya.eval.benchmarks import EvalItem, load_benchmark
from polya.eval.config import BenchmarkSpec, BenchmarkSpecs, EvalConfig

logger = logging.getLogger(__name__)

STAGE = "decontaminate"

_EVAL_BENCHMARKS = EvalConfig.model_fields["benchmarks"]


class DecontaminateConfig(DecontaminationSettings):
    """Find the training questions that overlap the evaluation benchmarks; drop them before generation, or flag them."""

    OPERATIONAL = frozenset({"progress"})

    run_dir: str = Field(default="runs/polya", description="Run directory: a local path or an s3://bucket/prefix URI. Output goes to <run_dir>/decontaminate/.")
    data: DataConfig = Field(
        default_factory=DataConfig,
        description="The training questions: the same settings as generate's data (polya run uses generate.data).",
    )
    benchmarks: BenchmarkSpecs = Field(
        default_factory=_EVAL_BENCHMARKS.default_factory,  # type: ignore[arg-type]
        validate_default=True,
        description="Benchmarks to compare with, written as eval's benchmarks: names ([gsm8k, math500]) or mappings "
        "({name: gsm8k, path: test.jsonl, limit: 100}); polya run uses eval.benchmarks.",
    )
    progress: bool = Field(default=True, description="Log progress while comparing.")

    def settings(self) -> dict[str, Any]:
        """How questions are compared (what the report records)."""
        return self.model_dump(mode="json", include={"ngrams", "mask_numbers", "exact"})


@dataclass
class DecontaminateOutputs:
    """What the stage produced: the report, the questions generation keeps and a small summary."""

    run_dir: str
    report_uri: str
    report: DecontaminationReport
    kept: list[QuestionRecord] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        report = self.report
        return {
            "questions": report.questions, "contaminated": len(report.contaminated), "removed": len(report.removed),
            "action": report.action, "benchmarks": dict(report.per_benchmark),
        }


def benchmark_text(item: EvalItem) -> str:
    """What a benchmark question is compared by: its question, after its context when it has one (MuSR's narrative)."""
    return f"{item.context}\n\n{item.question}" if item.context else item.question


def load_benchmarks(specs: list[BenchmarkSpec]) -> dict[str, list[EvalItem]]:
    """The questions of each benchmark, as the eval stage reads them."""
    return {
        spec.name: load_benchmark(
            spec.name, path=spec.path, hub_id=spec.hub_id, subset=spec.subset, split=spec.split, limit=spec.limit, seed=spec.seed
        )
        for spec in specs
    }


def build_report(
    config: DecontaminateConfig, questions: list[QuestionRecord], benchmarks: dict[str, list[EvalItem]]
) -> DecontaminationReport:
    """Compare the training questions with the benchmarks' and write down every match."""
    texts = {name: {item.id: benchmark_text(item) for item in items} for name, items in benchmarks.items()}
    index = BenchmarkIndex({name: list(items.items()) for name, items in texts.items()}, config)
    matches = find_contamination(((q.id, q.question) for q in questions), index)
    by_id = {q.id: q for q in questions}
    contaminated = contaminated_ids(matches)
    per_benchmark = {name: len({m.question_id for m in matches if m.benchmark == name}) for name in benchmarks}
    return DecontaminationReport(
        action=config.action,
        settings=config.settings(),
        data=config.data.identity(),
        questions=len(questions),
        benchmarks=dict(index.counts),
        contaminated=contaminated,
        removed=contaminated if config.action == "drop" else [],
        per_benchmark=per_benchmark,
        near_misses={str(n): count for n, count in index.near_misses.items()},
        matches=[
            ContaminationMatch(
                question_id=m.question_id, question=by_id[m.question_id].question, benchmark=m.benchmark, benchmark_id=m.benchmark_id,
                benchmark_question=texts[m.benchmark][m.benchmark_id], exact=m.exact, ngrams=m.sizes,
                shared={str(n): c for n, c in m.shared.items()}, share={str(n): s for n, s in m.share.items()}, spans=m.spans[:3],
            )
            for m in matches
        ],
    )


def _quote(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def markdown_report(report: DecontaminationReport) -> str:
    """``decontaminate/report.md``: the summary, the settings, the counts per benchmark and every match."""
    settings = report.settings
    ngrams = ", ".join(f"{n} (share >= {share:g})" if share else f"{n} (one shared n-gram)" for n, share in settings["ngrams"].items())
    lines = [
        "# Decontamination",
        "",
        report.summary(),
        "",
        "## Settings",
        "",
        "| setting | value |",
        "| --- | --- |",
        f"| action | `{report.action}` |",
        f"| n-gram sizes (least share of the shorter question's n-grams) | {ngrams} |",
        f"| numbers masked in n-grams | {settings['mask_numbers']} |",
        f"| normalised exact match | {settings['exact']} |",
        f"| training questions | {report.questions} (`{report.data.get('source')}`) |",
        "",
        "## Per benchmark",
        "",
        "| benchmark | questions | training questions matching |",
        "| --- | --- | --- |",
        *(f"| {name} | {count} | {report.per_benchmark.get(name, 0)} |" for name, count in report.benchmarks.items()),
        "",
    ]
    misses = {n: c for n, c in report.near_misses.items() if c}
    if misses:
        lines += [
            "Question pairs that share n-grams but too few to match: "
            + ", ".join(f"{count} at n = {n}" for n, count in misses.items()) + ".",
            "",
        ]
    lines += [f"## Matches ({len(report.matches)})", ""]
    if not report.matches:
        lines += ["None.", ""]
    for number, m in enumerate(report.matches, start=1):
        removed = " (removed)" if m.question_id in report.removed else " (flagged, kept)"
        lines += [
            f"### {number}. `{m.question_id}`{removed} ~ {m.benchmark} `{m.benchmark_id}`: {m.reason()}",
            "",
            f"- training: {_quote(m.question)}",
            f"- {m.benchmark}: {_quote(m.benchmark_question)}",
        ]
        if m.spans:
            lines.append(f"- shared: \"{_quote(m.spans[0], 300)}\"")
        lines.append("")
    return "\n".join(lines)


def run(config: DecontaminateConfig) -> DecontaminateOutputs:
    """Compare the training questions with the benchmarks; write the report; return the questions generation keeps."""
    layout = RunLayout(config.run_dir)
    paths = layout.decontaminate
    store = open_store(config.run_dir)
    with record_stage(store, STAGE, config.identity()) as record:
        started = time.monotonic()
        questions = load_questions(config.data).records
        benchmarks = load_benchmarks(config.benchmarks)
        if config.progress:
            logger.info(
                "comparing %s training questions with %s", len(questions), ", ".join(f"{n} ({len(i)})" for n, i in benchmarks.items())
            )
        report = build_report(config, questions, benchmarks).model_copy(update=peak_memory())
        store.write_json(paths.report, report.dump())
        store.write_text(paths.report_md, markdown_report(report))
        record.artifacts = [paths.report, paths.report_md]
        removed = set(report.removed)
        kept = [q for q in questions if q.id not in removed]
        outputs = DecontaminateOutputs(config.run_dir, layout.uri(paths.report_md), report, kept)
        record.outputs = outputs.summary
    logger.info("%s (%.1fs; %s)", report.summary(), time.monotonic() - started, outputs.report_uri)
    if not kept:
        logger.warning("every training question overlaps a benchmark: generation would have nothing to do (action flag keeps them)")
    return outputs


def share_report(run_dir: str, target_dir: str) -> None:
    """Copy the run's decontamination report into another run inside it (the teacher's, an iteration of the
    outer loop), so that its generation leaves out the same questions."""
    source, target = open_store(run_dir), open_store(target_dir)
    for path in (RunLayout.decontaminate.report, RunLayout.decontaminate.report_md):
        if source.exists(path):
            target.write_bytes(path, source.read_bytes(path))
        elif target.exists(path):
            target.delete(path)
