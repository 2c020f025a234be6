"""Heuristic-adherence scorers: how faithfully a solution follows the heuristic it was asked to use.

Three kinds (``scorer.kind``), one interface (:class:`AdherenceScorer`):

- ``offline`` (:class:`OfflineScorer`, the default): a transparent, deterministic score from the
  visible structure each heuristic asks for. No model, no network.
- ``llm_judge`` (:class:`LLMJudgeScorer`): a rubric built from the catalog's description and
  instruction, sent to any OpenAI-compatible endpoint, answered with "Score: N" (1-10).
- ``reward_model`` (:class:`RewardModelScorer`): a transformers sequence-classification model
  (the paper used a Skywork reward model) scores the (instruction, solution) pair.

Offline score, exactly::

    adherence = (sum of the weights of the cues found) / (sum of all cue weights)      in [0, 1]
    score     = clamp(10 * adherence - penalties, 0, 10)

The cues of a heuristic are (a) every quoted label in its catalog instruction (``"Check:"``,
``"Step 1:"``, ``"because"``, ``"|"``), weight 2, digits generalised (``Step \\d+:``) and
required as many times as the instruction quotes numbered forms (``"Step 1:", "Step 2:"`` ->
twice); plus (b) the hand-written :data:`HEURISTIC_CUES` below for the packaged catalog's
heuristics, derived from its exemplars' visible structure (a ``|`` table, "undo" steps, ...).
A heuristic of another catalog gets (a) only; one with no cue at all gets adherence 0.5.
Penalties: 4 for a solution cut off by the token limit (``finish_reason: length``), 2 for fewer
than ``scorer.min_words`` words, 1 for no ``\\boxed{}`` final answer, 2 for a repetitive
solution (at least 4 non-blank lines and fewer than half of them distinct: the loops small
models fall into).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol, Sequence

from polya.core.errors import ConfigError
from polya.heuristics import Heuristic, HeuristicCatalog, build_messages
from polya.select.config import ScorerConfig
from polya.serving.config import JUDGE_API_KEY_ENV
from polya.serving.vllm_server import Endpoint

logger = logging.getLogger(__name__)

RUBRIC_VERSION = 1
"""Bumped whenever the judge prompt or the offline cues change (invalidates cached scores)."""

OFFLINE_VERSION = 1

LABEL_WEIGHT = 2.0
TRUNCATED_PENALTY = 4.0
SHORT_PENALTY = 2.0
NO_ANSWER_PENALTY = 1.0
REPETITION_PENALTY = 2.0
NO_CUE_ADHERENCE = 0.5


# ----- items and results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreItem:
    """One solution to score."""

    id: str
    question: str
    heuristic: Heuristic
    completion: str
    finish_reason: str | None = None


@dataclass(frozen=True)
class ScoreResult:
    """A score (None: the scorer could not produce one) and a short note on how it was reached."""

    score: float | None
    detail: str | None = None
    attempts: int = 1


ResultCallback = Callable[[ScoreItem, ScoreResult], None]


class AdherenceScorer(Protocol):
    """What the stage needs from a scorer."""

    kind: str

    def identity(self) -> dict[str, Any]:
        """Everything that decides the scores (cached scores are keyed by its digest)."""
        ...

    def score(self, items: Sequence[ScoreItem], on_result: ResultCallback) -> None:
        """Score every item, calling ``on_result`` once per item (in any order) as results arrive."""
        ...

    def close(self) -> None: ...


# ----- offline scorer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cue:
    """A visible sign that a solution follows a heuristic: a regex found at least ``min_count`` times."""

    name: str
    pattern: str
    weight: float = 1.0
    min_count: int = 1

    def found(self, text: str) -> bool:
        return len(re.findall(self.pattern, text, flags=re.IGNORECASE | re.MULTILINE)) >= self.min_count


HEURISTIC_CUES: dict[str, tuple[Cue, ...]] = {
    "analogy": (
        Cue("related", r"\b(related|similar|familiar|analog\w*|same (structure|method|idea|way))\b"),
        Cue("reuse", r"\b(reuse|apply the same|same method|just like|like the)\b"),
    ),
    "working_backward": (
        Cue("work_backward", r"\bwork(s|ing|ed)?\s+backwards?\b", 2.0),
        Cue("undo", r"\b(undo\w*|revers\w*|inverse|in reverse order)\b", 2.0),
        Cue("start_from_end", r"\bstart(ing)?\s+(from|with|at)\s+the\s+(end|final|result|last|goal)"),
        Cue("before_steps", r"\bbefore (that|this|it|the)\b", 1.0, 2),
    ),
    "decomposition": (
        Cue("split", r"\b(split|break (it|this|the problem) (into|down)|parts?|pieces?|sub-?problems?)\b"),
        Cue("combine", r"\b(combin\w*|put (them|it|these|the \w+) together|altogether|in total|total)\b"),
    ),
    "auxiliary_element": (
        Cue("let_define", r"\blet\s+[a-z]\w*\s+(be|=|denote|represent|stand)", 2.0),
        Cue("helper", r"\b(solve for|unknown|variable|auxiliary|helper)\b"),
        Cue("algebra", r"\b\d+\s?[a-z]\b(\^\d+)?\s*[-+=]"),
    ),
    "specialization": (
        Cue("generalize", r"\b(generali[sz]\w*|in general|general rule|for any|for every)\b"),
        Cue("small_cases", r"\b(cases?|small(er)?|simple(r)?)\b"),
        Cue("case_lines", r"^\s*(n\s*=\s*)?\d+[^\n]*[:=]", 1.0, 2),
    ),
    "draw_figure_or_table": (
        Cue("table_rows", r"^[^\n]*\S\s*\|\s*\S[^\n]*$", 2.0, 2),
        Cue("figure", r"^[^\n]*(-{3,}|={3,}|_{3,}|\+-+\+)[^\n]*$"),
        Cue("words", r"\b(table|figure|diagram|draw\w*|sketch|grid|rows?|columns?)\b"),
    ),
    "look_for_pattern": (
        Cue("listed_cases", r"^\s*[\w^]*\d+[^\n]*[:=][^\n]*\d", 1.0, 3),
        Cue("regularity", r"\b(repeat\w*|cycles?|each (new|time|step)|every (new|time)|increases? by|adds?|sequence|terms?)\b"),
    ),
    "step_by_step_justification": (
        Cue("justified_steps", r"\bbecause\b", 1.0, 3),
        Cue("numbered_steps", r"\bstep\s*\d+\b", 1.0, 3),
    ),
    "bright_idea": (
        Cue("insight", r"\b(insight|instead of|notice|observe|key|trick|clever|the idea)\b"),
    ),
    "restate_problem": (
        Cue("restate", r"\b(restat\w*|in other words|rewrite|we (need|want) to find|is asked)\b"),
    ),
    "check_and_look_back": (
        Cue("check", r"\b(check\w*|verif\w*|confirm\w*)\b"),
        Cue("second_way", r"\b(second way|another way|different (method|way)|alternatively|estimat\w*)\b", 2.0),
        Cue("agrees", r"\b(correct|matches|same (result|answer)|agrees|consistent)\b"),
    ),
}
"""Hand-written cues per heuristic id of the packaged catalog, from its exemplars' visible structure."""

