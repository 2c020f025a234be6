"""Benchmark: the judge pool's math items/s on real answers vs raw math-verify in one process, per core.

Answers: the references of **GSM8K test** (1,319; the number after ``####``) and **MATH-500**
(500 LaTeX answers), read from ``--data`` (default ``../shared/data`` next to the repository:
``gsm8k/test.jsonl``, ``math500/test.jsonl``). The predictions are model-style solutions built
from each reference, item ``i`` taking shape ``i % 4``:

- 0, 1: a line of reasoning, then the reference itself as the final answer (``\\boxed{ref}``; for
  every other GSM8K item ``#### ref`` instead, GSM8K's own format);
- 2: an equivalent form written differently: an integer ``n`` as ``\\frac{2n}{2}``, ``\\frac{a}{b}``
  as ``a/b``, a decimal as a fraction, else the reference with its spaces taken out or
  ``\\dfrac`` for ``\\frac``, boxed;
- 3: a wrong answer: the reference of another problem of the same set (the next one that differs),
  boxed.

Both sides judge the same items:

- **raw**: ``math_verify.parse`` / ``verify`` in a loop in this process, the way math-verify's
  README does it (``verify(parse(f"${ref}$"), parse(prediction))``, default settings), measured
  before and after the pool runs and averaged (other load on the box moves it);
- **in-process**: polya's own judge (:func:`polya.verify.judge_item`) in a loop in this process,
  measured with raw, to tell the pool's overhead (pool per core / in-process) from the judge's
  own speed (in-process / raw: the fast path and exact number comparison skip math-verify);
- **pool**: a :class:`polya.verify.JudgePool` with N workers, ``judge_sync`` on consecutive
  batches of B items (one batch in flight, like an RL reward call), after ``wait_ready``.

Printed per data set, workers and batch size: items/s, and the **per-core ratio** =
(pool items/s / workers) / raw items/s; target >= 0.9 at batches of 32 or more. Also how many
verdicts differ from math-verify's (polya's normalisation and number rules are meant to differ
on some) and the share the fast path (identical after normalisation) decided. On a machine with
N cores, N workers share them with this process (the caller and the pool's dispatcher thread).

    .venv/bin/python benchmarks/judge_pool_throughput.py                      # about a minute
    .venv/bin/python benchmarks/judge_pool_throughput.py --workers 1 2 --batches 32 128 512 --output out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from polya.verify import JudgePool, VerifyItem, judge_item

_DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_REASONING = "Let me work through the problem step by step, checking each quantity against the conditions. "
_FRACTION = re.compile(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}")


# ----- workload ----------------------------------------------------------------------------------


def load_references(data: Path) -> dict[str, list[str]]:
    """``{"gsm8k": [...], "math500": [...]}``: the final answers of the two test sets."""
    gsm8k_file, math_file = (
        data / "gsm8k" / "test.jsonl",
        data / "math500" / "test.jsonl",
    )
    for path in (gsm8k_file, math_file):
        if not path.is_file():
            raise SystemExit(
                f"{path} not found: pass --data, a folder with gsm8k/test.jsonl and math500/test.jsonl"
            )
    gsm8k = [
        json.loads(line)["answer"].split("####")[-1].strip()
        for line in gsm8k_file.open()
        if line.strip()
    ]
    math500 = [
        json.loads(line)["answer"].strip() for line in math_file.open() if line.strip()
    ]
    return {"gsm8k": gsm8k, "math500": math500}


def rewrite(reference: str) -> str:
    """An equivalent answer written differently (see the module docstring)."""
    plain = reference.replace(",", "")
    if re.fullmatch(r"-?\d+", plain):
        return f"\\frac{{{2 * int(plain)}}}{{2}}"
    if re.fullmatch(r"-?\d+\.\d+", plain):
        digits = len(plain.split(".")[1])
        return f"\\frac{{{plain.replace('.', '').lstrip('0') or '0'}}}{{{10**digits}}}"
    match = _FRACTION.fullmatch(reference)
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    squeezed = reference.replace(" ", "")
    if squeezed != reference:
        return squeezed
    return reference.replace("\\frac", "\\dfrac")


def make_items(name: str, references: list[str]) -> list[VerifyItem]:
    items = []
    for i, reference in enumerate(references):
        shape = i % 4
        if shape in (0, 1):
            answer = reference
        elif shape == 2:
            answer = rewrite(reference)
        else:
            j = (i + 1) % len(references)
            while references[j] == reference:
                j = (j + 1) % len(references)
            answer = references[j]
        if name == "gsm8k" and shape == 1:
            prediction = f"{_REASONING}\n#### {answer}"
        else:
            prediction = f"{_REASONING}So the final answer is $\\boxed{{{answer}}}$."
        items.append(
            VerifyItem(
                id=f"{name}-{i}",
                kind="math",
                prediction=prediction,
                reference=reference,
            )
        )
    return items


# ----- the two sides -----------------------------------------------------------------------------


def raw_run(items: list[VerifyItem]) -> tuple[float, list[bool]]:
    """Items/s and verdicts of math-verify's parse / verify in this process."""
    from math_verify import parse, verify

    verify(parse("$1$"), parse("$\\boxed{1}$"))  # imports and grammar outside the clock
    start = time.perf_counter()
    verdicts = []
    for item in items:
        gold = parse(f"${item.reference}$")
        verdicts.append(bool(verify(gold, parse(item.prediction))))
    return len(items) / (time.perf_counter() - start), verdicts


