"""Every pipeline compiles; its IR has the expected tasks, edges, resources, node selectors,
tolerations, Secret-sourced credentials, PVC mounts and caching; the CLI writes the same IR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from polya.cli.main import cli
from polya.core.errors import ConfigError
from polya.pipeline.config import PipelineBuildConfig, image_ray_version
from polya.pipeline.kfp import build_pipeline, check_arguments, compile_pipeline
from polya.pipeline.loader import COMPONENTS, PIPELINES, load_component


class IR:
    """A compiled pipeline, indexed by task display name."""

    def __init__(self, path: Path):
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        self.spec = docs[0]
        self.platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(docs) > 1 else {}
        self.by_id = self.spec["root"]["dag"]["tasks"]
        self.tasks = {t["taskInfo"]["name"]: (tid, t) for tid, t in self.by_id.items()}

    def task(self, name: str) -> dict[str, Any]:
        return self.tasks[name][1]

    def deps(self, name: str) -> set[str]:
        return {self.by_id[d]["taskInfo"]["name"] for d in self.task(name).get("dependentTasks", [])}

    def executor(self, name: str) -> str:
        return self.spec["components"][self.task(name)["componentRef"]["name"]]["executorLabel"]

    def container(self, name: str) -> dict[str, Any]:
        return self.spec["deploymentSpec"]["executors"][self.executor(name)]["container"]

    def k8s(self, name: str) -> dict[str, Any]:
        return self.platform.get(self.executor(name), {})

    def param(self, name: str, key: str) -> Any:
        value = self.task(name)["inputs"]["parameters"][key]
        return value.get("runtimeValue", {}).get("constant", value.get("componentInputParameter"))


def compiled(tmp_path: Path, name: str = "polya", **settings: Any) -> IR:
    out = tmp_path / f"{name}.yaml"
    compile_pipeline(name, out, PipelineBuildConfig.model_validate(settings))
    return IR(out)


GPU_TASKS = ["generate", "sft-polya", "sft-star", "rl-base", "rl-polya_sft", "rl-star_sft", "eval-base", "eval-polya_sft", "eval-polya_sft_rl"]


@pytest.fixture(scope="module")
def default_ir(tmp_path_factory) -> IR:
    return compiled(tmp_path_factory.mktemp("ir"))


def test_polya_pipeline_tasks_and_edges(default_ir):
    ir = default_ir
    assert set(ir.tasks) == {
        "data", "decontaminate", "generate", "select", "sft-polya", "sft-star", "rl-base", "rl-polya_sft", "rl-star_sft",
        "eval-base", "eval-rl", "eval-polya_sft", "eval-polya_sft_rl", "eval-star_sft", "eval-star_sft_rl", "report",
    }
    assert ir.deps("decontaminate") == {"data"} and ir.deps("generate") == {"decontaminate"}
    assert ir.deps("select") == {"generate", "decontaminate"}
    assert ir.deps("sft-polya") == {"select"} and ir.deps("rl-polya_sft") == {"sft-polya"} and ir.deps("eval-polya_sft_rl") == {"rl-polya_sft"}
    assert ir.deps("eval-polya_sft") == {"sft-polya"} and ir.deps("rl-base") == set() and ir.deps("eval-base") == set()
    assert ir.deps("eval-rl") == {"rl-base"}
    assert ir.deps("report") == {t for t in ir.tasks if t.startswith("eval-")}
    assert ir.param("report", "labels") == "base,rl,polya_sft,polya_sft_rl,star_sft,star_sft_rl"
    assert ir.param("sft-star", "dataset") == "star" and ir.param("select", "dataset_names") == "polya,star"
    assert ir.param("rl-polya_sft", "start") == "polya_sft" and ir.param("rl-base", "start") == "base"
    sft_in = ir.task("sft-polya")["inputs"]["artifacts"]["datasets"]["taskOutputArtifact"]
    assert ir.by_id[sft_in["producerTask"]]["taskInfo"]["name"] == "select" and sft_in["outputArtifactKey"] == "datasets"
    assert ir.param("generate", "model") == "model" and ir.param("rl-polya_sft", "group_size") == "rl_group_size"


def test_decontamination_runs_before_generation_on_the_benchmarks_eval_asks(default_ir):
    ir = default_ir
    generate_in = ir.task("generate")["inputs"]["artifacts"]["questions"]["taskOutputArtifact"]
    assert ir.by_id[generate_in["producerTask"]]["taskInfo"]["name"] == "decontaminate" and generate_in["outputArtifactKey"] == "clean"
    select_in = ir.task("select")["inputs"]["artifacts"]["decontamination"]["taskOutputArtifact"]
    assert ir.by_id[select_in["producerTask"]]["taskInfo"]["name"] == "decontaminate"  # the cards say what was removed
    decontaminate_in = ir.task("decontaminate")["inputs"]["artifacts"]["questions"]["taskOutputArtifact"]
    assert ir.by_id[decontaminate_in["producerTask"]]["taskInfo"]["name"] == "data"
    # The same benchmarks as every eval task: the run-time parameter and the eval settings.
    assert ir.param("decontaminate", "benchmarks") == "benchmarks" == ir.param("eval-base", "benchmarks")
    assert ir.param("decontaminate", "eval_config_yaml") == "eval_config" == ir.param("eval-base", "config_yaml")
    assert ir.param("decontaminate", "action") == "decontaminate_action"
    assert ir.param("decontaminate", "config_yaml") == "decontaminate_config"
    params = ir.spec["root"]["inputDefinitions"]["parameters"]
    assert params["decontaminate_action"]["defaultValue"] == "drop" and params["decontaminate_action"].get("description")
    assert "accelerator" not in ir.container("decontaminate")["resources"] and ir.container("decontaminate")["image"] == "polya/cpu:0.1.0"


@pytest.mark.parametrize("arms", [
    None, ["base", "rl", "polya_sft_rl", "star_sft"], ["wrong_answer_sft_rl", "breadth_sft", "depth_sft_rl"],
    ["base", "polya@1_sft_rl", "polya@4_sft_rl", "polya@16_sft", "distill_sft_rl"],
])
def test_the_pipelines_eval_labels_are_polya_runs_arm_names(tmp_path, arms):
    # One arms module: the cluster report names its rows exactly as the laptop report does.
    from polya.experiment.config import RunConfig
    from polya.pipeline.config import PIPELINE_ARMS

    arms = arms or list(PIPELINE_ARMS)
    select = {"datasets": sorted({a.split("_sft")[0] for a in arms if "_sft" in a} - {"distill"}) or ["polya"]}
    run_config = RunConfig(arms=arms, select=select)
    ir = compiled(tmp_path, arms=arms)
    labels = ir.param("report", "labels").split(",")
    assert labels == run_config.arms == list(run_config.eval_config().arms)
    assert {name.removeprefix("eval-") for name in ir.tasks if name.startswith("eval-")} == set(labels)
    assert {name.removeprefix("sft-") for name in ir.tasks if name.startswith("sft-")} == set(run_config.sft_datasets())
    assert {name.removeprefix("rl-") for name in ir.tasks if name.startswith("rl-")} == set(run_config.rl_starts())
    for arm in labels:  # each evaluation task reads the model its arm names
        task = ir.task(f"eval-{arm}")
        producer = task["inputs"].get("artifacts", {}).get("model", {}).get("taskOutputArtifact", {}).get("producerTask")
        made_by = ir.by_id[producer]["taskInfo"]["name"] if producer else None
        if arm == "base":
            expected = None
        elif arm == "rl":
            expected = "rl-base"
        elif arm.endswith("_sft_rl"):
            expected = f"rl-{arm.removesuffix('_rl')}"
        else:
            expected = f"sft-{arm.removesuffix('_sft')}"
        assert made_by == expected, arm


def test_distill_arms_get_a_teacher_generation_and_polya_at_n_its_own_dataset(tmp_path):
    ir = compiled(tmp_path, arms=["base", "distill_sft_rl", "polya@4_sft"])
    assert ir.deps("generate-teacher") == {"decontaminate"} and ir.deps("select-teacher") == {"generate-teacher", "decontaminate"}
    assert ir.deps("sft-distill") == {"select-teacher"} and ir.deps("sft-polya@4") == {"select"}
    assert ir.param("select", "dataset_names") == "polya@4" and ir.param("select-teacher", "dataset_names") == "distill"
    assert ir.param("generate-teacher", "model") == "teacher_model" and ir.param("generate", "model") == "model"
    assert ir.deps("eval-distill_sft_rl") == {"rl-distill_sft"}


def test_polya_pipeline_parameters_are_exposed(default_ir):
    params = default_ir.spec["root"]["inputDefinitions"]["parameters"]
    for name in ("model", "data_source", "heuristics", "n_per_question", "rounds", "samples", "token_budget",
                 "sft_max_steps", "rl_group_size", "rl_max_steps", "benchmarks", "sft_config", "rl_config"):
        assert name in params, name
        assert params[name].get("description"), f"{name} has no description"
    assert params["n_per_question"]["defaultValue"] == 16


def test_gpu_tasks_request_gpus_on_the_pool_and_cpu_tasks_do_not(default_ir):
    ir = default_ir
    for name in GPU_TASKS:
        acc = ir.container(name)["resources"]["accelerator"]
        assert (acc["resourceType"], acc["resourceCount"]) == ("nvidia.com/gpu", "1"), name
        k8s = ir.k8s(name)
        assert k8s["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}, name
        assert k8s["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}], name
    for name in ("data", "decontaminate", "select", "report"):
        assert "accelerator" not in ir.container(name)["resources"], name
        assert "nodeSelector" not in ir.k8s(name) and "tolerations" not in ir.k8s(name), name
    assert ir.container("sft-polya")["resources"]["resourceMemoryLimit"] == "64Gi"
    assert ir.container("sft-polya")["image"] == "polya/trainer:0.1.0"
    assert ir.container("generate")["image"] == "polya/vllm-server:0.1.0" and ir.container("data")["image"] == "polya/cpu:0.1.0"


def test_every_task_gets_minio_credentials_from_the_secret_and_caching(default_ir):
    ir = default_ir
    for name in ir.tasks:
        secret = ir.k8s(name)["secretAsEnv"][0]
        assert secret["secretName"] == "polya-minio"
        assert {(k["secretKey"], k["envVar"]) for k in secret["keyToEnv"]} == {("rootUser", "AWS_ACCESS_KEY_ID"), ("rootPassword", "AWS_SECRET_ACCESS_KEY")}
        assert {"name": "POLYA_S3_ENDPOINT", "value": "http://polya-minio:9000"} in ir.container(name)["env"]
        assert ir.task(name)["cachingOptions"].get("enableCache") is True
        assert "AWS_SECRET" not in json.dumps(ir.container(name).get("env", [])).replace("AWS_SECRET_ACCESS_KEY", "")


def test_multi_node_stages_submit_jobs_from_light_pods(tmp_path):
    ir = compiled(tmp_path, sft={"nodes": 4, "gpus": 8}, rl={"workers": 2, "gpus": 8}, namespace="training", gpu={"node_selector": {"pool": "h100"}})
    sft_cluster = json.loads(ir.param("sft-polya", "cluster"))
    assert (sft_cluster["kind"], sft_cluster["size"], sft_cluster["gpus"], sft_cluster["namespace"]) == ("trainjob", 4, 8, "training")
    assert sft_cluster["runtime"] == "torch-distributed" and sft_cluster["ttl_s"] == 60 and sft_cluster["timeout_s"] == 7 * 24 * 3600
    assert sft_cluster["gpu"]["node_selector"] == {"pool": "h100"} and sft_cluster["image"] == "polya/trainer:0.1.0"
    rl_cluster = json.loads(ir.param("rl-polya_sft", "cluster"))
    assert (rl_cluster["kind"], rl_cluster["size"], rl_cluster["ray_version"]) == ("rayjob", 2, image_ray_version())
    for name in ("sft-polya", "rl-polya_sft", "rl-base"):
        assert "accelerator" not in ir.container(name)["resources"], name  # the job pods hold the GPUs
        assert ir.k8s(name)["fieldPathAsEnv"] == [{"fieldPath": "metadata.namespace", "name": "POD_NAMESPACE"}]
        assert ir.param(name, "checkpoint_root") == "s3://polya/pipeline-runs"
    assert ir.container("eval-polya_sft_rl")["resources"]["accelerator"]["resourceCount"] == "1"
    # Training Operator v1 clusters: a PyTorchJob instead; a chart-installed runtime by name
    ir = compiled(tmp_path, sft={"nodes": 2, "job_kind": "pytorchjob"})
    assert json.loads(ir.param("sft-polya", "cluster"))["kind"] == "pytorchjob"
    ir = compiled(tmp_path, sft={"nodes": 2, "runtime": "polya-polya-torch"})
    assert json.loads(ir.param("sft-star", "cluster"))["runtime"] == "polya-polya-torch"


def test_vllm_service_pvc_checkpoints_and_arm_choice(tmp_path):
    ir = compiled(tmp_path, generate={"vllm_endpoint": "http://polya-vllm:8000/v1"}, checkpoints={"store": "pvc", "pvc_name": "polya-ckpt"},
                  arms=["polya_sft", "polya_sft_rl"], caching=False, images={"registry": "registry.local/", "tag": "dev"})
    assert set(ir.tasks) == {"data", "decontaminate", "generate", "select", "sft-polya", "eval-polya_sft", "rl-polya_sft", "eval-polya_sft_rl", "report"}
    assert "accelerator" not in ir.container("generate")["resources"] and ir.param("generate", "endpoint") == "http://polya-vllm:8000/v1"
    for name in ("sft-polya", "rl-polya_sft"):
        assert ir.k8s(name)["pvcMount"][0]["mountPath"] == "/checkpoints"
        assert ir.k8s(name)["pvcMount"][0]["pvcNameParameter"]["runtimeValue"]["constant"] == "polya-ckpt"
        assert ir.param(name, "checkpoint_root") == "/checkpoints"
    assert "pvcMount" not in ir.k8s("eval-polya_sft_rl")
    assert ir.task("sft-polya")["cachingOptions"].get("enableCache", False) is False
    assert ir.container("sft-polya")["image"] == "registry.local/polya/trainer:dev"


def test_smoke_pipeline_is_data_generate_select_on_cpu(tmp_path):
    ir = compiled(tmp_path, "smoke")
    assert set(ir.tasks) == {"data", "generate", "select"}
    assert ir.deps("select") == {"generate"} and ir.deps("generate") == {"data"}
    for name in ir.tasks:
        assert "accelerator" not in ir.container(name)["resources"] and ir.container(name)["image"] == "polya/cpu:0.1.0"


@pytest.mark.parametrize("settings, message", [
    ({"arms": ["polya_sft", "polya"]}, "unknown arm 'polya'"),
    ({"arms": ["base", "rl", "polya_sft", "polya_sft_rl", "star_sft", "base"]}, None),
    ({"arms": [f"{d}_sft{r}" for d in ("polya", "star", "wrong_answer", "breadth", "depth") for r in ("", "_rl")] + ["base", "rl", "polya_sft"]}, None),
    ({"arms": ["base", "rl"] + [f"{d}_sft{r}" for d in ("polya", "star", "wrong_answer", "breadth", "depth") for r in ("", "_rl")] + ["x_sft"]}, "unknown arm"),
    ({"arms": []}, "at least one"),
    ({"sft": {"nodes": 2}, "checkpoints": {"store": "pvc", "pvc_name": "x"}}, "exchange data through MinIO"),
    ({"checkpoints": {"store": "pvc"}}, "pvc_name"),
    ({"s3": {"staging_uri": "/local"}}, "s3://bucket/prefix"),
    ({"name": "Polya Run"}, "DNS label"),
    ({"gpu": {"tolerations": [{"operator": "Sometimes"}]}}, "operator"),
    ({"sft": {"job_kind": "mpijob"}}, "trainjob.*pytorchjob"),
    ({"sft": {"runtime": "Torch Distributed"}}, r"must be a DNS subdomain .* such as torch-distributed, got 'Torch Distributed'"),
    ({"job_ttl_s": -1}, "job_ttl_s"),
])
def test_build_settings_are_validated(settings, message):
    from pydantic import ValidationError

    if message is None:
        arms = PipelineBuildConfig.model_validate(settings).arms
        assert arms == list(dict.fromkeys(settings["arms"]))  # duplicates dropped, order kept
        return
    with pytest.raises(ValidationError, match=message):
        PipelineBuildConfig.model_validate(settings)


def test_unknown_run_arguments_are_refused():
    pipeline = build_pipeline("smoke")
    check_arguments(pipeline, {"rounds": 2})
    with pytest.raises(ConfigError, match="unknown pipeline parameter.*roundz.*parameters: data_limit, datasets"):
        check_arguments(pipeline, {"roundz": 2})


def test_components_load_with_typed_artifacts():
    assert PIPELINES == ("polya", "smoke")
    io = {}
    for name in COMPONENTS:
        spec = load_component(name).component_spec
        io[name] = ({k: v.type for k, v in (spec.inputs or {}).items()}, {k: v.type for k, v in (spec.outputs or {}).items()})
    assert io["generate"][0]["questions"].startswith("system.Dataset") and io["generate"][1]["generations"].startswith("system.Dataset")
    assert io["sft"][1]["model"].startswith("system.Model") and io["rl"][0]["model"].startswith("system.Model")
    assert io["eval"][1]["report"].startswith("system.Markdown") and io["select"][1]["metrics"].startswith("system.Metrics")
    assert io["decontaminate"][0]["questions"].startswith("system.Dataset") and io["decontaminate"][1]["clean"].startswith("system.Dataset")
    assert io["decontaminate"][1]["report"].startswith("system.Markdown") and io["select"][0]["decontamination"].startswith("system.Dataset")
    assert io["merge"][0]["generations_16"].startswith("system.Dataset") and io["merge"][1]["generations"].startswith("system.Dataset")
    assert all(io[n][0]["config_yaml"] == "String" for n in COMPONENTS if n not in ("report", "merge"))  # both have no stage settings


def test_cli_compile_writes_ir_and_prints_settings(tmp_path):
    runner = CliRunner()
    out = tmp_path / "smoke.yaml"
    result = runner.invoke(cli, ["pipeline", "compile", "--pipeline", "smoke", "--output", str(out), "--images.tag", "9.9"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["tasks"] == ["data", "generate", "select"]
    assert IR(out).container("select")["image"] == "polya/cpu:9.9"
    shown = runner.invoke(cli, ["pipeline", "compile", "-o", str(out), "--print-config", "--set", "sft.nodes=3"])
    assert shown.exit_code == 0 and yaml.safe_load(shown.output)["sft"]["nodes"] == 3
    bad = runner.invoke(cli, ["pipeline", "compile", "-o", str(out), "--set", "sft.node=3"])
    assert bad.exit_code != 0 and "did you mean 'nodes'" in str(bad.exception)


def test_every_arm_fits_the_report(tmp_path):
    datasets = ["polya", "star", "wrong_answer", "breadth", "depth"]
    arms = ["base", "rl"] + [f"{d}_sft{r}" for d in datasets for r in ("", "_rl")]
    ir = compiled(tmp_path, arms=arms)
    assert len(ir.tasks) == 4 + 5 + 6 + len(arms) + 1  # data/decontaminate/generate/select, SFT per dataset, RL per start, eval per arm, report
    assert sorted(ir.task("report")["inputs"]["artifacts"]) == sorted(f"eval_{i}" for i in range(1, 13))
    assert ir.param("report", "labels").split(",") == arms


def _producer(ir: IR, name: str, key: str) -> tuple[str, str] | None:
    """(task, output) an artifact input of task ``name`` comes from; None when it is not connected."""
    source = ir.task(name)["inputs"].get("artifacts", {}).get(key, {}).get("taskOutputArtifact")
    return (ir.by_id[source["producerTask"]]["taskInfo"]["name"], source["outputArtifactKey"]) if source else None


def test_the_outer_loop_unrolls_iterations_per_dataset(tmp_path, default_ir):
    ir = compiled(tmp_path, outer_loop={"iterations": 2})
    loop_tasks = {f"iterate-{d}-1" for d in ("polya", "star")} | {
        f"{stage}-{d}-2" for d in ("polya", "star") for stage in ("generate", "select", "iterate", "sft")
    }
    assert set(ir.tasks) == set(default_ir.tasks) | loop_tasks
    # iteration 1 is the pipeline's own select and SFT; iterate-<d>-1 lists what it did not solve
    assert _producer(ir, "iterate-star-1", "questions") == ("decontaminate", "clean") and _producer(ir, "iterate-star-1", "datasets") == ("select", "datasets")
    assert _producer(ir, "iterate-star-1", "earlier") is None and ir.param("iterate-star-1", "iteration") == 1
    # iteration 2 generates with iteration 1's SFT model, the questions left, and only the dataset's prompt condition
    assert _producer(ir, "generate-star-2", "model_artifact") == ("sft-star", "model")
    assert _producer(ir, "generate-star-2", "questions") == ("iterate-star-1", "next_questions")
    assert (ir.param("generate-star-2", "heuristics"), ir.param("generate-star-2", "plain")) == ("none", True)
    assert (ir.param("generate-polya-2", "heuristics"), ir.param("generate-polya-2", "plain")) == ("heuristics", False)
    assert _producer(ir, "select-star-2", "generations") == ("generate-star-2", "generations") and ir.param("select-star-2", "dataset_names") == "star"
    assert _producer(ir, "iterate-star-2", "datasets") == ("select-star-2", "datasets") and _producer(ir, "iterate-star-2", "earlier") == ("iterate-star-1", "data")
    assert json.loads(ir.param("iterate-star-2", "config_yaml")) == {"iterations": 2, "style": "star"}
    # SFT restarts from the base model on the rows iterate joined; the arms use the last iteration's model
    assert _producer(ir, "sft-star-2", "datasets") == ("iterate-star-2", "data") and ir.param("sft-star-2", "base_model") == "model"
    assert _producer(ir, "eval-star_sft", "model") == ("sft-star-2", "model") and _producer(ir, "rl-polya_sft", "model") == ("sft-polya-2", "model")
    assert ir.deps("eval-polya_sft_rl") == {"rl-polya_sft"}
    assert ir.container("generate-star-2")["resources"]["accelerator"]["resourceCount"] == "1"
    assert "accelerator" not in ir.container("iterate-star-2")["resources"] and ir.container("iterate-star-2")["image"] == "polya/cpu:0.1.0"
    # off (the default, or iterations 1 in either style): the same tasks as ever
    assert set(compiled(tmp_path, outer_loop={"iterations": 1, "style": "rest_em"}).tasks) == set(default_ir.tasks)


def test_later_iterations_serve_their_sft_model_even_with_a_vllm_service(tmp_path):
    ir = compiled(tmp_path, outer_loop={"iterations": 3, "style": "rest_em"}, arms=["wrong_answer_sft", "polya_sft_rl", "distill_sft"],
                  generate={"vllm_endpoint": "http://polya-vllm:8000/v1"})
    assert {t for t in ir.tasks if t.startswith(("iterate-", "generate-", "select-", "sft-"))} == {
        "iterate-polya-1", "generate-teacher", "select-teacher", "sft-wrong_answer", "sft-distill", "sft-polya",
        *(f"{stage}-polya-{k}" for k in (2, 3) for stage in ("generate", "select", "iterate", "sft")),
    }  # distill and wrong_answer are trained once
    assert ir.param("generate", "endpoint") == "http://polya-vllm:8000/v1" and "endpoint" not in ir.task("generate-polya-3")["inputs"]["parameters"]
    assert ir.container("generate-polya-3")["resources"]["accelerator"]["resourceCount"] == "1"
    assert _producer(ir, "generate-polya-3", "model_artifact") == ("sft-polya-2", "model")
    assert _producer(ir, "rl-polya_sft", "model") == ("sft-polya-3", "model")
    assert json.loads(ir.param("iterate-polya-3", "config_yaml"))["style"] == "rest_em"


def test_generation_shards_run_side_by_side_and_are_merged_before_select(tmp_path, default_ir):
    ir = compiled(tmp_path, generate={"shards": 2, "gpus": 2}, arms=["base", "polya_sft", "star_sft", "distill_sft"])
    for name in ("generate", "generate-teacher"):  # the teacher's generation of distill is split alike
        shards = [f"{name}-shard-0", f"{name}-shard-1"]
        for index, shard in enumerate(shards):
            assert ir.deps(shard) == {"decontaminate"}  # no edge between the shards: they run side by side
            assert _producer(ir, shard, "questions") == ("decontaminate", "clean")
            assert (ir.param(shard, "shard_index"), ir.param(shard, "shard_count")) == (index, 2)
            assert ir.container(shard)["resources"]["accelerator"]["resourceCount"] == "2"  # its own vLLM on its own GPUs
            assert ir.k8s(shard)["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}
        merge = f"{name}-merge"
        assert ir.deps(merge) == set(shards)
        assert {_producer(ir, merge, f"generations_{i}") for i in (1, 2)} == {(s, "generations") for s in shards}
        assert "accelerator" not in ir.container(merge)["resources"] and ir.container(merge)["image"] == "polya/cpu:0.1.0"
    assert ir.param("generate-teacher-shard-1", "model") == "teacher_model"
    assert _producer(ir, "select", "generations") == ("generate-merge", "generations")
    assert _producer(ir, "select-teacher", "generations") == ("generate-teacher-merge", "generations")
    # shards 1 (the default): one generate task, no shard parameters, the IR unchanged
    one = compiled(tmp_path, generate={"shards": 1})
    assert one.spec == default_ir.spec and set(one.tasks) == set(default_ir.tasks)
    assert not {"shard_index", "shard_count"} & set(one.task("generate")["inputs"]["parameters"])
    assert _producer(one, "select", "generations") == ("generate", "generations")
    # the outer loop's later iterations keep one generate task each
    looped = compiled(tmp_path, generate={"shards": 3}, outer_loop={"iterations": 2}, arms=["polya_sft"])
    assert {t for t in looped.tasks if t.startswith("generate")} == {"generate-shard-0", "generate-shard-1", "generate-shard-2", "generate-merge", "generate-polya-2"}
    with pytest.raises(ValueError, match="less than or equal to 16"):
        PipelineBuildConfig.model_validate({"generate": {"shards": 17}})
