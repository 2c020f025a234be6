"""TrainJob / PyTorchJob / RayJob manifests against the vendored upstream CRDs, their pods against
PodSecurity "restricted", the stage settings through a RayJob's entrypoint byte for byte, and the
submit-wait-fail-clean-up cycle of ``JobRunner`` against a real HTTP server speaking the
Kubernetes API (kube_api_server)."""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kube_api_server import KubeApiServer, Script, load_crds, validation_errors
from support.kuberay import head_env, run_submitter, stand_in_ray_cli
from support.pod_security import restricted_violations
from support.trainer import TORCH_DISTRIBUTED_POD, trainjob_pod

from polya.pipeline.config import (
    GpuPoolConfig,
    PipelineBuildConfig,
    S3Config,
    cluster_target,
    image_ray_version,
)
from polya.pipeline.jobs import (
    MAX_JOB_NAME,
    PYTORCHJOB,
    RAYJOB,
    TRAINJOB,
    ClusterJobError,
    JobRunner,
    JobSpec,
    job_name,
    pytorchjob_manifest,
    pytorchjob_state,
    ray_entrypoint,
    rayjob_manifest,
    rayjob_state,
    trainjob_manifest,
    trainjob_state,
)
from polya.pipeline.launch import CONFIG_ENV, encode_config, stage_command
from polya.pipeline.steps.cluster import submit_and_wait

CRDS = load_crds()
RAY = image_ray_version()


def spec(name: str = "polya-sft-polya-abc", gpus: int = 2, command: list[str] | None = None, env: dict | None = None, **kw) -> JobSpec:
    return JobSpec(
        name=name, namespace="ml", image="polya/trainer:0.1.0",
        command=command or stage_command(["torchrun", "-m", "polya.cli.main", "sft", "--config", "/tmp/c.yaml"], "/tmp/c.yaml"),
        env=env or {CONFIG_ENV: encode_config("run_dir: s3://b/x\n")}, gpus=gpus, gpu_pool=GpuPoolConfig(node_selector={"pool": "h100"}),
        s3=S3Config(secret_name="minio-creds"), **kw,
    )


# ----- manifests ---------------------------------------------------------------------------


