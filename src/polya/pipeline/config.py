"""``PipelineBuildConfig``: how the Pólya pipeline is laid onto a cluster (``polya pipeline compile --help``).

These settings are fixed when the pipeline is compiled: images, the GPU node pool (resource
name, node selector, tolerations), the MinIO secret, where checkpoints live, how many nodes the
SFT and RL stages use and with which operator (Kubeflow Trainer v2 TrainJob or Training Operator
v1 PyTorchJob for SFT, KubeRay RayJob for RL), and which arms are built (the same arm names as
``polya run``), with the outer bootstrap loop's iterations unrolled into tasks. What a person changes per run (model, data,
heuristics, n, rounds, budgets, RL settings, benchmarks) are the pipeline's run-time parameters,
documented in ``pipelines/polya.py``.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from polya.core.config import StageConfig, http_url
from polya.core.errors import ConfigError
from polya.experiment.arms import check_arms, valid_arm_names
from polya.experiment.config import OuterLoopConfig

PIPELINE_ARMS = ("base", "rl", "polya_sft", "polya_sft_rl", "star_sft", "star_sft_rl")
"""The arms the pipeline builds by default: the paper's comparison of base, vanilla RL, Pólya and STaR (each SFT and SFT + RL)."""

REPORT_SLOTS = 12
"""Evaluation artifacts the report component takes (KFP passes no lists of artifacts between tasks)."""

GENERATE_SHARD_SLOTS = 16
"""Generations artifacts the merge component takes: the most generate shards a pipeline can have."""

IMAGE_TAG = "0.1.0"
"""Tag of the images ``scripts/build-images.sh`` builds (and the Helm chart assumes)."""

_KUBERNETES_NAMES = {
    "DNS label": re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
    "DNS subdomain": re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
}


def kubernetes_name(kind: Literal["DNS label", "DNS subdomain"], example: str) -> AfterValidator:
    """A check for ``Annotated[str, kubernetes_name("DNS label", "polya-gsm8k")]``: a name Kubernetes accepts."""

    def check(value: str) -> str:
        if len(value) > (63 if kind == "DNS label" else 253) or not _KUBERNETES_NAMES[kind].match(value):
            allowed = "lower-case letters, digits and '-'" + (" ('.' between parts)" if kind == "DNS subdomain" else "")
            raise ValueError(f"must be a {kind} ({allowed}) such as {example}, got {value!r}")
        return value

    return AfterValidator(check)

GPU_CONSTRAINTS = "docker/constraints-gpu.txt"
"""The pinned Python packages of the CUDA images (trainer, vllm-server), relative to the source tree."""


@functools.lru_cache(maxsize=None)
def image_ray_version() -> str:
    """The Ray the trainer image installs: the ``ray==`` pin of :data:`GPU_CONSTRAINTS` (a RayJob's ``rayVersion``)."""
    from polya.pipeline.loader import repo_root

    path = repo_root() / GPU_CONSTRAINTS
    if not path.is_file():
        raise ConfigError(f"{path} not found: it pins the Ray of the trainer image (a RayJob's rayVersion); run from the polya source tree or set POLYA_REPO_DIR")
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"ray(?:\[[\w,]+\])?==([\w.+-]+)", line.strip())
        if match:
            return match.group(1)
    raise ConfigError(f"{path} pins no ray==<version>: the trainer image's Ray must be pinned there (a RayJob's rayVersion follows it)")


class ImagesConfig(StageConfig):
    """Container images of the pipeline's tasks and cluster jobs."""

    registry: str = Field(default="", description="Registry prefix put before every image name (e.g. ghcr.io/acme/); empty: the local names that kind loads.")
    tag: str = Field(default=IMAGE_TAG, description="Tag of every image.")
    cpu: str = Field(default="polya/cpu", description="Image of the CPU tasks (data, decontaminate, select, report) and of the whole pipeline on kind.")
    trainer: str = Field(default="polya/trainer", description="Image of the GPU training tasks and jobs (SFT, RL, eval): torch, DeepSpeed, TRL, Ray, vLLM.")
    vllm: str = Field(default="polya/vllm-server", description="Image of the generate task when it starts vLLM inside its own pod.")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(default="IfNotPresent", description="imagePullPolicy of the tasks and jobs (kind: IfNotPresent uses the loaded images).")

    def ref(self, which: Literal["cpu", "trainer", "vllm"]) -> str:
        """The full image reference, e.g. ``polya/trainer:0.1.0``."""
        return f"{self.registry}{getattr(self, which)}:{self.tag}"


