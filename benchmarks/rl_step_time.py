"""RL step time: ``polya rl`` (Ray Train worker + reward actor) vs TRL's GRPOTrainer run directly.

Both sides train the same model on the same prompts with the same GRPO settings (the very
``GRPOConfig`` polya builds, from :func:`polya.rl.learner.grpo_args`) and the same reward (the
verifier's verdicts; in-process for the direct run, through polya's reward worker actor for
``polya rl``). ``polya rl`` runs with one learner worker so that both do the same compute; what is
measured is what Ray, the reward actor and polya's callbacks add. Step time is the wall time between
the ends of consecutive steps, logging included (generation, reward, forward, backward, optimizer,
metrics), so the first step (warm-up) is never timed. The runs alternate (direct, polya, direct, polya, ...)
so that load from other processes hits both alike.

CPU (the default; target ratio polya / direct <= 1.1)::

    python benchmarks/rl_step_time.py                         # embedded SmolLM2-135M, 6 steps x 2 repeats
    python benchmarks/rl_step_time.py --steps 10 --repeats 3 --max-completion-length 64

GPU (a lent GPU; also needs vllm): the same comparison with ``use_gpu``, plus rollout tokens/s
of ``polya rl`` (vLLM colocated in the learner worker) vs the raw vLLM engine generating the same
prompts with the same sampling settings::

    python benchmarks/rl_step_time.py --gpu --model Qwen/Qwen2.5-0.5B-Instruct --group-size 8 --batch-size 64 \\
        --max-completion-length 512

Results go to ``benchmarks/results/rl_step_time.json`` (``--output``); the ratio is printed, and
the peak memory of each side: TRL's process, and for ``polya rl`` its driver and its learner worker.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from polya.core.memory import peak_rss_mib

logger = logging.getLogger("rl_step_time")

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct", help="Model to train (embedded, hub id or local folder).")
    parser.add_argument("--steps", type=int, default=6, help="Optimizer steps per run (the first is warm-up and not timed).")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each side, alternating.")
    parser.add_argument("--group-size", type=int, default=4, help="Completions per prompt.")
    parser.add_argument("--batch-size", type=int, default=8, help="Completions per step.")
    parser.add_argument("--max-completion-length", type=int, default=32, help="Tokens generated per completion.")
    parser.add_argument("--questions", type=int, default=32, help="Synthetic questions to draw prompts from.")
    parser.add_argument("--gpu", action="store_true", help="Run on a GPU (vLLM rollouts) and add the raw-vLLM rollout comparison.")
    parser.add_argument("--output", type=Path, default=None, help="Result JSON (default benchmarks/results/rl_step_time[_gpu].json).")
    parser.add_argument("--work-dir", type=Path, default=None, help="Scratch folder (default: a temporary one).")
    parser.add_argument("--only", choices=("direct", "polya", "raw-vllm"), default=None,
                        help="Internal: run one side in this process and write its result to --side-result (each run gets a fresh process).")
    parser.add_argument("--side-result", type=Path, default=None, help="Internal: where --only writes its JSON.")
    return parser.parse_args(argv)


def rl_config(args: argparse.Namespace, run_dir: Path) -> Any:
    from polya.rl.config import RlConfig

    return RlConfig(
        run_dir=str(run_dir), model=args.model, data={"source": "synthetic", "synthetic": {"count": args.questions, "difficulties": [1]}},
        group_size=args.group_size, batch_size=args.batch_size, max_completion_length=args.max_completion_length,
        max_steps=args.steps, save_steps=100_000, learning_rate=1e-6, num_workers=1, use_gpu=args.gpu, progress=False,
        torch_threads=0 if args.gpu else 1, bf16="on" if args.gpu else "off", dtype="bfloat16" if args.gpu else "float32",
        rollout={"engine": "vllm" if args.gpu else "hf", "vllm_mode": "colocate", "gpu_memory_utilization": 0.3},
    )


def intervals(marks: list[float]) -> list[float]:
    """Times between consecutive step ends (the first step, the warm-up, has no interval)."""
    return [b - a for a, b in zip(marks, marks[1:])]


def run_direct(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """TRL's GRPOTrainer in this process: same GRPOConfig, same prompts, the verifier in-process."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOTrainer

    from polya.rl.data import load_prompts
    from polya.rl.learner import grpo_args
    from polya.rl.reward import RewardWorker, VerifierRewards
    from polya.rl.stage import _resolve_policy

    config = rl_config(args, work)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    model_path = _resolve_policy(config.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left", truncation_side="left")
    rows = load_prompts(config, tokenizer).rows
    worker = RewardWorker(workers=1)
    worker.ready()

    class StepTimer(TrainerCallback):
        """Marks the end of each step, after its logging (as polya's elapsed_s in metrics.jsonl)."""

        def __init__(self) -> None:
            self.marks: list[float] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **k: Any) -> None:
            if logs and "reward" in logs:
                self.marks.append(time.monotonic())

    timer = StepTimer()
    funcs, weights = VerifierRewards(worker).functions(config.reward.format, config.reward.correct)
    training_args = grpo_args(config, str(work / "direct"), deepspeed_path=None, bf16=config.use_gpu, rollout_url=None,
                              reward_weights=weights, is_main=True)
    trainer = GRPOTrainer(model=model_path, reward_funcs=funcs, args=training_args, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer, callbacks=[timer])
    try:
        trainer.train()
    finally:
        worker.close()
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    times = intervals(timer.marks)
    return {"step_times_s": [round(t, 4) for t in times], "mean_step_s": round(statistics.fmean(times), 4), "tokens": tokens,
            "peak_rss_mib": peak_rss_mib()}