def test_trainjob_manifest_is_valid_and_places_gpus_on_the_pool():
    m = trainjob_manifest(spec(pvc_name="ckpt", service_account="trainer", active_deadline_s=3600), nodes=4, runtime="polya-torch")
    assert validation_errors(m, CRDS["trainjobs"]) == []
    assert m["spec"]["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime", "name": "polya-torch"}
    trainer = m["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (4, 2)
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "2" and trainer["image"] == "polya/trainer:0.1.0"
    assert trainer["command"][:3] == ["python3", "-m", "polya.pipeline.launch"] and trainer["command"][-6:] == ["torchrun", "-m", "polya.cli.main", "sft", "--config", "/tmp/c.yaml"]
    env = {e["name"]: e for e in trainer["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "minio-creds", "key": "rootPassword"} and CONFIG_ENV in env
    (patch,) = m["spec"]["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = node["template"]["spec"]["template"]["spec"]
    assert node["name"] == "node" and pod["nodeSelector"] == {"pool": "h100"} and pod["serviceAccountName"] == "trainer"
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "ckpt"}} in pod["volumes"]
    assert pod["containers"][0]["name"] == "node" and {"name": "checkpoints", "mountPath": "/checkpoints"} in pod["containers"][0]["volumeMounts"]
    assert m["spec"]["activeDeadlineSeconds"] == 3600


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
    assert container["command"][-6:] == ["torchrun", "-m", "polya.cli.main", "sft", "--config", "/tmp/c.yaml"]


def test_single_node_pytorchjob_has_only_a_master():
    m = pytorchjob_manifest(spec(), nodes=1)
    assert list(m["spec"]["pytorchReplicaSpecs"]) == ["Master"]
    assert validation_errors(m, CRDS["pytorchjobs"]) == []


def test_rayjob_manifest_is_valid_with_cpu_head_gpu_workers_and_the_images_ray():
    m = rayjob_manifest(spec("polya-rl-abc", command=["polya", "rl", "--config", "/tmp/c.yaml"]), workers=3, ray_version=RAY)
    assert validation_errors(m, CRDS["rayjobs"]) == []
    cluster = m["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"] and "nodeSelector" not in head
    assert "command" not in head["containers"][0]  # KubeRay generates `ray start`
    group = cluster["workerGroupSpecs"][0]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 3
    worker = group["template"]["spec"]
    assert worker["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert worker["nodeSelector"] == {"pool": "h100"} and group["rayStartParams"]["num-gpus"] == "2"
    assert m["spec"]["entrypoint"] == "polya rl --config /tmp/c.yaml"
    # rayVersion is the Ray the trainer image installs: the pin of docker/constraints-gpu.txt, read, not written here
    pins = (Path(__file__).resolve().parents[3] / "docker" / "constraints-gpu.txt").read_text().splitlines()
    assert f"ray=={cluster['rayVersion']}" in pins


def test_every_kind_is_refused_by_the_schema_when_broken():
    m = pytorchjob_manifest(spec(), nodes=2)
    m["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    m["spec"]["runPolicy"]["cleanPodPolicyy"] = "None"
    del m["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"]
    errors = " | ".join(validation_errors(m, CRDS["pytorchjobs"]))
    assert "Master.replicas: must be of type integer" in errors and "cleanPodPolicyy: unknown field" in errors
    assert "containers[0].name: required field is missing" in errors
    r = rayjob_manifest(spec("polya-rl-x", command=["polya", "rl"]), workers=1, ray_version=RAY)
    worker = r["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    worker["containers"].append(copy.deepcopy(worker["containers"][0]))
    assert any("containers[1]: duplicate entry with name='ray-worker'" in e for e in validation_errors(r, CRDS["rayjobs"]))
    t = trainjob_manifest(spec("polya-sft-t"), nodes=2)
    t["spec"]["trainer"]["env"].append({"name": CONFIG_ENV, "value": "again"})
    t["spec"]["trainer"]["numProcPerNode"] = 0
    errors = " | ".join(validation_errors(t, CRDS["trainjobs"]))
    assert f"duplicate entry with name='{CONFIG_ENV}'" in errors and "numProcPerNode must be greater than or equal to 1" in errors


def test_bad_names_and_sizes_are_refused():
    assert job_name("polya", "SFT", "Wrong_Answer", "0123") == "polya-sft-wrong-answer-0123"
    assert len(job_name("x" * 100)) == MAX_JOB_NAME == 47  # KubeRay: RayJob names up to 47 (RayCluster 53)
    with pytest.raises(ClusterJobError, match="DNS-1035"):
        spec(name="Polya_SFT")
    with pytest.raises(ClusterJobError, match="at most 47"):
        spec(name="p" * 48)
    with pytest.raises(ClusterJobError, match="at least 1 worker"):
        rayjob_manifest(spec(), workers=0, ray_version=RAY)
    with pytest.raises(ClusterJobError, match="nodes must be >= 1"):
        trainjob_manifest(spec(), nodes=0)


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
    assert trainjob_state({}).phase == "pending"
    assert trainjob_state({"status": {"jobsStatus": [{"name": "node", "active": 2, "ready": 2}]}}).phase == "running"
    assert trainjob_state({"status": {"conditions": [{"type": "Suspended", "status": "True", "reason": "Suspended"}]}}).phase == "pending"
    assert trainjob_state({"status": {"conditions": [{"type": "Complete", "status": "True", "reason": "JobsCompleted"}]}}).phase == "succeeded"
    gone = trainjob_state({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "too slow"}]}})
    assert (gone.phase, gone.reason, gone.message) == ("failed", "DeadlineExceeded", "too slow")


# ----- security and clean-up -----------------------------------------------------------------


def test_job_pods_pass_pod_security_restricted():
    """A namespace enforcing PodSecurity "restricted" admits every pod of every job kind."""
    pods = {"trainjob": trainjob_pod(trainjob_manifest(spec(pvc_name="ckpt"), nodes=2), TORCH_DISTRIBUTED_POD)}
    for role, replica in pytorchjob_manifest(spec(pvc_name="ckpt"), nodes=2)["spec"]["pytorchReplicaSpecs"].items():
        pods[f"pytorchjob {role}"] = replica["template"]["spec"]
    ray = rayjob_manifest(spec("polya-rl-x", command=["polya", "rl"]), workers=2, ray_version=RAY)["spec"]
    pods["rayjob submitter"] = ray["submitterPodTemplate"]["spec"]
    for role, template in [("head", ray["rayClusterSpec"]["headGroupSpec"]["template"])] + [
            ("worker", g["template"]) for g in ray["rayClusterSpec"]["workerGroupSpecs"]]:
        pod = copy.deepcopy(template["spec"])
        ray_container = pod["containers"][0]  # KubeRay adds wait-gcs-ready with the Ray container's security context
        pod["initContainers"] = [{"name": "wait-gcs-ready", "image": ray_container["image"], "securityContext": ray_container["securityContext"]}]
        pods[f"rayjob {role}"] = pod
    for name, pod in pods.items():
        assert restricted_violations(pod) == [], name
    # without polya's patch, Trainer's stock runtime would be refused
    assert restricted_violations(TORCH_DISTRIBUTED_POD)


@pytest.mark.parametrize("job_kind", ["trainjob", "pytorchjob", "rayjob"])
def test_failed_jobs_release_their_gpus_promptly(job_kind):
    """The build settings job_ttl_s / job_timeout_s reach the manifest; a failed job's pods do not outlive it."""
    build = PipelineBuildConfig.model_validate({"sft": {"nodes": 2, "job_kind": job_kind if job_kind != "rayjob" else "trainjob"},
                                                "rl": {"workers": 2}, "job_ttl_s": 30, "job_timeout_s": 7200})
    target = cluster_target(build, "rl" if job_kind == "rayjob" else "sft").model_copy(update={"namespace": "ml", "poll_interval_s": 0.01})
    failed = {
        "trainjob": {"conditions": [{"type": "Failed", "status": "True", "reason": "JobSetFailed"}]},
        "pytorchjob": {"conditions": [{"type": "Failed", "status": "True", "reason": "PyTorchJobFailed"}]},
        "rayjob": {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "AppFailed"},
    }[job_kind]
    with KubeApiServer() as api:
        api.on_create = lambda obj: api.script(obj["metadata"]["name"], Script(statuses=[failed]))
        with pytest.raises(ClusterJobError, match="failed"):
            submit_and_wait(target, f"polya-x-{job_kind}", "sft", ["polya", "x"], build, "/tmp/c.yaml", api_client=api.api_client())
        (created,) = api.created
        assert api.deleted == [(f"{job_kind}s", "ml", f"polya-x-{job_kind}")]  # the runner deletes it
    job = created["spec"]
    if job_kind == "pytorchjob":  # and should the runner die first, the operator cleans up
        assert job["runPolicy"] == {"backoffLimit": 2, "cleanPodPolicy": "Running", "ttlSecondsAfterFinished": 30, "activeDeadlineSeconds": 7200}
    elif job_kind == "rayjob":
        assert (job["shutdownAfterJobFinishes"], job["ttlSecondsAfterFinished"], job["activeDeadlineSeconds"], job["backoffLimit"]) == (True, 30, 7200, 0)
    else:
        assert job["activeDeadlineSeconds"] == 7200


# ----- the stage settings through the job's command, byte for byte --------------------------


NASTY_PROMPT = 'Put the answer in $\\boxed{}$: "quotes", \'single\', `backticks`, $HOME, \\n, ${x}, !$, %s and Pólya\'s ∑ — 中文 🙂'


def test_rayjob_carries_any_config_text_byte_for_byte(tmp_path):
    """A system prompt with $, backticks, quotes, backslashes and non-ASCII reaches `polya rl` unchanged."""
    from polya.rl.config import RlConfig

    config = RlConfig.model_validate({"system_prompt": NASTY_PROMPT, "run_dir": str(tmp_path / "run")})
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    config_file = str(tmp_path / "polya-rl.yaml")
    job = spec("polya-rl-x", command=stage_command(["polya", "rl", "--config", config_file, "--print-config"], config_file),
               env={CONFIG_ENV: encode_config(text)})
    manifest = rayjob_manifest(job, workers=1, ray_version=RAY)
    assert validation_errors(manifest, CRDS["rayjobs"]) == []
    env = {**head_env(manifest), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "POLYA_REPO_DIR": os.environ.get("POLYA_REPO_DIR", ""), "HOME": str(tmp_path)}
    result = run_submitter(manifest["spec"]["entrypoint"], env, [stand_in_ray_cli(tmp_path / "bin"), Path(sys.executable).parent])
    assert result.returncode == 0, result.stderr
    assert Path(config_file).read_bytes() == text.encode("utf-8")  # the file the stage reads: the same bytes
    assert yaml.safe_load(result.stdout)["system_prompt"] == NASTY_PROMPT  # and what `polya rl` resolved from it


def test_the_old_shell_entrypoint_corrupted_such_text(tmp_path):
    """Why the settings no longer travel as text through a shell: the entrypoint polya used before
    (``bash -c 'printf "%s" "$POLYA_STAGE_CONFIG" > FILE; exec ...'``) executes parts of the text
    and changes or loses the rest, because list2cmdline puts the script in double quotes for
    /bin/sh, which then expands the variable into the script that bash parses."""
    import shlex

    config_file = tmp_path / "old.yaml"
    old = shlex.join(["/bin/bash", "-c", f'set -euo pipefail; printf "%s" "$POLYA_STAGE_CONFIG" > {config_file}; exec cat {config_file}'])
    text = f"system_prompt: {NASTY_PROMPT}"
    result = run_submitter(old, {"HOME": str(tmp_path), "POLYA_STAGE_CONFIG": text}, [stand_in_ray_cli(tmp_path / "bin")])
    assert "backticks: command not found" in result.stderr  # a backtick in the prompt ran as a command
    assert result.returncode != 0 or config_file.read_text() != text


def test_trainjob_and_pytorchjob_commands_carry_the_config(tmp_path):
    """Those commands run without a shell: the launcher writes the same bytes before exec'ing the stage."""
    text = f"system_prompt: {yaml.safe_dump(NASTY_PROMPT, allow_unicode=True).strip()}\nrun_dir: {tmp_path}\n"
    config_file = str(tmp_path / "c.yaml")
    command = stage_command(["polya", "rl", "--config", config_file, "--print-config"], config_file)
    for manifest in (trainjob_manifest(spec(command=command, env={CONFIG_ENV: encode_config(text)}), nodes=1),
                     pytorchjob_manifest(spec(command=command, env={CONFIG_ENV: encode_config(text)}), nodes=1)):
        container = manifest["spec"]["trainer"] if manifest["kind"] == "TrainJob" else manifest["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
        env = {**os.environ, **{e["name"]: e["value"] for e in container["env"] if "value" in e}}
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        result = subprocess.run(container["command"], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert Path(config_file).read_bytes() == text.encode("utf-8")
        assert yaml.safe_load(result.stdout)["system_prompt"] == NASTY_PROMPT


def test_words_that_a_shell_would_rewrite_are_refused_in_a_rayjob_entrypoint():
    assert ray_entrypoint(["polya", "rl", "--config", "/tmp/polya-rl.yaml"]) == "polya rl --config /tmp/polya-rl.yaml"
    for word in ["$HOME", "a b", "`x`", '"q"', "it's", "*.yaml", "~/x", "a\\b"]:
        with pytest.raises(ClusterJobError, match="re-quoted"):
            ray_entrypoint(["polya", word])


def test_the_launcher_refuses_a_missing_or_broken_variable(tmp_path, monkeypatch):
    from polya.pipeline.launch import write_config

    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(SystemExit, match=f"{CONFIG_ENV} is not set"):
        write_config(CONFIG_ENV, str(tmp_path / "c.yaml"))
    monkeypatch.setenv(CONFIG_ENV, "not base64!")
    with pytest.raises(SystemExit, match="not valid base64"):
        write_config(CONFIG_ENV, str(tmp_path / "c.yaml"))
    monkeypatch.setenv(CONFIG_ENV, encode_config("a: é\n"))
    path = write_config(CONFIG_ENV, str(tmp_path / "sub" / "c.yaml"))
    assert path.read_text(encoding="utf-8") == "a: é\n" and oct(path.stat().st_mode & 0o777) == "0o600"


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


def test_trainjob_success_streams_its_jobset_pods_logs_and_cleans_up(api):
    name = "polya-sft-tj"
    node0 = {"name": f"{name}-node-0-0-x7k2p", "labels": {"jobset.sigs.k8s.io/jobset-name": name}, "step": 1}
    node1 = {"name": f"{name}-node-0-1-p2k7x", "labels": {"jobset.sigs.k8s.io/jobset-name": name}, "step": 1}
    api.script(name, Script(
        statuses=[{}, {"jobsStatus": [{"name": "node", "active": 2, "ready": 2, "succeeded": 0, "failed": 0, "suspended": 0}]},
                  {"conditions": [{"type": "Complete", "status": "True", "reason": "JobsCompleted", "message": "jobs completed"}]}],
        pods=[node0, node1],
        logs={node0["name"]: [(1, "rank 0 step 1 loss 2.0"), (2, "saved final")], node1["name"]: [(1, "rank 1 step 1")]},
    ))
    job, out = runner(api)
    result = job.run(trainjob_manifest(spec(name), nodes=2, runtime="torch-distributed"))
    assert result.kind == "TrainJob" and result.state.reason == "JobsCompleted" and result.log_lines == 3
    assert f"[{node0['name']}] saved final" in out.getvalue() and f"[{node1['name']}] rank 1 step 1" in out.getvalue()
    assert api.created[0]["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert api.deleted == [("trainjobs", "ml", name)] and TRAINJOB.plural == "trainjobs"


def test_trainjob_failure_names_the_reason_and_the_failed_pod(api):
    name = "polya-sft-tjbad"
    pod = {
        "name": f"{name}-node-0-1-abcde", "labels": {"jobset.sigs.k8s.io/jobset-name": name}, "step": 0, "phase": "Failed",
        "container_statuses": [{"name": "node", "ready": False, "restartCount": 0, "image": "x", "imageID": "", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
    }
    api.script(name, Script(statuses=[{"conditions": [{"type": "Failed", "status": "True", "reason": "FailedJobs", "message": "jobset failed: node-0 failed"}]}],
                            pods=[pod], logs={pod["name"]: [(0, "NCCL error: unhandled system error")]}))
    job, _ = runner(api)
    with pytest.raises(ClusterJobError) as err:
        job.run(trainjob_manifest(spec(name), nodes=2))
    msg = str(err.value)
    assert f"TrainJob ml/{name} failed: FailedJobs: jobset failed: node-0 failed" in msg and f"{pod['name']}/node: Error (exit code 1)" in msg
    assert "NCCL error" in msg and api.deleted == [("trainjobs", "ml", name)]


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
        job.run(rayjob_manifest(spec(name), workers=1, ray_version=RAY))
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
    result = job.run(rayjob_manifest(spec(name), workers=2, ray_version=RAY))
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
    with pytest.raises(ClusterJobError, match=r"HTTP 400.*strict decoding error: unknown field \"spec.runPolicy.backoffLimitt\""):
        job.run(manifest)  # the runner asks for strict field validation: nothing is silently pruned
    manifest = pytorchjob_manifest(spec("polya-sft-bad"), nodes=1)
    manifest["spec"]["runPolicy"]["backoffLimit"] = "two"
    with pytest.raises(ClusterJobError, match=r"HTTP 422.*backoffLimit: must be of type integer"):
        job.run(manifest)
    api.crds.pop("rayjobs")
    with pytest.raises(ClusterJobError, match="is the operator installed"):
        job.run(rayjob_manifest(spec("polya-rl-x"), workers=1, ray_version=RAY))
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
