"""Per-step RL metrics: one JSON line per logging step in ``metrics.jsonl`` and Prometheus metrics.

Runs in the first learner worker only (``state.is_world_process_zero``). Each line holds:

``step``, ``reward_mean`` / ``reward_std`` (weighted total reward over the step's completions, all
workers), ``accuracy`` (share of completions the verifier judged correct), ``answer_found`` (share
with a final-answer statement), ``kl`` (only with beta > 0), ``entropy``, ``response_length``
(mean completion tokens), ``clip_fraction`` (share of tokens whose ratio was clipped),
``tokens`` (prompt + completion tokens so far) and ``tokens_per_s``, ``step_s`` (wall time of the
step), ``rollout_s`` (generation + reward inside it), ``learner_s`` (the rest: forward, backward,
optimizer), ``reward_s``, ``learning_rate``, ``grad_norm``, and ``verifier`` (the reward worker's
counters for those steps: ``verifier_calls``, ``verdicts``, ``correct``, ``answer_found``,
``status_*``): the provenance of the rewards.

Prometheus (scraped from ``metrics_port`` of the first worker): ``polya_rl_reward_mean``,
``polya_rl_reward_std``, ``polya_rl_accuracy``, ``polya_rl_kl``, ``polya_rl_entropy``,
``polya_rl_response_length``, ``polya_rl_clip_fraction``, ``polya_rl_tokens_per_second``,
``polya_rl_step_seconds``, ``polya_rl_rollout_seconds``, ``polya_rl_learner_seconds``,
``polya_rl_global_step`` (gauges) and ``polya_rl_steps_total``, ``polya_rl_verdicts_total``
(counters).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from prometheus_client import Counter, Gauge

from polya.rl.trainer import REWARD_KEY, ROLLOUT_KEY
from polya.training.callbacks import MetricsCallback, rounded, set_gauge

logger = logging.getLogger(__name__)


REWARD_MEAN = Gauge("polya_rl_reward_mean", "Mean reward of the completions of the latest step")
REWARD_STD = Gauge("polya_rl_reward_std", "Standard deviation of the rewards of the latest step")
ACCURACY = Gauge("polya_rl_accuracy", "Share of the latest step's completions the verifier judged correct")
KL = Gauge("polya_rl_kl", "Mean KL to the reference policy (0 when beta is 0)")
ENTROPY = Gauge("polya_rl_entropy", "Mean token entropy of the completions")
RESPONSE_LENGTH = Gauge("polya_rl_response_length", "Mean completion length in tokens")
CLIP_FRACTION = Gauge("polya_rl_clip_fraction", "Share of completion tokens whose importance ratio was clipped")
TOKENS_PER_SECOND = Gauge("polya_rl_tokens_per_second", "Prompt + completion tokens per second over the latest logging interval")
STEP_SECONDS = Gauge("polya_rl_step_seconds", "Wall time of the latest step")
ROLLOUT_SECONDS = Gauge("polya_rl_rollout_seconds", "Generation + reward time within the latest step")
LEARNER_SECONDS = Gauge("polya_rl_learner_seconds", "Forward, backward and optimizer time within the latest step")
GLOBAL_STEP = Gauge("polya_rl_global_step", "Optimizer steps done (resumed runs included)")
STEPS = Counter("polya_rl_steps", "Optimizer steps done by this process")
VERDICTS = Counter("polya_rl_verdicts", "Completions judged by the verifier for rewards")

StatsFn = Callable[[int], dict[str, int]]
"""Returns the reward worker's counters for one step."""


