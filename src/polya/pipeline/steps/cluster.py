"""A step whose training runs as a cluster job: the job's target, submission, and the wait.

A step whose ``cluster`` parameter is set does not train in its own pod: it stages the inputs
under an ``s3://`` prefix, submits a TrainJob or PyTorchJob (SFT) or a RayJob (RL), waits for it,
and reads the final checkpoint back. Staging and checkpoint folders are named by a digest of the step's inputs,
so a retried task resumes the same checkpoints.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from polya.core.config import parse_settings_text, validate_config
from polya.core.errors import ConfigError
from polya.pipeline.config import ClusterTarget


def parse_cluster(cluster: str | None) -> ClusterTarget | None:
    """The component's ``cluster`` parameter: JSON of a :class:`ClusterTarget`, or empty (run in the pod)."""
    data = parse_settings_text(cluster, "cluster")
    if not data:
        return None
    return validate_config(ClusterTarget, data, "component parameter 'cluster'")


def training_run(stage: str, checkpoint_root: str | None, cluster: str | None, **inputs: Any) -> tuple[str, str, ClusterTarget | None]:
    """A training step's ``(digest, run_dir, cluster target)``: the run directory is named by the digest
    of the step's inputs under the checkpoint root, so a retried task resumes the same checkpoints."""
    from polya.core.layout import join_uri
    from polya.pipeline.steps.common import input_digest, work_root

    digest = input_digest(stage, **inputs)
    return digest, join_uri(work_root(checkpoint_root), digest), parse_cluster(cluster)


def require_s3(root: str, target: ClusterTarget) -> None:
    """A cluster job exchanges data through MinIO: the checkpoint root must be an ``s3://`` URI."""
    if not root.startswith("s3://"):
        raise ConfigError(f"a {target.kind} exchanges data through MinIO: checkpoint_root must be an s3:// URI (got {root!r}); set checkpoints.store: minio")


def submit_and_wait(target: ClusterTarget, name: str, stage: str, args: list[str], config: BaseModel, config_file: str,
                    api_client: Any | None = None) -> Any:
    """Run ``args`` (e.g. ``polya rl --config <config_file>``) as the target's job, with ``config`` written to
    ``config_file`` in every pod first, and wait for it.

    The settings travel as base64 in ``$POLYA_STAGE_CONFIG_B64`` (:mod:`polya.pipeline.launch`), so
    their text reaches the stage byte for byte whatever shells the job's command passes through.
    """
    from polya.pipeline.jobs import JobRunner, JobSpec, current_namespace, job_manifest
    from polya.pipeline.launch import CONFIG_ENV, encode_config, stage_command

    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    spec = JobSpec(
        name=name, namespace=target.namespace or current_namespace(), image=target.image, command=stage_command(args, config_file),
        env={CONFIG_ENV: encode_config(text)}, gpus=target.gpus, cpu=target.cpu, memory=target.memory, gpu_pool=target.gpu,
        s3=target.s3, pull_policy=target.pull_policy, service_account=target.service_account, labels={"polya.dev/stage": stage},
        ttl_seconds_after_finished=target.ttl_s, active_deadline_s=target.timeout_s,
    )
    runner = JobRunner(api_client, poll_interval_s=target.poll_interval_s, timeout_s=target.timeout_s)
    return runner.run(job_manifest(target, spec))
