"""PyTorchJob / RayJob manifests against the vendored CRD schemas, and the submit-wait-fail-clean-up
cycle of ``JobRunner`` against a real HTTP server speaking the Kubernetes API (kube_api_server)."""

from __future__ import annotations

import io

import pytest
from kube_api_server import KubeApiServer, Script, load_crds, validation_errors

from polya.pipeline.config import GpuPoolConfig, S3Config
from polya.pipeline.jobs import (
    PYTORCHJOB,
    RAYJOB,
    ClusterJobError,
    JobRunner,
    JobSpec,
    job_name,
    pytorchjob_manifest,
    pytorchjob_state,
    rayjob_manifest,
    rayjob_state,
    shell_entrypoint,
)

CRDS = load_crds()


def spec(name: str = "polya-sft-polya-abc", gpus: int = 2, **kw) -> JobSpec:
    return JobSpec(
        name=name, namespace="ml", image="polya/trainer:0.1.0", command=shell_entrypoint(["torchrun", "-m", "polya.cli.main", "sft", "--config", "/tmp/c.yaml"], config_path="/tmp/c.yaml"),
        env={"POLYA_STAGE_CONFIG": "run_dir: s3://b/x\n"}, gpus=gpus, gpu_pool=GpuPoolConfig(node_selector={"pool": "h100"}),
        s3=S3Config(secret_name="minio-creds"), **kw,
    )


# ----- manifests ---------------------------------------------------------------------------


def test_pytorchjob_manifest_is_valid_and_places_gpus_on_the_pool():
    m = pytorchjob_manifest(spec(pvc_name="ckpt"), nodes=4)
    assert validation_errors(m, CRDS["pytorchjobs"]) == []
    replicas = m["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 3
    assert m["spec"]["nprocPerNode"] == "2"
    pod = replicas["Worker"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"] == {"pool": "h100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "minio-creds", "key": "rootPassword"}
    assert "value" not in env["AWS_ACCESS_KEY_ID"]  # credentials never inline
    assert {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "ckpt"}} in pod["volumes"]
    assert container["command"][:2] == ["/bin/bash", "-c"] and "torchrun -m polya.cli.main sft --config /tmp/c.yaml" in container["command"][2]


def test_single_node_pytorchjob_has_only_a_master():
    m = pytorchjob_manifest(spec(), nodes=1)
    assert list(m["spec"]["pytorchReplicaSpecs"]) == ["Master"]
    assert validation_errors(m, CRDS["pytorchjobs"]) == []


