"""The Pólya pipeline: data -> decontaminate -> generate -> select -> SFT per dataset -> GRPO per start -> eval per arm -> report.

The arms are those of ``polya run`` (``polya.experiment.arms``: base, rl, <dataset>_sft,
<dataset>_sft_rl, with polya@<n> and distill datasets), so the cluster report names its rows the
way the laptop report does. With a distill arm, a second generate and select pair runs for the
``teacher_model`` (or the build's ``teacher_endpoint``) and builds the ``distill`` dataset.
With the build's ``outer_loop.iterations`` K > 1, each loop dataset (``loop_datasets``: the arms'
SFT datasets but distill and wrong_answer) gets iterations 2..K of generate -> select -> SFT,
unrolled at compile time: ``iterate-<dataset>-<k>`` closes iteration k (the questions iteration
k+1 asks, the rows SFT k trains on; ``polya.experiment.iterations``' rules, as in ``polya run``),
``generate-<dataset>-<k>`` samples from ``sft-<dataset>-<k-1>``'s model (``sft-<dataset>`` for k = 2)
with only the dataset's prompt condition, ``select-<dataset>-<k>`` builds that dataset, and
``sft-<dataset>-<k>`` trains the base model again; the ``<dataset>_sft`` arms (eval, GRPO) use
iteration K's model. With the build's ``generate.shards`` N > 1, the generation of the decontaminated
questions (and the teacher's) is N tasks side by side, ``generate-shard-<k>`` asking shard k of the
questions (``polya.data.sharding``) on its own vLLM and GPUs, and ``generate-merge`` joining their
generations for select; the outer loop's ``generate-<dataset>-<k>`` stay one task each.
``build_pipeline(build)`` returns the KFP pipeline for a :class:`PipelineBuildConfig` (images,
GPU pool, storage, node counts, arms, shards: fixed at compile time). The run-time parameters are the
pipeline function's arguments below; ``*_config`` take any other stage setting as YAML/JSON, and
a parameter left unset keeps the stage config's own value.

    polya pipeline compile --output polya.yaml [--config build.yaml] [--sft.nodes 4 --rl.workers 2]
"""


import json
from typing import Any, Optional

from kfp import dsl

from polya.experiment.arms import draws_from_plain, loop_datasets, parse_arm, rl_starts, sft_datasets
from polya.experiment.config import DISTILL
from polya.heuristics.catalog import NONE
from polya.models import EMBEDDED_MODEL
from polya.pipeline.config import PipelineBuildConfig, checkpoint_root, cluster_target
from polya.pipeline.loader import load_component
from polya.pipeline.tasks import place
from polya.select.config import SelectConfig


def _set(**values: Any) -> dict[str, Any]:
    """Compile-time arguments that are set (KFP refuses a None constant; unset means the component's default)."""
    return {key: value for key, value in values.items() if value is not None}


def _cpu(build: PipelineBuildConfig, cpu: str, memory: str) -> Any:
    """Resources of a CPU task (the eval task's settings, no GPU)."""
    return build.eval.model_copy(update={"gpus": 0, "cpu": cpu, "memory": memory})