class RlMetricsCallback(MetricsCallback):
    """Write ``metrics.jsonl`` and set the Prometheus metrics (see the module docstring)."""

    def __init__(self, path: Path, stats: StatsFn | None = None, correct_weight: float = 1.0):
        super().__init__(path)
        self.stats = stats
        self.correct_weight = correct_weight
        self._step_started = 0.0
        self._step_times: list[float] = []
        self._last_logged_step = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        super().on_train_begin(args, state, control, **kwargs)
        self._last_logged_step = state.global_step

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_started = time.monotonic()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_times.append(time.monotonic() - self._step_started)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs or "reward" not in logs:
            return
        now = time.monotonic()
        step = state.global_step
        steps_done = max(1, step - self._last_logged_step)
        tokens = int(logs.get("num_tokens") or state.num_input_tokens_seen or 0)
        interval = max(now - self._last_time, 1e-9)
        step_s = sum(self._step_times) / len(self._step_times) if self._step_times else interval / steps_done
        rollout_s = _num(logs.get(ROLLOUT_KEY))
        verifier = self._verifier_counts(self._last_logged_step + 1, step)
        verdicts = verifier.get("verdicts", 0)
        record: dict[str, Any] = {
            "step": step,
            "epoch": rounded(state.epoch, 4),
            "reward_mean": rounded(logs.get("reward"), 6),
            "reward_std": rounded(logs.get("reward_std"), 6),
            "accuracy": round(verifier["correct"] / verdicts, 6) if verdicts else rounded(logs.get("rewards/correctness/mean"), 6),
            "answer_found": round(verifier.get("answer_found", 0) / verdicts, 6) if verdicts else None,
            "kl": rounded(logs.get("kl"), 6),
            "entropy": rounded(logs.get("entropy"), 6),
            "response_length": rounded(logs.get("completions/mean_length"), 3),
            "clip_fraction": rounded(logs.get("clip_ratio/region_mean"), 6),
            "frac_reward_zero_std": rounded(logs.get("frac_reward_zero_std"), 6),
            "tokens": tokens,
            "tokens_per_s": round((tokens - self._last_tokens) / interval, 2),
            "step_s": round(step_s, 4),
            "rollout_s": rounded(rollout_s, 4),
            "learner_s": round(step_s - rollout_s, 4) if rollout_s is not None else None,
            "reward_s": rounded(logs.get(REWARD_KEY), 4),
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": rounded(logs.get("grad_norm"), 6),
            "loss": rounded(logs.get("loss"), 6),
            "verifier": verifier,
        }
        self._export(record, steps_done, verdicts)
        self._last_logged_step, self._last_tokens, self._last_time = step, tokens, now
        self._step_times.clear()
        self.log.append(record)
        logger.info(
            "step %s: reward %.3f (std %.3f), accuracy %s, %s tokens/s, step %.1fs (rollout %.1fs)",
            step, record["reward_mean"] or 0.0, record["reward_std"] or 0.0, record["accuracy"], record["tokens_per_s"],
            record["step_s"], record["rollout_s"] or 0.0,
        )

    def _verifier_counts(self, first: int, last: int) -> dict[str, int]:
        totals: dict[str, int] = {"verifier_calls": 0, "verdicts": 0, "correct": 0, "answer_found": 0, "rejudged": 0, "undecided": 0}
        if self.stats is None:
            return totals
        for step in range(first, last + 1):
            for key, value in self.stats(step).items():
                totals[key] = totals.get(key, 0) + int(value)
        return totals

    def _export(self, record: dict[str, Any], steps_done: int, verdicts: int) -> None:
        for gauge, key in (
            (REWARD_MEAN, "reward_mean"), (REWARD_STD, "reward_std"), (ACCURACY, "accuracy"), (KL, "kl"),
            (ENTROPY, "entropy"), (RESPONSE_LENGTH, "response_length"), (CLIP_FRACTION, "clip_fraction"),
            (TOKENS_PER_SECOND, "tokens_per_s"), (STEP_SECONDS, "step_s"), (ROLLOUT_SECONDS, "rollout_s"),
            (LEARNER_SECONDS, "learner_s"), (GLOBAL_STEP, "step"),
        ):
            set_gauge(gauge, record.get(key))
        if record.get("kl") is None:
            KL.set(0.0)
        STEPS.inc(steps_done)
        VERDICTS.inc(verdicts)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None

