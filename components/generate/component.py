"""KFP component ``generate``: solutions per question per Pólya heuristic, in bootstrap rounds, checked as they arrive.

Thin wrapper over ``polya.pipeline.steps.generate.generate_step`` -> ``polya.generate.stage.run``. It starts
vLLM inside its own pod (GPU task) or, with ``endpoint``, uses a running vLLM service (the Helm
chart's).
"""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image="polya/vllm-server:0.1.0", install_kfp_package=False)
def generate(
    questions: Input[Dataset],
    generations: Output[Dataset],
    metrics: Output[Metrics],
    config_yaml: str = "",
    model: Optional[str] = None,
    heuristics: Optional[str] = None,
    rounds: Optional[int] = None,
    samples: Optional[int] = None,
    token_budget: Optional[int] = None,
    endpoint: Optional[str] = None,
    verifier_endpoint: Optional[str] = None,
    model_artifact: Optional[Input[Model]] = None,
    plain: Optional[bool] = None,
    shard_index: Optional[int] = None,
    shard_count: Optional[int] = None,
):
    """Generate and verify solutions for every (question, heuristic) pair.

    Args:
        questions: Questions artifact of the data component.
        generations: Output run folder holding generate/ (records, summary) and manifest.json.
        metrics: Samples, correct samples, pairs solved, completion tokens.
        config_yaml: GenerateConfig settings as YAML/JSON; the parameters below override it when set.
        model: server.model (HF id, local checkpoint, or embedded:smollm2-135m-instruct).
        heuristics: Comma-separated heuristic ids, or 'all'.
        rounds: bootstrap.rounds.
        samples: bootstrap.samples (round 1 samples per pair).
        token_budget: bootstrap.token_budget.
        endpoint: OpenAI-compatible vLLM URL (e.g. http://polya-vllm:8000/v1); unset: start vLLM in this pod.
        verifier_endpoint: Verifier service URL; unset: judge in-process.
        model_artifact: Model artifact to sample from (the outer loop: the previous iteration's SFT model); replaces model, and vLLM
            starts in this pod (endpoint is not used).
        plain: GenerateConfig.plain when set (the outer loop: true with heuristics 'none' for the plain-prompt datasets).
        shard_index: GenerateConfig.shard.index: ask only this shard (0 .. shard_count - 1) of the questions.
        shard_count: GenerateConfig.shard.count: the shards the questions are split into (the build's generate.shards; the merge
            component joins the shards' generations).
    """
    import logging

    from polya.pipeline.steps.common import log_metrics
    from polya.pipeline.steps.generate import generate_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = generate_step(
        config_yaml, questions.path, generations.path, model=model, heuristics=heuristics, rounds=rounds, samples=samples,
        token_budget=token_budget, endpoint=endpoint, verifier_endpoint=verifier_endpoint,
        model_dir_in=model_artifact.path if model_artifact is not None else None, plain=plain, shard_index=shard_index,
        shard_count=shard_count,
    )
    log_metrics(metrics, summary)
    generations.metadata.update(summary)
