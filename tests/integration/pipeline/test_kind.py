"""Opt-in (``pytest -m cluster``): the images, the job runner and the smoke pipeline on a real cluster.

Needs a Docker engine, ``kind`` and a cluster created from ``kind-config.yaml`` (name from
``$KIND_CLUSTER``, default ``polya``) with Kubeflow Trainer v2 (TrainJob; its ``torch-distributed``
runtime, or ``$POLYA_TEST_RUNTIME``), the Kubeflow Training Operator v1 (PyTorchJob) and the KubeRay
operator installed; each test fails naming the CRD it misses. The pipeline test also needs
Kubeflow Pipelines there and its API at ``$POLYA_KFP_HOST`` (e.g. ``kubectl -n kubeflow
port-forward svc/ml-pipeline-ui 8080:80``). Set ``POLYA_SKIP_IMAGE_BUILD=1`` when the images are
already loaded.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from polya.pipeline.config import GpuPoolConfig, image_ray_version
from polya.pipeline.jobs import (
    ClusterJobError,
    JobRunner,
    JobSpec,
    job_name,
    pytorchjob_manifest,
    rayjob_manifest,
    trainjob_manifest,
)
from polya.pipeline.launch import CONFIG_ENV, encode_config, stage_command

pytestmark = [pytest.mark.cluster, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]
IMAGE = "polya/cpu:0.1.0"
NAMESPACE = os.environ.get("POLYA_TEST_NAMESPACE", "default")


@pytest.fixture(scope="module")
def kube():
    if not shutil.which("kind") or not shutil.which("docker"):
        pytest.fail("the cluster tests need docker and kind on PATH")
    from polya.pipeline.jobs import load_api_client

    client = load_api_client()
    if not os.environ.get("POLYA_SKIP_IMAGE_BUILD"):
        subprocess.run(["bash", str(ROOT / "scripts" / "build-images.sh"), "--kind", "cpu", "verifier"], check=True)
    return client


def need_crd(client, name: str) -> None:
    from kubernetes import client as k8s

    crds = {c.metadata.name for c in k8s.ApiextensionsV1Api(client).list_custom_resource_definition().items}
    if name not in crds:
        pytest.fail(f"install the operator first; missing CRD {name}")


def cpu_spec(name: str, command: list[str], env: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(name=job_name(name), namespace=NAMESPACE, image=IMAGE, command=command, env=env or {}, gpus=0, cpu="1", memory="2Gi",
                   gpu_pool=GpuPoolConfig(node_selector={}, tolerations=[]), s3=None, ttl_seconds_after_finished=60)


DDP = "import torch.distributed as d; d.init_process_group('gloo'); print('world', d.get_world_size(), 'rank', d.get_rank())"


def test_trainjob_runs_torchrun_over_two_pods(kube):
    need_crd(kube, "trainjobs.trainer.kubeflow.org")
    log = io.StringIO()
    runner = JobRunner(kube, poll_interval_s=3, timeout_s=900, log_stream=log)
    spec = cpu_spec("polya-kind-trainjob", stage_command(["torchrun", "/tmp/ddp.py"], "/tmp/ddp.py"), {CONFIG_ENV: encode_config(DDP)})
    result = runner.run(trainjob_manifest(spec, nodes=2, runtime=os.environ.get("POLYA_TEST_RUNTIME", "torch-distributed")))
    assert result.state.phase == "succeeded" and "world 2 rank 0" in log.getvalue()


def test_pytorchjob_runs_torchrun_over_two_pods(kube):
    need_crd(kube, "pytorchjobs.kubeflow.org")
    code = DDP
    log = io.StringIO()
    runner = JobRunner(kube, poll_interval_s=3, timeout_s=900, log_stream=log)
    result = runner.run(pytorchjob_manifest(cpu_spec("polya-kind-ddp", ["torchrun", "--no-python", "python", "-c", code]), nodes=2))
    assert result.state.phase == "succeeded" and "world 2 rank 0" in log.getvalue()


def test_failing_pytorchjob_reports_its_reason_and_is_deleted(kube):
    need_crd(kube, "pytorchjobs.kubeflow.org")
    spec = cpu_spec("polya-kind-fail", ["python", "-c", "import sys; print('about to fail'); sys.exit(3)"])
    spec.backoff_limit = 0
    runner = JobRunner(kube, poll_interval_s=3, timeout_s=600, log_stream=io.StringIO())
    with pytest.raises(ClusterJobError, match="failed") as err:
        runner.run(pytorchjob_manifest(spec, nodes=1))
    assert "exit code 3" in str(err.value) or "about to fail" in str(err.value)


def test_rayjob_runs_on_a_kuberay_cluster(kube):
    """The script reaches the head through $POLYA_STAGE_CONFIG_B64, as `polya rl`'s settings do."""
    need_crd(kube, "rayjobs.ray.io")
    log = io.StringIO()
    runner = JobRunner(kube, poll_interval_s=5, timeout_s=1200, log_stream=log)
    script = "import ray; ray.init(); print('nodes', len(ray.nodes()), 'say \"$HOME\" `no`')"
    spec = cpu_spec("polya-kind-ray", stage_command(["python3", "/tmp/nodes.py"], "/tmp/nodes.py"), {CONFIG_ENV: encode_config(script)})
    result = runner.run(rayjob_manifest(spec, workers=1, ray_version=image_ray_version(), head_cpu="1", head_memory="2Gi"))
    assert result.state.phase == "succeeded" and 'nodes 2 say "$HOME" `no`' in log.getvalue()


def test_smoke_pipeline_on_kubeflow_pipelines(kube):
    host = os.environ.get("POLYA_KFP_HOST")
    if not host:
        pytest.fail("set POLYA_KFP_HOST to the KFP API of the kind cluster")
    from polya.pipeline.config import PipelineBuildConfig
    from polya.pipeline.kfp import KfpAuth, submit_pipeline

    build = PipelineBuildConfig.model_validate({"images": {"cpu": "polya/cpu", "vllm": "polya/cpu", "trainer": "polya/cpu"}})
    out = submit_pipeline("smoke", KfpAuth(host=host), {"data_limit": 2}, build, experiment="polya-kind", wait=True, timeout_s=3600)
    assert out["state"].upper() == "SUCCEEDED"