def direct_run(items: list[VerifyItem]) -> float:
    """Items/s of polya's judge called in a loop in this process (no pool, no IPC)."""
    judge_item(items[0])  # imports outside the clock
    start = time.perf_counter()
    for item in items:
        judge_item(item)
    return len(items) / (time.perf_counter() - start)


def pool_run(
    pool: JudgePool, items: list[VerifyItem], batch: int
) -> tuple[float, list[bool]]:
    """Items/s and verdicts of the pool, one batch of ``batch`` items at a time."""
    pool.judge_sync(items[:batch])  # every worker busy once before the clock
    start = time.perf_counter()
    verdicts = []
    for first in range(0, len(items), batch):
        verdicts.extend(
            v.correct for v in pool.judge_sync(items[first : first + batch])
        )
    return len(items) / (time.perf_counter() - start), verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=_DEFAULT_DATA,
        help="folder with gsm8k/test.jsonl and math500/test.jsonl",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="judge pool sizes to measure",
    )
    parser.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[32, 128, 512],
        help="batch sizes to measure",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="passes over the items per measurement (best pass counts)",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="write the results as JSON here"
    )
    args = parser.parse_args()

    references = load_references(args.data)
    workloads = {name: make_items(name, refs) for name, refs in references.items()}
    cores = len(os.sched_getaffinity(0))
    print(
        f"machine: {platform.machine()}, {cores} usable cores, load average now: {os.getloadavg()[0]:.1f}"
    )

    def baselines() -> dict[str, dict[str, float]]:
        return {
            name: {
                "raw": max(raw_run(items)[0] for _ in range(args.repeat)),
                "in_process": max(direct_run(items) for _ in range(args.repeat)),
            }
            for name, items in workloads.items()
        }

    before = baselines()
    raw_verdicts = {name: raw_run(items)[1] for name, items in workloads.items()}
    rows: list[dict[str, Any]] = []
    for workers in args.workers:
        with JudgePool(workers, deadline_s=30.0) as pool:
            pool.wait_ready()
            for name, items in workloads.items():
                for batch in args.batches:
                    hits_before = pool.stats().fast_path_hits
                    runs = [pool_run(pool, items, batch) for _ in range(args.repeat)]
                    rate = max(r[0] for r in runs)
                    verdicts = runs[0][1]
                    hits = (pool.stats().fast_path_hits - hits_before) / args.repeat
                    rows.append(
                        {
                            "data": name,
                            "workers": workers,
                            "batch": batch,
                            "pool_items_s": rate,
                            "differ_from_math_verify": sum(
                                a != b for a, b in zip(verdicts, raw_verdicts[name])
                            ),
                            "fast_path_share": hits
                            / (len(items) + min(batch, len(items))),
                        }
                    )
            messages, judged = pool.stats().messages_sent, pool.stats().items_judged
            print(
                f"{workers} worker(s): {judged} items in {messages} messages ({judged / max(messages, 1):.1f} items per message)"
            )
    after = baselines()
    raw = {name: (before[name]["raw"] + after[name]["raw"]) / 2 for name in workloads}
    direct = {
        name: (before[name]["in_process"] + after[name]["in_process"]) / 2
        for name in workloads
    }

    for name, items in workloads.items():
        print(
            f"\n{name}: {len(items)} items; 1 process: raw math-verify {raw[name]:.0f} items/s "
            f"(before {before[name]['raw']:.0f}, after {after[name]['raw']:.0f}), polya's judge in-process "
            f"{direct[name]:.0f} items/s (before {before[name]['in_process']:.0f}, after {after[name]['in_process']:.0f})"
        )
    print(
        f"\n{'data':<8} {'workers':>7} {'batch':>5} {'pool items/s':>12} {'per core':>9} "
        f"{'per-core ratio':>14} {'vs in-process':>13} {'differ':>6} {'fast path':>9}"
    )
    for row in rows:
        per_core = row["pool_items_s"] / row["workers"]
        row["raw_items_s"] = raw[row["data"]]
        row["in_process_items_s"] = direct[row["data"]]
        row["per_core_ratio"] = per_core / raw[row["data"]]
        row["per_core_vs_in_process"] = per_core / direct[row["data"]]
        print(
            f"{row['data']:<8} {row['workers']:>7} {row['batch']:>5} {row['pool_items_s']:>12.0f} {per_core:>9.0f} "
            f"{row['per_core_ratio']:>14.2f} {row['per_core_vs_in_process']:>13.2f} "
            f"{row['differ_from_math_verify']:>6} {row['fast_path_share']:>9.0%}"
        )
    print(
        "per-core ratio = (pool items/s / workers) / raw math-verify items/s (target >= 0.9 at batch >= 32); "
        "vs in-process = the same per core / polya's judge in one process (the pool's own overhead); "
        f"load average now: {os.getloadavg()[0]:.1f}"
    )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(
            json.dumps(
                {
                    "machine": {"cores": cores, "arch": platform.machine()},
                    "raw_items_s": raw,
                    "in_process_items_s": direct,
                    "before": before,
                    "after": after,
                    "rows": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