def test_rayjob_manifest_is_valid_with_cpu_head_and_gpu_workers():
    m = rayjob_manifest(spec("polya-rl-abc"), workers=3, entrypoint="polya rl --config /tmp/c.yaml")
    assert validation_errors(m, CRDS["rayjobs"]) == []
    cluster = m["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"] and "nodeSelector" not in head
    group = cluster["workerGroupSpecs"][0]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 3
    worker = group["template"]["spec"]
    assert worker["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert worker["nodeSelector"] == {"pool": "h100"} and group["rayStartParams"]["num-gpus"] == "2"
    assert m["spec"]["shutdownAfterJobFinishes"] is True


def test_schema_check_catches_what_the_api_server_would_reject():
    m = pytorchjob_manifest(spec(), nodes=2)
    m["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    m["spec"]["runPolicy"]["cleanPodPolicyy"] = "None"
    del m["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"]
    errors = " | ".join(validation_errors(m, CRDS["pytorchjobs"]))
    assert "replicas" in errors and "cleanPodPolicyy" in errors and "'name' is a required property" in errors
    r = rayjob_manifest(spec("polya-rl-x"), workers=1, entrypoint="x")
    del r["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["groupName"]
    assert any("groupName" in e for e in validation_errors(r, CRDS["rayjobs"]))


def test_bad_names_and_sizes_are_refused():
    assert job_name("polya", "SFT", "Wrong_Answer", "0123") == "polya-sft-wrong-answer-0123"
    assert len(job_name("x" * 100)) <= 47
    with pytest.raises(ClusterJobError, match="DNS-1035"):
        spec(name="Polya_SFT")
    with pytest.raises(ClusterJobError, match="at least 1 worker"):
        rayjob_manifest(spec(), workers=0, entrypoint="x")


def test_states_come_from_the_controllers_own_fields():
    assert pytorchjob_state({"status": {"conditions": [{"type": "Created", "status": "True"}]}}).phase == "pending"
    running = {"type": "Running", "status": "True"}
    assert pytorchjob_state({"status": {"conditions": [{"type": "Created", "status": "True"}, running]}}).phase == "running"
    failed = pytorchjob_state({"status": {"conditions": [running | {"status": "False"}, {"type": "Failed", "status": "True", "reason": "PyTorchJobFailed", "message": "pod exited 1"}]}})
    assert (failed.phase, failed.reason, failed.message) == ("failed", "PyTorchJobFailed", "pod exited 1")
    assert rayjob_state({"status": {"jobDeploymentStatus": "Initializing"}}).phase == "pending"
    assert rayjob_state({"status": {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}}).phase == "running"
    assert rayjob_state({"status": {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}}).phase == "succeeded"
    bad = rayjob_state({"status": {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "AppFailed", "message": "exit 2"}})
    assert (bad.phase, bad.reason) == ("failed", "AppFailed")


# ----- the submit / wait / fail / clean-up cycle ---------------------------------------------


@pytest.fixture()
def api():
    with KubeApiServer() as server:
        yield server


def runner(api: KubeApiServer, **kw) -> tuple[JobRunner, io.StringIO]:
    out = io.StringIO()
    return JobRunner(api.api_client(), poll_interval_s=0.01, log_stream=out, **kw), out


def conditions(*types: str, reason: str = "", message: str = "") -> dict:
    return {"conditions": [{"type": t, "status": "True", **({"reason": reason, "message": message} if i == len(types) - 1 else {})} for i, t in enumerate(types)]}


def test_pytorchjob_success_streams_logs_and_cleans_up(api):
    name = "polya-sft-ok"
    master = {"name": f"{name}-master-0", "labels": {"training.kubeflow.org/job-name": name}, "step": 1}
    api.script(name, Script(
        statuses=[conditions("Created"), conditions("Created", "Running"), conditions("Created", "Running"), conditions("Created", "Running", "Succeeded")],
        pods=[master],
        logs={master["name"]: [(1, "step 1 loss 2.0"), (2, "step 2 loss 1.5"), (3, "saved final")]},
    ))
    job, out = runner(api)
    result = job.run(pytorchjob_manifest(spec(name), nodes=2))
    assert result.state.phase == "succeeded" and result.log_lines == 3
    lines = out.getvalue().splitlines()
    assert lines == [f"[{name}-master-0] step 1 loss 2.0", f"[{name}-master-0] step 2 loss 1.5", f"[{name}-master-0] saved final"]
    assert api.deleted == [("pytorchjobs", "ml", name)]
    assert api.created[0]["kind"] == "PyTorchJob"


def test_pytorchjob_failure_raises_with_the_jobs_reason_pod_reason_and_last_lines(api):
    name = "polya-sft-oom"
    worker = {
        "name": f"{name}-worker-0", "labels": {"training.kubeflow.org/job-name": name}, "step": 1, "phase": "Failed",
        "container_statuses": [{"name": "pytorch", "ready": False, "restartCount": 0, "image": "x", "imageID": "", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
    }
    api.script(name, Script(
        statuses=[conditions("Created", "Running"), conditions("Created", "Running", "Failed", reason="PyTorchJobFailed", message=f"PyTorchJob {name} is failed because 1 Worker replica(s) failed.")],
        pods=[worker],
        logs={worker["name"]: [(0, "loading model"), (1, "CUDA out of memory")]},
    ))
    job, _ = runner(api)
    with pytest.raises(ClusterJobError) as err:
        job.run(pytorchjob_manifest(spec(name), nodes=2))
    msg = str(err.value)
    assert f"PyTorchJob ml/{name} failed: PyTorchJobFailed: PyTorchJob {name} is failed because 1 Worker replica(s) failed." in msg
    assert f"{name}-worker-0/pytorch: OOMKilled (exit code 137)" in msg
    assert "CUDA out of memory" in msg
    assert api.deleted == [("pytorchjobs", "ml", name)]


def test_failed_job_is_kept_with_cleanup_on_success(api):
    name = "polya-rl-bad"
    api.script(name, Script(statuses=[{"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "DeadlineExceeded", "message": "too slow"}]))
    job, _ = runner(api, cleanup="on_success")
    with pytest.raises(ClusterJobError, match="RayJob ml/polya-rl-bad failed: DeadlineExceeded: too slow"):
        job.run(rayjob_manifest(spec(name), workers=1, entrypoint="polya rl"))
    assert api.deleted == [] and ("rayjobs", "ml", name) in api.objects


def test_rayjob_success_follows_submitter_logs(api):
    name = "polya-rl-ok"
    submitter = {"name": f"{name}-x7k2p", "labels": {"job-name": name}, "step": 0}
    api.script(name, Script(
        statuses=[{"jobDeploymentStatus": "Initializing"}, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING", "rayClusterName": f"{name}-raycluster"},
                  {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "rayClusterName": f"{name}-raycluster"}],
        pods=[submitter], logs={submitter["name"]: [(1, "grpo step 1 reward 0.25"), (2, "Job 'raysubmit_1' succeeded")]},
    ))
    job, out = runner(api)
    result = job.run(rayjob_manifest(spec(name), workers=2, entrypoint="polya rl --config /tmp/c.yaml"))
    assert result.kind == "RayJob" and "reward 0.25" in out.getvalue()
    assert api.deleted == [("rayjobs", "ml", name)]


def test_timeout_deletes_the_job(api):
    name = "polya-sft-slow"
    api.script(name, Script(statuses=[conditions("Created")]))
    job, _ = runner(api, timeout_s=0.05)
    with pytest.raises(ClusterJobError, match="did not finish within"):
        job.run(pytorchjob_manifest(spec(name), nodes=1))
    assert api.deleted == [("pytorchjobs", "ml", name)]


def test_existing_job_of_a_retried_task_is_followed_not_recreated(api):
    name = "polya-sft-retry"
    api.script(name, Script(statuses=[conditions("Created", "Running", "Succeeded")]))
    manifest = pytorchjob_manifest(spec(name), nodes=1)
    job, _ = runner(api, cleanup="never")
    job.run(manifest)
    job.run(manifest)  # the second create answers 409 AlreadyExists: the runner attaches
    assert len(api.created) == 1 and sum(r.startswith("POST") for r in api.requests) == 2


def test_invalid_manifest_and_missing_operator_fail_with_the_api_servers_message(api):
    manifest = pytorchjob_manifest(spec("polya-sft-typo"), nodes=1)
    manifest["spec"]["runPolicy"]["backoffLimitt"] = 1
    job, _ = runner(api)
    with pytest.raises(ClusterJobError, match=r"HTTP 422.*backoffLimitt"):
        job.run(manifest)
    api.crds.pop("rayjobs")
    with pytest.raises(ClusterJobError, match="is the operator installed"):
        job.run(rayjob_manifest(spec("polya-rl-x"), workers=1, entrypoint="x"))
    with pytest.raises(ClusterJobError, match="unsupported job kind"):
        job.run({"kind": "TFJob", "metadata": {"name": "x", "namespace": "ml"}})


def test_job_deleted_by_someone_else_is_reported(api):
    name = "polya-sft-gone"
    api.script(name, Script(statuses=[conditions("Created")]))
    job, _ = runner(api)
    job.submit(pytorchjob_manifest(spec(name), nodes=1))
    api.objects.clear()
    with pytest.raises(ClusterJobError, match="disappeared"):
        job.wait(PYTORCHJOB, "ml", name)
    assert RAYJOB.plural == "rayjobs"


def test_sigterm_while_waiting_deletes_the_job(api):
    """A cancelled KFP run deletes the task pod (SIGTERM): the job must not outlive it."""
    import os
    import signal
    import threading
    import time

    name = "polya-sft-cancel"
    api.script(name, Script(statuses=[conditions("Created", "Running")]))
    job, _ = runner(api, timeout_s=30)
    before = signal.getsignal(signal.SIGTERM)

    def cancel_once_waiting() -> None:
        # Like KFP: the signal comes while the runner waits, i.e. after it installed its handler
        # (a fixed delay raced with a loaded machine).
        deadline = time.monotonic() + 30
        while signal.getsignal(signal.SIGTERM) is before and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    timer = threading.Thread(target=cancel_once_waiting, daemon=True)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        job.run(pytorchjob_manifest(spec(name), nodes=1))
    assert api.deleted == [("pytorchjobs", "ml", name)]
    assert signal.getsignal(signal.SIGTERM) is before