_QUOTED = re.compile(r'"([^"]+)"')


def _label_pattern(label: str) -> str:
    """A quoted instruction label as a regex: digits -> \\d+, flexible spaces and hyphens, word-bounded."""
    pattern = re.escape(label.strip())
    pattern = re.sub(r"\d+", r"\\d+", pattern)
    pattern = pattern.replace(r"\ ", r"\s*").replace(r"\-", r"[-\s]?")
    if label.strip()[:1].isalnum():
        pattern = r"\b" + pattern
    if label.strip()[-1:].isalnum():
        pattern += r"\b"
    return pattern


def instruction_cues(heuristic: Heuristic) -> list[Cue]:
    """Cues from the quoted labels of a heuristic's instruction ("Step 1:", "Step 2:" -> Step \\d+: twice)."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for label in _QUOTED.findall(heuristic.instruction):
        if not label.strip():
            continue
        pattern = _label_pattern(label)
        counts[pattern] = counts.get(pattern, 0) + 1
        names.setdefault(pattern, label.strip())
    return [Cue(f"label {names[p]!r}", p, LABEL_WEIGHT, min(2, n)) for p, n in counts.items()]


def cues_for(heuristic: Heuristic) -> list[Cue]:
    """Every cue of a heuristic: its instruction's labels, then the hand-written ones for its id."""
    return instruction_cues(heuristic) + list(HEURISTIC_CUES.get(heuristic.id, ()))


