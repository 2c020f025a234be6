"""Benchmark: polya's generate stage vs the raw vLLM server driven directly, same prompts, one run.

Both sides send the *same* request bodies (built by the generate stage itself) to the *same*
server with the same number of sequences in flight, and ``ignore_eos`` so every sample is exactly
``--max-tokens`` long and both sides do identical work. The raw side is a bare asyncio + httpx loop
that only counts tokens; polya's side is the full stage (prompt building, answer checking,
streaming shards to the store, progress, manifest). Printed: completion tokens/s of each and the
ratio polya / raw (target >= 0.9).

    .venv/bin/python benchmarks/generate_throughput.py                   # starts a vLLM server on the embedded model
    .venv/bin/python benchmarks/generate_throughput.py --endpoint http://localhost:8000/v1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path

import httpx

from polya.generate.config import GenerateConfig
from polya.generate.stage import GenerationStage
from polya.serving.config import ServerConfig
from polya.serving.vllm_server import Endpoint, ExternalEndpoint, VLLMServer


def _config(run_dir: Path, args: argparse.Namespace) -> GenerateConfig:
    return GenerateConfig.model_validate(
        {
            "run_dir": str(run_dir),
            "data": {"source": "synthetic", "synthetic": {"count": args.questions}},
            "heuristics": args.heuristics,
            "num_exemplars": args.num_exemplars,
            "sampling": {"max_tokens": args.max_tokens, "temperature": 0.8, "extra": {"ignore_eos": True}},
            "bootstrap": {"rounds": 1, "samples": args.samples},
            # The plain prompt is one more condition of the round (the raw side sends its bodies too);
            # rationalization is a second pass whose requests depend on the verdicts: left out of both.
            "rationalization": {"enabled": False},
            "concurrency": args.concurrency,
            "progress": False,
        }
    )


async def _raw(endpoint: Endpoint, bodies: list[dict], in_flight: int) -> tuple[int, float]:
    """Drive the server directly: bounded concurrency, count completion tokens, nothing else."""
    queue = list(bodies)
    tokens = 0
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=endpoint.base_url, headers=endpoint.headers(), timeout=3600, limits=limits) as http:

        async def worker() -> None:
            nonlocal tokens
            while queue:
                body = queue.pop()
                resp = await http.post("/chat/completions", json=body)
                resp.raise_for_status()
                tokens += resp.json()["usage"]["completion_tokens"]

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return tokens, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="use this running server instead of starting one")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--heuristics", nargs="+", default=["working_backward", "decomposition", "analogy", "bright_idea"])
    parser.add_argument("--samples", type=int, default=2, help="samples per (question, heuristic) request")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64, help="sequences in flight (as in the generate stage)")
    parser.add_argument("--num-exemplars", type=int, default=1)
    parser.add_argument("--output", help="also write the result as JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = (
            ExternalEndpoint(ServerConfig(endpoint=args.endpoint))
            if args.endpoint
            else VLLMServer(ServerConfig(max_num_seqs=max(64, args.concurrency)), Path(tmp) / "logs")
        )
        with server as endpoint:
            # The exact bodies polya sends (same prompts, sampling, n).
            probe = GenerationStage(_config(Path(tmp) / "probe", args))
            questions = probe._questions()
            bodies = [
                probe._body(endpoint, q, h, 1, args.samples)
                for q in questions
                for h in probe.conditions
            ]
            in_flight = max(1, args.concurrency // args.samples)
            # Warm up the server (first requests pay one-time costs) with a few of the same prompts.
            asyncio.run(_raw(endpoint, bodies[: min(len(bodies), in_flight)], in_flight))

            raw_tokens, raw_s = asyncio.run(_raw(endpoint, bodies, in_flight))
            start = time.perf_counter()
            out = GenerationStage(_config(Path(tmp) / "polya", args)).run(endpoint)
            polya_s = time.perf_counter() - start
            polya_tokens = int(out.summary["completion_tokens"])
            raw2_tokens, raw2_s = asyncio.run(_raw(endpoint, bodies, in_flight))

    raw_tps = (raw_tokens + raw2_tokens) / (raw_s + raw2_s)
    polya_tps = polya_tokens / polya_s
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}".strip(),
        "workload": {
            "requests": len(bodies), "samples_per_request": args.samples, "max_tokens": args.max_tokens,
            "sequences_in_flight": in_flight * args.samples,
        },
        "raw_tokens_per_s": round(raw_tps, 1),
        "raw_runs_s": [round(raw_s, 1), round(raw2_s, 1)],
        "polya_tokens_per_s": round(polya_tps, 1),
        "polya_s": round(polya_s, 1),
        "polya_tokens": polya_tokens,
        "raw_tokens": [raw_tokens, raw2_tokens],
        "ratio_polya_over_raw": round(polya_tps / raw_tps, 3),
        "target": ">= 0.9",
    }
    print(json.dumps(result, indent=2))
    print(f"ratio polya/raw = {result['ratio_polya_over_raw']:.3f} (target >= 0.9)")
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
