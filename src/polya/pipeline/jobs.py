"""Multi-node stages run through the cluster's own engines: SFT as a Kubeflow Trainer v2
TrainJob (torchrun + DeepSpeed over N GPU nodes; a Training Operator v1 PyTorchJob on clusters
that run the older operator) and RL as a KubeRay RayJob (head + GPU workers).

Two halves:

* manifest builders (:func:`trainjob_manifest`, :func:`pytorchjob_manifest`,
  :func:`rayjob_manifest`; :func:`job_manifest` picks one for a :class:`ClusterTarget`) turn a
  :class:`JobSpec` into the custom resource. Every kind's pods are built by one function
  (:func:`_pod_template`): GPUs and the GPU pool's node selector and tolerations, the MinIO
  credentials from a Secret, the stage settings as base64 in ``$POLYA_STAGE_CONFIG_B64`` (see
  :mod:`polya.pipeline.launch`: no shell ever sees their text), and a security context that
  passes the PodSecurity "restricted" level. Finished jobs release their GPUs: a deadline
  (``activeDeadlineSeconds``), a short TTL, PyTorchJob ``cleanPodPolicy: Running``, RayJob
  ``shutdownAfterJobFinishes``;
* :class:`JobRunner` submits one through the Kubernetes API (the ``kubernetes`` client), streams
  its status and its pods' logs, fails with the job's own reason (condition, pod termination
  reason, last log lines), and deletes it afterwards.

The KFP component only waits; the training runs in the job's pods, which read and write the
run's data under an ``s3://`` staging prefix that the step then reads back.
"""

from __future__ import annotations

import logging
import re
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, TextIO

from polya.core.errors import PolyaError
from polya.pipeline.config import ClusterTarget, GpuPoolConfig, S3Config
from polya.pipeline.launch import PLAIN_WORD

logger = logging.getLogger(__name__)

_NAME_BAD = re.compile(r"[^a-z0-9-]+")

MAX_JOB_NAME = 47
"""Longest job name: KubeRay refuses RayJob names over 47 characters (its RayCluster gets a 6-character
suffix and RayCluster names stop at 53); the other kinds use the same bound."""

IMAGE_UID = 10001
"""The uid the polya images run as (``USER 10001`` in docker/*/Dockerfile)."""

POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True, "runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID, "fsGroup": IMAGE_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""Pod security context of every job pod: non-root, the images' uid, the runtime's default seccomp profile."""

CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""Container security context of every job container (with the pod's, PodSecurity "restricted")."""

TRAINJOB_PATCH_MANAGER = "polya.dev/pipeline"
"""Owner of the TrainJob's runtime patch (placement, volumes, security context of the runtime's pods)."""


class ClusterJobError(PolyaError):
    """A cluster job could not be submitted, failed, or ran past its deadline."""


def job_name(*parts: str, max_len: int = MAX_JOB_NAME) -> str:
    """A DNS-1035 name from ``parts`` (lower case, '-' separated), short enough for every operator's derived names.

    >>> job_name("polya", "SFT", "run_1234abcd")
    'polya-sft-run-1234abcd'
    """
    name = _NAME_BAD.sub("-", "-".join(p for p in parts if p).lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"j-{name}"
    return name[:max_len].rstrip("-")


@dataclass
class JobSpec:
    """What every job pod gets: image, command, environment, resources, placement and clean-up."""

    name: str
    namespace: str
    image: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    gpus: int = 1
    cpu: str = "4"
    memory: str = "32Gi"
    gpu_pool: GpuPoolConfig = field(default_factory=GpuPoolConfig)
    s3: S3Config | None = field(default_factory=S3Config)
    pull_policy: str = "IfNotPresent"
    service_account: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    pvc_name: str | None = None
    pvc_mount_path: str = "/checkpoints"
    backoff_limit: int = 2
    ttl_seconds_after_finished: int = 60
    active_deadline_s: int | None = None

    def __post_init__(self) -> None:
        if job_name(self.name) != self.name:
            raise ClusterJobError(f"job name {self.name!r} is not a DNS-1035 label of at most {MAX_JOB_NAME} characters; use job_name(...) to build one, e.g. {job_name(self.name)!r}")
        if not self.command:
            raise ClusterJobError(f"job {self.name}: command must not be empty")


def _env_list(spec: JobSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": k, "value": str(v)} for k, v in sorted(spec.env.items())]
    if spec.s3 is not None:
        env.append({"name": "POLYA_S3_ENDPOINT", "value": spec.s3.endpoint})
        for var, key in (("AWS_ACCESS_KEY_ID", spec.s3.access_key_key), ("AWS_SECRET_ACCESS_KEY", spec.s3.secret_key_key)):
            env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": spec.s3.secret_name, "key": key}}})
    return env


def _resources(spec: JobSpec, gpus: int, cpu: str | None = None, memory: str | None = None) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": cpu or spec.cpu, "memory": memory or spec.memory}
    if gpus:
        amounts[spec.gpu_pool.resource] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _pod_template(spec: JobSpec, container: str, command: list[str] | None, gpus: int, ports: list[dict[str, Any]] | None = None,
                  cpu: str | None = None, memory: str | None = None) -> dict[str, Any]:
    """The pod template of every job kind: one container ``container`` running ``command`` (None: the operator's)."""
    main: dict[str, Any] = {
        "name": container,
        "image": spec.image,
        "imagePullPolicy": spec.pull_policy,
        **({"command": list(command)} if command else {}),
        "env": _env_list(spec),
        "resources": _resources(spec, gpus, cpu, memory),
        "securityContext": dict(CONTAINER_SECURITY_CONTEXT),
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if ports:
        main["ports"] = ports
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    if spec.pvc_name:
        main["volumeMounts"].append({"name": "checkpoints", "mountPath": spec.pvc_mount_path})
        volumes.append({"name": "checkpoints", "persistentVolumeClaim": {"claimName": spec.pvc_name}})
    pod: dict[str, Any] = {"securityContext": dict(POD_SECURITY_CONTEXT), "containers": [main], "volumes": volumes}
    if gpus:
        if spec.gpu_pool.node_selector:
            pod["nodeSelector"] = dict(spec.gpu_pool.node_selector)
        if spec.gpu_pool.tolerations:
            pod["tolerations"] = [t.as_k8s() for t in spec.gpu_pool.tolerations]
    if spec.service_account:
        pod["serviceAccountName"] = spec.service_account
    return {"metadata": {"labels": {"app.kubernetes.io/part-of": "polya", **spec.labels}}, "spec": pod}


def _metadata(spec: JobSpec) -> dict[str, Any]:
    return {"name": spec.name, "namespace": spec.namespace, "labels": {"app.kubernetes.io/part-of": "polya", **spec.labels}}


def _deadline(spec: JobSpec) -> dict[str, Any]:
    return {"activeDeadlineSeconds": spec.active_deadline_s} if spec.active_deadline_s else {}


# ----- TrainJob (Kubeflow Trainer v2) ------------------------------------------------------------


def trainjob_manifest(spec: JobSpec, nodes: int, runtime: str = "torch-distributed") -> dict[str, Any]:
    """A ``trainer.kubeflow.org/v1alpha1`` TrainJob on the ClusterTrainingRuntime ``runtime``: ``nodes`` nodes, ``spec.gpus`` GPUs each.

    The runtime's torch policy sets ``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK`` and the
    master address in every pod, which ``torchrun`` reads; the command is the same on every node.
    The runtime's pods are patched (``runtimePatches``) onto the GPU pool with the job's volumes,
    service account and restricted security context.
    """
    if nodes < 1:
        raise ClusterJobError(f"job {spec.name}: nodes must be >= 1 (got {nodes})")
    pod = _pod_template(spec, "node", spec.command, spec.gpus)
    main = pod["spec"]["containers"][0]
    pod_patch = {k: pod["spec"][k] for k in ("nodeSelector", "tolerations", "serviceAccountName", "securityContext", "volumes") if k in pod["spec"]}
    pod_patch["containers"] = [{"name": "node", "securityContext": main["securityContext"], "volumeMounts": main["volumeMounts"]}]
    node_job = {"name": "node", "template": {"spec": {"template": {"metadata": {"labels": pod["metadata"]["labels"]}, "spec": pod_patch}}}}
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": _metadata(spec),
        "spec": {
            "runtimeRef": {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime", "name": runtime},
            "trainer": {
                "image": spec.image, "command": main["command"], "env": main["env"], "numNodes": nodes,
                "numProcPerNode": max(spec.gpus, 1), "resourcesPerNode": main["resources"],
            },
            "runtimePatches": [{"manager": TRAINJOB_PATCH_MANAGER, "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [node_job]}}}}],
            **_deadline(spec),
        },
    }


# ----- PyTorchJob (Kubeflow Training Operator v1) ------------------------------------------------


def pytorchjob_manifest(spec: JobSpec, nodes: int) -> dict[str, Any]:
    """A ``kubeflow.org/v1`` PyTorchJob: one Master and ``nodes - 1`` Workers, ``spec.gpus`` GPUs each.

    The operator sets ``PET_NNODES``, ``PET_NPROC_PER_NODE``, ``PET_NODE_RANK`` and the master
    address for every pod, which ``torchrun`` reads; the command is the same on every pod. When the
    job ends (a failure included) its still-running pods are deleted at once (``cleanPodPolicy:
    Running``): a failed job does not hold GPUs; the stopped pods stay for their logs until the TTL.
    """
    if nodes < 1:
        raise ClusterJobError(f"job {spec.name}: nodes must be >= 1 (got {nodes})")
    replica = {"restartPolicy": "OnFailure", "template": _pod_template(spec, "pytorch", spec.command, spec.gpus, [{"name": "pytorchjob-port", "containerPort": 23456}])}
    replicas: dict[str, Any] = {"Master": {"replicas": 1, **replica}}
    if nodes > 1:
        replicas["Worker"] = {"replicas": nodes - 1, **replica}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": _metadata(spec),
        "spec": {
            "nprocPerNode": str(max(spec.gpus, 1)),
            "pytorchReplicaSpecs": replicas,
            "runPolicy": {
                "backoffLimit": spec.backoff_limit,
                "cleanPodPolicy": "Running",
                "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
                **_deadline(spec),
            },
        },
    }


# ----- RayJob (KubeRay v1) -----------------------------------------------------------------------


def ray_entrypoint(command: list[str]) -> str:
    """The RayJob ``entrypoint`` for ``command``: its words joined, each one plain.

    KubeRay puts the entrypoint into a ``bash -c`` script after ``ray job submit ... --``; Ray's CLI
    re-joins the words with ``list2cmdline`` and runs them through ``/bin/sh -c``. Plain words come
    out of all three unchanged; anything else would be re-quoted, so it is refused (text belongs
    in the stage settings, see :mod:`polya.pipeline.launch`).
    """
    odd = [word for word in command if not PLAIN_WORD.match(word)]
    if odd:
        raise ClusterJobError(f"RayJob entrypoint words {odd} would be re-quoted by KubeRay's bash and Ray's list2cmdline; "
                              "pass text through the stage settings ($POLYA_STAGE_CONFIG_B64) instead")
    return shlex.join(command)


def rayjob_manifest(spec: JobSpec, workers: int, ray_version: str, head_cpu: str = "4", head_memory: str = "16Gi") -> dict[str, Any]:
    """A ``ray.io/v1`` RayJob: a CPU head plus ``workers`` GPU workers; the job runs ``spec.command`` on the head.

    KubeRay creates the cluster, submits the entrypoint from a submitter pod when the cluster is
    ready, and deletes the cluster ``ttlSecondsAfterFinished`` after the job finishes, whether it
    succeeded or failed (``shutdownAfterJobFinishes``). ``ray_version`` is the Ray of the image.
    """
    if workers < 1:
        raise ClusterJobError(f"job {spec.name}: a RayJob needs at least 1 worker (got {workers}); run in the task pod instead")
    head = _pod_template(spec, "ray-head", None, 0, [
        {"name": "gcs", "containerPort": 6379}, {"name": "dashboard", "containerPort": 8265}, {"name": "client", "containerPort": 10001},
    ], cpu=head_cpu, memory=head_memory)  # KubeRay generates `ray start --head ...`
    worker = _pod_template(spec, "ray-worker", None, spec.gpus)
    submitter = _pod_template(spec, "ray-job-submitter", None, 0, cpu="500m", memory="1Gi")  # KubeRay fills in `ray job submit ...`
    submitter["spec"].update(restartPolicy="Never", volumes=[])
    submitter["spec"]["containers"][0].update(env=[], volumeMounts=[])
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": _metadata(spec),
        "spec": {
            "entrypoint": ray_entrypoint(spec.command),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
            "backoffLimit": 0,
            **_deadline(spec),
            "submitterPodTemplate": submitter,
            "rayClusterSpec": {
                "rayVersion": ray_version,
                "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0", "num-gpus": "0"}, "template": head},
                "workerGroupSpecs": [{
                    "groupName": "gpu",
                    "replicas": workers,
                    "minReplicas": workers,
                    "maxReplicas": workers,
                    "rayStartParams": {"num-gpus": str(spec.gpus)},
                    "template": worker,
                }],
            },
        },
    }


def job_manifest(target: ClusterTarget, spec: JobSpec) -> dict[str, Any]:
    """The custom resource ``target`` asks for: a TrainJob, a PyTorchJob or a RayJob running ``spec``."""
    if target.kind == "trainjob":
        return trainjob_manifest(spec, target.size, target.runtime)
    if target.kind == "pytorchjob":
        return pytorchjob_manifest(spec, target.size)
    return rayjob_manifest(spec, target.size, target.ray_version)


# ----- status --------------------------------------------------------------------------------------

Phase = Literal["pending", "running", "succeeded", "failed"]


@dataclass
class JobState:
    """One look at a job: phase plus the controller's own reason and message."""

    phase: Phase
    reason: str = ""
    message: str = ""
    detail: str = ""

    def describe(self) -> str:
        parts = [self.phase]
        if self.reason:
            parts.append(self.reason)
        if self.message:
            parts.append(self.message)
        return ": ".join(parts)


def _true_conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in (obj.get("status") or {}).get("conditions") or [] if str(c.get("status")) == "True"]


def _condition_state(condition: Mapping[str, Any], phase: Phase) -> JobState:
    return JobState(phase, str(condition.get("reason") or ""), str(condition.get("message") or ""))


def pytorchjob_state(obj: Mapping[str, Any]) -> JobState:
    """Phase of a PyTorchJob from its conditions (the last true one of Created/Running/Restarting/Succeeded/Failed)."""
    conditions = _true_conditions(obj)
    for kind, phase in (("Failed", "failed"), ("Succeeded", "succeeded")):
        for cond in conditions:
            if cond.get("type") == kind:
                return _condition_state(cond, phase)  # type: ignore[arg-type]
    if conditions:
        last = conditions[-1]
        return _condition_state(last, "running" if last.get("type") in ("Running", "Restarting") else "pending")
    return JobState("pending")


def trainjob_state(obj: Mapping[str, Any]) -> JobState:
    """Phase of a TrainJob: its Failed / Complete / Suspended conditions, else running once a child Job has active pods."""
    conditions = {str(c.get("type")): c for c in _true_conditions(obj)}
    for kind, phase in (("Failed", "failed"), ("Complete", "succeeded"), ("Suspended", "pending")):
        if kind in conditions:
            return _condition_state(conditions[kind], phase)  # type: ignore[arg-type]
    jobs = (obj.get("status") or {}).get("jobsStatus") or []
    active = sum(int(j.get("active") or 0) for j in jobs)
    detail = " ".join(f"{j.get('name')}: active={j.get('active', 0)} succeeded={j.get('succeeded', 0)} failed={j.get('failed', 0)}" for j in jobs)
    return JobState("running" if active else "pending", detail=detail)


def rayjob_state(obj: Mapping[str, Any]) -> JobState:
    """Phase of a RayJob from ``jobStatus`` (the Ray job) and ``jobDeploymentStatus`` (KubeRay's view)."""
    status = obj.get("status") or {}
    job = str(status.get("jobStatus") or "").upper()
    deployment = str(status.get("jobDeploymentStatus") or "")
    reason, message = str(status.get("reason") or ""), str(status.get("message") or "")
    detail = f"jobStatus={job or '-'} jobDeploymentStatus={deployment or '-'}"
    if job == "SUCCEEDED":
        return JobState("succeeded", reason, message, detail)
    if job in ("FAILED", "STOPPED") or deployment in ("Failed", "ValidationFailed"):
        return JobState("failed", reason or deployment or job, message, detail)
    if job == "RUNNING" or deployment == "Running":
        return JobState("running", reason, message, detail)
    return JobState("pending", reason, message, detail)


@dataclass(frozen=True)
class JobKind:
    """Where a kind of job lives in the API and how to read its state and find its pods."""

    kind: str
    group: str
    version: str
    plural: str
    state: Callable[[Mapping[str, Any]], JobState]
    pod_selector: Callable[[Mapping[str, Any]], list[str]]


def _pytorch_pods(obj: Mapping[str, Any]) -> list[str]:
    return [f"training.kubeflow.org/job-name={obj['metadata']['name']}"]


def _trainjob_pods(obj: Mapping[str, Any]) -> list[str]:
    # Trainer v2 runs a TrainJob as a JobSet of the same name; JobSet labels every pod with it.
    return [f"jobset.sigs.k8s.io/jobset-name={obj['metadata']['name']}"]


def _ray_pods(obj: Mapping[str, Any]) -> list[str]:
    # The submitter Job (named like the RayJob) follows the Ray job's logs; the cluster's pods
    # are where a crash shows up first.
    selectors = [f"job-name={obj['metadata']['name']}"]
    cluster = (obj.get("status") or {}).get("rayClusterName")
    if cluster:
        selectors.append(f"ray.io/cluster={cluster}")
    return selectors


TRAINJOB = JobKind("TrainJob", "trainer.kubeflow.org", "v1alpha1", "trainjobs", trainjob_state, _trainjob_pods)
PYTORCHJOB = JobKind("PyTorchJob", "kubeflow.org", "v1", "pytorchjobs", pytorchjob_state, _pytorch_pods)
RAYJOB = JobKind("RayJob", "ray.io", "v1", "rayjobs", rayjob_state, _ray_pods)
JOB_KINDS = {k.kind: k for k in (TRAINJOB, PYTORCHJOB, RAYJOB)}
"""Every kind of job polya submits (the pipeline runner's RBAC must cover each; tests check the chart's)."""


@dataclass
class JobResult:
    """How a job ended."""

    kind: str
    name: str
    namespace: str
    state: JobState
    elapsed_s: float
    log_lines: int


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A ``kubernetes`` ApiClient: in-cluster credentials inside a pod, else the kubeconfig."""
    import os

    from kubernetes import client, config

    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # kubernetes raises ConfigException and friends
        raise ClusterJobError(f"cannot load a Kubernetes client config ({kubeconfig or '~/.kube/config'}): {exc}") from exc


def current_namespace(default: str = "default") -> str:
    """The namespace of this pod (service-account file or $POD_NAMESPACE), else ``default``."""
    import os

    ns = os.environ.get("POD_NAMESPACE")
    if ns:
        return ns
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or default
    return default


class JobRunner:
    """Submit a job, follow it to the end, fail with its reason, delete it.

    ``cleanup``: ``always`` deletes the job whatever happened (its logs were streamed),
    ``on_success`` keeps a failed job for inspection, ``never`` keeps it.
    """

    def __init__(
        self,
        api_client: Any | None = None,
        poll_interval_s: float = 10.0,
        timeout_s: float = 7 * 24 * 3600,
        cleanup: Literal["always", "on_success", "never"] = "always",
        log_stream: TextIO | None = None,
        failure_log_lines: int = 30,
    ) -> None:
        from kubernetes import client

        self.api_client = api_client if api_client is not None else load_api_client()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self.cleanup = cleanup
        self.log_stream = log_stream if log_stream is not None else sys.stdout
        self.failure_log_lines = failure_log_lines
        self._printed: dict[str, int] = {}
        self._tails: dict[str, list[str]] = {}

    # -- API calls ---------------------------------------------------------------------------
    def submit(self, manifest: Mapping[str, Any], attach_existing: bool = True) -> JobKind:
        """Create the job; with ``attach_existing`` a job of the same name (a retried task) is followed instead."""
        from kubernetes.client.exceptions import ApiException

        kind = self.kind_of(manifest)
        meta = manifest["metadata"]
        try:
            # Strict: a field the CRD does not know is refused (422) instead of silently pruned.
            self.custom.create_namespaced_custom_object(kind.group, kind.version, meta["namespace"], kind.plural, dict(manifest), field_validation="Strict")
            logger.info("submitted %s %s/%s", kind.kind, meta["namespace"], meta["name"])
        except ApiException as exc:
            if exc.status == 409 and attach_existing:
                logger.info("%s %s/%s already exists (a retried task): following it", kind.kind, meta["namespace"], meta["name"])
                return kind
            raise ClusterJobError(
                f"cannot create {kind.kind} {meta['namespace']}/{meta['name']}: HTTP {exc.status} {exc.reason}: {_api_message(exc)}"
                + (" (is the operator installed? its CRD must exist)" if exc.status == 404 else "")
            ) from None
        return kind

    def get(self, kind: JobKind, namespace: str, name: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural, name)
        except ApiException as exc:
            if exc.status == 404:
                raise ClusterJobError(f"{kind.kind} {namespace}/{name} disappeared while running (deleted by someone else?)") from None
            raise ClusterJobError(f"cannot read {kind.kind} {namespace}/{name}: HTTP {exc.status} {exc.reason}") from None

    def delete(self, kind: JobKind, namespace: str, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.delete_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name, body=client.V1DeleteOptions(propagation_policy="Foreground")
            )
            logger.info("deleted %s %s/%s", kind.kind, namespace, name)
        except ApiException as exc:
            if exc.status != 404:
                logger.warning("could not delete %s %s/%s: HTTP %s %s", kind.kind, namespace, name, exc.status, exc.reason)

    @staticmethod
    def kind_of(manifest: Mapping[str, Any]) -> JobKind:
        kind = JOB_KINDS.get(str(manifest.get("kind")))
        if kind is None:
            raise ClusterJobError(f"unsupported job kind {manifest.get('kind')!r}; supported: {', '.join(JOB_KINDS)}")
        return kind

    # -- logs --------------------------------------------------------------------------------
    def stream_logs(self, kind: JobKind, obj: Mapping[str, Any]) -> None:
        """Print the lines each of the job's pods wrote since the last call, prefixed by the pod name."""
        from kubernetes.client.exceptions import ApiException

        namespace = obj["metadata"]["namespace"]
        for selector in kind.pod_selector(obj):
            try:
                pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
            except ApiException as exc:
                logger.debug("cannot list pods %s: %s", selector, exc.reason)
                continue
            for pod in pods:
                if (pod.status.phase or "") == "Pending":
                    continue
                name = pod.metadata.name
                try:
                    text = self.core.read_namespaced_pod_log(name, namespace)
                except ApiException as exc:
                    logger.debug("no log yet for pod %s: %s", name, exc.reason)
                    continue
                lines = text.splitlines()
                done = self._printed.get(name, 0)
                if len(lines) < done:  # the container restarted: its log starts over
                    done = 0
                for line in lines[done:]:
                    print(f"[{name}] {line}", file=self.log_stream)
                self._printed[name] = len(lines)
                self._tails[name] = lines[-self.failure_log_lines :]
        self.log_stream.flush()

    def pod_failures(self, kind: JobKind, obj: Mapping[str, Any]) -> list[str]:
        """Why pods of the job stopped: ``pod/container: reason (exit code): message``."""
        from kubernetes.client.exceptions import ApiException

        out: list[str] = []
        namespace = obj["metadata"]["namespace"]
        for selector in kind.pod_selector(obj):
            try:
                pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
            except ApiException:
                continue
            for pod in pods:
                for status in pod.status.container_statuses or []:
                    term = (status.state and status.state.terminated) or (status.last_state and status.last_state.terminated)
                    if term is not None and (term.exit_code or 0) != 0:
                        msg = f"{pod.metadata.name}/{status.name}: {term.reason or 'Error'} (exit code {term.exit_code})"
                        if term.message:
                            msg += f": {term.message.strip()}"
                        out.append(msg)
                    waiting = status.state and status.state.waiting
                    if waiting is not None and waiting.reason in ("ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError"):
                        out.append(f"{pod.metadata.name}/{status.name}: {waiting.reason}: {waiting.message or ''}".rstrip(": "))
        return out

    # -- the whole cycle ---------------------------------------------------------------------
    def wait(self, kind: JobKind, namespace: str, name: str) -> JobResult:
        """Poll until the job succeeds (returns) or fails / times out (raises :class:`ClusterJobError`)."""
        started = time.monotonic()
        last = ""
        while True:
            obj = self.get(kind, namespace, name)
            state = kind.state(obj)
            self.stream_logs(kind, obj)
            if state.describe() != last:
                logger.info("%s %s/%s: %s", kind.kind, namespace, name, state.describe())
                last = state.describe()
            if state.phase == "succeeded":
                return JobResult(kind.kind, name, namespace, state, time.monotonic() - started, sum(self._printed.values()))
            if state.phase == "failed":
                failures = self.pod_failures(kind, obj)
                raise ClusterJobError(self._failure_message(kind, namespace, name, state, failures))
            if time.monotonic() - started > self.timeout_s:
                raise ClusterJobError(f"{kind.kind} {namespace}/{name} did not finish within {self.timeout_s:.0f} s (last state: {state.describe()})")
            time.sleep(self.poll_interval_s)

    def run(self, manifest: Mapping[str, Any]) -> JobResult:
        """Submit ``manifest``, wait for the end, clean up per ``cleanup``; raise on failure."""
        kind = self.submit(manifest)
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        ok = False
        previous = _raise_on_sigterm()
        try:
            result = self.wait(kind, namespace, name)
            ok = True
            return result
        finally:  # also on KeyboardInterrupt / SIGTERM: a cancelled KFP run must not leave GPU pods behind
            if self.cleanup == "always" or (self.cleanup == "on_success" and ok):
                self.delete(kind, namespace, name)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _failure_message(self, kind: JobKind, namespace: str, name: str, state: JobState, failures: list[str]) -> str:
        lines = [f"{kind.kind} {namespace}/{name} failed: {state.reason or 'Failed'}" + (f": {state.message}" if state.message else "")]
        if state.detail:
            lines.append(f"  status: {state.detail}")
        lines.extend(f"  pod {f}" for f in failures)
        for pod, tail in self._tails.items():
            if tail:
                lines.append(f"  last log lines of {pod}:")
                lines.extend(f"    {line}" for line in tail[-10:])
        return "\n".join(lines)


def _raise_on_sigterm() -> Any:
    """Turn SIGTERM (a cancelled KFP run deletes the task pod) into KeyboardInterrupt so clean-up runs.

    Returns the previous handler, or None when not in the main thread (signals cannot be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


def _api_message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message", exc.body))
    except Exception:
        return str(exc.body or "")