@dataclass(frozen=True)
class OfflineScore:
    """The offline score of one solution with its parts."""

    score: float
    adherence: float
    cues_found: tuple[str, ...]
    cues_missing: tuple[str, ...]
    penalties: dict[str, float] = field(default_factory=dict)

    def detail(self) -> str:
        parts = [f"adherence {self.adherence:.2f}", f"found: {', '.join(self.cues_found) or '-'}"]
        if self.penalties:
            parts.append("penalties: " + ", ".join(f"{k} -{v:g}" for k, v in self.penalties.items()))
        return "; ".join(parts)


def _repetitive(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return len(lines) >= 4 and len(set(lines)) < 0.5 * len(lines)


def offline_score(heuristic: Heuristic, text: str, finish_reason: str | None = None, min_words: int = 20) -> OfflineScore:
    """The offline adherence score of ``text`` for ``heuristic`` (see the module docstring)."""
    cues = cues_for(heuristic)
    found = [c for c in cues if c.found(text)]
    total = sum(c.weight for c in cues)
    adherence = sum(c.weight for c in found) / total if total > 0 else NO_CUE_ADHERENCE
    penalties: dict[str, float] = {}
    if finish_reason == "length":
        penalties["truncated"] = TRUNCATED_PENALTY
    if len(text.split()) < min_words:
        penalties["short"] = SHORT_PENALTY
    if "\\boxed{" not in text:
        penalties["no_boxed_answer"] = NO_ANSWER_PENALTY
    if _repetitive(text):
        penalties["repetitive"] = REPETITION_PENALTY
    score = min(10.0, max(0.0, 10.0 * adherence - sum(penalties.values())))
    return OfflineScore(
        score=round(score, 4),
        adherence=round(adherence, 4),
        cues_found=tuple(c.name for c in found),
        cues_missing=tuple(c.name for c in cues if c not in found),
        penalties=penalties,
    )


class OfflineScorer:
    """Deterministic cue-based adherence score; no model."""

    kind = "offline"

    def __init__(self, config: ScorerConfig, catalog: HeuristicCatalog, progress: bool = False):
        self.config = config
        self.catalog = catalog
        self.progress = progress
        missing = [h.id for h in catalog if not cues_for(h)]
        if missing:
            logger.warning("heuristics %s have no offline cues (no quoted labels in their instruction): they all get adherence 0.5", missing)

    def identity(self) -> dict[str, Any]:
        return {**self.config.identity(), "version": OFFLINE_VERSION, "catalog": self.catalog.digest()}

    def score(self, items: Sequence[ScoreItem], on_result: ResultCallback) -> None:
        from tqdm.auto import tqdm

        for item in tqdm(items, unit="solution", desc="score (offline)", disable=not self.progress, dynamic_ncols=True):
            result = offline_score(item.heuristic, item.completion, item.finish_reason, self.config.min_words)
            on_result(item, ScoreResult(result.score, result.detail()))

    def close(self) -> None:
        return None


# ----- LLM judge ------------------------------------------------------------------------------------

JUDGE_SYSTEM = (
    "You grade how faithfully a solution to a math problem follows a given problem-solving heuristic. "
    "You do not grade whether the answer is correct."
)

_SCORE_PATTERNS = (
    re.compile(r"score\s*(?:is|of)?\s*[:=\-]?\s*\**\s*(\d+(?:\.\d+)?)", re.IGNORECASE),
    re.compile(r"(\d+(?:\.\d+)?)\s*(?:/|out of)\s*10\b", re.IGNORECASE),
    re.compile(r"^\s*\**\s*(\d+(?:\.\d+)?)\s*\**\s*\.?\s*$"),
)


def judge_messages(item: ScoreItem, max_solution_chars: int = 6000) -> list[dict[str, str]]:
    """The rubric prompt for one solution, built from the catalog's description and instruction."""
    h = item.heuristic
    solution = item.completion.strip()
    if len(solution) > max_solution_chars:
        half = max_solution_chars // 2
        solution = solution[:half] + "\n[... middle omitted ...]\n" + solution[-half:]
    user = (
        f"Heuristic: {h.name}\n"
        f"What it is: {h.description.strip()}\n"
        f"What the solver was told to do: {h.instruction.strip()}\n\n"
        f"Problem:\n{item.question.strip()}\n\n"
        f"Solution:\n{solution}\n\n"
        "Rate from 1 to 10 how faithfully the solution follows this heuristic and shows what the instruction asks for.\n"
        "10: the solution is built around the heuristic and shows every part the instruction asks for.\n"
        "5: it uses the heuristic only partly or only in name.\n"
        "1: it ignores the heuristic.\n"
        'Reply with one line of the form "Score: N", where N is an integer from 1 to 10.'
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_judge_score(text: str | None) -> float | None:
    """The 1-10 score in a judge's reply ("Score: 7", "7/10", "**8**"), or None when there is none."""
    if not text:
        return None
    for pattern in _SCORE_PATTERNS:
        for match in pattern.finditer(text):
            try:
                value = float(match.group(1))
            except ValueError:
                continue
            if 1.0 <= value <= 10.0 and math.isfinite(value):
                return value
    return None


class _ConfiguredScorer:
    """What the model-backed scorers share: their settings, the catalog, and the one setting they need."""

    kind: ClassVar[str]
    needs: ClassVar[str]
    """The ScorerConfig field this scorer cannot work without (checked by ScorerConfig)."""

    def __init__(self, config: ScorerConfig, catalog: HeuristicCatalog, progress: bool = False):
        assert getattr(config, self.needs), f"scorer.{self.needs} is validated by ScorerConfig"
        self.config = config
        self.catalog = catalog
        self.progress = progress


class LLMJudgeScorer(_ConfiguredScorer):
    """A rubric prompt per (heuristic, solution) to an OpenAI-compatible endpoint; bounded concurrency."""

    kind = "llm_judge"
    needs = "endpoint"
    _endpoint: Endpoint | None = None

    @property
    def endpoint(self) -> Endpoint:
        """The judge server, checked (``/v1/models``) on first use."""
        if self._endpoint is None:
            from polya.serving.config import ServerConfig
            from polya.serving.vllm_server import ExternalEndpoint

            key = self.config.api_key or os.environ.get(JUDGE_API_KEY_ENV)
            self._endpoint = ExternalEndpoint(
                ServerConfig(endpoint=self.config.endpoint, api_key=key, served_model_name=self.config.model)
            ).start()
            logger.info("LLM judge: %s at %s", self._endpoint.model, self._endpoint.base_url)
        return self._endpoint

    def identity(self) -> dict[str, Any]:
        # With scorer.model set, cached scores can be reused without reaching the server.
        model = self.config.model or self.endpoint.model
        return {**self.config.identity(), "model": model, "rubric": RUBRIC_VERSION, "catalog": self.catalog.digest()}

    def score(self, items: Sequence[ScoreItem], on_result: ResultCallback) -> None:
        if items:
            asyncio.run(self._score_all(items, on_result))

    async def _score_all(self, items: Sequence[ScoreItem], on_result: ResultCallback) -> None:
        from tqdm.auto import tqdm

        from polya.sampling import ChatClient, fan_out

        cfg = self.config
        client = ChatClient(
            self.endpoint, timeout_s=cfg.request_timeout_s, max_retries=cfg.max_retries, max_connections=cfg.concurrency,
            what="LLM judge", saved="Scores so far are saved",
        )
        bar = tqdm(total=len(items), unit="solution", desc="score (llm judge)", disable=not self.progress, dynamic_ncols=True)
        unparseable = 0

        async def score(item: ScoreItem) -> None:
            nonlocal unparseable
            result = await self._score_one(client, item)
            unparseable += result.score is None
            on_result(item, result)
            bar.update(1)
            bar.set_postfix(unparseable=unparseable, refresh=False)

        try:
            await fan_out(items, min(cfg.concurrency, len(items)), score)
        finally:
            bar.close()
            await client.aclose()

    async def _score_one(self, client: Any, item: ScoreItem) -> ScoreResult:
        cfg = self.config
        messages = judge_messages(item, cfg.max_solution_chars)
        last = ""
        for attempt in range(cfg.parse_attempts):
            body = {
                "model": self.endpoint.model,
                "messages": messages,
                "temperature": cfg.temperature if attempt == 0 else cfg.retry_temperature,
                "max_tokens": cfg.max_tokens,
                "n": 1,
            }
            reply = await client.chat_text(body)
            if reply is None:
                return ScoreResult(None, "the endpoint rejected the request (prompt too long?)", attempt + 1)
            score = parse_judge_score(reply)
            if score is not None:
                return ScoreResult(score, reply.strip()[:200], attempt + 1)
            last = reply
        return ScoreResult(None, f"unparseable after {cfg.parse_attempts} tries: {last.strip()[:200]!r}", cfg.parse_attempts)

    def close(self) -> None:
        return None


# ----- reward model ---------------------------------------------------------------------------------


class RewardModelScorer(_ConfiguredScorer):
    """A sequence-classification model scores "instruction + solution"; the score is a logit or a probability."""

    kind = "reward_model"
    needs = "model"
    _loaded = False

    def _load(self) -> None:
        """Load the tokenizer and model (on first use: a run whose scores are all cached never loads them)."""
        if self._loaded:
            return
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from polya.models import resolve_model

        config = self.config
        assert config.model is not None
        self._torch = torch
        path = resolve_model(config.model)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else torch.device(config.device)
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(config.dtype)
        if dtype is None:
            dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load scorer.model {config.model!r} as a sequence-classification model: {exc} "
                "(use an HF hub id or a local checkpoint directory with config.json)"
            ) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.padding_side = "right"
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.to(self.device).eval()
        self.num_labels = int(self.model.config.num_labels)
        self._output = config.reward_output if config.reward_output != "auto" else ("logit" if self.num_labels == 1 else "probability")
        if self._output == "probability" and self.num_labels < 2:
            raise ConfigError(f"scorer.reward_output probability needs a model with >= 2 labels; {config.model!r} has {self.num_labels}")
        self.positive = self.num_labels - 1 if config.positive_label is None else config.positive_label
        if self.positive >= self.num_labels:
            raise ConfigError(f"scorer.positive_label {self.positive} is out of range: {config.model!r} has {self.num_labels} labels")
        self._templated = bool(config.use_chat_template and getattr(self.tokenizer, "chat_template", None))
        self._loaded = True
        logger.info("reward model %s on %s (%s labels, score = %s)", config.model, self.device, self.num_labels, self._output)

    @property
    def output(self) -> str:
        """'logit' or 'probability'."""
        self._load()
        return self._output

    @property
    def templated(self) -> bool:
        """Whether texts go through the tokenizer's chat template."""
        self._load()
        return self._templated

    def identity(self) -> dict[str, Any]:
        return {**self.config.identity(), "rubric": RUBRIC_VERSION, "catalog": self.catalog.digest()}

    def render(self, item: ScoreItem) -> str:
        """The text the model scores: the heuristic's zero-shot prompt and the solution (chat-formatted when possible)."""
        prompt = build_messages(item.question, item.heuristic, self.catalog, num_exemplars=0)[-1]["content"]
        if self.templated:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": item.completion}], tokenize=False
            )
        return f"{prompt}\n\n{item.completion}"

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """Scores of already rendered texts, in one forward pass."""
        self._load()
        torch = self._torch
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_length, return_tensors="pt",
            add_special_tokens=not self.templated,
        ).to(self.device)
        with torch.inference_mode():
            logits = self.model(**batch).logits.float()
        if self.output == "logit":
            values = logits[:, self.positive if self.num_labels > 1 else 0]
        else:
            values = torch.softmax(logits, dim=-1)[:, self.positive]
        return [float(v) for v in values.cpu()]

    def score(self, items: Sequence[ScoreItem], on_result: ResultCallback) -> None:
        from tqdm.auto import tqdm

        if not items:
            return
        texts = [self.render(item) for item in items]
        # Similar lengths together: less padding. Results go back to their own items.
        order = sorted(range(len(items)), key=lambda i: len(texts[i]))
        size = self.config.batch_size
        with tqdm(total=len(items), unit="solution", desc="score (reward model)", disable=not self.progress, dynamic_ncols=True) as bar:
            for start in range(0, len(order), size):
                chunk = order[start : start + size]
                for i, value in zip(chunk, self.score_texts([texts[i] for i in chunk])):
                    finite = math.isfinite(value)
                    on_result(items[i], ScoreResult(value if finite else None, self.output if finite else "non-finite output"))
                bar.update(len(chunk))

    def close(self) -> None:
        if self._loaded:
            self.model = None  # type: ignore[assignment]
            self._loaded = False
            if self.device.type == "cuda":
                self._torch.cuda.empty_cache()