def run_polya(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``polya rl`` through its library entry point (local Ray cluster, one learner worker, the reward actor)."""
    from polya.rl.stage import run

    started = time.monotonic()
    out = run(rl_config(args, work))
    wall = time.monotonic() - started
    records = [json.loads(line) for line in (Path(out.local_dir) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    times = [round(t, 4) for t in intervals([r["elapsed_s"] for r in records])]
    completion_tokens = [r["response_length"] * args.batch_size for r in records]
    rollout = [r["rollout_s"] for r in records]
    return {
        "step_times_s": times,
        "mean_step_s": round(statistics.fmean(times), 4),
        "rollout_s": rollout,
        "rollout_tokens_per_s": round(sum(completion_tokens[1:]) / max(sum(rollout[1:]), 1e-9), 2) if len(records) > 1 else None,
        "wall_s_including_startup": round(wall, 2),
        "verdicts": out.summary.get("verdicts"),
        "peak_rss_mib": out.summary.get("peak_rss_mib"),  # the driver
        "peak_rss_mib_learner0": out.summary.get("peak_rss_mib_learner0"),  # the Ray worker that trains
    }


def raw_vllm_rollout(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The raw vLLM engine generating the same prompts x group with the same sampling: completion tokens/s."""
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    from polya.rl.data import load_prompts
    from polya.rl.stage import _resolve_policy

    config = rl_config(args, work)
    model_path = _resolve_policy(config.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    rows = load_prompts(config, tokenizer).rows
    llm = LLM(model=model_path, gpu_memory_utilization=config.rollout.gpu_memory_utilization, dtype="bfloat16",
              max_model_len=config.max_prompt_length + config.max_completion_length, seed=config.seed)
    params = SamplingParams(n=config.group_size, temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_completion_length)
    per_step = config.prompts_per_step
    rates = []
    for step in range(args.steps):
        batch = [rows[(step * per_step + i) % len(rows)]["prompt"] for i in range(per_step)]
        started = time.monotonic()
        outputs = llm.chat(batch, params, use_tqdm=False)
        elapsed = time.monotonic() - started
        tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
        rates.append(tokens / elapsed)
    return {"tokens_per_s": round(statistics.fmean(rates[1:] if len(rates) > 1 else rates), 2), "per_step_tokens_per_s": [round(r, 2) for r in rates],
            "peak_rss_mib": peak_rss_mib()}

def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        info["load_avg_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


SIDES = {"direct": run_direct, "polya": run_polya, "raw-vllm": raw_vllm_rollout}


def run_side(args: argparse.Namespace, side: str, work: Path) -> dict[str, Any]:
    """Run one side in a fresh Python process (so no run inherits another's memory, threads or Ray state)."""
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    result_file = work / "side-result.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--only", side, "--side-result", str(result_file), "--work-dir", str(work)]
    for key in ("model", "steps", "group_size", "batch_size", "max_completion_length", "questions"):
        argv += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if args.gpu:
        argv.append("--gpu")
    # The environment polya gives its Ray workers (polya.rl.stage.RayCluster), for every side alike.
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if not args.gpu:
        env["OMP_NUM_THREADS"] = "1"
    subprocess.run(argv, check=True, env=env)
    return json.loads(result_file.read_text(encoding="utf-8"))


def _peak(runs: list[dict[str, Any]], key: str) -> str:
    """The largest ``key`` over ``runs``, in MiB ("?" when none recorded it)."""
    values = [r[key] for r in runs if r.get(key) is not None]
    return f"{max(values):.0f}" if values else "?"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    if args.only:
        assert args.side_result is not None and args.work_dir is not None, "--only needs --side-result and --work-dir"
        args.side_result.write_text(json.dumps(SIDES[args.only](args, args.work_dir)), encoding="utf-8")
        return 0
    output = args.output or RESULTS / ("rl_step_time_gpu.json" if args.gpu else "rl_step_time.json")
    work_root = args.work_dir or Path(tempfile.mkdtemp(prefix="polya-rl-bench-"))
    result: dict[str, Any] = {"benchmark": "rl_step_time", "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "machine": machine(), "direct": [], "polya": []}
    for repeat in range(args.repeats):
        logger.info("repeat %s/%s: TRL GRPOTrainer directly", repeat + 1, args.repeats)
        result["direct"].append(run_side(args, "direct", work_root / f"direct-{repeat}"))
        logger.info("repeat %s/%s: polya rl", repeat + 1, args.repeats)
        result["polya"].append(run_side(args, "polya", work_root / f"polya-{repeat}"))
    direct = statistics.fmean(r["mean_step_s"] for r in result["direct"])
    polya = statistics.fmean(r["mean_step_s"] for r in result["polya"])
    result["direct_mean_step_s"] = round(direct, 4)
    result["polya_mean_step_s"] = round(polya, 4)
    result["ratio_polya_over_direct"] = round(polya / direct, 4)
    result["target_ratio"] = 1.1
    if args.gpu:
        raw = run_side(args, "raw-vllm", work_root / "raw-vllm")
        polya_rate = statistics.fmean(r["rollout_tokens_per_s"] for r in result["polya"] if r["rollout_tokens_per_s"])
        result["raw_vllm"] = raw
        result["rollout_tokens_per_s_polya"] = round(polya_rate, 2)
        result["rollout_ratio_polya_over_raw_vllm"] = round(polya_rate / raw["tokens_per_s"], 4)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"step time: polya rl {polya:.3f}s, TRL GRPOTrainer directly {direct:.3f}s, ratio {polya / direct:.3f} (target <= 1.1)")
    print(f"peak RSS: polya rl learner {_peak(result['polya'], 'peak_rss_mib_learner0')} MiB + driver {_peak(result['polya'], 'peak_rss_mib')} MiB, "
          f"TRL GRPOTrainer directly {_peak(result['direct'], 'peak_rss_mib')} MiB")
    if args.gpu:
        print(f"rollout tokens/s: polya rl {result['rollout_tokens_per_s_polya']}, raw vLLM {result['raw_vllm']['tokens_per_s']}, "
              f"ratio {result['rollout_ratio_polya_over_raw_vllm']}; peak RSS of raw vLLM {result['raw_vllm']['peak_rss_mib']} MiB")
    print(f"results: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
