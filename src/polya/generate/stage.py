"""The generation stage: several solutions per question per Pólya heuristic (and plainly), in bootstrap rounds.

``run(config)`` is the one entry point; the CLI, the KFP component and the tests all call it.

Layout under ``<run_dir>/generate/`` (:class:`polya.core.layout.GenerateLayout`)::

    config.json                       settings that decide what is generated (checked on resume)
    questions.jsonl                   the question set, frozen at the first start
    generations/round-01/part-*.jsonl records, streamed as atomic shards while generating
    generations/rationalization/...   the rationalization pass (plain prompt + the answer as a hint)
    summary.json                      per-round and per-heuristic counts, rationalization, tokens, throughput
                                      (and per-server counts with server.endpoints)

The questions are those of ``data``, less the ones the run's decontaminate stage removed
(``decontaminate/report.json`` with ``action: drop``); the removed ids are part of the stage's
identity, so generations are never mixed across two different question sets.

Round 1 asks for ``bootstrap.samples`` solutions of every (question, heuristic) pair. Each answer
is checked with math-verify as it arrives; round r+1 retries, with more samples, the pairs that
have no correct solution yet. Running the stage again resumes: requests whose records are
already stored are skipped, so nothing is generated twice and nothing finished is lost.

Beside the heuristics, ``plain`` adds the plain condition: the standard step-by-step prompt with
its own exemplars and no heuristic, recorded as heuristic ``plain`` (the STaR baseline's data).
After the rounds, ``rationalization`` asks every question with no correct plain solution once
more with its reference answer as a hint (STaR's rationalization); those records carry
``rationalized: true``, are counted apart in the summary and never mark a pair as solved.

With ``shard`` (index k, count N > 1) the stage asks only the questions of shard k
(:mod:`polya.data.sharding`), so N runs on N servers split the work; :mod:`polya.generate.merge`
joins their ``generate/`` folders into one that select reads.

With ``server.endpoints`` the requests are spread over several running servers of the model
(:class:`polya.sampling.pool.EndpointPool`); one that dies is dropped and the others finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tqdm.auto import tqdm

from polya.core.digest import digest, seed_from
from polya.core.errors import ConfigError
from polya.core.layout import RunLayout
from polya.core.manifest import record_stage
from polya.core.memory import peak_memory
from polya.core.outputs import GenerateSummary, iter_generations, read_decontamination_report
from polya.core.store import open_store
from polya.core.store.shards import ShardWriter
from polya.data.loader import load_questions
from polya.data.records import QuestionRecord
from polya.generate import metrics
from polya.generate.config import GenerateConfig
from polya.heuristics import (
    PLAIN,
    Heuristic,
    HeuristicCatalog,
    build_messages,
    condition_id,
    prompt_fingerprint,
)
from polya.sampling import (
    ChatClient,
    Choice,
    EndpointPool,
    chat_body,
    fan_out,
    open_endpoints,
    parse_choices,
    worker_count,
)
from polya.serving.vllm_server import Endpoint, open_endpoint
from polya.verify.client import Verifier
from polya.verify.protocol import VerifyItem, record_decided

logger = logging.getLogger(__name__)

STAGE = "generate"


@dataclass
class GenerateOutputs:
    """What the stage produced: where the records are and a summary of them."""

    run_dir: str
    stage_uri: str
    generations_prefix: str
    summary: dict[str, Any]


@dataclass
class _Progress:
    """Counts over the whole stage (resumed records included)."""

    records: int = 0
    completion_tokens: int = 0
    new_tokens: int = 0
    done_requests: set[tuple[str, str, int]] = field(default_factory=set)
    solved_round: dict[tuple[str, str], int] = field(default_factory=dict)
    rationalized_asked: set[str] = field(default_factory=set)
    """Questions the rationalization pass already asked."""
    budget_exhausted: bool = False


RATIONALIZATION_SEED_KEY = f"{PLAIN}+hint"
"""What stands for the condition in the seed of a rationalization request (never a catalog id)."""


def request_seed(base_seed: int, question_id: str, heuristic: str, round_index: int) -> int:
    """Deterministic per-request seed, so a resumed or repeated run asks for the same samples."""
    return seed_from(base_seed, question_id, heuristic, round_index)


def excluded_questions(config: GenerateConfig) -> list[str]:
    """Ids of the questions the run's decontamination removed (``action: drop``), sorted; none when it did not run.

    A decontamination report made for other data settings than ``config.data`` is an error: it
    does not cover these questions.
    """
    report = read_decontamination_report(open_store(config.run_dir))
    return sorted(report.removed_for(config.data.identity())) if report is not None else []


def solved_before(config: GenerateConfig) -> list[str]:
    """Ids of the questions earlier iterations of the outer bootstrap loop solved (``generate/solved_before.json``,
    written by ``polya run`` before an iteration's generation), sorted; none outside the loop."""
    store = open_store(config.run_dir)
    if not store.exists(RunLayout.generate.solved_before):
        return []
    data = store.read_json(RunLayout.generate.solved_before)
    ids = data.get("question_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ConfigError(
            f"{RunLayout(config.run_dir).uri(RunLayout.generate.solved_before)} must hold {{question_ids: [...]}} "
            "(written by polya run's outer loop); delete the iteration's folder to have it written again"
        )
    return sorted(set(ids))


def _inputs(excluded: list[str], solved: list[str]) -> dict[str, str]:
    """The question ids left out, as digests (part of the stage's identity: another set is other generations)."""
    out = {}
    if excluded:
        out["excluded_questions"] = digest(excluded)
    if solved:
        out["solved_before"] = digest(solved)
    return out


def manifest_config(config: GenerateConfig, excluded: list[str] | None = None, solved: list[str] | None = None) -> dict[str, Any]:
    """What the manifest records for the stage: the settings and, when questions were left out (removed by the
    decontamination, or solved by an earlier iteration of the outer loop), digests of their ids.

    ``polya run`` skips the stage when this is unchanged and the outputs are intact, so another
    decontamination result makes it run again (and refuse to mix question sets).
    """
    excluded = excluded_questions(config) if excluded is None else excluded
    solved = solved_before(config) if solved is None else solved
    out = config.model_dump(mode="json")
    inputs = _inputs(excluded, solved)
    if inputs:
        out["inputs"] = inputs
    return out


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class GenerationStage:
    """One execution of the stage over a run directory."""

    def __init__(self, config: GenerateConfig):
        self.config = config
        self.layout = RunLayout(config.run_dir)
        self.paths = self.layout.generate
        self.store = open_store(config.run_dir)
        self.catalog = HeuristicCatalog.load(config.catalog)
        self.heuristics: list[Heuristic] = self.catalog.select(config.heuristics)
        self.conditions: list[Heuristic | None] = [*self.heuristics, *([None] if config.plain else [])]
        """The prompt conditions: the heuristics, then the plain prompt (``None``, recorded as ``plain``)."""
        self.progress = _Progress()
        self._writer: ShardWriter | None = None
        self._pool: EndpointPool | None = None
        """The endpoint pool when ``server.endpoints`` names several servers (its counts go to the summary)."""
        self.excluded = excluded_questions(config)
        self.solved_before = solved_before(config)

    def _round_writer(self, round_index: int) -> ShardWriter:
        cfg = self.config
        return ShardWriter(self.store, self.paths.round(round_index), cfg.flush_every, cfg.flush_interval_s)

    def _flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    # ----- setup and resume -------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """The config's identity plus the catalog's content digest (an edited catalog means other prompts)
        and, when the decontamination removed questions, a digest of their ids."""
        identity = self.config.identity()
        identity["catalog_digest"] = self.catalog.digest()
        identity.update(_inputs(self.excluded, self.solved_before))
        return identity

    def _check_identity(self) -> None:
        identity = self.identity()
        if self.store.exists(self.paths.config):
            previous = _flatten(self.store.read_json(self.paths.config).get("identity", {}))
            current = _flatten(identity)
            changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
            if changed:
                why = (
                    " (the decontamination removed other questions than when they were made: see decontaminate/report.md)"
                    if "excluded_questions" in changed else ""
                )
                raise ConfigError(
                    f"{self.layout.uri(STAGE)} already holds generations made with other settings "
                    f"(changed: {', '.join(changed)}){why}. Use a new run_dir, or restore those settings to resume."
                )
        else:
            self.store.write_json(self.paths.config, {"identity": identity, "config": self.config.model_dump(mode="json")})

    def _questions(self) -> list[QuestionRecord]:
        if self.store.exists(self.paths.questions):
            return [QuestionRecord.model_validate(row) for row in self.store.read_jsonl(self.paths.questions)]
        qset = load_questions(self.config.data)
        if not qset.records:
            raise ConfigError(f"data source {self.config.data.source!r} gave no questions (data.source, data.limit)")
        if qset.skipped:
            logger.warning("skipped %s malformed rows of %s: %s", qset.skipped, qset.source, "; ".join(qset.errors[:3]))
        records = qset.records
        if self.excluded:
            removed = set(self.excluded)
            records = [r for r in records if r.id not in removed]
            report = self.layout.uri(RunLayout.decontaminate.report_md)
            logger.info("left out %s of %s questions as contaminated (%s)", len(qset.records) - len(records), len(qset.records), report)
            if not records:
                raise ConfigError(
                    f"every question of {self.config.data.source!r} overlaps a benchmark and was removed ({report}); "
                    "use other data, or decontaminate with action flag to keep them"
                )
        if self.solved_before:
            solved = set(self.solved_before)
            before = len(records)
            records = [r for r in records if r.id not in solved]
            logger.info("left out %s of %s questions solved by earlier iterations of the outer loop", before - len(records), before)
            if not records:
                raise ConfigError(f"every question was solved by an earlier iteration ({self.layout.uri(RunLayout.generate.solved_before)})")
        shard = self.config.shard
        if shard.count > 1:  # an empty shard is no error: with few questions, some of the shards get none
            before = len(records)
            records = [r for r in records if shard.contains(r.id)]
            logger.info("shard %s of %s: asking %s of %s questions", shard.index, shard.count, len(records), before)
        self.store.write_jsonl(self.paths.questions, (r.model_dump(mode="json") for r in records))
        return records

    def _load_existing(self) -> None:
        for rec in iter_generations(self.store, check=False):
            self._account(rec)
        if self.progress.records:
            logger.info("resuming: %s samples from %s requests already stored", self.progress.records, len(self.progress.done_requests))

    def _account(self, rec: dict[str, Any]) -> None:
        p = self.progress
        p.records += 1
        p.completion_tokens += int(rec.get("completion_tokens") or 0)
        if rec.get("rationalized"):
            p.rationalized_asked.add(rec["question_id"])
            return  # a hinted answer solves no pair
        p.done_requests.add((rec["question_id"], rec["heuristic"], int(rec["round"])))
        if rec.get("correct"):
            pair = (rec["question_id"], rec["heuristic"])
            p.solved_round[pair] = min(p.solved_round.get(pair, 10**9), int(rec["round"]))

    def _pending(self, questions: list[QuestionRecord], round_index: int) -> list[tuple[QuestionRecord, Heuristic | None]]:
        """Pairs to request in ``round_index``: unsolved before it and not yet requested in it."""
        out = []
        for q in questions:
            for h in self.conditions:
                cid = condition_id(h)
                solved_in = self.progress.solved_round.get((q.id, cid))
                if solved_in is not None and solved_in < round_index:
                    continue
                if (q.id, cid, round_index) in self.progress.done_requests:
                    continue
                out.append((q, h))
        return out

    def _rationalizing(self) -> bool:
        return self.config.plain and self.config.rationalization.enabled

    def _pending_rationalization(self, questions: list[QuestionRecord]) -> list[tuple[QuestionRecord, Heuristic | None]]:
        """Questions with no correct plain solution that the rationalization pass has not asked yet."""
        if not self._rationalizing():
            return []
        p = self.progress
        return [
            (q, None) for q in questions
            if (q.id, PLAIN) not in p.solved_round and q.id not in p.rationalized_asked and q.answer.strip()
        ]

    def _budget_left(self) -> bool:
        budget = self.config.bootstrap.token_budget
        if budget is not None and self.progress.completion_tokens >= budget:
            self.progress.budget_exhausted = True
        return not self.progress.budget_exhausted

    # ----- one request ------------------------------------------------------------------
    def _body(
        self, endpoint: Endpoint, q: QuestionRecord, h: Heuristic | None, round_index: int, n: int, rationalize: bool = False
    ) -> dict[str, Any]:
        cfg = self.config
        messages = build_messages(
            q.question, h, self.catalog, num_exemplars=cfg.num_exemplars, system_prompt=cfg.system_prompt,
            hint=q.answer if rationalize else None,
        )
        seed = request_seed(cfg.sampling.seed, q.id, RATIONALIZATION_SEED_KEY if rationalize else condition_id(h), round_index)
        return chat_body(endpoint, messages, cfg.sampling, n, seed, cfg.server.vllm_extensions)

    def _records(
        self, q: QuestionRecord, h: Heuristic | None, round_index: int, body: dict[str, Any], choices: list[Choice], prompt_tokens: Any,
        latency: float, verdicts: list[dict[str, Any]], rationalized: bool = False,
    ) -> list[dict[str, Any]]:
        """One record per sample. A rationalized record's ``question`` is the question without the hint
        (what it trains on); ``prompt_fingerprint`` is of the hinted prompt that was asked."""
        cfg = self.config
        fingerprint = prompt_fingerprint(body["messages"])
        now = datetime.now(timezone.utc).isoformat()
        cid = condition_id(h)
        out = []
        for choice, verdict in zip(choices, verdicts):
            out.append(
                {
                    "id": f"{q.id}|{cid}|rationalized|s{choice.index}" if rationalized else f"{q.id}|{cid}|r{round_index}|s{choice.index}",
                    "question_id": q.id,
                    "heuristic": cid,
                    "round": round_index,
                    "rationalized": rationalized,
                    "sample_index": choice.index,
                    "question": q.question,
                    "reference": q.answer,
                    "source": q.source,
                    "completion": choice.text,
                    "finish_reason": choice.finish_reason,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": choice.completion_tokens,
                    "correct": bool(verdict.get("correct")),
                    "status": verdict.get("status", "pass" if verdict.get("correct") else "fail"),
                    "extracted_answer": verdict.get("extracted"),
                    "judge_reason": verdict.get("reason"),
                    "model": cfg.server.model,
                    "prompt_fingerprint": fingerprint,
                    "num_exemplars": cfg.num_exemplars,
                    "sampling": {
                        "temperature": cfg.sampling.temperature,
                        "top_p": cfg.sampling.top_p,
                        "max_tokens": cfg.sampling.max_tokens,
                        "seed": body.get("seed"),
                        "n": body["n"],
                    },
                    "latency_s": round(latency, 3),
                    "created_at": now,
                }
            )
        return out

    # ----- a round ----------------------------------------------------------------------
    async def _run_round(
        self,
        endpoint: Endpoint,
        client: ChatClient | EndpointPool,
        verifier: Verifier,
        writer: ShardWriter,
        round_index: int,
        pending: list[tuple[QuestionRecord, Heuristic | None]],
        rationalize: bool = False,
    ) -> None:
        cfg = self.config
        n = cfg.rationalization.samples if rationalize else cfg.bootstrap.samples_in_round(round_index)
        desc = "generate rationalization" if rationalize else f"generate round {round_index}/{cfg.bootstrap.rounds}"
        bar = tqdm(
            total=len(pending) * n, unit="sample", desc=desc,
            disable=not cfg.progress, dynamic_ncols=True,
        )
        started = time.monotonic()
        round_tokens = 0

        async def one_request(pair: tuple[QuestionRecord, Heuristic | None]) -> bool:
            nonlocal round_tokens
            q, h = pair
            if not self._budget_left():
                return False
            body = self._body(endpoint, q, h, round_index, n, rationalize)
            t0 = time.monotonic()
            metrics.INFLIGHT.inc()
            try:
                resp = await client.chat(body)
            finally:
                metrics.INFLIGHT.dec()
            latency = time.monotonic() - t0
            choices = parse_choices(resp)
            judged = await verifier.averify([VerifyItem(kind="math", prediction=c.text, reference=q.answer) for c in choices])
            verdicts = [{"correct": v.correct, "status": v.status, "extracted": v.extracted, "reason": v.reason} for v in judged]
            records = self._records(
                q, h, round_index, body, choices, (resp.get("usage") or {}).get("prompt_tokens"), latency, verdicts, rationalize
            )
            for rec in records:
                self._account(rec)
                metrics.SAMPLES.labels(rec["heuristic"], str(rec["correct"]).lower()).inc()
                metrics.COMPLETION_TOKENS.inc(rec["completion_tokens"])
                round_tokens += rec["completion_tokens"]
                self.progress.new_tokens += rec["completion_tokens"]
            writer.add(records)
            if writer.due():
                batch = writer.take()
                if batch:
                    await asyncio.to_thread(writer.write, *batch)
            bar.update(len(records))
            elapsed = max(1e-6, time.monotonic() - started)
            bar.set_postfix(tok_s=f"{round_tokens / elapsed:.0f}", solved=len(self.progress.solved_round), refresh=False)
            return True

        workers = worker_count(cfg.concurrency, n, len(pending))
        if isinstance(client, EndpointPool):  # each server gets what one server gets alone
            client.per_endpoint = workers
            workers = min(len(pending), client.capacity)
        try:
            await fan_out(pending, workers, one_request)
        finally:
            bar.close()

    async def _generate(self, endpoints: list[Endpoint], questions: list[QuestionRecord]) -> None:
        cfg = self.config
        endpoint = endpoints[0]  # the servers serve one model (open_endpoints checks): bodies are alike
        client: ChatClient | EndpointPool
        if len(endpoints) == 1:
            client = ChatClient.from_settings(endpoint, cfg, on_retry=lambda _r: metrics.REQUEST_RETRIES.inc())
        else:
            client = self._pool = EndpointPool.from_settings(
                endpoints, cfg, on_retry=lambda _r: metrics.REQUEST_RETRIES.inc(),
                on_result=lambda url, outcome: metrics.ENDPOINT_REQUESTS.labels(url, outcome).inc(),
            )
        try:
            async with cfg.open_verifier() as verifier:
                for r in range(1, cfg.bootstrap.rounds + 1):
                    pending = self._pending(questions, r)
                    if not pending:
                        continue
                    if not self._budget_left():
                        logger.info("token budget of %s reached; stopping before round %s", cfg.bootstrap.token_budget, r)
                        break
                    metrics.ROUND.set(r)
                    logger.info("round %s: %s pairs x %s samples", r, len(pending), cfg.bootstrap.samples_in_round(r))
                    if self._writer is not None:
                        self._writer.flush()
                    self._writer = self._round_writer(r)
                    await self._run_round(endpoint, client, verifier, self._writer, r, pending)
                await self._rationalize(endpoint, client, verifier, questions)
        finally:
            await client.aclose()

    async def _rationalize(self, endpoint: Endpoint, client: ChatClient | EndpointPool, verifier: Verifier, questions: list[QuestionRecord]) -> None:
        """The rationalization pass: after the rounds, the plain prompt with the answer as a hint, once per unsolved question."""
        cfg = self.config
        pending = self._pending_rationalization(questions)
        if not pending:
            return
        if not self._budget_left():
            logger.info("token budget of %s reached; no rationalization", cfg.bootstrap.token_budget)
            return
        logger.info("rationalization: %s questions without a correct plain solution x %s samples", len(pending), cfg.rationalization.samples)
        if self._writer is not None:
            self._writer.flush()
        self._writer = ShardWriter(self.store, self.paths.rationalization(), cfg.flush_every, cfg.flush_interval_s)
        await self._run_round(endpoint, client, verifier, self._writer, cfg.bootstrap.rounds + 1, pending, rationalize=True)

    def _work_left(self, questions: list[QuestionRecord]) -> bool:
        """Whether any round still has requests to make (decides if a server is needed)."""
        if not self._budget_left():
            return False
        # Only round 1's pending set is known before generating; later rounds depend on it.
        for r in range(1, self.config.bootstrap.rounds + 1):
            if self._pending(questions, r):
                return True
        return bool(self._pending_rationalization(questions))

    # ----- summary ----------------------------------------------------------------------
    def summarize(self, questions: list[QuestionRecord], elapsed_s: float) -> GenerateSummary:
        rounds: dict[int, dict[str, int]] = {}
        per_heuristic: dict[str, dict[str, int]] = {condition_id(h): {"samples": 0, "correct": 0} for h in self.conditions}
        rationalization = {"questions_asked": 0, "samples": 0, "correct": 0, "questions_solved": 0, "completion_tokens": 0}
        rationalized_solved: set[str] = set()
        finish: dict[str, int] = {}
        samples = correct = undecided = tokens = 0
        for rec in iter_generations(self.store, check=False):
            samples += 1
            correct += int(bool(rec["correct"]))
            tokens += int(rec.get("completion_tokens") or 0)
            undecided += int(not record_decided(rec))
            finish[str(rec.get("finish_reason"))] = finish.get(str(rec.get("finish_reason")), 0) + 1
            if rec.get("rationalized"):  # counted apart: hinted answers are not the rounds' work
                rationalization["samples"] += 1
                rationalization["correct"] += int(bool(rec["correct"]))
                rationalization["completion_tokens"] += int(rec.get("completion_tokens") or 0)
                if rec["correct"]:
                    rationalized_solved.add(rec["question_id"])
                continue
            stats = rounds.setdefault(int(rec["round"]), {"samples": 0, "correct": 0, "completion_tokens": 0, "requests": 0})
            stats["samples"] += 1
            stats["correct"] += int(bool(rec["correct"]))
            stats["completion_tokens"] += int(rec.get("completion_tokens") or 0)
            stats["requests"] += int(rec["sample_index"] == 0)
            h = per_heuristic.setdefault(rec["heuristic"], {"samples": 0, "correct": 0})
            h["samples"] += 1
            h["correct"] += int(bool(rec["correct"]))
        rationalization["questions_asked"] = len(self.progress.rationalized_asked)
        rationalization["questions_solved"] = len(rationalized_solved)
        pairs = len(questions) * len(self.conditions)
        solved = len(self.progress.solved_round)
        return GenerateSummary(
            questions=len(questions),
            heuristics=[condition_id(h) for h in self.conditions],
            pairs=pairs,
            pairs_solved=solved,
            pair_solve_rate=round(solved / pairs, 4) if pairs else 0.0,
            questions_solved=len({q for q, _ in self.progress.solved_round}),
            samples=samples,
            correct_samples=correct,
            undecided_samples=undecided,
            completion_tokens=tokens,
            rounds={str(k): v for k, v in sorted(rounds.items())},
            rounds_configured=self.config.bootstrap.rounds,
            per_heuristic=per_heuristic,
            plain=self.config.plain,
            rationalization=rationalization if self._rationalizing() or rationalization["samples"] else None,
            finish_reasons=finish,
            token_budget_exhausted=self.progress.budget_exhausted,
            excluded_questions=len(self.excluded),
            solved_before=len(self.solved_before),
            this_invocation={
                "elapsed_s": round(elapsed_s, 2),
                "new_completion_tokens": self.progress.new_tokens,
                "completion_tokens_per_s": round(self.progress.new_tokens / elapsed_s, 2) if elapsed_s > 0 else 0.0,
            },
            **peak_memory(),
            **({"endpoints": self._pool.stats()} if self._pool is not None else {}),
        )

    # ----- entry ------------------------------------------------------------------------
    def run(self, endpoint: Endpoint | None = None) -> GenerateOutputs:
        cfg = self.config
        self._check_identity()
        questions = self._questions()
        self._load_existing()
        if cfg.metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(cfg.metrics_port)
        started = time.monotonic()
        with record_stage(self.store, STAGE, manifest_config(cfg, self.excluded, self.solved_before)) as record:
            try:
                if self._work_left(questions):
                    cfg.check_verifier()  # an unreachable verifier fails here, before a model server starts
                    with contextlib.ExitStack() as stack:
                        if endpoint is not None:
                            endpoints = [endpoint]
                        elif cfg.server.endpoints:
                            endpoints = open_endpoints(cfg.server)
                        else:
                            endpoints = [stack.enter_context(open_endpoint(cfg.server, self.layout.log_dir()))]
                        asyncio.run(self._generate(endpoints, questions))
                else:
                    logger.info("nothing left to generate in %s", self.layout.uri(STAGE))
            finally:
                self._flush()
            summary = self.summarize(questions, time.monotonic() - started)
            self.store.write_json(self.paths.summary, summary.dump())
            record.artifacts = [self.paths.config, self.paths.questions, self.paths.summary, *self.store.list(self.paths.generations)]
            record.outputs = {k: getattr(summary, k) for k in ("samples", "correct_samples", "pairs_solved", "pairs")}
        logger.info(
            "generated %s samples (%s correct); %s/%s (question, heuristic) pairs solved",
            summary.samples, summary.correct_samples, summary.pairs_solved, summary.pairs,
        )
        if summary.rationalization:
            logger.info(
                "rationalization: %s of %s questions asked with the answer as a hint gave a correct solution",
                summary.rationalization["questions_solved"], summary.rationalization["questions_asked"],
            )
        return GenerateOutputs(cfg.run_dir, self.layout.uri(STAGE), self.paths.generations, summary.dump())


def run(config: GenerateConfig, endpoint: Endpoint | None = None) -> GenerateOutputs:
    """Run (or resume) the generation stage. Pass ``endpoint`` to reuse a running server."""
    return GenerationStage(config).run(endpoint)
