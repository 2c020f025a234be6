"""The SFT stage's metrics callback: one ``metrics.jsonl`` line per logging step and Prometheus gauges.

Checkpoint upload and the metrics file itself are shared with the RL stage
(:mod:`polya.training.callbacks`).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Gauge

from polya.training.callbacks import MetricsCallback, rounded, set_gauge

LOSS = Gauge("polya_sft_loss", "Training loss of the latest logging interval")
LEARNING_RATE = Gauge("polya_sft_learning_rate", "Current learning rate")
TOKENS_PER_SECOND = Gauge("polya_sft_tokens_per_second", "Training tokens per second over the latest logging interval")
TOKENS = Gauge("polya_sft_tokens_total", "Training tokens seen (resumed runs included)")
STEP = Gauge("polya_sft_global_step", "Optimizer steps done")
EPOCH = Gauge("polya_sft_epoch", "Epochs done (fractional)")
GRAD_NORM = Gauge("polya_sft_grad_norm", "Gradient norm before clipping, latest logging interval")


class SftMetricsCallback(MetricsCallback):
    """Append one JSON line per logging step to ``metrics.jsonl`` and set the Prometheus gauges.

    Each line holds ``step``, ``epoch``, ``loss``, ``learning_rate``, ``grad_norm``, ``tokens``
    (tokens seen so far: non-padding tokens, resumed runs included), ``tokens_per_s`` over the
    interval since the previous line, ``elapsed_s`` since this process started training and
    ``time``. The trainer's closing line (``train_runtime``, ``train_loss``) is written with
    ``"event": "train_end"``.
    """

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.monotonic()
        tokens = int(state.num_input_tokens_seen or 0)
        record: dict[str, Any] = {"step": state.global_step, "epoch": rounded(logs.get("epoch", state.epoch), 4)}
        if "loss" in logs:
            interval = max(now - self._last_time, 1e-9)
            tokens_per_s = (tokens - self._last_tokens) / interval
            record.update(
                loss=rounded(logs.get("loss"), 6),
                learning_rate=logs.get("learning_rate"),
                grad_norm=rounded(logs.get("grad_norm"), 6),
                tokens=tokens,
                tokens_per_s=round(tokens_per_s, 2),
                mean_token_accuracy=rounded(logs.get("mean_token_accuracy"), 6),
            )
            self._last_time, self._last_tokens = now, tokens
            set_gauge(LOSS, logs.get("loss"))
            set_gauge(LEARNING_RATE, logs.get("learning_rate"))
            set_gauge(GRAD_NORM, logs.get("grad_norm"))
            TOKENS_PER_SECOND.set(tokens_per_s)
        elif "train_runtime" in logs:
            record.update(
                event="train_end",
                train_loss=rounded(logs.get("train_loss"), 6),
                train_runtime_s=rounded(logs.get("train_runtime"), 3),
                tokens=tokens,
            )
        else:
            return
        TOKENS.set(tokens)
        STEP.set(state.global_step)
        set_gauge(EPOCH, state.epoch)
        self.log.append(record)
