"""Multi-node SFT and RL steps end to end through the Kubernetes API and a real S3 server.

The step uploads its inputs to S3, submits the job through the real ``kubernetes`` client to the
API stand-in (kube_api_server: no cluster runs here), waits, and reads the final checkpoint back
from S3. The stand-in plays the job's pods: on creation it reads the stage config the manifest
carries in $POLYA_STAGE_CONFIG, checks the inputs are in S3 where that config says, and writes
the outputs there, so the test checks what the job would really be given.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kube_api_server import KubeApiServer, Script

from polya.core.store import open_store
from polya.rl.config import RlConfig
from polya.sft.config import SftConfig
from polya.pipeline.config import ClusterTarget, S3Config
from polya.pipeline.jobs import ClusterJobError
from polya.pipeline.steps.common import SUMMARY_FILE
from polya.pipeline.steps.rl import rl_step
from polya.pipeline.steps.sft import sft_step

pytestmark = pytest.mark.integration


def stage_config_of(obj: dict) -> dict:
    spec = obj["spec"]
    template = spec["pytorchReplicaSpecs"]["Master"]["template"] if obj["kind"] == "PyTorchJob" else spec["rayClusterSpec"]["headGroupSpec"]["template"]
    env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
    assert env["POLYA_STAGE_CONFIG"] and env["POLYA_S3_ENDPOINT"] == "http://polya-minio:9000"
    return yaml.safe_load(env["POLYA_STAGE_CONFIG"])


def target(kind: str, size: int) -> str:
    return ClusterTarget(kind=kind, size=size, image="polya/trainer:0.1.0", namespace="ml", gpus=4, s3=S3Config(), poll_interval_s=0.01).model_dump_json()


def datasets_artifact(root: Path, write_chat_dataset) -> Path:
    write_chat_dataset(root / "select" / "polya" / "train.jsonl", n=4)
    return root


def succeed(name_prefix: str, api: KubeApiServer, work) -> None:
    def on_create(obj: dict) -> None:
        assert obj["metadata"]["name"].startswith(name_prefix)
        work(obj)
        done = {"conditions": [{"type": "Created", "status": "True"}, {"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded"}]}
        if obj["kind"] == "RayJob":
            done = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}
        api.script(obj["metadata"]["name"], Script(statuses=[done]))

    api.on_create = on_create


def test_sft_step_runs_a_pytorchjob_and_reads_the_checkpoint_back(tmp_path, bucket, write_chat_dataset):
    datasets = datasets_artifact(tmp_path / "datasets", write_chat_dataset)
    seen: dict = {}

    def job_work(obj: dict) -> None:  # what torchrun + polya sft would leave in S3
        cfg = stage_config_of(obj)
        seen.update(cfg=cfg, replicas=obj["spec"]["pytorchReplicaSpecs"])
        run = open_store(cfg["run_dir"])
        rows = run.read_jsonl("select/polya/train.jsonl")
        assert len(rows) == 4 and rows[0]["messages"][0]["role"] == "user"
        out = open_store(SftConfig.model_validate(cfg).output_uri)  # where polya sft writes
        out.write_json("final/config.json", {"model_type": "llama", "trained_on": len(rows)})
        out.write_bytes("final/model.safetensors", b"weights")
        out.write_json("summary.json", {
            "model": cfg.get("model", "embedded"), "global_step": 7, "train_loss": 1.25, "completed": True, "final": out.uri("final"),
            "identity_sha256": "0" * 64, "stage": "sft", "seed": 0,
        })

    with KubeApiServer() as api:
        succeed("polya-sft-polya-", api, job_work)
        model_dir = tmp_path / "model"
        summary = sft_step("{max_seq_length: 256}", str(datasets), str(model_dir), dataset="polya", max_steps=7,
                           checkpoint_root=f"s3://{bucket}/runs", cluster=target("pytorchjob", 3), api_client=api.api_client())
        assert api.deleted and api.deleted[0][0] == "pytorchjobs"
    assert seen["cfg"]["max_steps"] == 7 and seen["cfg"]["max_seq_length"] == 256 and seen["cfg"]["run_dir"].startswith(f"s3://{bucket}/runs/")
    assert seen["replicas"]["Worker"]["replicas"] == 2
    assert json.loads((model_dir / "config.json").read_text())["trained_on"] == 4
    assert (model_dir / "model.safetensors").read_bytes() == b"weights"
    assert summary["global_step"] == 7 and json.loads((model_dir / SUMMARY_FILE).read_text())["final"].endswith("/sft/polya/final")


def test_sft_step_fails_with_the_jobs_reason(tmp_path, bucket, write_chat_dataset):
    datasets = datasets_artifact(tmp_path / "datasets", write_chat_dataset)
    with KubeApiServer() as api:
        def on_create(obj: dict) -> None:
            api.script(obj["metadata"]["name"], Script(statuses=[{"conditions": [{"type": "Failed", "status": "True", "reason": "PyTorchJobFailed", "message": "Master replica failed"}]}]))

        api.on_create = on_create
        with pytest.raises(ClusterJobError, match="PyTorchJobFailed: Master replica failed"):
            sft_step("", str(datasets), str(tmp_path / "model"), checkpoint_root=f"s3://{bucket}/runs",
                     cluster=target("pytorchjob", 2), api_client=api.api_client())
        assert api.deleted
    assert not (tmp_path / "model").exists()


def test_rl_step_runs_a_rayjob_on_the_staged_model(tmp_path, bucket):
    sft_model = tmp_path / "sft-model"
    sft_model.mkdir()
    (sft_model / "config.json").write_text('{"model_type": "llama"}')
    (sft_model / SUMMARY_FILE).write_text('{"dataset": "polya"}')
    seen: dict = {}

    def job_work(obj: dict) -> None:  # what `polya rl` on the Ray cluster would leave in S3
        cfg = stage_config_of(obj)
        seen.update(cfg=cfg, workers=obj["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"], entrypoint=obj["spec"]["entrypoint"])
        model = open_store(cfg["model"])
        assert model.read_json("config.json") == {"model_type": "llama"}
        out = open_store(RlConfig.model_validate(cfg).output_uri)  # where polya rl writes
        out.write_json("final/config.json", {"model_type": "llama", "rl": True})
        out.write_json("summary.json", {
            "model": cfg["model"], "global_step": 3, "completed": True, "final": out.uri("final"), "identity_sha256": "0" * 64, "stage": "rl",
        })

    with KubeApiServer() as api:
        succeed("polya-rl-", api, job_work)
        out = tmp_path / "rl-model"
        rl_step("{num_workers: 8, use_gpu: true}", str(sft_model), str(out), group_size=8, max_steps=3,
                checkpoint_root=f"s3://{bucket}/runs", cluster=target("rayjob", 2), api_client=api.api_client())
        assert api.deleted and api.deleted[0][0] == "rayjobs"
    cfg = seen["cfg"]
    assert cfg["model"].startswith(f"s3://{bucket}/runs/") and cfg["model"].endswith("/inputs/model")
    assert (cfg["ray_address"], cfg["group_size"], cfg["max_steps"], cfg["num_workers"], cfg["use_gpu"]) == ("auto", 8, 3, 8, True)
    assert seen["workers"] == 2 and "polya rl --config /tmp/polya-rl.yaml" in seen["entrypoint"]
    assert json.loads((out / "config.json").read_text())["rl"] is True


def test_jobs_refuse_a_local_checkpoint_root(tmp_path, write_chat_dataset):
    datasets = datasets_artifact(tmp_path / "datasets", write_chat_dataset)
    from polya.core.errors import ConfigError

    with pytest.raises(ConfigError, match="must be an s3:// URI"):
        sft_step("", str(datasets), str(tmp_path / "m"), checkpoint_root=str(tmp_path / "ckpt"), cluster=target("pytorchjob", 2))
