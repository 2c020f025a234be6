"""The evaluation stage: pass@k of each arm on each benchmark, diversity, composition, and the report.

``run(config)`` is the one entry point; the CLI, the KFP component, ``polya run`` and the tests
call it. Layout under ``<run_dir>/eval/`` (:class:`polya.core.layout.EvalLayout`)::

    benchmarks/<benchmark>/questions.jsonl   the questions, frozen at first use (every arm sees the same)
    <arm>/<benchmark>/samples.jsonl          one record per sample: completion, verdict, tokens
    <arm>/<benchmark>/part.json              what produced it (model, sampling, benchmark); written last
    <arm>/<benchmark>/composition.jsonl      LLM-judge heuristic labels (when judge.enabled)
    results.json                             pass@k, accuracy, Vendi, composition per arm and benchmark
    report.md, plots/*.png                   the comparison (see polya.eval.report)

For each arm polya starts one vLLM server (or uses ``endpoint``/``endpoints``), samples
``sampling.n`` answers per question for every benchmark, judges them with the verifier library
(math-verify, the code sandbox, the multiple-choice judge), then stops the server. An (arm,
benchmark) part whose ``part.json`` matches the current settings is skipped on a re-run, so an
interrupted evaluation resumes with the parts that are missing. A part's identity holds the model,
the benchmark, the sampling settings and a digest of the catalog and of every prompt sent, so an
edited catalog (its system prompt or answer format) evaluates the part again.

**Undecided samples.** A sample whose verdict is ``timeout`` or ``error`` (the judge ran out of
CPU time, or failed) is judged once more with ``rejudge_timeout_s``; if it is still undecided it
is stored with that status and counted in ``undecided``, and it is neither right nor wrong:
accuracy and pass@k use each question's decided samples, and a question with fewer than k decided
samples is left out of pass@k for that k (``pass_at_k_questions`` says how many questions each k
covers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from tqdm.auto import tqdm

from polya.core.digest import digest, seed_from
from polya.core.errors import ConfigError
from polya.core.layout import RunLayout
from polya.core.manifest import installed_versions, record_stage
from polya.core.memory import peak_memory
from polya.core.outputs import EvalResults
from polya.core.store import open_store
from polya.eval.benchmarks import (
    EvalItem,
    build_prompt,
    get_benchmark,
    load_benchmark,
    option_letter,
)
from polya.eval.accounting import arm_accounting
from polya.eval.config import STAGE, BenchmarkSpec, EvalConfig
from polya.eval.statistics import average_intervals, pass_at_k_intervals
from polya.heuristics import HeuristicCatalog
from polya.metrics import mean_pass_at_k
from polya.sampling import ChatClient, chat_body, fan_out, parse_choices, worker_count
from polya.serving.config import JUDGE_API_KEY_ENV
from polya.serving.vllm_server import Endpoint, open_endpoint
from polya.verify.client import Verifier
from polya.verify.code_judge import assemble_program
from polya.verify.protocol import VerifyItem, record_decided

logger = logging.getLogger(__name__)

@dataclass
class EvalOutputs:
    """What the stage produced."""

    run_dir: str
    stage_uri: str
    results: dict[str, Any]
    report_uri: str
    plots: list[str]


def request_seed(base_seed: int, benchmark: str, question_id: str) -> int:
    """Deterministic per-request seed (the same across arms, so arms see the same random stream where the server honours it)."""
    return seed_from(base_seed, benchmark, question_id)


def verify_item(item: EvalItem, completion: str) -> VerifyItem:
    """The verifier item that judges ``completion`` as an answer to ``item``."""
    if item.kind == "math":
        assert item.reference is not None
        return VerifyItem(kind="math", prediction=completion, reference=item.reference)
    if item.kind == "choice":
        assert item.options is not None and item.reference is not None
        return VerifyItem(kind="choice", prediction=completion, options=list(item.options), reference=option_letter(int(item.reference)))
    assert item.tests is not None
    # Assembled here, not by the verifier (prompt=...), so a verifier service of any version judges the same program.
    return VerifyItem(
        kind="code", prediction=assemble_program(completion, item.question, item.entry_point), tests=item.tests,
        entry_point=item.entry_point,
    )


class EvaluationStage:
    """One execution of the stage over a run directory."""

    def __init__(self, config: EvalConfig):
        self.config = config
        self.layout = RunLayout(config.run_dir)
        self.paths = self.layout.eval
        self.store = open_store(config.run_dir)
        self.catalog = HeuristicCatalog.load(config.catalog)
        self._items: dict[str, list[EvalItem]] = {}
        self._verifier: Verifier | None = None

    # ----- questions and parts ---------------------------------------------------------------
    def items(self, spec: BenchmarkSpec) -> list[EvalItem]:
        """The benchmark's questions, frozen in the run at first use."""
        if spec.name in self._items:
            return self._items[spec.name]
        questions, spec_path = self.paths.benchmark_questions(spec.name), self.paths.benchmark_spec(spec.name)
        identity = spec.identity()
        items: list[EvalItem] | None = None
        if self.store.exists(questions) and self.store.exists(spec_path):
            if self.store.read_json(spec_path) == identity:
                items = [_item_from_dict(row) for row in self.store.read_jsonl(questions)]
        if items is None:
            items = load_benchmark(
                spec.name, path=spec.path, hub_id=spec.hub_id, subset=spec.subset, split=spec.split, limit=spec.limit, seed=spec.seed,
                columns=spec.columns.mapped(),
            )
            self.store.write_jsonl(questions, (i.as_dict() for i in items))
            self.store.write_json(spec_path, identity)
        self._items[spec.name] = items
        return items

    def prompt(self, item: EvalItem) -> list[dict[str, str]]:
        """The chat messages that ask ``item``."""
        return build_prompt(item, self.catalog, system_prompt=self.config.system_prompt)

    def part_identity(self, arm: str, spec: BenchmarkSpec) -> dict[str, Any]:
        """What decides an (arm, benchmark) part's samples; a part stored with another identity is evaluated again."""
        cfg = self.config
        return {
            "arm": arm,
            "model": cfg.arms[arm],
            "benchmark": spec.identity(),
            "sampling": cfg.sampling.identity(),
            "catalog_digest": self.catalog.digest(),
            "prompts_digest": digest([self.prompt(item) for item in self.items(spec)], 16),
        }

    def part_done(self, arm: str, spec: BenchmarkSpec) -> bool:
        if not (self.store.exists(self.paths.part_record(arm, spec.name)) and self.store.exists(self.paths.samples(arm, spec.name))):
            return False
        stored = self.store.read_json(self.paths.part_record(arm, spec.name)).get("identity")
        if stored != self.part_identity(arm, spec):
            logger.warning("%s/%s was evaluated with other settings; evaluating it again", arm, spec.name)
            return False
        return True

    # ----- generation ------------------------------------------------------------------------
    def _body(self, endpoint: Endpoint, item: EvalItem, repeat: int = 0) -> dict[str, Any]:
        cfg = self.config
        seed = request_seed(cfg.sampling.seed + repeat, item.benchmark, item.id)
        return chat_body(endpoint, self.prompt(item), cfg.sampling, cfg.sampling.n, seed, cfg.server.vllm_extensions)

    async def _evaluate_part(self, arm: str, spec: BenchmarkSpec, endpoint: Endpoint, client: ChatClient) -> int:
        """Sample and judge every question of one (arm, benchmark); write samples.jsonl, then part.json."""
        cfg = self.config
        items = self.items(spec)
        verifier = self._verifier
        assert verifier is not None, "opened by _evaluate_arm"
        n = cfg.sampling.n
        records: dict[str, list[dict[str, Any]]] = {}
        bar = tqdm(total=len(items) * n * cfg.sampling.repeats, unit="sample", desc=f"eval {arm}/{spec.name}", disable=not cfg.progress, dynamic_ncols=True)

        repeats = cfg.sampling.repeats

        async def one_request(item: EvalItem, repeat: int) -> list[dict[str, Any]]:
            t0 = time.monotonic()
            resp = await client.chat(self._body(endpoint, item, repeat))
            latency = time.monotonic() - t0
            choices = parse_choices(resp)
            verdicts = await verifier.averify([verify_item(item, c.text) for c in choices])
            rows = []
            for choice, verdict in zip(choices, verdicts):
                rows.append({
                    "id": f"{item.id}|r{repeat}|s{choice.index}" if repeats > 1 else f"{item.id}|s{choice.index}",
                    "arm": arm,
                    "benchmark": spec.name,
                    "question_id": item.id,
                    "repeat": repeat,
                    "sample_index": choice.index,
                    "completion": choice.text,
                    "finish_reason": choice.finish_reason,
                    "completion_tokens": choice.completion_tokens,
                    "correct": bool(verdict.correct),
                    "status": verdict.status,
                    "extracted_answer": verdict.extracted,
                    "judge_reason": verdict.reason,
                    "reference": item.reference if item.kind != "choice" else option_letter(int(item.reference or 0)),
                    "latency_s": round(latency, 3),
                })
            bar.update(len(rows))
            return rows

        async def one_question(item: EvalItem) -> None:
            records[item.id] = [row for repeat in range(repeats) for row in await one_request(item, repeat)]

        try:
            await fan_out(items, worker_count(cfg.concurrency, n, len(items)), one_question)
        finally:
            bar.close()
        ordered = [row for item in items for row in records[item.id]]
        self.store.write_jsonl(self.paths.samples(arm, spec.name), ordered)
        self.store.write_json(
            self.paths.part_record(arm, spec.name),
            {"identity": self.part_identity(arm, spec), "samples": len(ordered), "finished_at": datetime.now(timezone.utc).isoformat()},
        )
        logger.info("%s/%s: %s samples, %s correct", arm, spec.name, len(ordered), sum(r["correct"] for r in ordered))
        return len(ordered)

    async def _evaluate_arm(self, arm: str, specs: list[BenchmarkSpec], endpoint: Endpoint) -> None:
        cfg = self.config
        client = ChatClient.from_settings(endpoint, cfg)
        # One verifier per arm, opened and closed inside this event loop (a judge pool or an
        # async HTTP client belongs to the loop that started it).
        try:
            async with cfg.open_verifier(code_timeout_s=cfg.code_timeout_s) as verifier:
                self._verifier = verifier
                for spec in specs:
                    await self._evaluate_part(arm, spec, endpoint, client)
        finally:
            self._verifier = None
            await client.aclose()

    @contextlib.contextmanager
    def _arm_endpoint(self, arm: str, given: Mapping[str, Endpoint] | None) -> Iterator[Endpoint]:
        if given and arm in given:
            yield given[arm]
            return
        cfg = self.config
        server = cfg.server.model_copy(update={"model": cfg.arms[arm], "endpoint": cfg.arm_endpoint(arm)})
        with open_endpoint(server, self.layout.log_dir() / f"eval-{arm}") as endpoint:
            yield endpoint

    # ----- composition -----------------------------------------------------------------------
    def _composition(self) -> None:
        jcfg = self.config.judge
        if not jcfg.enabled:
            return
        import os

        from polya.eval.composition import RUBRIC_VERSION, label_solutions
        from polya.heuristics import HeuristicCatalog
        from polya.serving.config import ServerConfig
        from polya.serving.vllm_server import ExternalEndpoint

        catalog = HeuristicCatalog.load(jcfg.catalog)
        names = jcfg.benchmarks or [b.name for b in self.config.benchmarks if get_benchmark(b.name).kind == "math"]
        unknown = sorted(set(names) - {b.name for b in self.config.benchmarks})
        if unknown:
            raise ConfigError(f"judge.benchmarks {unknown} are not evaluated in this run; evaluated: {', '.join(b.name for b in self.config.benchmarks)}")
        key = jcfg.api_key or os.environ.get(JUDGE_API_KEY_ENV)
        judge_endpoint: list[Endpoint] = []

        def endpoint() -> Endpoint:
            # Reached only when something is left to label (with judge.model set, cached labels need no server).
            if not judge_endpoint:
                judge_endpoint.append(ExternalEndpoint(ServerConfig(endpoint=jcfg.endpoint, api_key=key, served_model_name=jcfg.model)).start())
            return judge_endpoint[0]

        identity = {**jcfg.identity(), "model": jcfg.model or endpoint().model, "rubric": RUBRIC_VERSION}
        specs = {b.name: b for b in self.config.benchmarks}
        for arm in self.config.arms:
            for name in names:
                composition = self.paths.composition(arm, name)
                questions = {i.id: i.question for i in self.items(specs[name])}
                samples = self.store.read_jsonl(self.paths.samples(arm, name))
                chosen = [s for s in samples if s["correct"] or not jcfg.only_correct][: jcfg.max_solutions]
                cached: dict[str, dict[str, Any]] = {}
                if self.store.exists(composition):
                    for row in self.store.read_jsonl(composition):
                        if row.get("identity") == identity:
                            cached[row["sample_id"]] = row
                todo = [(s["id"], questions[s["question_id"]], s["completion"]) for s in chosen if s["id"] not in cached]
                if todo:
                    logger.info("composition judge: %s solutions of %s/%s", len(todo), arm, name)
                    labels = asyncio.run(label_solutions(
                        endpoint(), catalog, todo, max_tokens=jcfg.max_tokens, temperature=jcfg.temperature,
                        concurrency=jcfg.concurrency, max_solution_chars=jcfg.max_solution_chars,
                    ))
                    for lab in labels:
                        cached[lab.sample_id] = {**lab.as_dict(), "identity": identity}
                rows = [cached[s["id"]] for s in chosen if s["id"] in cached]
                self.store.write_jsonl(composition, rows)

    # ----- results ---------------------------------------------------------------------------
    def results(self) -> EvalResults:
        from polya.eval.composition import summarize_composition
        from polya.metrics.diversity import summarize_diversity

        cfg = self.config
        ks = cfg.sampling.resolved_ks()
        arms: dict[str, Any] = {}
        for arm, model in cfg.arms.items():
            per_bench: dict[str, Any] = {}
            for spec in cfg.benchmarks:
                samples = self.store.read_jsonl(self.paths.samples(arm, spec.name))
                bench = get_benchmark(spec.name)
                by_q: dict[str, list[dict[str, Any]]] = {}
                for s in samples:
                    by_q.setdefault(s["question_id"], []).append(s)
                per_question, pass_k, covered = _pass_at_k(by_q, ks)
                counts = list(per_question.values())
                per_repeat: dict[str, dict[str, float]] = {}
                if cfg.sampling.repeats > 1:
                    for repeat in sorted({int(s.get("repeat") or 0) for s in samples}):
                        _pq, values, _c = _pass_at_k({q: [s for s in v if int(s.get("repeat") or 0) == repeat] for q, v in by_q.items()}, ks)
                        per_repeat[str(repeat)] = {str(k): round(v, 4) for k, v in values.items()}
                every = summarize_diversity({q: [s["completion"] for s in v] for q, v in by_q.items()}, cfg.diversity_ngram_max)
                right = summarize_diversity(
                    {q: [s["completion"] for s in v if s["correct"]] for q, v in by_q.items()}, cfg.diversity_ngram_max
                )
                finish: dict[str, int] = {}
                status: dict[str, int] = {}
                for s in samples:
                    finish[str(s.get("finish_reason"))] = finish.get(str(s.get("finish_reason")), 0) + 1
                    status[str(s.get("status"))] = status.get(str(s.get("status")), 0) + 1
                composition = None
                if self.store.exists(self.paths.composition(arm, spec.name)):
                    composition = summarize_composition(self.store.read_jsonl(self.paths.composition(arm, spec.name)))
                per_bench[spec.name] = {
                    "title": bench.title,
                    "kind": bench.kind,
                    "questions": len(by_q),
                    "samples": len(samples),
                    "samples_per_question": min((len(v) for v in by_q.values()), default=0),
                    "accuracy": round(sum(c for _n, c in counts) / max(1, sum(n for n, _c in counts)), 4),
                    "undecided": sum(1 for s in samples if not record_decided(s)),
                    "pass_at_k": {str(k): round(v, 4) for k, v in pass_k.items()},
                    "pass_at_k_interval": pass_at_k_intervals(per_question, list(pass_k)),
                    "pass_at_k_questions": {str(k): n for k, n in covered.items()},
                    **({"pass_at_k_per_repeat": per_repeat, "pass_at_k_repeat_sd": _spread(per_repeat)} if per_repeat else {}),
                    "questions_solved": sum(1 for _n, c in counts if c > 0),
                    "vendi_per_question": _r(every.vendi_per_question_mean),
                    "vendi_per_question_correct": _r(right.vendi_per_question_mean),
                    "completion_tokens_mean": round(sum(int(s.get("completion_tokens") or 0) for s in samples) / max(1, len(samples)), 1),
                    "finish_reasons": finish,
                    "judge_status": status,
                    "composition": composition,
                    "per_question": per_question,
                }
            accounting = arm_accounting(model)
            arms[arm] = {
                "model": model, "benchmarks": per_bench, "average": _average(per_bench),
                "average_math": _average({k: v for k, v in per_bench.items() if v["kind"] == "math"}),
                "compute": accounting["compute"],
                "provenance": {"training": accounting["provenance"], "eval": self._eval_provenance()},
            }
        return EvalResults.model_validate({
            "ks": ks,
            "sampling": cfg.sampling.model_dump(mode="json"),
            "benchmarks": [b.name for b in cfg.benchmarks],
            "arms": arms,
            "created_at": datetime.now(timezone.utc).isoformat(),
            **peak_memory(),
        })

    def _eval_provenance(self) -> dict[str, Any]:
        """The eval side of an arm's provenance: sampling seed, package versions, digests of the questions asked."""
        cfg = self.config
        return {
            "seed": cfg.sampling.seed,
            "packages": installed_versions(),
            "questions_sha256": {
                spec.name: self.store.sha256(self.paths.benchmark_questions(spec.name))
                for spec in cfg.benchmarks if self.store.exists(self.paths.benchmark_questions(spec.name))
            },
        }

    # ----- entry -----------------------------------------------------------------------------
    def run(self, endpoints: Mapping[str, Endpoint] | None = None) -> EvalOutputs:
        from polya.eval.report import write_comparison

        cfg = self.config
        started = time.monotonic()
        with record_stage(self.store, STAGE, cfg.model_dump(mode="json")) as record:
            for spec in cfg.benchmarks:
                self.items(spec)  # a bad benchmark file fails here, before any server starts
            cfg.check_verifier()
            for arm in cfg.arms:
                pending = [spec for spec in cfg.benchmarks if not self.part_done(arm, spec)]
                if not pending:
                    logger.info("arm %s: every benchmark already evaluated", arm)
                    continue
                with self._arm_endpoint(arm, endpoints) as endpoint:
                    logger.info("arm %s (%s): evaluating %s", arm, endpoint.model, ", ".join(s.name for s in pending))
                    asyncio.run(self._evaluate_arm(arm, pending, endpoint))
            self._composition()
            results = self.results().dump()
            results["elapsed_s"] = round(time.monotonic() - started, 2)
            written = write_comparison(results, self.layout.uri(self.paths.root))
            questions_folder = f"{self.paths.root}/benchmarks/"
            record.artifacts = [p for p in self.store.list(self.paths.root) if not p.startswith(questions_folder)]
            record.outputs = {"pass_at_k": EvalResults.model_validate(results).pass_at_k()}
        return EvalOutputs(cfg.run_dir, self.layout.uri(self.paths.root), results, written["report"], written["plots"])


