"""The selection stage: from a run's verified generations to the SFT datasets of the paper's arms.

``run(config)`` is the one entry point; the CLI, ``polya run`` and the tests all call it.

1. Read every generation record of the run (``<run_dir>/generate/generations/``); optionally
   judge them again with the verifier library (``reverify``).
2. Score heuristic adherence of every solution a dataset may use (``scorer.kind``: offline cues,
   an LLM judge, a reward model). Model scores are cached in ``select/scores/<scorer id>/`` as
   they arrive, so a killed or repeated run only scores what is missing.
3. Build each dataset in ``datasets`` (:mod:`polya.select.rules`), measure its diversity (Vendi
   score) and write it with a dataset card.

Layout under ``<run_dir>/select/`` (:class:`polya.core.layout.SelectLayout`)::

    report.json                     every dataset's counts, rejection reasons, Vendi scores; scorer; inputs
    <dataset>/train.jsonl           the dataset as chat messages (or train.parquet)
    <dataset>/README.md             dataset card with the statistics
    scores/<scorer id>/scorer.json  what produced the cached scores
    scores/<scorer id>/part-*.jsonl cached scores (llm_judge, reward_model)
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from polya.core.config import mask_secrets
from polya.core.digest import short_digest
from polya.core.errors import ConfigError, DataError
from polya.core.layout import RunLayout, SelectLayout
from polya.core.manifest import RunManifest
from polya.core.memory import peak_memory
from polya.core.outputs import DatasetReport, SelectReport, iter_generations, read_decontamination_report
from polya.core.store import open_store
from polya.core.store.shards import ShardWriter, read_shards, shard_paths
from polya.heuristics import PLAIN, HeuristicCatalog
from polya.metrics.diversity import summarize_diversity
from polya.select import rules
from polya.select.config import BASELINE_DATASETS, SelectConfig, dataset_rule
from polya.select.datasets import (
    dataset_statistics,
    decontamination_note,
    example_row,
    render_card,
    score_summary,
    write_rows,
)
from polya.select.rules import Candidate, DatasetSelection, SelectionInputs
from polya.select.scorers import AdherenceScorer, ScoreItem, ScoreResult, check_scorer, open_scorer
from polya.verify.protocol import record_decided

logger = logging.getLogger(__name__)

STAGE = "select"
_MENTIONS_HINT = re.compile(r"\bhint(s|ed)?\b", re.IGNORECASE)
"""A rationalized solution that says this refers to the hint it was given (STaR filters none; polya drops them)."""


@dataclass
class DatasetOutput:
    """Where one dataset's file and card are (relative to the run directory), and its size."""

    name: str
    data_path: str
    card_path: str
    examples: int
    questions: int


@dataclass
class SelectOutputs:
    """What the stage produced."""

    run_dir: str
    stage_uri: str
    datasets: dict[str, DatasetOutput]
    report: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


def generations_digest(run_dir: str) -> str:
    """Digest of the generation shards present (shards are immutable and uniquely named)."""
    return short_digest(shard_paths(open_store(run_dir), RunLayout.generate.generations))


def manifest_config(config: SelectConfig) -> dict[str, Any]:
    """What the manifest records for the stage: the settings (secrets masked) and a digest of its input.

    ``polya run`` skips the stage when this is unchanged and the outputs are intact, so new
    generations (or a new decontamination report, which the cards describe) make it run again.
    """
    inputs = {"generations": generations_digest(config.run_dir)}
    store = open_store(config.run_dir)
    if store.exists(RunLayout.decontaminate.report):
        inputs["decontamination"] = store.sha256(RunLayout.decontaminate.report)
    return {**mask_secrets(config.model_dump(mode="json")), "inputs": inputs}