class Toleration(StageConfig):
    """One Kubernetes toleration."""

    key: str | None = Field(default=None, description="Taint key to tolerate (unset with operator Exists: every taint).")
    operator: Literal["Equal", "Exists"] = Field(default="Exists", description="Equal: match value too; Exists: any value.")
    value: str | None = Field(default=None, description="Taint value (operator Equal only).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(default=None, description="Taint effect to tolerate (unset: all).")

    def as_k8s(self) -> dict[str, str]:
        """The toleration as a Kubernetes object (unset fields left out)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class GpuPoolConfig(StageConfig):
    """Where GPU tasks and job pods are scheduled."""

    resource: str = Field(default="nvidia.com/gpu", description="Extended resource name of one GPU.")
    node_selector: dict[str, str] = Field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"},
        description="Node labels a GPU pod must match (default: the label NVIDIA's GPU feature discovery sets).",
    )
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        validate_default=True,
        description="Taints of the GPU node pool that GPU pods tolerate.",
    )


class S3Config(StageConfig):
    """MinIO (or any S3 server): credentials come from a Kubernetes Secret, never from the pipeline spec."""

    endpoint: Annotated[str, http_url("http://polya-minio:9000")] = Field(default="http://polya-minio:9000", description="S3 endpoint URL seen from inside the cluster (sets POLYA_S3_ENDPOINT).")
    secret_name: str = Field(default="polya-minio", description="Kubernetes Secret holding the access and secret keys.")
    access_key_key: str = Field(default="rootUser", description="Key in the Secret of the access key (becomes AWS_ACCESS_KEY_ID); the chart's MinIO Secret calls it rootUser.")
    secret_key_key: str = Field(default="rootPassword", description="Key in the Secret of the secret key (becomes AWS_SECRET_ACCESS_KEY); the chart's MinIO Secret calls it rootPassword.")
    staging_uri: str = Field(
        default="s3://polya/pipeline-runs",
        description="s3:// prefix under which multi-node jobs exchange datasets and checkpoints (one folder per pipeline run and task).",
    )

    @field_validator("staging_uri")
    @classmethod
    def _s3(cls, value: str) -> str:
        if not value.startswith("s3://") or len(value.rstrip("/")) <= len("s3://"):
            raise ValueError("s3.staging_uri must be an s3://bucket/prefix URI such as s3://polya/pipeline-runs")
        return value.rstrip("/")


class CheckpointsConfig(StageConfig):
    """Where SFT and RL checkpoints are kept while training (beside the KFP model artifact)."""

    store: Literal["minio", "pvc"] = Field(
        default="minio",
        description="minio: under s3.staging_uri (needed by multi-node jobs); pvc: on the PersistentVolumeClaim pvc_name mounted in the task pod.",
    )
    pvc_name: str | None = Field(default=None, description="PersistentVolumeClaim for store 'pvc' (ReadWriteOnce is enough for single-node stages).")
    mount_path: str = Field(default="/checkpoints", description="Where the claim is mounted in the task pod.")

    @model_validator(mode="after")
    def _pvc_named(self) -> "CheckpointsConfig":
        if self.store == "pvc" and not self.pvc_name:
            raise ValueError("checkpoints.store 'pvc' needs checkpoints.pvc_name (an existing PersistentVolumeClaim)")
        return self


class TaskResources(StageConfig):
    """Resources of one pipeline task's pod."""

    gpus: int = Field(default=0, ge=0, le=16, description="GPUs requested (and limited) for the task pod; 0: a CPU pod.")
    cpu: str = Field(default="2", description="CPU request (and limit) of the task pod, e.g. '2' or '500m'.")
    memory: str = Field(default="8Gi", description="Memory request (and limit) of the task pod, e.g. '8Gi'.")


class GenerateTaskConfig(TaskResources):
    """The generate task: vLLM inside its own pod, or the Helm chart's vLLM service."""

    gpus: int = Field(default=1, ge=0, le=16, description="GPUs of the generate pod when it starts vLLM itself (ignored with vllm_endpoint).")
    cpu: str = Field(default="8", description="CPU request (and limit) of the generate pod.")
    memory: str = Field(default="32Gi", description="Memory request (and limit) of the generate pod.")
    vllm_endpoint: str | None = Field(
        default=None,
        description="Use a running vLLM service (e.g. the chart's http://polya-vllm:8000/v1) instead of starting vLLM in the task pod; then the pod needs no GPU.",
    )
    shards: int = Field(
        default=1, ge=1, le=GENERATE_SHARD_SLOTS,
        description=(
            "Generate tasks that split the questions between them (polya.data.sharding: by a hash of the question id), each with its own "
            "vLLM and GPUs, run side by side; a merge task joins their generations for select (1: one generate task). The teacher's "
            "generation of distill arms is split alike; the outer loop's iterations 2..K keep one task. token_budget applies to each shard."
        ),
    )


class SftTaskConfig(TaskResources):
    """The SFT task: in its own pod (nodes 1) or as a TrainJob (or PyTorchJob) over several GPU nodes."""

    gpus: int = Field(default=1, ge=0, le=16, description="GPUs per node (the task pod's GPUs when nodes is 1, each job pod's otherwise).")
    cpu: str = Field(default="8", description="CPU per training pod.")
    memory: str = Field(default="64Gi", description="Memory per training pod.")
    job_kind: Literal["trainjob", "pytorchjob"] = Field(
        default="trainjob",
        description="trainjob: a Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1) on the ClusterTrainingRuntime named by runtime; "
        "pytorchjob: a Training Operator v1 PyTorchJob (kubeflow.org/v1), for clusters that run the older operator.",
    )
    runtime: Annotated[str, kubernetes_name("DNS subdomain", "torch-distributed")] = Field(
        default="torch-distributed",
        description="ClusterTrainingRuntime a TrainJob references (Kubeflow Trainer installs torch-distributed; the Helm chart can install its own, see trainer.runtime).",
    )
    nodes: int = Field(default=1, ge=1, le=512, description="Nodes to train on; above 1 the task submits a job of job_kind (torchrun + DeepSpeed on every node) and waits for it.")

class RlTaskConfig(TaskResources):
    """The RL task: in its own pod (workers 0) or as a KubeRay RayJob with GPU workers."""

    gpus: int = Field(default=1, ge=0, le=16, description="GPUs per pod (the task pod's when workers is 0, each Ray worker's otherwise).")
    cpu: str = Field(default="8", description="CPU per pod.")
    memory: str = Field(default="64Gi", description="Memory per pod.")
    workers: int = Field(default=0, ge=0, le=512, description="Ray GPU worker pods; 0 runs `polya rl` in the task pod, above 0 the task submits a KubeRay RayJob (head + workers).")


class PipelineBuildConfig(StageConfig):
    """How the Pólya pipeline is compiled for a cluster: images, GPU pool, storage, node counts, arms."""

    name: Annotated[str, kubernetes_name("DNS label", "polya-gsm8k")] = Field(default="polya", description="Pipeline name shown in the KFP UI.")
    images: ImagesConfig = Field(default_factory=ImagesConfig, description="Container images.")
    gpu: GpuPoolConfig = Field(default_factory=GpuPoolConfig, description="GPU node pool placement.")
    s3: S3Config = Field(default_factory=S3Config, description="MinIO endpoint, credentials Secret and staging prefix.")
    checkpoints: CheckpointsConfig = Field(default_factory=CheckpointsConfig, description="Where checkpoints live.")
    generate: GenerateTaskConfig = Field(default_factory=GenerateTaskConfig, description="The generate task.")
    sft: SftTaskConfig = Field(default_factory=SftTaskConfig, description="The SFT tasks (one per arm).")
    rl: RlTaskConfig = Field(default_factory=RlTaskConfig, description="The RL tasks (one per *rl arm).")
    eval: TaskResources = Field(
        default_factory=lambda: {"gpus": 1, "cpu": "8", "memory": "32Gi"}, validate_default=True, description="The eval tasks (vLLM sampling on GPU)."
    )
    arms: list[str] = Field(
        default_factory=lambda: list(PIPELINE_ARMS),
        description=f"Arms to build and evaluate, named as in polya run: base, rl, <dataset>_sft, <dataset>_sft_rl ({', '.join(valid_arm_names())}); at most {REPORT_SLOTS}.",
    )
    outer_loop: OuterLoopConfig = Field(
        default_factory=OuterLoopConfig,
        description=(
            "The outer bootstrap loop, as in polya run: K iterations of generate -> select -> SFT per loop dataset (the arms' SFT "
            "datasets but distill and wrong_answer), each generating with the previous SFT model; unrolled into tasks at compile time (off: 1)."
        ),
    )
    teacher_endpoint: str | None = Field(
        default=None,
        description="distill arms: a running OpenAI-compatible server of the teacher model (e.g. a second vLLM service); unset: the teacher's generate task starts vLLM for the teacher_model parameter.",
    )
    verifier_endpoint: str | None = Field(default=None, description="A running verifier service (e.g. the chart's http://polya-verifier:8080) the stages judge on; unset: in-process judges.")
    namespace: str | None = Field(default=None, description="Namespace of the cluster jobs (TrainJobs / PyTorchJobs, RayJobs); unset: the task pod's own namespace.")
    service_account: str | None = Field(default=None, description="Service account of the job pods; unset: the namespace default.")
    job_timeout_s: int = Field(
        default=7 * 24 * 3600, ge=60,
        description="Seconds a cluster job may run: the task then deletes it and fails, and the job carries it as activeDeadlineSeconds so the operator stops it even without the task.",
    )
    job_ttl_s: int = Field(
        default=60, ge=0, le=24 * 3600,
        description="Seconds a finished job (its pods; a RayJob's Ray cluster) is kept before the operator deletes it, should the task not delete it first. "
        "A failed PyTorchJob's still-running pods are removed at once (cleanPodPolicy Running), so failed jobs release their GPUs promptly.",
    )
    caching: bool = Field(default=True, description="Let KFP reuse the outputs of finished tasks when a run is repeated with the same inputs.")

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, value: list[str]) -> list[str]:
        value = check_arms(value)
        if len(value) > REPORT_SLOTS:
            raise ValueError(f"at most {REPORT_SLOTS} arms fit the report task's evaluation slots, got {len(value)}")
        return value

    @model_validator(mode="after")
    def _jobs_need_minio(self) -> "PipelineBuildConfig":
        if (self.sft.nodes > 1 or self.rl.workers > 0) and self.checkpoints.store == "pvc":
            raise ValueError(
                "multi-node jobs (sft.nodes > 1 or rl.workers > 0) exchange data through MinIO: set checkpoints.store: minio "
                "(a PVC would have to be ReadWriteMany and mounted in every job pod)"
            )
        return self