PAPER_REWARD_MODEL = "Skywork/Skywork-Reward-V2-Llama-3.1-8B"
"""The paper preset's adherence scorer: a Skywork-family reward model (the paper's exact checkpoint
and prompt are not public; this is the family's current 8B Llama-based release)."""


def check_scorer(config: ScorerConfig) -> None:
    """Fail now, before any model loads or server starts, when the scorer cannot be had.

    reward_model: ``scorer.model`` must resolve to a sequence-classification checkpoint whose
    config can be read (a local folder, an ``s3://`` checkpoint, or a hub id that is reachable or
    in the local Hugging Face cache). Only its config is read here, never its weights.
    """
    if config.kind != "reward_model":
        return
    assert config.model is not None, "validated by ScorerConfig"
    from transformers import AutoConfig

    from polya.models import resolve_model

    fix = (
        "download it where this machine can read it (e.g. `huggingface-cli download <id> --local-dir models/rm`) and set "
        "select.scorer.model to that folder, or score with select.scorer.kind: offline (no model) or llm_judge"
    )
    try:
        path = resolve_model(config.model)
        hf_config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, ConfigError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"select.scorer.model {config.model!r} (the reward model that scores heuristic adherence) cannot be had: {reason}; {fix}") from None
    architectures = list(getattr(hf_config, "architectures", None) or [])
    if architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ConfigError(
            f"select.scorer.model {config.model!r} is a {', '.join(architectures)}, not a sequence-classification (reward) model; "
            "point it at a reward model such as " + PAPER_REWARD_MODEL
        )


def open_scorer(config: ScorerConfig, catalog: HeuristicCatalog, progress: bool = False) -> AdherenceScorer:
    """The scorer ``config.kind`` names, ready to use (an LLM judge's endpoint is checked here)."""
    if config.kind == "llm_judge":
        return LLMJudgeScorer(config, catalog, progress)
    if config.kind == "reward_model":
        return RewardModelScorer(config, catalog, progress)
    return OfflineScorer(config, catalog, progress)
