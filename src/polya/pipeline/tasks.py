"""Placement of pipeline tasks on the cluster (kfp-kubernetes): images, GPUs on the GPU node pool,
CPU/memory, the MinIO Secret as environment, the checkpoint PVC, and caching."""

from __future__ import annotations

from typing import Any, Literal

from polya.pipeline.config import PipelineBuildConfig, TaskResources


def place(task: Any, build: PipelineBuildConfig, image: Literal["cpu", "trainer", "vllm"], resources: TaskResources | None = None,
          gpus: int = 0, pvc: bool = False, namespace_env: bool = False) -> Any:
    """Configure ``task`` for the cluster and return it.

    ``gpus`` > 0 requests (and limits) that many ``build.gpu.resource`` and pins the pod to the GPU
    pool with its node selector and tolerations.
    """
    from kfp import kubernetes

    task.set_container_image(build.images.ref(image))
    kubernetes.set_image_pull_policy(task, build.images.pull_policy)
    task.set_caching_options(build.caching)
    if resources is not None:
        task.set_cpu_request(resources.cpu).set_cpu_limit(resources.cpu)
        task.set_memory_request(resources.memory).set_memory_limit(resources.memory)
    if gpus > 0:
        task.set_accelerator_type(build.gpu.resource).set_accelerator_limit(gpus)
        for key, value in build.gpu.node_selector.items():
            kubernetes.add_node_selector(task, key, value)
        for tol in build.gpu.tolerations:
            kubernetes.add_toleration(task, key=tol.key, operator=tol.operator, value=tol.value, effect=tol.effect)
    kubernetes.use_secret_as_env(
        task, build.s3.secret_name, {build.s3.access_key_key: "AWS_ACCESS_KEY_ID", build.s3.secret_key_key: "AWS_SECRET_ACCESS_KEY"}
    )
    task.set_env_variable("POLYA_S3_ENDPOINT", build.s3.endpoint)
    if pvc and build.checkpoints.store == "pvc":
        assert build.checkpoints.pvc_name is not None
        kubernetes.mount_pvc(task, build.checkpoints.pvc_name, build.checkpoints.mount_path)
    if namespace_env:
        kubernetes.use_field_path_as_env(task, "POD_NAMESPACE", "metadata.namespace")
    return task
