"""The smoke pipeline: data -> generate -> select, on CPU, in minutes.

It covers the first three stages of the Pólya pipeline with the same components and runs where
no GPU is: ``polya pipeline run-local --pipeline smoke`` (``kfp.local.SubprocessRunner``) on the
embedded model, or on a kind cluster with the ``polya/cpu`` image.
"""


import json
from typing import Any

from kfp import dsl

from polya.models import EMBEDDED_MODEL
from polya.pipeline.config import PipelineBuildConfig, TaskResources
from polya.pipeline.loader import load_component
from polya.pipeline.tasks import place


def build_pipeline(build: PipelineBuildConfig) -> Any:
    """The smoke pipeline for ``build`` (every task on the CPU image, no GPUs)."""
    data_op, generate_op, select_op = load_component("data"), load_component("generate"), load_component("select")
    small = TaskResources(cpu="2", memory="6Gi")

    @dsl.pipeline(name=f"{build.name}-smoke", description="Pólya smoke test: data -> generate -> select on CPU.")
    def smoke_pipeline(
        model: str = EMBEDDED_MODEL,
        data_limit: int = 2,
        heuristics: str = "working_backward,decomposition",
        rounds: int = 1,
        samples: int = 1,
        endpoint: str = "",
        datasets: str = "polya,star",
        generate_config: str = '{"sampling": {"max_tokens": 96}, "concurrency": 8, "progress": false}',
    ) -> None:
        """Run-time parameters.

        Args:
            model: Base model (default: the embedded SmolLM2-135M).
            data_limit: Synthetic questions to use.
            heuristics: Comma-separated heuristic ids.
            rounds: Bootstrap rounds.
            samples: Samples per (question, heuristic).
            endpoint: A running vLLM server's /v1 URL; empty: the task starts vLLM itself.
            datasets: SFT datasets the select stage writes.
            generate_config: Other GenerateConfig settings (YAML/JSON).
        """
        data_task = data_op(config_yaml='{"synthetic": {"count": 8}}', source="synthetic", limit=data_limit).set_display_name("data")
        place(data_task, build, "cpu", small)
        gen_task = generate_op(
            questions=data_task.outputs["questions"], config_yaml=generate_config, model=model, heuristics=heuristics,
            rounds=rounds, samples=samples, endpoint=endpoint, **({"verifier_endpoint": build.verifier_endpoint} if build.verifier_endpoint else {}),
        ).set_display_name("generate")
        place(gen_task, build, "cpu", small)
        select_task = select_op(generations=gen_task.outputs["generations"], dataset_names=datasets, config_yaml='{"progress": false}').set_display_name("select")
        place(select_task, build, "cpu", small)

    smoke_pipeline.build_config = json.loads(build.model_dump_json())  # type: ignore[attr-defined]
    return smoke_pipeline
