"""Multi-node SFT and RL steps end to end through the Kubernetes API and a real S3 server.

The step uploads its inputs to S3, submits the job (TrainJob or PyTorchJob for SFT, RayJob for RL)
through the real ``kubernetes`` client to the API stand-in (kube_api_server: no cluster runs
here), waits, and reads the final checkpoint back from S3. The stand-in plays the job's pods: on
creation it decodes the stage config the manifest carries in $POLYA_STAGE_CONFIG_B64, checks the
inputs are in S3 where that config says, and writes the outputs there, so the test checks what the
job would really be given. The RayJob's entrypoint is then run for real: KubeRay's submitter
script under bash, the real Ray CLI, a real Ray head with the head pod's environment.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from kube_api_server import KubeApiServer, Script
from support.kuberay import head_env, run_submitter

from polya.core.processes import stop_process
from polya.core.store import open_store
from polya.rl.config import RlConfig
from polya.sft.config import SftConfig
from polya.pipeline.config import ClusterTarget, S3Config
from polya.pipeline.jobs import ClusterJobError
from polya.pipeline.launch import CONFIG_ENV
from polya.pipeline.steps.common import SUMMARY_FILE
from polya.pipeline.steps.rl import rl_step
from polya.pipeline.steps.sft import sft_step

pytestmark = pytest.mark.integration

AWKWARD_PROMPT = 'Put the answer in $\\boxed{}$: "quotes", \'single\', `backticks`, $HOME, \\n, ${x}, %s and Pólya\'s ∑ — 中文 🙂'


def main_env(obj: dict) -> dict:
    """The literal environment of the job's main container."""
    spec = obj["spec"]
    if obj["kind"] == "TrainJob":
        env = spec["trainer"]["env"]
    elif obj["kind"] == "PyTorchJob":
        env = spec["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["env"]
    else:
        env = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e.get("value") for e in env}


def stage_config_of(obj: dict) -> dict:
    env = main_env(obj)
    assert env[CONFIG_ENV] and env["POLYA_S3_ENDPOINT"] == "http://polya-minio:9000"
    return yaml.safe_load(base64.b64decode(env[CONFIG_ENV]).decode("utf-8"))


def rl_output(cfg: dict) -> str:
    """Where `polya rl` with these settings writes (rl/<start>/ of the run directory)."""
    from polya.rl.config import RlConfig

    return RlConfig.model_validate(cfg).output_uri


def target(kind: str, size: int) -> str:
    return ClusterTarget(kind=kind, size=size, image="polya/trainer:0.1.0", namespace="ml", gpus=4, s3=S3Config(), poll_interval_s=0.01).model_dump_json()


def datasets_artifact(root: Path, write_chat_dataset) -> Path:
    write_chat_dataset(root / "select" / "polya" / "train.jsonl", n=4)
    return root


