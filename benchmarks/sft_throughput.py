"""Benchmark: ``polya sft`` vs a plain TRL SFTTrainer script, same data and settings, one run.

Each variant trains in its own fresh Python process (so peak RSS is its own), one after the other:

* ``trl``: the script a person would write with TRL alone: conversational prompt/completion rows,
  ``SFTTrainer(model=path, args=SFTConfig(...))``, the same hyperparameters as polya's run, no
  checkpoints;
* ``polya``: the whole stage through ``polya.sft.stage.run`` (preflight, manifest, metrics
  callback writing metrics.jsonl and Prometheus gauges, final save).

Both are measured over ``trainer.train()`` only (model load and the final save are excluded from
tokens/s, included in the wall time shown). Tokens are real (non-padding) training tokens:
polya's ``summary.json`` count and, for TRL, the token count of its prepared dataset times the
epochs; the script checks they agree. Printed: tokens/s, peak RSS and the ratios polya / TRL with
and without packing (target >= 1.0) and polya with packing / TRL without (packing should win).

    .venv/bin/python benchmarks/sft_throughput.py                          # embedded SmolLM2-135M on CPU
    .venv/bin/python benchmarks/sft_throughput.py --examples 128 --repeats 2 --output /tmp/sft_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from polya.core.memory import peak_rss_mib

RESULT_TAG = "BENCH_RESULT "


def make_dataset(path: Path, examples: int, seed: int) -> None:
    """Word problems whose worked solutions run from 1 to 14 steps: realistic spread of lengths (padding matters)."""
    rng = random.Random(seed)
    names = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana"]
    items = ["apples", "marbles", "stamps", "books", "coins", "shells"]
    rows = []
    for i in range(examples):
        name, item = rng.choice(names), rng.choice(items)
        total = rng.randint(2, 40)
        steps = rng.randint(1, 14)
        lines = [f"Let me work through this step by step. {name} starts with {total} {item}."]
        for s in range(1, steps + 1):
            gain = rng.randint(1, 25)
            lines.append(f"Step {s}: {name} gets {gain} more {item}, so now there are {total} + {gain} = {total + gain} {item}.")
            total += gain
        lines.append(f"So {name} ends with {total} {item}. The answer is \\boxed{{{total}}}.")
        question = f"{name} starts with some {item} and receives more {steps} times (problem {i}). How many {item} at the end?"
        rows.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": " ".join(lines)}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ----- the two sides (each runs in a child process) ---------------------------------------------
def child_polya(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from polya.sft.config import SftConfig
    from polya.sft.stage import run

    config = SftConfig(
        run_dir=str(work / "run"), data_file=args.data, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        max_seq_length=args.max_seq_length, packing=args.packing, learning_rate=args.learning_rate,
        logging_steps=args.logging_steps, save_steps=10**9, progress=False, seed=0,
    )
    summary = run(config).summary
    return {"tokens": summary["tokens"], "train_s": summary["session_runtime_s"], "steps": summary["global_step"],
            "loss": summary["train_loss"]}


def child_trl(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from polya.models import resolve_model

    model_path = resolve_model(args.model)
    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines() if line.strip()]
    dataset = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])
    trl_args = SFTConfig(
        output_dir=str(work / "trl"), num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, lr_scheduler_type="cosine", warmup_steps=0.03, max_length=args.max_seq_length,
        packing=args.packing, completion_only_loss=True, bf16=False, use_cpu=True, gradient_checkpointing=False,
        save_strategy="no", logging_steps=args.logging_steps, report_to=[], seed=0, disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model_path, args=trl_args, train_dataset=dataset, processing_class=AutoTokenizer.from_pretrained(model_path))
    started = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - started
    tokens = int(sum(len(r["input_ids"]) for r in trainer.train_dataset) * args.epochs)
    return {"tokens": tokens, "train_s": round(train_s, 3), "steps": trainer.state.global_step, "loss": round(result.training_loss, 6)}


def child_main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix=f"polya-bench-{args.child}-") as tmp:
        started = time.perf_counter()
        result = (child_polya if args.child == "polya" else child_trl)(args, Path(tmp))
        result["wall_s"] = round(time.perf_counter() - started, 2)
    result["tokens_per_s"] = round(result["tokens"] / result["train_s"], 2)
    result["peak_rss_mib"] = peak_rss_mib()
    print(RESULT_TAG + json.dumps(result), flush=True)


# ----- the parent ------------------------------------------------------------------------------
def run_child(side: str, packing: bool, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--child", side, "--data", str(data), "--model", args.model, "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--max-seq-length", str(args.max_seq_length),
        "--learning-rate", str(args.learning_rate), "--logging-steps", str(args.logging_steps),
    ] + (["--packing"] if packing else [])
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{side} (packing={packing}) failed with {proc.returncode}:\n{proc.stderr[-4000:]}")
    result = json.loads(lines[-1][len(RESULT_TAG):])
    result.update(side=side, packing=packing)
    print(
        f"  {side:5s} packing={str(packing):5s} {result['tokens_per_s']:9.1f} tokens/s  {result['tokens']} tokens in "
        f"{result['train_s']:.1f}s ({result['steps']} steps)  peak RSS {result['peak_rss_mib']:.0f} MiB  wall {result['wall_s']:.0f}s",
        flush=True,
    )
    return result


def best(results: list[dict[str, Any]], side: str, packing: bool) -> dict[str, Any]:
    runs = [r for r in results if r["side"] == side and r["packing"] == packing]
    return max(runs, key=lambda r: r["tokens_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--examples", type=int, default=32, help="Chat rows in the synthetic dataset.")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--logging-steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="Rounds of the four variants; the best round of each is compared.")
    parser.add_argument("--output", help="Write the results as JSON here.")
    parser.add_argument("--child", choices=["polya", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--packing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args)

    from polya.models import resolve_model

    resolve_model(args.model)  # convert the embedded model once, outside the timed children
    with tempfile.TemporaryDirectory(prefix="polya-bench-data-") as tmp:
        data = Path(tmp) / "train.jsonl"
        make_dataset(data, args.examples, seed=0)
        print(
            f"SFT throughput: {args.model}, {args.examples} examples x {args.epochs} epoch(s), batch {args.batch_size}, "
            f"max_seq_length {args.max_seq_length}, CPU ({os.cpu_count()} cores), {args.repeats} round(s)",
            flush=True,
        )
        results = []
        for round_index in range(args.repeats):
            print(f"round {round_index + 1}", flush=True)
            for packing in (False, True):
                for side in ("trl", "polya"):
                    results.append(run_child(side, packing, args, data))

    table = {(s, p): best(results, s, p) for s in ("trl", "polya") for p in (False, True)}
    for packing in (False, True):
        polya, trl = table[("polya", packing)], table[("trl", packing)]
        if polya["tokens"] != trl["tokens"]:
            print(f"  note: token counts differ with packing={packing}: polya {polya['tokens']}, trl {trl['tokens']}")
    ratio_plain = table[("polya", False)]["tokens_per_s"] / table[("trl", False)]["tokens_per_s"]
    ratio_packed = table[("polya", True)]["tokens_per_s"] / table[("trl", True)]["tokens_per_s"]
    ratio_packing_win = table[("polya", True)]["tokens_per_s"] / table[("trl", False)]["tokens_per_s"]
    rss_plain = table[("polya", False)]["peak_rss_mib"] / table[("trl", False)]["peak_rss_mib"]
    rss_packed = table[("polya", True)]["peak_rss_mib"] / table[("trl", True)]["peak_rss_mib"]
    print(f"ratio polya / TRL tokens/s, no packing:        {ratio_plain:.3f}  (target >= 1.0)")
    print(f"ratio polya / TRL tokens/s, packing:           {ratio_packed:.3f}  (target >= 1.0)")
    print(f"ratio polya packing / TRL no packing:          {ratio_packing_win:.3f}  (packing should be > 1)")
    print(f"peak RSS polya / TRL: no packing {rss_plain:.3f}, packing {rss_packed:.3f}")
    if args.output:
        Path(args.output).write_text(
            json.dumps(
                {
                    "settings": {k: v for k, v in vars(args).items() if k not in ("child", "data", "packing", "output")},
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
                    "runs": results,
                    "ratios": {
                        "tokens_per_s_no_packing": round(ratio_plain, 4),
                        "tokens_per_s_packing": round(ratio_packed, 4),
                        "polya_packing_over_trl_no_packing": round(ratio_packing_win, 4),
                        "peak_rss_no_packing": round(rss_plain, 4),
                        "peak_rss_packing": round(rss_packed, 4),
                    },
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
