"""The RL roles and what each one runs on: the one place that maps role -> Ray worker -> resources.

=========  ===============================================  ===========================  ============
role       Ray worker                                       resources (per replica)      replicas
=========  ===============================================  ===========================  ============
learner    Ray Train TorchTrainer worker running             cpus_per_worker CPU,         num_workers
           :func:`polya.rl.learner.train_loop` (TRL          + 1 GPU with use_gpu
           GRPOTrainer; DDP over gloo/NCCL, or DeepSpeed)
rollout    hf / vllm colocate: inside each learner worker    the learner's                (colocated)
           vllm server: :class:`polya.rl.rollout.            rollout.gpus GPU, 1 CPU      1
           VLLMRolloutServer` actor (TRL's vLLM server)
reference  inside each learner worker (TRL's ref_model);     the learner's                (colocated)
           exists only when beta > 0
reward     :class:`polya.rl.reward.RewardWorker` actor       reward.verifier_cpus CPU     1
           (the verifier: in-process judge pool or a
           verifier service client)
=========  ===============================================  ===========================  ============

:func:`check_capacity` compares the sum with ``ray.cluster_resources()`` before any worker starts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

from polya.core.errors import ConfigError
from polya.rl.config import RlConfig


class Role(str, enum.Enum):
    """What a part of the RL system does."""

    LEARNER = "learner"
    ROLLOUT = "rollout"
    REFERENCE = "reference"
    REWARD = "reward"


@dataclass(frozen=True)
class RoleSpec:
    """One role: which Ray worker runs it, how many, and what each reserves in the cluster."""

    role: Role
    worker: str
    replicas: int
    cpus: float = 0.0
    gpus: float = 0.0
    colocated_with: Role | None = None
    """Runs inside another role's processes (and shares its resources): reserves nothing itself."""

    @property
    def total_cpus(self) -> float:
        return 0.0 if self.colocated_with else self.cpus * self.replicas

    @property
    def total_gpus(self) -> float:
        return 0.0 if self.colocated_with else self.gpus * self.replicas


Topology = dict[Role, RoleSpec]


def build_topology(config: RlConfig) -> Topology:
    """The roles this config needs, with their workers and resources (the reference only when beta > 0)."""
    learner = RoleSpec(
        Role.LEARNER,
        worker="ray.train.torch.TorchTrainer -> polya.rl.learner.train_loop (TRL GRPOTrainer"
        + (f", DeepSpeed {config.deepspeed})" if config.deepspeed else ", DDP)"),
        replicas=config.num_workers,
        cpus=config.cpus_per_worker,
        gpus=1.0 if config.use_gpu else 0.0,
    )
    topology: Topology = {Role.LEARNER: learner}
    if config.rollout_engine == "vllm" and config.rollout.vllm_mode == "server":
        topology[Role.ROLLOUT] = RoleSpec(
            Role.ROLLOUT, worker="polya.rl.rollout.VLLMRolloutServer actor (vllm serve for TRL)", replicas=1, cpus=1.0,
            gpus=float(config.rollout.gpus),
        )
    else:
        engine = "vLLM engine (colocate)" if config.rollout_engine == "vllm" else "transformers generate"
        topology[Role.ROLLOUT] = RoleSpec(Role.ROLLOUT, worker=f"{engine} in each learner worker", replicas=config.num_workers,
                                          colocated_with=Role.LEARNER)
    if config.beta > 0:
        topology[Role.REFERENCE] = RoleSpec(Role.REFERENCE, worker="frozen copy of the initial policy in each learner worker",
                                            replicas=config.num_workers, colocated_with=Role.LEARNER)
    source = f"verifier service {config.reward.verifier_endpoint}" if config.reward.verifier_endpoint else (
        f"in-process judge pool of {config.reward.judge_workers}"
    )
    topology[Role.REWARD] = RoleSpec(Role.REWARD, worker=f"polya.rl.reward.RewardWorker actor ({source})", replicas=1,
                                     cpus=config.reward.verifier_cpus)
    return topology


def required_resources(topology: Topology) -> dict[str, float]:
    """CPUs and GPUs the whole topology reserves."""
    return {
        "CPU": sum(spec.total_cpus for spec in topology.values()),
        "GPU": sum(spec.total_gpus for spec in topology.values()),
    }


def check_capacity(topology: Topology, cluster: Mapping[str, float], where: str = "the Ray cluster") -> None:
    """Raise :class:`ConfigError` when ``cluster`` (``ray.cluster_resources()``) cannot hold every role at once."""
    need = required_resources(topology)
    short = [kind for kind, amount in need.items() if amount > float(cluster.get(kind, 0.0)) + 1e-9]
    if not short:
        return
    lines = [f"{where} cannot hold the RL roles: it has "
             + ", ".join(f"{float(cluster.get(k, 0.0)):g} {k}" for k in need) + "; the roles ask for:"]
    for spec in topology.values():
        if spec.colocated_with is None:
            lines.append(f"  {spec.role.value}: {spec.replicas} x ({spec.cpus:g} CPU, {spec.gpus:g} GPU) -> {spec.worker}")
    lines.append("  total: " + ", ".join(f"{v:g} {k}" for k, v in need.items()))
    hints = []
    if "GPU" in short:
        hints.append("GPUs are asked for (use_gpu / rollout.gpus) where the cluster has "
                     f"{float(cluster.get('GPU', 0.0)):g}: set use_gpu false for CPU workers, or point ray_address at a cluster with GPUs")
    if "CPU" in short:
        hints.append("lower num_workers / cpus_per_worker / reward.verifier_cpus, or add nodes")
    raise ConfigError("\n".join(lines + [f"fix: {h}" for h in hints]))


def describe(topology: Topology) -> str:
    """One line per role, for the log."""
    parts = []
    for spec in topology.values():
        where = f"colocated with {spec.colocated_with.value}" if spec.colocated_with else f"{spec.cpus:g} CPU + {spec.gpus:g} GPU each"
        parts.append(f"{spec.role.value}: {spec.replicas} x {spec.worker} [{where}]")
    return "; ".join(parts)