def build_pipeline(build: PipelineBuildConfig) -> Any:
    """The Pólya pipeline compiled for ``build``."""
    data_op, generate_op, select_op = load_component("data"), load_component("generate"), load_component("select")
    decontaminate_op, iterate_op, merge_op = load_component("decontaminate"), load_component("iterate"), load_component("merge")
    sft_op, rl_op, eval_op, report_op = load_component("sft"), load_component("rl"), load_component("eval"), load_component("report")
    ckpt = checkpoint_root(build)
    sft_target, rl_target = cluster_target(build, "sft"), cluster_target(build, "rl")
    sft_cluster = sft_target.model_dump_json() if sft_target else None
    rl_cluster = rl_target.model_dump_json() if rl_target else None
    verifier = build.verifier_endpoint
    endpoint = build.generate.vllm_endpoint
    datasets = sft_datasets(build.arms)
    student_datasets = [d for d in datasets if d != DISTILL]
    loop = build.outer_loop
    looped = loop_datasets(build.arms) if loop.enabled else []
    # Which prompt condition a loop dataset draws from is fixed here, by select's default baseline_source.
    baseline_source = SelectConfig.model_fields["baseline_source"].default

    @dsl.pipeline(name=build.name, description="Pólya mid-training before RL: decontaminate, generate, verify, select, SFT, GRPO, evaluate (arXiv 2605.08472).")
    def polya_pipeline(
        model: str = EMBEDDED_MODEL,
        teacher_model: str = EMBEDDED_MODEL,
        data_source: str = "synthetic",
        data_limit: Optional[int] = None,
        heuristics: str = "all",
        n_per_question: int = 16,
        rounds: int = 2,
        samples: int = 2,
        token_budget: Optional[int] = None,
        sft_max_steps: Optional[int] = None,
        sft_learning_rate: Optional[float] = None,
        rl_group_size: int = 16,
        rl_max_steps: Optional[int] = None,
        benchmarks: Optional[str] = None,
        decontaminate_action: str = "drop",
        data_config: str = "",
        decontaminate_config: str = "",
        generate_config: str = "",
        select_config: str = "",
        sft_config: str = "",
        rl_config: str = "",
        eval_config: str = "",
    ) -> None:
        """Run-time parameters.

        Args:
            model: Base model: HF hub id, local path in the image, or embedded:smollm2-135m-instruct.
            teacher_model: distill arms: the teacher that writes the distill dataset (ignored with the build's teacher_endpoint).
            data_source: Training questions: synthetic, s3://bucket/train.jsonl|.parquet, or hf:<id>.
            data_limit: Keep at most this many questions (unset: all).
            heuristics: Comma-separated Pólya heuristic ids, or all.
            n_per_question: The paper's n: most solutions kept per question.
            rounds: Bootstrap rounds of generation.
            samples: Samples per (question, heuristic) in round 1.
            token_budget: Stop generating after this many completion tokens (unset: no budget).
            sft_max_steps: SFT optimizer steps (unset: the config's epochs).
            sft_learning_rate: SFT peak learning rate (unset: the config's).
            rl_group_size: GRPO group size (samples per prompt).
            rl_max_steps: RL steps (unset: the config's).
            benchmarks: Comma-separated eval benchmarks (unset: the eval config's); the training questions are decontaminated against them.
            decontaminate_action: drop (leave training questions that overlap a benchmark out of generation) or flag (only report them).
            data_config: Other DataConfig settings (YAML/JSON).
            decontaminate_config: Other DecontaminateConfig settings, e.g. {ngrams: [13], mask_numbers: false} (YAML/JSON).
            generate_config: Other GenerateConfig settings (YAML/JSON).
            select_config: Other SelectConfig settings (YAML/JSON).
            sft_config: Other SftConfig settings, e.g. {deepspeed: zero3} (YAML/JSON).
            rl_config: Other RlConfig settings (YAML/JSON).
            eval_config: Other EvalConfig settings (YAML/JSON).
        """
        data_task = data_op(config_yaml=data_config, source=data_source, limit=data_limit).set_display_name("data")
        place(data_task, build, "cpu", _cpu(build, "1", "2Gi"))

        decon_task = decontaminate_op(
            questions=data_task.outputs["questions"], config_yaml=decontaminate_config, eval_config_yaml=eval_config, benchmarks=benchmarks,
            action=decontaminate_action,
        ).set_display_name("decontaminate")
        place(decon_task, build, "cpu", _cpu(build, "1", "4Gi"))

        def generations(name: str, model_name: Any, endpoint_url: Optional[str]) -> Any:
            """The generations of the decontaminated questions: one generate task, or with the build's generate.shards N > 1,
            tasks ``<name>-shard-<k>`` side by side (each asks shard k's questions, on its own vLLM) and ``<name>-merge`` joining them."""
            shards = build.generate.shards
            tasks = []
            for index in range(shards):
                task = generate_op(
                    questions=decon_task.outputs["clean"], config_yaml=generate_config, model=model_name, heuristics=heuristics,
                    rounds=rounds, samples=samples, token_budget=token_budget,
                    **_set(endpoint=endpoint_url, verifier_endpoint=verifier, shard_index=index if shards > 1 else None,
                           shard_count=shards if shards > 1 else None),
                ).set_display_name(name if shards == 1 else f"{name}-shard-{index}")
                place(task, build, "vllm", build.generate, gpus=0 if endpoint_url else build.generate.gpus)
                tasks.append(task)
            if shards == 1:
                return tasks[0].outputs["generations"]
            merge_task = merge_op(**{f"generations_{i}": t.outputs["generations"] for i, t in enumerate(tasks, start=1)})
            merge_task.set_display_name(f"{name}-merge")
            place(merge_task, build, "cpu", _cpu(build, "1", "4Gi"))
            return merge_task.outputs["generations"]

        select_task = select_op(
            generations=generations("generate", model, endpoint), config_yaml=select_config, dataset_names=",".join(student_datasets or ["polya"]),
            n_per_question=n_per_question, decontamination=decon_task.outputs["clean"], **_set(verifier_endpoint=verifier),
        ).set_display_name("select")
        place(select_task, build, "cpu", _cpu(build, "2", "8Gi"))
        datasets_of = {d: select_task.outputs["datasets"] for d in student_datasets}
        if DISTILL in datasets:
            teacher_select = select_op(
                generations=generations("generate-teacher", teacher_model, build.teacher_endpoint), config_yaml=select_config, dataset_names=DISTILL,
                n_per_question=n_per_question, decontamination=decon_task.outputs["clean"], **_set(verifier_endpoint=verifier),
            ).set_display_name("select-teacher")
            place(teacher_select, build, "cpu", _cpu(build, "2", "8Gi"))
            datasets_of[DISTILL] = teacher_select.outputs["datasets"]

        def sft(datasets_artifact: Any, dataset: str, name: str) -> Any:
            sft_task = sft_op(
                datasets=datasets_artifact, config_yaml=sft_config, dataset=dataset, base_model=model,
                max_steps=sft_max_steps, learning_rate=sft_learning_rate, checkpoint_root=ckpt, **_set(cluster=sft_cluster),
            ).set_display_name(name)
            in_pod = sft_target is None
            place(sft_task, build, "trainer", build.sft if in_pod else build.sft.model_copy(update={"cpu": "1", "memory": "4Gi"}),
                  gpus=build.sft.gpus if in_pod else 0, pvc=True, namespace_env=not in_pod)
            return sft_task.outputs["model"]

        def iterate(dataset: str, index: int, datasets_artifact: Any, earlier: Any) -> Any:
            task = iterate_op(
                questions=decon_task.outputs["clean"], datasets=datasets_artifact, config_yaml=loop.model_dump_json(), dataset=dataset,
                iteration=index, **_set(earlier=earlier),
            ).set_display_name(f"iterate-{dataset}-{index}")
            place(task, build, "cpu", _cpu(build, "1", "2Gi"))
            return task

        models: dict[str, Any] = {"base": None}  # arm -> its model artifact (None: the base model)
        for dataset in datasets:
            models[f"{dataset}_sft"] = sft(datasets_of[dataset], dataset, f"sft-{dataset}")
            if dataset not in looped:
                continue
            # The outer loop: iterations 2..K, each from the previous iteration's SFT model; SFT restarts from the base model.
            plain = draws_from_plain(dataset, baseline_source)
            closed = iterate(dataset, 1, datasets_of[dataset], None)
            for index in range(2, loop.iterations + 1):
                gen_k = generate_op(
                    questions=closed.outputs["next_questions"], model_artifact=models[f"{dataset}_sft"], config_yaml=generate_config,
                    heuristics=NONE if plain else heuristics, plain=plain, rounds=rounds, samples=samples, token_budget=token_budget,
                    **_set(verifier_endpoint=verifier),
                ).set_display_name(f"generate-{dataset}-{index}")
                place(gen_k, build, "vllm", build.generate, gpus=build.generate.gpus)  # vLLM serves the SFT model in the pod
                select_k = select_op(
                    generations=gen_k.outputs["generations"], config_yaml=select_config, dataset_names=dataset,
                    n_per_question=n_per_question, decontamination=decon_task.outputs["clean"], **_set(verifier_endpoint=verifier),
                ).set_display_name(f"select-{dataset}-{index}")
                place(select_k, build, "cpu", _cpu(build, "2", "8Gi"))
                closed = iterate(dataset, index, select_k.outputs["datasets"], closed.outputs["data"])
                models[f"{dataset}_sft"] = sft(closed.outputs["data"], dataset, f"sft-{dataset}-{index}")
        for start in rl_starts(build.arms):
            kwargs = {"model": models[start]} if models[start] is not None else {}
            rl_task = rl_op(config_yaml=rl_config, start=start, base_model=model, group_size=rl_group_size, max_steps=rl_max_steps,
                            checkpoint_root=ckpt, **_set(cluster=rl_cluster), **kwargs)
            rl_task.set_display_name(f"rl-{start}")
            in_pod = rl_target is None
            place(rl_task, build, "trainer", build.rl if in_pod else build.rl.model_copy(update={"cpu": "1", "memory": "4Gi"}),
                  gpus=build.rl.gpus if in_pod else 0, pvc=True, namespace_env=not in_pod)
            models[f"{start}_rl" if start != "base" else "rl"] = rl_task.outputs["rl_model"]

        evaluations: list[Any] = []
        for arm in build.arms:
            artifact = models[arm if parse_arm(arm).rl or parse_arm(arm).sft_dataset else "base"]
            kwargs = {"model": artifact} if artifact is not None else {}
            task = eval_op(config_yaml=eval_config, base_model=model, benchmarks=benchmarks, label=arm, **kwargs)
            task.set_display_name(f"eval-{arm}")
            place(task, build, "trainer", build.eval, gpus=build.eval.gpus)
            evaluations.append(task.outputs["evaluation"])

        slots = {f"eval_{i}": artifact for i, artifact in enumerate(evaluations, start=1)}
        report_task = report_op(labels=",".join(build.arms), **slots).set_display_name("report")
        place(report_task, build, "cpu", _cpu(build, "1", "4Gi"))

    polya_pipeline.build_config = json.loads(build.model_dump_json())  # type: ignore[attr-defined]
    return polya_pipeline