def succeed(name_prefix: str, api: KubeApiServer, work) -> None:
    def on_create(obj: dict) -> None:
        assert obj["metadata"]["name"].startswith(name_prefix)
        work(obj)
        done = {
            "PyTorchJob": {"conditions": [{"type": "Created", "status": "True"}, {"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded"}]},
            "TrainJob": {"conditions": [{"type": "Complete", "status": "True", "reason": "JobsCompleted"}]},
            "RayJob": {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"},
        }[obj["kind"]]
        api.script(obj["metadata"]["name"], Script(statuses=[done]))

    api.on_create = on_create


@pytest.mark.parametrize("kind", ["trainjob", "pytorchjob"])
def test_sft_step_runs_a_training_job_and_reads_the_checkpoint_back(tmp_path, bucket, write_chat_dataset, kind):
    datasets = datasets_artifact(tmp_path / "datasets", write_chat_dataset)
    seen: dict = {}

    def job_work(obj: dict) -> None:  # what torchrun + polya sft would leave in S3
        cfg = stage_config_of(obj)
        seen.update(cfg=cfg, kind=obj["kind"], nodes=obj["spec"]["trainer"]["numNodes"] if kind == "trainjob" else 1 + obj["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"])
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
                           checkpoint_root=f"s3://{bucket}/runs", cluster=target(kind, 3), api_client=api.api_client())
        assert api.deleted and api.deleted[0][0] == f"{kind}s"
    assert seen["cfg"]["max_steps"] == 7 and seen["cfg"]["max_seq_length"] == 256 and seen["cfg"]["run_dir"].startswith(f"s3://{bucket}/runs/")
    assert seen["kind"].lower() == kind and seen["nodes"] == 3
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
    assert seen["workers"] == 2 and seen["entrypoint"].endswith("-- polya rl --config /tmp/polya-rl.yaml")
    assert json.loads((out / "config.json").read_text())["rl"] is True


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_rl_step_hands_any_prompt_to_polya_rl_byte_for_byte_through_kuberay_and_ray(tmp_path, bucket, monkeypatch):
    """The RayJob the RL step submits, run for real: KubeRay's submitter script (bash), the real
    `ray job submit` / `ray job logs` against a real Ray head started with the head pod's
    environment; the entrypoint writes the settings and `polya rl --print-config` shows them."""
    created: list[dict] = []

    def job_work(obj: dict) -> None:
        created.append(obj)
        open_store(rl_output(stage_config_of(obj))).write_json("final/config.json", {"model_type": "llama"})

    with KubeApiServer() as api:
        succeed("polya-rl-", api, job_work)
        rl_step(json.dumps({"system_prompt": AWKWARD_PROMPT}), None, str(tmp_path / "rl-model"), model="embedded:smollm2-135m-instruct",
                checkpoint_root=f"s3://{bucket}/runs", cluster=target("rayjob", 1), api_client=api.api_client())
    (manifest,) = created
    config_file = str(tmp_path / "polya-rl.yaml")  # where the head pod has /tmp/polya-rl.yaml
    entrypoint = manifest["spec"]["entrypoint"].replace("/tmp/polya-rl.yaml", config_file) + " --print-config"
    env = {**head_env(manifest), "HOME": str(tmp_path), "RAY_AUTH_MODE": "disabled", "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
           "POLYA_REPO_DIR": os.environ.get("POLYA_REPO_DIR", ""), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    dashboard = free_port()
    ray_tmp = tempfile.TemporaryDirectory(prefix="polya-ray-")  # Ray's socket paths must stay under 108 bytes
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", f"--port={free_port()}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         "--num-cpus=1", "--object-store-memory=100000000", f"--temp-dir={ray_tmp.name}", "--disable-usage-stats"],
        env=env, stdout=(tmp_path / "ray-head.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        from polya.core.processes import wait_for_http

        address = f"http://127.0.0.1:{dashboard}"
        wait_for_http(f"{address}/api/version", head, 180, what="Ray head", log=tmp_path / "ray-head.log")
        result = run_submitter(entrypoint, {k: v for k, v in env.items() if k != "PATH"}, [Path(sys.executable).parent], address=address,
                               job_id="polya-rl-awkward")
        assert result.returncode == 0, result.stdout + result.stderr
        from ray.job_submission import JobSubmissionClient

        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
        client = JobSubmissionClient(address)
        assert str(client.get_job_status("polya-rl-awkward")) in ("SUCCEEDED", "JobStatus.SUCCEEDED")
        logs = client.get_job_logs("polya-rl-awkward").splitlines()  # Ray's own lines first, then the entrypoint's output
        first = next(i for i, line in enumerate(logs) if line.startswith(f"{next(iter(stage_config_of(manifest)))}:"))
        printed = yaml.safe_load("\n".join(logs[first:]))
    finally:
        stop_process(head, grace_s=30, group=True)
        ray_tmp.cleanup()
    assert Path(config_file).read_bytes() == base64.b64decode(main_env(manifest)[CONFIG_ENV])  # the bytes the step sent
    assert printed["system_prompt"] == AWKWARD_PROMPT and printed["ray_address"] == "auto"


def test_jobs_refuse_a_local_checkpoint_root(tmp_path, write_chat_dataset):
    datasets = datasets_artifact(tmp_path / "datasets", write_chat_dataset)
    from polya.core.errors import ConfigError

    with pytest.raises(ConfigError, match="must be an s3:// URI"):
        sft_step("", str(datasets), str(tmp_path / "m"), checkpoint_root=str(tmp_path / "ckpt"), cluster=target("pytorchjob", 2))