def _pass_at_k(by_q: Mapping[str, list[dict[str, Any]]], ks: list[int]) -> tuple[dict[str, list[int]], dict[int, float], dict[int, int]]:
    """Per-question [decided, correct] counts, pass@k and the questions each k covers.

    An undecided sample (judge timeout / error, twice) is neither right nor wrong: pass@k counts
    each question's decided samples only, and a question with fewer than k of them is left out of
    pass@k for that k.
    """
    per_question = {q: [sum(1 for s in v if record_decided(s)), sum(1 for s in v if s["correct"])] for q, v in by_q.items()}
    pass_k: dict[int, float] = {}
    covered: dict[int, int] = {}
    for k in ks:
        enough = [(n, c) for n, c in per_question.values() if n >= k]
        if enough:
            pass_k[k] = mean_pass_at_k(enough, [k])[k]
            covered[k] = len(enough)
    return per_question, pass_k, covered


def _spread(per_repeat: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """k -> standard deviation of pass@k across repeats (sample sd; ks every repeat has)."""
    import statistics

    common = set.intersection(*(set(v) for v in per_repeat.values())) if per_repeat else set()
    return {k: round(statistics.stdev([v[k] for v in per_repeat.values()]), 4) for k in sorted(common, key=int) if len(per_repeat) > 1}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _average(per_bench: dict[str, Any]) -> dict[str, Any]:
    """pass@k averaged over benchmarks (only ks every benchmark has), with its bootstrap interval."""
    if not per_bench:
        return {"benchmarks": 0, "pass_at_k": {}}
    common = sorted(set.intersection(*(set(b["pass_at_k"]) for b in per_bench.values())), key=int)
    return {
        "benchmarks": len(per_bench),
        "pass_at_k": {k: round(sum(b["pass_at_k"][k] for b in per_bench.values()) / len(per_bench), 4) for k in common},
        "pass_at_k_interval": average_intervals([b["per_question"] for b in per_bench.values()], [int(k) for k in common]),
        "accuracy": round(sum(b["accuracy"] for b in per_bench.values()) / len(per_bench), 4),
    }


def _item_from_dict(row: dict[str, Any]) -> EvalItem:
    return EvalItem(
        id=row["id"], benchmark=row["benchmark"], kind=row["kind"], question=row["question"], reference=row.get("reference"),
        options=tuple(row["options"]) if row.get("options") else None, tests=row.get("tests"), entry_point=row.get("entry_point"),
        context=row.get("context"), metadata=row.get("metadata") or {},
    )


def run(config: EvalConfig, endpoints: Mapping[str, Endpoint] | None = None) -> EvalOutputs:
    """Run (or resume) the evaluation stage. ``endpoints`` maps arm names to running servers to reuse."""
    return EvaluationStage(config).run(endpoints)