class SelectionStage:
    """One execution of the stage over a run directory."""

    def __init__(self, config: SelectConfig):
        self.config = config
        self.layout = RunLayout(config.run_dir)
        self.paths: SelectLayout = self.layout.select
        self.store = open_store(config.run_dir)
        self.catalog = self._catalog()
        self.selected = {h.id for h in self.catalog.select(config.heuristics)} | {PLAIN}
        self.heuristic_rank = {h.id: i for i, h in enumerate(self.catalog)} | {PLAIN: len(self.catalog)}
        self.decontamination = read_decontamination_report(self.store)

    # ----- inputs -----------------------------------------------------------------------------
    def _generate_config(self) -> dict[str, Any]:
        path = RunLayout.generate.config
        if self.store.exists(path):
            return self.store.read_json(path).get("config") or {}
        return {}

    def _catalog(self) -> HeuristicCatalog:
        path = self.config.catalog
        if path is None:
            path = self._generate_config().get("catalog")
            if path:
                logger.info("using the heuristic catalog the generate stage used: %s", path)
        return HeuristicCatalog.load(path)

    def load_records(self) -> list[dict[str, Any]]:
        """Every generation record, checked for the fields selection needs, questions filled in."""
        records = list(iter_generations(self.store))
        if not records:
            raise ConfigError(
                f"no generations found in {self.layout.uri(RunLayout.generate.generations)}: run `polya generate --run-dir {self.config.run_dir}` "
                "first (or point --run-dir at a run that has them)"
            )
        questions = {str(q["id"]): q for q in self._questions()}
        unknown: Counter[str] = Counter()
        for rec in records:
            q = questions.get(str(rec["question_id"]), {})
            if not rec.get("question"):
                if not q.get("question"):
                    raise DataError(f"generation record {rec['id']!r} has no question text and questions.jsonl has none for it")
                rec["question"] = q["question"]
            if rec.get("reference") is None and q.get("answer") is not None:
                rec["reference"] = q["answer"]
            if rec["heuristic"] not in self.heuristic_rank:
                unknown[str(rec["heuristic"])] += 1
        if unknown:
            raise ConfigError(
                f"generations use heuristics {sorted(unknown)} that catalog {self.catalog.source} does not define; "
                "set catalog to the catalog the generate stage used"
            )
        return records

    def _questions(self) -> list[dict[str, Any]]:
        path = RunLayout.generate.questions
        return self.store.read_jsonl(path) if self.store.exists(path) else []

    def question_order(self, records: list[dict[str, Any]]) -> dict[str, int]:
        order: dict[str, int] = {}
        for q in self._questions():
            order.setdefault(str(q["id"]), len(order))
        for rec in records:
            order.setdefault(str(rec["question_id"]), len(order))
        return order

    # ----- reverify ---------------------------------------------------------------------------
    def reverify(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Judge every record again with the verifier library; update ``correct`` in place."""
        from tqdm.auto import tqdm

        from polya.verify.protocol import VerifyItem

        cfg = self.config
        missing = [r["id"] for r in records if r.get("reference") is None]
        if missing:
            raise DataError(f"reverify needs each record's reference answer; {len(missing)} have none (first: {missing[0]!r})")
        items = [VerifyItem(kind="math", prediction=str(r.get("completion") or ""), reference=str(r["reference"])) for r in records]
        with cfg.open_verifier() as verifier:
            with tqdm(total=len(items), unit="solution", desc="reverify", disable=not cfg.progress, dynamic_ncols=True) as bar:
                verdicts = verifier.verify(items, progress=bar.update)
        became_correct = became_incorrect = 0
        for rec, verdict in zip(records, verdicts):
            before = bool(rec.get("correct"))
            became_correct += verdict.correct and not before
            became_incorrect += before and not verdict.correct
            rec["correct_stored"] = before
            rec["correct"] = verdict.correct
            rec["status"] = verdict.status
            rec["extracted_answer"] = verdict.extracted
            rec["judge_reason"] = verdict.reason
        return {
            "judged": len(records),
            "correct": sum(1 for r in records if r["correct"]),
            "undecided": sum(1 for r in records if not record_decided(r)),
            "became_correct": became_correct,
            "became_incorrect": became_incorrect,
            "verifier": cfg.verifier_endpoint or "in-process",
        }

    # ----- eligibility and scoring --------------------------------------------------------------
    def _pre_rejection(self, rec: dict[str, Any], pool: str) -> str | None:
        """Why ``rec`` cannot enter ``pool`` ('correct' / 'incorrect') whatever its score, else None."""
        if self.config.undecided == "drop" and not record_decided(rec):
            return "undecided"
        correct = bool(rec.get("correct"))
        if pool == "correct" and not correct:
            return "incorrect"
        if pool == "incorrect":
            if correct:
                return "correct"
            if not str(rec.get("extracted_answer") or "").strip():
                return "no_final_answer"
        if rec["heuristic"] not in self.selected:
            return "heuristic_not_selected"
        if not str(rec.get("completion") or "").strip():
            return "empty"
        if self.config.exclude_truncated and rec.get("finish_reason") == "length":
            return "truncated"
        if rec.get("rationalized") and _MENTIONS_HINT.search(str(rec.get("completion") or "")):
            return "mentions_hint"  # it would train the model to cite a hint its prompt does not have
        return None

    def _pools(self) -> list[str]:
        pools = []
        if set(self.config.datasets) - {"wrong_answer"}:
            pools.append("correct")
        if "wrong_answer" in self.config.datasets:
            pools.append("incorrect")
        return pools

    def score(self, scorer: AdherenceScorer, records: list[dict[str, Any]]) -> tuple[dict[str, ScoreResult], dict[str, Any]]:
        """Scores of every record some dataset may use: cached ones reused, the rest scored and cached."""
        pools = self._pools()
        # The plain prompt follows no heuristic: its solutions are not scored for adherence.
        needed = [r for r in records if r["heuristic"] != PLAIN and any(self._pre_rejection(r, p) is None for p in pools)]
        identity = scorer.identity()
        scorer_id = short_digest(identity)
        cache = scorer.kind != "offline"
        prefix = self.paths.scores(scorer_id)
        results: dict[str, ScoreResult] = {}
        if cache:
            for row in read_shards(self.store, prefix):
                results[row["id"]] = ScoreResult(row.get("score"), row.get("detail"), int(row.get("attempts") or 1))
            if not self.store.exists(f"{prefix}/scorer.json"):
                self.store.write_json(f"{prefix}/scorer.json", identity)
        wanted = {r["id"] for r in needed}
        cached = sum(1 for i in wanted if i in results)
        todo = [
            ScoreItem(r["id"], str(r["question"]), self.catalog.get(r["heuristic"]), str(r.get("completion") or ""), r.get("finish_reason"))
            for r in needed
            if r["id"] not in results
        ]
        if cached:
            logger.info("reusing %s cached scores from %s; %s left to score", cached, self.store.uri(prefix), len(todo))
        writer = ShardWriter(self.store, prefix, flush_every=64, flush_interval_s=10.0) if cache else None

        def on_result(item: ScoreItem, result: ScoreResult) -> None:
            results[item.id] = result
            if writer is not None:
                writer.add([{"id": item.id, "score": result.score, "detail": result.detail, "attempts": result.attempts}])
                if writer.due():
                    writer.flush()

        started = time.monotonic()
        try:
            scorer.score(todo, on_result)
        finally:
            if writer is not None:
                writer.flush()
        elapsed = time.monotonic() - started
        scored = [results[i] for i in wanted if i in results]
        summary = {
            "kind": scorer.kind,
            "id": scorer_id,
            "identity": identity,
            "solutions": len(wanted),
            "scored_now": len(todo),
            "from_cache": cached,
            "unscored": sum(1 for r in scored if r.score is None),
            "scores": score_summary(r.score for r in scored),
            "seconds": round(elapsed, 2),
            "solutions_per_s": round(len(todo) / elapsed, 2) if elapsed > 0 and todo else None,
        }
        return results, summary

    def selection_inputs(self, records: list[dict[str, Any]], scores: dict[str, ScoreResult], order: dict[str, int]) -> SelectionInputs:
        cfg = self.config
        pools: dict[str, list[Candidate]] = {"correct": [], "incorrect": []}
        base: dict[str, Counter[str]] = {"correct": Counter(), "incorrect": Counter()}
        for rec in records:
            for pool in ("correct", "incorrect"):
                reason = self._pre_rejection(rec, pool)
                result = scores.get(rec["id"])
                score = result.score if result is not None else None
                scored = rec["heuristic"] != PLAIN  # plain solutions have no adherence score: ranked by round and sample
                if reason is None and result is None and scored:
                    reason = "unscored"  # only when the pool was not scored (no dataset drawing from it is requested)
                if reason is None and score is None and scored and cfg.scorer.on_unscored == "drop":
                    reason = "unscored"
                if reason is None and score is not None and cfg.min_score is not None and score < cfg.min_score:
                    reason = "below_min_score"
                if reason is None:
                    pools[pool].append(Candidate(rec, score, self.heuristic_rank[rec["heuristic"]]))
                else:
                    base[pool][reason] += 1
        return SelectionInputs(
            correct=pools["correct"], incorrect=pools["incorrect"], base_rejections=base, question_order=order,
            n=cfg.n_per_question, per_pair=cfg.per_pair, dedup=cfg.dedup, budget=cfg.budget, seed=cfg.seed,
            heuristics=len(self.selected - {PLAIN}), baseline_source=cfg.baseline_source, rationalized=cfg.rationalized,
        )

    # ----- outputs ------------------------------------------------------------------------------
    def settings_for_card(self, dataset: str) -> dict[str, Any]:
        cfg = self.config
        out: dict[str, Any] = {
            "scorer.kind": cfg.scorer.kind,
            "prompt": cfg.prompt,
            "system_prompt": cfg.system_prompt,
        }
        if cfg.scorer.model:
            out["scorer.model"] = cfg.scorer.model
        rule, n = dataset_rule(dataset)
        if rule in BASELINE_DATASETS:
            out["baseline_source"] = cfg.baseline_source
            if cfg.baseline_source == "plain":
                out["rationalized"] = cfg.rationalized
        if rule in ("polya", "wrong_answer", "depth", "distill"):
            per_pair = rules.polya_at_per_pair(n, cfg.per_pair, len(self.selected - {PLAIN})) if n else cfg.per_pair
            if rule == "depth" and cfg.baseline_source == "plain":
                per_pair = cfg.n_per_question
            out.update({"n_per_question": n or cfg.n_per_question, "per_pair": per_pair})
            out["dedup"] = f"{cfg.dedup.method}" + (f" (n={cfg.dedup.ngram}, threshold={cfg.dedup.threshold})" if cfg.dedup.method == "ngram" else "")
        if rule in ("breadth", "depth"):
            out["seed"] = cfg.seed
        out.update({"min_score": cfg.min_score, "exclude_truncated": cfg.exclude_truncated, "reverify": cfg.reverify})
        if cfg.heuristics != ["all"]:
            out["heuristics"] = ", ".join(cfg.heuristics)
        return out

    def write_dataset(self, selection: DatasetSelection, source: dict[str, Any]) -> tuple[DatasetOutput, DatasetReport]:
        cfg = self.config
        name = selection.name
        rows = [example_row(c, self.catalog, cfg.prompt, cfg.system_prompt) for c in selection.examples]
        data_path = self.paths.data_file(name, cfg.output_format)
        card_path = self.paths.card(name)
        write_rows(self.store, data_path, rows, cfg.output_format)
        for other in self.paths.data_files(name):  # a dataset written earlier in the other format would be stale
            if other != data_path and self.store.exists(other):
                self.store.delete(other)
        stats = dataset_statistics(selection, list(self.heuristic_rank))
        groups: dict[str, list[str]] = {}
        keys: dict[str, list[str]] = {}
        for c in selection.examples:
            groups.setdefault(c.question_id, []).append(c.completion)
            keys.setdefault(c.question_id, []).append(c.id)
        diversity = summarize_diversity(groups, cfg.diversity.ngram_max, cfg.diversity.max_overall, keys).as_dict()
        data_file = data_path.rsplit("/", 1)[-1]
        note = decontamination_note(self.decontamination, {c.question_id for c in selection.examples})
        card = render_card(name, stats, diversity, self.settings_for_card(name), source, data_file, rows[0] if rows else None, note)
        self.store.write_text(card_path, card)
        if not rows:
            logger.warning("dataset %s is empty: wrote an empty %s and a card that says why", name, self.store.uri(data_path))
        for note in selection.notes:
            logger.warning("dataset %s: %s", name, note)
        out = DatasetOutput(name, data_path, card_path, len(rows), stats["questions"])
        return out, DatasetReport.model_validate({"path": data_path, "card": card_path, **stats, "diversity": diversity})

    # ----- entry --------------------------------------------------------------------------------
    def run(self) -> SelectOutputs:
        cfg = self.config
        check_scorer(cfg.scorer)  # a reward model that cannot be had fails here, before anything loads
        records = self.load_records()
        manifest = RunManifest.load_or_create(self.store)
        gen_record = manifest.stage(RunLayout.generate.root)
        if gen_record is not None and gen_record.status != "done":
            logger.warning("the generate stage is %s: selecting from the %s records stored so far", gen_record.status, len(records))
        scorer: AdherenceScorer | None = None
        with manifest.recording(STAGE, manifest_config(cfg)) as record:
            try:
                reverified = self.reverify(records) if cfg.reverify else None
                scorer = open_scorer(cfg.scorer, self.catalog, cfg.progress)
                scores, scorer_summary = self.score(scorer, records)
            finally:
                if scorer is not None:
                    scorer.close()
            order = self.question_order(records)
            inputs = self.selection_inputs(records, scores, order)
            source = {
                "run_id": manifest.run_id,
                "records": len(records),
                "correct": sum(1 for r in records if r.get("correct")),
                "model": ", ".join(sorted({str(r.get("model")) for r in records if r.get("model")})) or "unknown",
            }
            outputs: dict[str, DatasetOutput] = {}
            reports: dict[str, DatasetReport] = {}
            for name in cfg.datasets:
                outputs[name], reports[name] = self.write_dataset(rules.build_dataset(name, inputs), source)
            report = self.report(records, order, scorer_summary, reverified, reports, source)
            self.store.write_json(self.paths.report, report.dump())
            record.artifacts = [self.paths.report] + [p for a in outputs.values() for p in (a.data_path, a.card_path)]
            summary = {name: {"examples": a.examples, "questions": a.questions} for name, a in outputs.items()}
            record.outputs = {"datasets": summary, "unscored": scorer_summary["unscored"]}
        logger.info(
            "selected from %s generations (%s correct): %s", len(records), source["correct"],
            ", ".join(f"{n} {a.examples} examples / {a.questions} questions" for n, a in outputs.items()),
        )
        return SelectOutputs(cfg.run_dir, self.layout.uri(self.paths.root), outputs, report.dump(), summary)

    def _decontamination_summary(self) -> dict[str, Any] | None:
        report = self.decontamination
        if report is None:
            return None
        return {
            "report": RunLayout.decontaminate.report, "action": report.action, "checked": report.questions,
            "benchmarks": report.per_benchmark, "contaminated": len(report.contaminated), "removed": report.removed,
            "summary": report.summary(),
        }

    def report(
        self, records: list[dict[str, Any]], order: dict[str, int], scorer_summary: dict[str, Any],
        reverified: dict[str, Any] | None, datasets: dict[str, DatasetReport], source: dict[str, Any],
    ) -> SelectReport:
        per_heuristic: dict[str, dict[str, int]] = {h: {"samples": 0, "correct": 0} for h in self.heuristic_rank}
        per_round: dict[str, dict[str, int]] = {}
        rationalized = {"samples": 0, "correct": 0, "questions_solved": 0}
        rationalized_solved: set[str] = set()
        for rec in records:
            if rec.get("rationalized"):  # counted apart: asked with the answer as a hint
                rationalized["samples"] += 1
                rationalized["correct"] += int(bool(rec.get("correct")))
                if rec.get("correct"):
                    rationalized_solved.add(str(rec["question_id"]))
                continue
            h = per_heuristic.setdefault(rec["heuristic"], {"samples": 0, "correct": 0})
            h["samples"] += 1
            h["correct"] += int(bool(rec.get("correct")))
            r = per_round.setdefault(str(rec.get("round") or 1), {"samples": 0, "correct": 0})
            r["samples"] += 1
            r["correct"] += int(bool(rec.get("correct")))
        rationalized["questions_solved"] = len(rationalized_solved)
        return SelectReport(
            run_dir=self.config.run_dir,
            run_id=source["run_id"],
            inputs={
                "generations": generations_digest(self.config.run_dir),
                "records": len(records),
                "correct": source["correct"],
                "questions": len(order),
                "questions_with_correct": len({r["question_id"] for r in records if r.get("correct")}),
                "per_heuristic": {k: v for k, v in per_heuristic.items() if v["samples"]},
                "per_round": dict(sorted(per_round.items(), key=lambda kv: int(kv[0]))),
                "rationalized": rationalized,
                "model": source["model"],
            },
            reverify=reverified,
            decontamination=self._decontamination_summary(),
            catalog=self.catalog.source,
            scorer=scorer_summary,
            datasets=datasets,
            config=mask_secrets(self.config.model_dump(mode="json")),
            **peak_memory(),
        )


def run(config: SelectConfig) -> SelectOutputs:
    """Run (or re-run) the selection stage; cached scores are reused."""
    return SelectionStage(config).run()
