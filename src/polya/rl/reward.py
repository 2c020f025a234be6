"""The reward role: completions are judged by the verifier, the same code evaluation uses.

- :class:`RewardWorker` is a Ray actor holding one verifier (:func:`polya.verify.client.open_verifier`:
  an in-process judge pool, or a client of a running verifier service). Every learner worker sends
  its completions there; it counts every call and verdict per step, so a run can show where its
  rewards came from (``verifier_calls``, ``verdicts``, ``correct`` in metrics.jsonl).
- :class:`VerifierRewards` gives TRL its reward functions (``correctness`` and ``answer_format``),
  both computed from one verifier call per batch.

Rewards: ``correct`` when the verdict is correct, else 0; with ``format > 0`` also ``format`` when
the verifier found a final-answer statement (``\\boxed{}`` / "The answer is ...") at all. An
undecided verdict (``timeout`` / ``error``) is judged once more with ``rejudge_timeout_s`` of CPU
time (``reward.undecided: rejudge``, the default) and earns 0 only if it stays undecided; the
counters ``rejudged`` and ``undecided`` show how often that happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any, Sequence

from polya.core.errors import ServerError
from polya.verify.config import JudgeSettings

logger = logging.getLogger(__name__)

PROBE = {"kind": "math", "prediction": "The answer is \\boxed{4}.", "reference": "4"}
"""One item judged at start-up: the verifier must answer it correctly or the run does not start."""


class RewardWorker:
    """Judge completions with the verifier and keep provenance counters (a Ray actor; also usable directly)."""

    def __init__(self, settings: JudgeSettings | None = None, token: str | None = None):
        from polya.verify.client import open_verifier

        self.settings = settings or JudgeSettings(judge_workers=1)
        self.endpoint = self.settings.verifier_endpoint
        self.rejudge_timeout_s = self.settings.rejudge_timeout_s
        config = self.settings.verifier_config(auth_token=token, log_level="warning")
        self.verifier = open_verifier(config, self.endpoint)  # second tries are made (and counted) in judge()
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self.steps: dict[int, Counter[str]] = {}

    def source(self) -> str:
        """Where verdicts come from, for the record."""
        return f"verifier service {self.endpoint}" if self.endpoint else "in-process verifier pool (polya.verify LocalVerifier)"

    def ready(self) -> dict[str, Any]:
        """Judge :data:`PROBE`; raise :class:`ServerError` unless the verifier answers it correctly."""
        started = time.monotonic()
        if self.endpoint and hasattr(self.verifier, "health"):
            self.verifier.health()
        try:
            verdict = self.verifier.verify([PROBE])[0]
        except ServerError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here means the verifier is not usable
            raise ServerError(f"{self.source()} failed on a probe item: {type(exc).__name__}: {exc}") from None
        if not verdict.correct:
            raise ServerError(f"{self.source()} judged the probe '\\boxed{{4}}' vs 4 as {verdict.status} ({verdict.reason}); it is not usable")
        return {"source": self.source(), "latency_s": round(time.monotonic() - started, 3)}

    def judge(self, completions: Sequence[str], references: Sequence[str], step: int) -> list[dict[str, Any]]:
        """Verdicts for ``completions`` against ``references`` (math); counted under ``step``."""
        if len(completions) != len(references):
            raise ValueError(f"{len(completions)} completions but {len(references)} reference answers")
        from polya.verify.client import rejudge_undecided

        items = [{"kind": "math", "prediction": c, "reference": str(r)} for c, r in zip(completions, references)]
        started = time.monotonic()
        verdicts = list(self.verifier.verify(items))
        first = Counter(v.status for v in verdicts)
        rejudged = rejudge_undecided(self.verifier, items, verdicts, self.rejudge_timeout_s) if self.rejudge_timeout_s > 0 else 0
        elapsed = time.monotonic() - started
        out = [{"correct": v.correct, "extracted": v.extracted is not None, "status": v.status} for v in verdicts]
        counts: Counter[str] = Counter(
            verifier_calls=1 + bool(rejudged),
            verdicts=len(out),
            correct=sum(o["correct"] for o in out),
            answer_found=sum(o["extracted"] for o in out),
            rejudged=rejudged,
            undecided=sum(1 for v in verdicts if not v.decided),
            **{f"status_{s}": n for s, n in first.items()},
        )
        with self._lock:
            self.totals.update(counts)
            self.totals["judge_ms"] += int(elapsed * 1000)
            self.steps.setdefault(step, Counter()).update(counts)
        return out

    def stats(self, step: int | None = None) -> dict[str, int]:
        """Counters of one step, or the totals."""
        with self._lock:
            counter = self.totals if step is None else self.steps.get(step, Counter())
            return dict(counter)

    def close(self) -> None:
        self.verifier.close()


class VerifierRewards:
    """TRL reward functions backed by a :class:`RewardWorker` (a Ray actor handle, or the object itself).

    TRL calls each reward function with the batch of this worker; ``correctness`` asks the
    verifier, ``answer_format`` reuses those verdicts (same completions, no second call).
    """

    def __init__(self, worker: Any):
        self.worker = worker
        self._last: tuple[tuple[str, ...], list[dict[str, Any]]] | None = None

    def _verdicts(self, completions: list[Any], answer: list[str], trainer_state: Any = None) -> list[dict[str, Any]]:
        texts = tuple(completion_text(c) for c in completions)
        if self._last is not None and self._last[0] == texts:
            return self._last[1]
        step = int(getattr(trainer_state, "global_step", 0) or 0) + 1  # the step these rewards train
        if hasattr(self.worker, "judge") and hasattr(self.worker.judge, "remote"):
            import ray

            verdicts = ray.get(self.worker.judge.remote(list(texts), list(answer), step))
        else:
            verdicts = self.worker.judge(list(texts), list(answer), step)
        self._last = (texts, verdicts)
        return verdicts

    def correctness(self, prompts: list[Any], completions: list[Any], answer: list[str], trainer_state: Any = None, **_: Any) -> list[float]:
        """1.0 for a completion whose final answer the verifier judges equal to the reference, else 0.0."""
        return [1.0 if v["correct"] else 0.0 for v in self._verdicts(completions, answer, trainer_state)]

    def answer_format(self, prompts: list[Any], completions: list[Any], answer: list[str], trainer_state: Any = None, **_: Any) -> list[float]:
        """1.0 when the verifier found a final-answer statement in the completion, right or wrong."""
        return [1.0 if v["extracted"] else 0.0 for v in self._verdicts(completions, answer, trainer_state)]

    def functions(self, format_weight: float, correct_weight: float) -> tuple[list[Any], list[float]]:
        """The reward functions and weights for ``GRPOConfig.reward_weights`` (format only when its weight > 0)."""
        funcs: list[Any] = [self.correctness]
        weights = [correct_weight]
        if format_weight > 0:
            funcs.append(self.answer_format)
            weights.append(format_weight)
        return funcs, weights


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or a list of chat messages (the assistant turn's content)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)