class ClusterTarget(StageConfig):
    """How one step submits its multi-node job; the pipeline passes it to the component as JSON."""

    kind: Literal["trainjob", "pytorchjob", "rayjob"] = Field(
        description="trainjob (Kubeflow Trainer v2) or pytorchjob (Training Operator v1): SFT with torchrun + DeepSpeed; rayjob: RL on a KubeRay cluster.",
    )
    size: int = Field(ge=1, le=512, description="Nodes of the TrainJob / PyTorchJob, or GPU worker pods of the RayJob.")
    runtime: str = Field(default="torch-distributed", description="trainjob: the ClusterTrainingRuntime it references.")
    ray_version: str = Field(default_factory=image_ray_version, description="rayjob: the Ray of the image (rayVersion); default: the pin in docker/constraints-gpu.txt.")
    ttl_s: int = Field(default=60, ge=0, description="Seconds a finished job is kept before the operator deletes it.")
    image: str = Field(description="Image of every job pod.")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(default="IfNotPresent", description="imagePullPolicy of the job pods.")
    namespace: str | None = Field(default=None, description="Namespace of the job; unset: the task pod's own.")
    gpus: int = Field(default=1, ge=0, le=16, description="GPUs per job pod.")
    cpu: str = Field(default="8", description="CPU request and limit per job pod.")
    memory: str = Field(default="64Gi", description="Memory request and limit per job pod.")
    gpu: GpuPoolConfig = Field(default_factory=GpuPoolConfig, description="GPU node pool placement.")
    s3: S3Config = Field(default_factory=S3Config, description="MinIO endpoint and credentials Secret.")
    service_account: str | None = Field(default=None, description="Service account of the job pods.")
    timeout_s: int = Field(default=7 * 24 * 3600, ge=1, description="Seconds the job may run before it is deleted and the task fails.")
    poll_interval_s: float = Field(default=15.0, gt=0, description="Seconds between status polls.")


def checkpoint_root(build: PipelineBuildConfig) -> str:
    """Where the SFT / RL tasks keep their checkpoints: the PVC mount, or the MinIO staging prefix."""
    return build.checkpoints.mount_path if build.checkpoints.store == "pvc" else build.s3.staging_uri


def cluster_target(build: PipelineBuildConfig, stage: Literal["sft", "rl"]) -> ClusterTarget | None:
    """The job settings of a multi-node SFT / RL task, or ``None`` when the stage runs in its pod."""
    res: TaskResources
    if stage == "sft":
        if build.sft.nodes <= 1:
            return None
        kind, size, res = build.sft.job_kind, build.sft.nodes, build.sft
    else:
        if build.rl.workers <= 0:
            return None
        kind, size, res = "rayjob", build.rl.workers, build.rl
    return ClusterTarget(
        kind=kind, size=size, runtime=build.sft.runtime, image=build.images.ref("trainer"), pull_policy=build.images.pull_policy,
        namespace=build.namespace, gpus=res.gpus, cpu=res.cpu, memory=res.memory, gpu=build.gpu, s3=build.s3,
        service_account=build.service_account, timeout_s=build.job_timeout_s, ttl_s=build.job_ttl_s,
    )
