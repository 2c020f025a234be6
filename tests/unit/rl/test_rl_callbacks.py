"""Per-step metrics: metrics.jsonl lines and the Prometheus series the chart's alerts use."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import REGISTRY

from polya.rl.callbacks import RlMetricsCallback


def test_metrics_line_and_prometheus(tmp_path: Path) -> None:
    counts = {1: {"verifier_calls": 2, "verdicts": 8, "correct": 3, "answer_found": 5}}
    callback = RlMetricsCallback(tmp_path / "metrics.jsonl", stats=lambda step: counts.get(step, {}))
    state = SimpleNamespace(global_step=0, num_input_tokens_seen=0, epoch=0.0, is_world_process_zero=True)
    steps_before = REGISTRY.get_sample_value("polya_rl_steps_total") or 0.0
    callback.on_train_begin(None, state, None)
    callback.on_step_begin(None, state, None)
    state.global_step, state.epoch = 1, 0.5
    callback.on_step_end(None, state, None)
    logs = {
        "reward": 0.375, "reward_std": 0.5, "rewards/correctness/mean": 0.375, "entropy": 2.1, "completions/mean_length": 12.5,
        "clip_ratio/region_mean": 0.0, "num_tokens": 640.0, "timing/rollout_s": 0.01, "learning_rate": 1e-5, "loss": 0.0,
    }
    callback.on_log(None, state, None, logs=logs)
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert record["step"] == 1 and record["reward_mean"] == 0.375 and record["accuracy"] == 0.375
    assert record["verifier"] == {"verifier_calls": 2, "verdicts": 8, "correct": 3, "answer_found": 5, "rejudged": 0, "undecided": 0}
    assert record["kl"] is None and record["response_length"] == 12.5 and record["tokens"] == 640
    assert record["learner_s"] == round(record["step_s"] - 0.01, 4)
    assert REGISTRY.get_sample_value("polya_rl_reward_mean") == 0.375
    assert REGISTRY.get_sample_value("polya_rl_steps_total") == steps_before + 1
    assert REGISTRY.get_sample_value("polya_rl_accuracy") == 0.375
    # Lines without rewards (the trainer's closing line) are not step metrics.
    callback.on_log(None, state, None, logs={"train_runtime": 3.0})
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
