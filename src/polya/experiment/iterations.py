"""The outer bootstrap loop's bookkeeping: what each iteration asks, what it trains on, and the per-iteration table.

``polya run`` with ``outer_loop.iterations`` K > 1 runs, for each dataset of the loop
(:meth:`RunConfig.loop_datasets`), iterations 2..K after the run's own SFT (iteration 1). Each
iteration is a run directory of its own (:meth:`RunLayout.iteration`), so it resumes like a run:

1. :func:`prepare` gives it the run's decontamination report and, in the ``star`` style, the ids of
   the questions earlier iterations solved (``generate/solved_before.json``: generate leaves them out);
2. generate (with iteration k-1's SFT model) and select (this dataset only) run there;
3. :func:`write_cumulative_data` (``star`` style) joins the dataset's rows of every iteration so far
   into the file its SFT trains on; ``rest_em`` trains on the iteration's own dataset;
4. SFT starts from the base model, into ``iterations/<dataset>/iter-NN/sft/<dataset>/``.

"Solved" means: the dataset holds at least one example of the question (a correct, selected
solution; for ``star`` a rationalized one counts, as in STaR). :func:`write_summary` writes the
per-iteration table (``iterations/summary.json`` and ``summary.md``).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from polya.core.errors import DataError
from polya.core.layout import RunLayout
from polya.core.outputs import read_generate_summary, read_select_report, read_training_summary
from polya.core.store import open_store
from polya.experiment.decontaminate import share_report

if TYPE_CHECKING:
    from polya.experiment.config import RunConfig

logger = logging.getLogger(__name__)

CUMULATIVE_DATA = "loop-data/{dataset}/train.jsonl"
"""Inside an iteration's run directory (``star`` style): the dataset's rows of every iteration so far."""


def cumulative_data_file(iteration: RunLayout, dataset: str) -> str:
    """The file an iteration's SFT trains on in the ``star`` style (written by :func:`write_cumulative_data`)."""
    return iteration.uri(CUMULATIVE_DATA.format(dataset=dataset))


def dataset_rows(layout: RunLayout, dataset: str) -> list[dict[str, Any]] | None:
    """The rows of select's ``dataset`` in the run at ``layout`` (JSONL or Parquet), or None when select has not written it."""
    store = open_store(layout.root)
    for path in layout.select.data_files(dataset):
        if not store.exists(path):
            continue
        if path.endswith(".jsonl"):
            return store.read_jsonl(path)
        import pyarrow.parquet as pq

        try:
            return pq.read_table(io.BytesIO(store.read_bytes(path))).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise DataError(f"{layout.uri(path)} is not a readable Parquet file ({exc}); run select again") from None
    return None


def solved_questions(layout: RunLayout, dataset: str) -> set[str]:
    """Ids of the questions ``dataset`` holds an example of in the run at ``layout`` (empty before select)."""
    return solved_ids(dataset_rows(layout, dataset) or [])


def _questions(config: RunConfig) -> list[str]:
    """The question ids the run's generation asked (after decontamination): the loop's universe."""
    store = open_store(config.run_dir)
    path = RunLayout.generate.questions
    if not store.exists(path):
        raise DataError(f"{RunLayout(config.run_dir).uri(path)} is missing: the outer loop starts after the run's generate stage")
    return [str(row["id"]) for row in store.read_jsonl(path)]


def prepare(config: RunConfig, dataset: str, index: int) -> int:
    """Get iteration ``index`` of ``dataset`` ready to generate; return how many questions it will ask (0: none left).

    The iteration gets the run's decontamination report; in the ``star`` style also the ids solved
    by iterations 1..index-1 (written once: a changed set makes generate refuse to mix, naming why).
    """
    iteration = config.iteration_layout(dataset, index)
    share_report(config.run_dir, iteration.root)
    questions = _questions(config)
    if config.outer_loop.style != "star":
        return len(questions_to_ask(config.outer_loop.style, questions, set()))
    solved: set[str] = set()
    for earlier in range(1, index):
        solved |= solved_questions(config.iteration_layout(dataset, earlier), dataset)
    left = questions_to_ask(config.outer_loop.style, questions, solved)
    if left:
        open_store(iteration.root).write_json(
            RunLayout.generate.solved_before, {"dataset": dataset, "iterations": list(range(1, index)), "question_ids": sorted(solved)}
        )
    return len(left)


def write_cumulative_data(config: RunConfig, dataset: str, index: int) -> int:
    """Join ``dataset``'s rows of iterations 1..index into the iteration's training file (``star`` style); return the row count.

    Each row keeps its fields and gains ``iteration``. An iteration that generated nothing (no
    question left) contributes no rows.
    """
    rows: list[dict[str, Any]] = []
    for earlier in range(1, index + 1):
        rows = loop_rows(config.outer_loop.style, earlier, dataset_rows(config.iteration_layout(dataset, earlier), dataset) or [], rows)
    if not rows:
        raise DataError(f"no iteration of {dataset} holds an example, so there is nothing to fine-tune on")
    iteration = config.iteration_layout(dataset, index)
    store = open_store(iteration.root)
    store.write_jsonl(CUMULATIVE_DATA.format(dataset=dataset), rows)
    return len(rows)


