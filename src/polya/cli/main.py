"""``polya``: one subcommand per stage; each calls the same ``run(config)`` as the KFP components.

Every stage command accepts ``--config FILE``, ``--set key=value`` and one ``--<field>`` option
per setting, and ``--print-config`` to show the resolved settings. Errors a user can fix are
printed without a traceback and exit with status 2.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from typing import Any

import click

from polya import __version__
from polya.cli.options import config_options, print_config, resolve_config
from polya.cli.pipeline import pipeline
from polya.core.errors import PolyaError
from polya.core.layout import RunLayout
from polya.core.processes import reap_descendants_on_exit
from polya.eval.config import EvalConfig
from polya.experiment.config import RunConfig
from polya.experiment.decontaminate import DecontaminateConfig
from polya.generate.config import GenerateConfig
from polya.rl.config import RlConfig
from polya.select.config import SelectConfig
from polya.serving.config import ServerConfig
from polya.sft.config import SftConfig
from polya.verify.config import VerifierConfig

logger = logging.getLogger("polya")

EXIT_USER_ERROR = 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(__version__, prog_name="polya")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]), help="Logging verbosity.")
def cli(log_level: str) -> None:
    """polya: mid-training on self-generated Pólya-heuristic solutions before RL.

    Stages: decontaminate -> generate -> verify -> select -> sft -> rl -> eval; `polya run` chains the built ones.
    Every stage takes --config FILE, --set key=value and one option per setting.
    """
    _setup_logging(log_level)
    # Whatever this command starts (servers, judges, Ray, sandboxes) ends with it, even on SIGKILL.
    reap_descendants_on_exit()


@cli.command()
@config_options(DecontaminateConfig)
def decontaminate(**kwargs: Any) -> None:
    """Find the training questions that overlap the evaluation benchmarks; drop them before generation, or flag them.

    Compares the questions of --data.* (the same settings as `polya generate`) with every question of
    --benchmarks (as `polya eval` reads them) by word n-gram overlap (--ngrams: size -> least shared
    share; default one shared 13-gram, or 8-grams making up a quarter; --mask-numbers counts every
    number as the same word) and normalised exact match (--exact). Writes
    <run_dir>/decontaminate/report.json and report.md listing every match. With --action drop (the
    default) `polya generate` in the same run directory leaves the contaminated questions out;
    --action flag only lists them. The select stage's dataset cards say what was removed.
    """
    config, only_print = resolve_config(DecontaminateConfig, kwargs)
    if only_print:
        return print_config(config)
    from polya.experiment.decontaminate import run as run_decontaminate

    out = run_decontaminate(config)
    click.echo(json.dumps({**out.summary, "report": out.report_uri}))
    click.echo(out.report.summary())


@cli.command()
@config_options(GenerateConfig)
def generate(**kwargs: Any) -> None:
    """Generate solutions per question per Pólya heuristic on a vLLM server, in bootstrap rounds.

    Starts a vLLM server for --server.model (or uses --server.endpoint), asks it for
    --bootstrap.samples solutions of every (question, heuristic) pair, checks each answer and
    retries unsolved pairs with more samples in later rounds. Records stream to
    <run_dir>/generate/generations/; running the command again resumes.
    """
    config, only_print = resolve_config(GenerateConfig, kwargs)
    if only_print:
        return print_config(config)
    from polya.generate.stage import run

    out = run(config)
    click.echo(json.dumps({k: out.summary[k] for k in ("samples", "correct_samples", "pairs_solved", "pairs", "completion_tokens")}))


@cli.command("serve-model")
@config_options(ServerConfig, skip=("endpoint", "endpoints"))
@click.option("--log-dir", default="polya-logs", show_default=True, help="Directory for the server log.")
def serve_model(log_dir: str, **kwargs: Any) -> None:
    """Start a vLLM OpenAI-compatible server for a model and keep it running until Ctrl-C."""
    config, only_print = resolve_config(ServerConfig, kwargs)
    if only_print:
        return print_config(config)
    from polya.serving.vllm_server import VLLMServer

    server = VLLMServer(config, log_dir)
    with server as endpoint:
        click.echo(f"serving {endpoint.model} at {endpoint.base_url} (log: {server.log_path}); Ctrl-C stops it")
        assert server.process is not None
        code = server.process.wait()
        raise PolyaError(f"vLLM server exited with code {code}; see {server.log_path}")


@cli.command()
@config_options(RunConfig)
def run(**kwargs: Any) -> None:
    """Run the experiment end to end in one run directory (resumable, stage by stage).

    decontaminate -> generate -> select -> sft -> rl -> eval for the --arms (default: base, polya_sft,
    rl, polya_sft_rl), ending with the comparison report in <run_dir>/eval/report.md. decontaminate
    compares the training questions with eval's benchmarks first (cpu-demo flags them, since its
    synthetic train and eval problems share templates; otherwise they are dropped). With no options
    this runs the cpu-demo preset: the embedded SmolLM2-135M model on offline synthetic questions
    with budgets for a CPU box; --preset paper gives the paper's settings for GPU clusters. Run it
    again to resume: finished stages are skipped, unfinished ones continue.
    """
    config, only_print = resolve_config(RunConfig, kwargs)
    if only_print:
        heading = f"Every stage as polya run will run it (recorded in {config.run_dir}/run.json); the settings above are what you edit:"
        return print_config(config, (heading, config.effective()["stages"]))
    from polya.experiment.run import run as run_job

    out = run_job(config)
    click.echo(json.dumps({"run_dir": out.run_dir, "stages": list(out.stages)}))
    decon = out.stages.get("decontaminate")
    if decon:
        click.echo(
            f"decontaminate: {decon.get('contaminated')} of {decon.get('questions')} training questions overlap the benchmarks, "
            f"{decon.get('removed')} removed (action {decon.get('action')}) -> {out.run_dir}/decontaminate/report.md"
        )
    gen = out.stages.get("generate")
    if gen:
        click.echo(
            f"generate: {gen.get('samples')} samples, {gen.get('correct_samples')} correct, "
            f"{gen.get('pairs_solved')}/{gen.get('pairs')} (question, heuristic) pairs solved -> {out.run_dir}/generate/"
        )
    if "select" in out.stages:
        click.echo(f"select: SFT datasets and dataset cards -> {out.run_dir}/select/ (report.json)")
    for name, summary in out.stages.items():
        if name.startswith(("sft/", "rl/")):
            click.echo(f"{name}: {summary.get('global_step')} steps -> {out.run_dir}/{name}/final")
    if out.iterations:
        last = {row["dataset"]: row for row in out.iterations}
        solved = ", ".join(f"{name} {row['solved_total']}" for name, row in last.items())
        click.echo(
            f"outer loop: {config.outer_loop.iterations} iterations ({config.outer_loop.style}), questions solved so far: {solved} "
            f"-> {out.run_dir}/{RunLayout.ITERATIONS_REPORT}"
        )
    for arm, why in out.skipped.items():
        click.echo(f"arm {arm} left out: {why}", err=True)
    if out.report_uri:
        compared = [arm for arm in config.arms if arm not in out.skipped]
        click.echo(f"eval: comparison of {', '.join(compared)} -> {out.report_uri}")


@cli.command("serve-verifier")
@config_options(VerifierConfig)
def serve_verifier(**kwargs: Any) -> None:
    """Start the verifier microservice (FastAPI on uvicorn) and keep it running until Ctrl-C.

    POST /v1/verify judges {"items": [...]} (math, code, choice) in --workers judge processes,
    each item under a hard deadline; GET /health answers 503 once the workers are gone; GET
    /metrics serves Prometheus metrics. Set --auth-token (or $POLYA_VERIFIER_TOKEN) to require
    a bearer token on /v1.
    """
    config, only_print = resolve_config(VerifierConfig, kwargs)
    if only_print:
        return print_config(config)
    import uvicorn

    from polya.verify.service import build_app

    logging.getLogger().setLevel(config.log_level.upper())
    try:
        uvicorn.run(
            build_app(config), host=config.host, port=config.port, log_level=config.log_level,
            timeout_graceful_shutdown=5, access_log=config.log_level == "debug",
        )
    except KeyboardInterrupt:  # uvicorn hands SIGINT / SIGTERM back once it has shut down
        pass
    except SystemExit as exc:  # uvicorn exits when it cannot bind or start up
        if exc.code:
            raise PolyaError(f"verifier could not start on {config.host}:{config.port} (see the log above: port in use?)") from None


@cli.command()
@config_options(VerifierConfig, skip=("host", "port", "log_level"))
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False), help="JSONL file of items: kind, prediction, reference / options / tests, ... (other keys are kept).")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False), help="JSONL file to write: each input record plus correct, status, extracted, reason, latency_s.")
@click.option("--endpoint", default=None, help="Judge on a running verifier service (e.g. http://verifier:8080) instead of in-process.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, 100_000), help="Items per request with --endpoint.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def verify(input_path: str, output_path: str, endpoint: str | None, batch_size: int, progress: bool, **kwargs: Any) -> None:
    """Judge a JSONL file of answers (--input items.jsonl --output verdicts.jsonl).

    Judges in-process with --workers judge processes, or on a running service with --endpoint.
    The output is written atomically; a summary line (JSON) is printed at the end.
    """
    config, only_print = resolve_config(VerifierConfig, kwargs)
    if only_print:
        return print_config(config)
    from polya.verify.client import open_verifier
    from polya.verify.stage import verify_jsonl

    options = {"batch_size": batch_size} if endpoint else {}
    verifier = open_verifier(config, endpoint, **options)
    try:
        summary = verify_jsonl(input_path, output_path, verifier, progress=progress)
    finally:
        verifier.close()
    click.echo(json.dumps(summary))


@cli.command("select")
@config_options(SelectConfig)
def select_solutions(**kwargs: Any) -> None:
    """Keep correct solutions, score heuristic adherence, write the SFT datasets of the paper's arms.

    Reads <run_dir>/generate/ (run `polya generate` first), scores how faithfully each solution
    follows its heuristic (--scorer.kind offline | llm_judge | reward_model), keeps the best
    correct one per (question, heuristic), at most --n-per-question per question without
    near-duplicates, and writes select/<dataset>/train.jsonl with a dataset card for each of
    --datasets (polya, polya@<n>, star, wrong_answer, breadth, depth, distill) plus select/report.json. Model scores are cached:
    running the command again only scores what is missing.
    """
    config, only_print = resolve_config(SelectConfig, kwargs)
    if only_print:
        return print_config(config)
    from polya.select.stage import run as run_select

    out = run_select(config)
    click.echo(json.dumps({name: {"examples": d.examples, "questions": d.questions, "path": d.data_path} for name, d in out.datasets.items()}))


@cli.command()
@config_options(SftConfig)
def sft(**kwargs: Any) -> None:
    """Mid-training: fine-tune the model on the selected solutions (TRL SFTTrainer, loss on the answer only).

    Trains --model on <run_dir>/select/<dataset>/train.jsonl (or --data-file), writes checkpoint-N every
    --save-steps and the final HF checkpoint to <run_dir>/sft/<dataset>/final, with metrics.jsonl and
    summary.json. Running it again resumes from the last checkpoint. On GPUs launch it with
    accelerate/torchrun and --deepspeed zero2|zero3|zero3_offload (see docs/sft.md).
    """
    config, only_print = resolve_config(SftConfig, kwargs)
    if only_print:
        return print_config(config)
    from polya.sft.stage import run as run_sft

    out = run_sft(config)
    keys = ("global_step", "train_loss", "first_loss", "last_loss", "tokens_per_s", "resumed_from")
    click.echo(json.dumps({"final": out.final_uri, **{k: out.summary.get(k) for k in keys}}))


@cli.command()
@config_options(RlConfig)
def rl(**kwargs: Any) -> None:
    """GRPO with verifiable rewards: TRL GRPOTrainer in Ray Train workers, rewards from the verifier.

    Trains --model (default the embedded model; e.g. <run_dir>/sft/polya/final) on the questions of
    --data.source with groups of --group-size completions per prompt, rewards from the verifier
    (in-process, or --reward.verifier-endpoint). Starts a local Ray cluster unless --ray-address is
    given. Writes checkpoint-N every --save-steps, final/, metrics.jsonl and summary.json to
    <run_dir>/rl/<start> (--start: base, or the <dataset>_sft arm the model comes from); running it again resumes. --preset paper: group 16, 1024/3072 tokens, no KL, GPUs
    with vLLM rollouts and DeepSpeed ZeRO-3 (see docs/rl.md).
    """
    config, only_print = resolve_config(RlConfig, kwargs)
    if only_print:
        return print_config(config)
    from polya.rl.stage import run as run_rl

    out = run_rl(config)
    keys = ("global_step", "reward_first", "reward_last", "accuracy_last", "verdicts", "mean_step_s", "resumed_from")
    click.echo(json.dumps({"final": out.final_uri, **{k: out.summary.get(k) for k in keys}}))


@cli.command("eval")
@config_options(EvalConfig)
def evaluate(**kwargs: Any) -> None:
    """pass@k evaluation of one or more models (arms) on math and out-of-distribution benchmarks.

    For each of --arms ({name: model}) starts a vLLM server (or uses --endpoint / --endpoints),
    samples --sampling.n answers per question of every --benchmarks entry (gsm8k, math500, aime24,
    aime25, amc23, minerva_math, olympiadbench, humaneval, musr_*; {name: x, path: file.jsonl}
    reads a local file, columns: {question: problem, ...} names its columns), judges them with the verifier, and writes <run_dir>/eval/results.json,
    report.md and plots/*.png. --sampling.preset greedy | pass@k | cpu-demo. With no options it
    evaluates the embedded model on 8 offline synthetic questions. Running it again skips the
    finished (arm, benchmark) parts.
    """
    config, only_print = resolve_config(EvalConfig, kwargs)
    if only_print:
        return print_config(config)
    from polya.eval.stage import run as run_eval

    out = run_eval(config)
    click.echo(json.dumps({
        arm: {name: b["pass_at_k"] for name, b in data["benchmarks"].items()} for arm, data in out.results["arms"].items()
    }))
    click.echo(f"report: {out.report_uri}")


cli.add_command(pipeline)


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print a message (no traceback) and exit 2."""
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so `finally` blocks stop servers and flush work
    try:
        cli.main(args=argv, prog_name="polya", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # click's wrapping of KeyboardInterrupt (Ctrl-C, SIGTERM)
        click.echo("interrupted: finished work is saved; run the same command again to resume", err=True)
        sys.exit(130)
    except PolyaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        click.echo("interrupted: finished work is saved; run the same command again to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
