"""SFT datasets as chat messages: the rows, their files (JSONL or Parquet) and the dataset card.

One row per selected solution::

    {"messages": [{"role": "user", "content": <prompt>}, {"role": "assistant", "content": <solution>}],
     "question_id": "...", "heuristic": "working_backward", "score": 8.5, "round": 1,
     "generation_id": "q1|working_backward|r1|s0", "correct": true, "rationalized": false}

The user turn depends on ``prompt``: ``question`` (the question text only, the default: the
model must learn to pick approaches itself), ``plain`` (the zero-shot plain prompt of
:func:`polya.heuristics.build_messages`: the question plus the answer-format sentence) or
``heuristic`` (the zero-shot heuristic prompt: instruction, question, answer format).
``system_prompt: true`` puts the catalog's system message first. A solution of the plain
condition (heuristic ``plain``) gets the plain prompt in ``heuristic`` mode; a rationalized one
(asked with the reference answer as a hint) is stored with the same prompt as any other: the hint
is never part of a training example.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections import Counter
from typing import Any, Iterable, Literal

from polya.core.layout import RunLayout
from polya.core.outputs import DecontaminationReport
from polya.core.store import ArtifactStore
from polya.heuristics import PLAIN, HeuristicCatalog, build_messages
from polya.select.rules import Candidate, DatasetSelection, describe_dataset

PromptMode = Literal["question", "plain", "heuristic"]



def training_messages(
    question: str, completion: str, heuristic_id: str, catalog: HeuristicCatalog, prompt: PromptMode, system_prompt: bool
) -> list[dict[str, str]]:
    """The chat messages of one training example."""
    if prompt == "question":
        messages = [{"role": "system", "content": catalog.system_prompt.strip()}] if system_prompt else []
        messages.append({"role": "user", "content": question.strip()})
    else:
        heuristic = catalog.get(heuristic_id) if prompt == "heuristic" and heuristic_id != PLAIN else None
        built = build_messages(question, heuristic, catalog, num_exemplars=0)
        messages = built if system_prompt else [m for m in built if m["role"] != "system"]
    messages.append({"role": "assistant", "content": completion.strip()})
    return messages


def example_row(c: Candidate, catalog: HeuristicCatalog, prompt: PromptMode, system_prompt: bool) -> dict[str, Any]:
    """The dataset row of one selected candidate."""
    return {
        "messages": training_messages(str(c.record["question"]), c.completion, c.heuristic, catalog, prompt, system_prompt),
        "question_id": c.question_id,
        "heuristic": c.heuristic,
        "score": c.score,
        "round": c.round,
        "generation_id": c.id,
        "correct": c.correct,
        "rationalized": c.rationalized,
    }


def _parquet_schema() -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("messages", pa.list_(message)),
            ("question_id", pa.string()),
            ("heuristic", pa.string()),
            ("score", pa.float64()),
            ("round", pa.int64()),
            ("generation_id", pa.string()),
            ("correct", pa.bool_()),
            ("rationalized", pa.bool_()),
        ]
    )


def write_rows(store: ArtifactStore, path: str, rows: list[dict[str, Any]], fmt: Literal["jsonl", "parquet"]) -> None:
    """Write the rows atomically as JSON Lines or as a Parquet file (an empty list gives an empty file/table)."""
    if fmt == "jsonl":
        store.write_jsonl(path, rows)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=_parquet_schema())
    fd, local = tempfile.mkstemp(suffix=".parquet", prefix="polya-select-")
    os.close(fd)
    try:
        pq.write_table(table, local)
        store.upload_file(local, path)
    finally:
        os.unlink(local)


def score_summary(values: Iterable[float | None]) -> dict[str, Any]:
    """count / min / mean / median / max of the scores, and how many were null."""
    values = list(values)
    scored = [v for v in values if v is not None]
    out: dict[str, Any] = {"count": len(scored)}
    if scored:
        out.update(
            min=round(min(scored), 4), mean=round(statistics.fmean(scored), 4),
            median=round(statistics.median(scored), 4), max=round(max(scored), 4),
        )
    if len(scored) < len(values):
        out["null"] = len(values) - len(scored)
    return out


def dataset_statistics(dataset: DatasetSelection, heuristic_order: list[str]) -> dict[str, Any]:
    """Counts of one dataset: examples, questions, per heuristic, per round, per question, rejections."""
    per_heuristic = Counter(c.heuristic for c in dataset.examples)
    per_round = Counter(c.round for c in dataset.examples if not c.rationalized)
    per_question = Counter(c.question_id for c in dataset.examples)
    sizes = list(per_question.values())
    scores = [c.score for c in dataset.examples]
    return {
        "examples": len(dataset.examples),
        "questions": len(per_question),
        "per_heuristic": {h: per_heuristic[h] for h in heuristic_order if per_heuristic[h]}
        | {h: n for h, n in sorted(per_heuristic.items()) if h not in heuristic_order},
        "per_round": {str(r): n for r, n in sorted(per_round.items())},
        "source": dataset.source,
        "rationalized": sum(1 for c in dataset.examples if c.rationalized),
        "examples_per_question": {
            "min": min(sizes) if sizes else 0,
            "mean": round(statistics.fmean(sizes), 3) if sizes else 0.0,
            "max": max(sizes) if sizes else 0,
        },
        "rejections": dict(sorted(dataset.rejections.items(), key=lambda kv: (-kv[1], kv[0]))),
        "score": score_summary(scores),
        "budget": dataset.budget,
        "notes": list(dataset.notes),
    }


_REASONS = {
    "undecided": "the judge timed out or failed on it (status timeout / error); `undecided: drop`",
    "incorrect": "the answer was judged wrong",
    "correct": "the answer was judged right (the control keeps only wrong ones)",
    "no_final_answer": "no final answer was found in the solution",
    "heuristic_not_selected": "its heuristic is not in the `heuristics` setting",
    "empty": "the solution text is empty",
    "truncated": "cut off by the token limit (finish_reason length)",
    "unscored": "the scorer gave no score (unparseable judge answer)",
    "below_min_score": "the score is below `min_score`",
    "not_best_in_pair": "a better solution of the same (question, heuristic) was kept",
    "not_best_in_question": "a better solution of the same question was kept",
    "duplicate": "near-duplicate of a solution kept for the same question",
    "over_cap": "the question already had n_per_question solutions",
    "over_budget": "the dataset's budget was already used",
    "plain_prompt": "written with the plain prompt: this dataset draws from the heuristic prompts",
    "heuristic_prompt": "written with a heuristic prompt: this dataset draws from the plain prompt (`baseline_source`)",
    "rationalized": "a rationalized solution (the answer was given as a hint); `rationalized: false`",
    "mentions_hint": "a rationalized solution that refers to the hint, which its training prompt does not have",
}


def source_note(stats: dict[str, Any]) -> str:
    """Which prompt condition a dataset drew from, and how many of its examples are rationalized."""
    if stats.get("source") == "plain":
        note = (
            f"Drawn from the plain step-by-step prompt (condition `{PLAIN}`: no heuristic, its own exemplars), as in STaR, so "
            "this dataset differs from `polya` only in heuristic diversity (`baseline_source: plain`)."
        )
        if stats.get("rationalized"):
            note += (
                f" {stats['rationalized']} of its examples are rationalized: the model was asked again with the reference answer "
                "as a hint where no plain solution was correct; they are stored without the hint (the training prompt is the plain one)."
            )
        return note
    return "Drawn from the Pólya heuristic prompts (the plain prompt's generations are left out)."


def _table(header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _setting(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def decontamination_note(report: DecontaminationReport | None, questions: Iterable[str] = ()) -> str:
    """What the card says about decontamination: what was removed (or flagged) and against which benchmarks.

    ``questions`` are the dataset's question ids: with ``action: flag`` the note counts how many of
    them are among the flagged ones.
    """
    if report is None:
        return (
            "The training questions were not checked against the evaluation benchmarks (run `polya decontaminate`, or keep "
            "the decontaminate stage in `polya run`)."
        )
    where = f"see `{RunLayout.decontaminate.report_md}`"
    checked = ", ".join(f"{name} ({count} questions)" for name, count in report.benchmarks.items())
    if not report.contaminated:
        return f"All {report.questions} training questions were checked against {checked} ({report.method()}): none overlaps them."
    hit = ", ".join(report.hit())
    if report.action == "drop":
        ids = ", ".join(f"`{i}`" for i in report.removed[:20]) + (", ..." if len(report.removed) > 20 else "")
        return (
            f"{len(report.removed)} training questions removed as contaminated with {hit} ({report.method()}) before generation, "
            f"out of {report.questions} checked against {checked}; {where}. Removed: {ids}."
        )
    flagged = set(report.contaminated) & set(questions)
    return (
        f"{len(report.contaminated)} training questions overlap {hit} ({report.method()}) and were kept (action flag): "
        f"{len(flagged)} of this dataset's questions are among them; {where}."
    )


def render_card(
    dataset: str,
    stats: dict[str, Any],
    diversity: dict[str, Any],
    settings: dict[str, Any],
    source: dict[str, Any],
    data_file: str,
    example: dict[str, Any] | None,
    decontamination: str | None = None,
) -> str:
    """The Markdown dataset card of one dataset (Hugging Face card front matter, then the statistics)."""
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {data_file}",
        "task_categories:",
        "- text-generation",
        "tags:",
        "- polya",
        "- math",
        "- self-generated",
        *([f"- {dataset}"] if dataset != "polya" else []),
        "---",
        "",
        f"# polya select: `{dataset}`",
        "",
        describe_dataset(dataset),
        "",
        f"**{stats['examples']} examples over {stats['questions']} questions**, selected from {source['records']} generations "
        f"({source['correct']} correct) of run `{source['run_id']}` with model `{source['model']}`. "
        f"File: `{data_file}` (chat `messages` plus question_id, heuristic, score, round, generation_id, correct, rationalized).",
        "",
        source_note(stats),
        "",
    ]
    if stats["examples"] == 0:
        lines += [
            "> **Warning: this dataset is empty.** No generation passed the selection; see the rejected generations below "
            "(a weak model, too few samples, or a filter such as `min_score` or `heuristics` that excludes everything).",
            "",
        ]
    for note in stats.get("notes") or []:
        lines += [f"> Note: {note}.", ""]
    if decontamination:
        lines += ["## Decontamination", "", decontamination, ""]
    lines += ["## Settings", "", _table(("setting", "value"), ((f"`{k}`", f"`{_setting(v)}`") for k, v in settings.items())), ""]
    if stats["per_heuristic"]:
        lines += ["## Examples per heuristic", "", _table(("heuristic", "examples"), stats["per_heuristic"].items()), ""]
    if stats["per_round"]:
        lines += ["## Examples per bootstrap round", "", _table(("round", "examples"), stats["per_round"].items()), ""]
    epq = stats["examples_per_question"]
    lines += [f"Examples per question: min {epq['min']}, mean {epq['mean']}, max {epq['max']}.", ""]
    if stats["rejections"]:
        lines += [
            "## Generations left out",
            "",
            _table(("reason", "count", "meaning"), ((f"`{r}`", n, _REASONS.get(r, "")) for r, n in stats["rejections"].items())),
            "",
        ]
    lines += [
        "## Diversity",
        "",
        "Vendi score (exp of the entropy of the eigenvalues of K/n; K = TF-IDF word n-gram cosine similarity): "
        "1 means all solutions are the same, k means k entirely different ones.",
        "",
        _table(
            ("measure", "value"),
            [
                ("mean per question (questions with >= 2 examples)", _fmt(diversity.get("vendi_per_question_mean"))),
                ("mean per question (all questions)", _fmt(diversity.get("vendi_per_question_mean_all"))),
                (f"whole dataset ({diversity.get('overall_sample', 0)} examples)", _fmt(diversity.get("vendi_overall"))),
            ],
        ),
        "",
        "## Adherence scores",
        "",
        f"Scorer: `{settings.get('scorer.kind')}`. "
        + (
            f"min {_fmt(stats['score'].get('min'))}, mean {_fmt(stats['score'].get('mean'))}, "
            f"median {_fmt(stats['score'].get('median'))}, max {_fmt(stats['score'].get('max'))}"
            if stats["score"].get("count")
            else "no scored examples"
        )
        + (f"; {stats['score']['null']} without a score." if stats["score"].get("null") else "."),
        "",
    ]
    if example is not None:
        shown = json.dumps(example, ensure_ascii=False, indent=2)
        if len(shown) > 3000:
            shown = shown[:3000] + "\n..."
        lines += ["## One example", "", "```json", shown, "```", ""]
    return "\n".join(lines)