@dataclass
class IterationRow:
    """One line of the per-iteration table."""

    dataset: str
    iteration: int
    generated_with: str
    questions_asked: int | None
    questions_solved: int
    solved_total: int
    samples: int | None
    correct_samples: int | None
    completion_tokens: int | None
    sft_examples: int | None
    sft_steps: int | None


def summarize(config: RunConfig) -> list[IterationRow]:
    """The per-iteration table of every loop dataset, from what each iteration's stages wrote (missing parts: None)."""
    table: list[IterationRow] = []
    for dataset in config.loop_datasets():
        solved_total: set[str] = set()
        for index in range(1, config.outer_loop.iterations + 1):
            layout = config.iteration_layout(dataset, index)
            store = open_store(layout.root)
            generated = read_generate_summary(store)
            solved = solved_questions(layout, dataset)
            solved_total |= solved
            training = read_training_summary(store, RunLayout.sft(dataset))
            cumulative = CUMULATIVE_DATA.format(dataset=dataset)
            if config.outer_loop.style == "star" and index > 1:
                examples = len(store.read_jsonl(cumulative)) if store.exists(cumulative) else None
            else:
                report = read_select_report(store)
                examples = report.datasets[dataset].examples if report is not None and dataset in report.datasets else None
            nothing_left = generated is None and index > 1 and store.exists(cumulative)  # star: every question solved before
            table.append(IterationRow(
                dataset=dataset, iteration=index,
                generated_with="base model" if index == 1 else f"iteration {index - 1} SFT model",
                questions_asked=generated.questions if generated else (0 if nothing_left else None),
                questions_solved=len(solved), solved_total=len(solved_total),
                samples=generated.samples if generated else None,
                correct_samples=generated.correct_samples if generated else None,
                completion_tokens=generated.completion_tokens if generated else None,
                sft_examples=examples,
                sft_steps=training.global_step if training else None,
            ))
    return table


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def render(config: RunConfig, table: list[IterationRow]) -> str:
    """The per-iteration table as Markdown."""
    loop = config.outer_loop
    lines = [
        "# Outer bootstrap loop",
        "",
        f"{loop.iterations} iterations of generate -> select -> SFT, style `{loop.style}` "
        + (
            "(each iteration asks the questions no earlier one solved; SFT from the base model on every iteration's data so far)."
            if loop.style == "star" else
            "(each iteration asks every question; SFT from the base model on that iteration's data only)."
        ),
        "Iteration 1 is the run's own generation, shared by every dataset and counting every prompt condition; a question is "
        "solved when the dataset holds an example of it. '-': not run (yet).",
        "",
        "| dataset | iteration | generated with | questions asked | solved (new) | solved (total) | samples | correct | tokens | SFT examples | SFT steps |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in table:
        lines.append(
            f"| {row.dataset} | {row.iteration} | {row.generated_with} | {_cell(row.questions_asked)} | {row.questions_solved} | "
            f"{row.solved_total} | {_cell(row.samples)} | {_cell(row.correct_samples)} | {_cell(row.completion_tokens)} | "
            f"{_cell(row.sft_examples)} | {_cell(row.sft_steps)} |"
        )
    return "\n".join(lines) + "\n"


def write_summary(config: RunConfig) -> list[dict[str, Any]]:
    """Write ``iterations/summary.json`` and ``summary.md`` of the run; return the table's rows."""
    table = summarize(config)
    rows = [vars(row) for row in table]
    store = open_store(config.run_dir)
    store.write_json(RunLayout.ITERATIONS_SUMMARY, {"iterations": config.outer_loop.iterations, "style": config.outer_loop.style, "rows": rows})
    store.write_text(RunLayout.ITERATIONS_REPORT, render(config, table))
    return rows


# The loop's rules as pure functions on rows and ids: ``polya run``'s run-directory wrappers above
# and the KFP pipeline's ``iterate`` step (polya.pipeline.steps.iterate) both call these.


def solved_ids(rows: Iterable[dict[str, Any]]) -> set[str]:
    """Ids of the questions a dataset's rows hold an example of: what "solved" means in the loop."""
    return {str(row["question_id"]) for row in rows if row.get("question_id") is not None}


def questions_to_ask(style: str, question_ids: Sequence[str], solved: set[str]) -> list[str]:
    """The questions the next iteration asks, in their order: ``star``, the ones not in ``solved``; ``rest_em``, all."""
    if style != "star":
        return list(question_ids)
    return [q for q in question_ids if q not in solved]


def loop_rows(style: str, iteration: int, rows: Iterable[dict[str, Any]], earlier: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """What iteration ``iteration``'s SFT trains on: its dataset's rows, each tagged ``iteration``, after
    ``earlier`` (the rows iterations 1..iteration-1 trained on) in the ``star`` style; its own rows only in ``rest_em``."""
    own = [{**row, "iteration": iteration} for row in rows]
    return [*earlier, *own] if style == "star" else own
