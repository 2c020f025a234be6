"""The RL stage: GRPO with verifiable rewards, TRL's GRPOTrainer inside Ray Train workers.

``run(config)`` is the one entry point; the CLI, the KFP component and the tests all call it.

Layout under the output (``<run_dir>/rl/<start>/`` by default, :class:`polya.core.layout.TrainingLayout`)::

    config.json        settings that decide what is trained (checked on resume)
    checkpoint-N/      every save_steps: HF model + tokenizer + optimizer/scheduler/RNG state
    final/             the trained policy in HF format (transformers and vLLM load it)
    metrics.jsonl      one line per step: reward mean/std, accuracy, KL, entropy, length, clip fraction,
                       tokens/s, step / rollout / learner time, verifier counters
    summary.json       the run's result

What runs where is decided in :mod:`polya.rl.topology` (learner workers, rollout, reference only
when beta > 0, the reward worker); :func:`preflight` checks everything a user can get wrong before
any weights load, and the Ray cluster's capacity is checked before any worker starts.

On CPU (a local Ray cluster started in this process)::

    polya rl --run-dir runs/demo                                # embedded SmolLM2-135M, 2 CPU workers
    polya rl --model runs/demo/sft/polya/final --max-steps 20

On GPUs, on a Ray cluster (e.g. KubeRay: ``ray_address: ray://raycluster-head:10001``)::

    polya rl --preset paper --ray-address auto --model s3://bucket/runs/exp/sft/polya/final --run-dir s3://bucket/runs/exp

Running the same command again resumes from the last complete checkpoint (``resume: auto``).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polya.core.errors import ConfigError, PolyaError, ServerError
from polya.core.manifest import record_stage
from polya.core.memory import peak_memory
from polya.core.processes import reap_descendants_on_exit
from polya.core.store import ArtifactStore, open_store
from polya.models import load_config_and_tokenizer
from polya.models.memory import MemoryEstimate, MemoryLimit
from polya.rl.config import STAGE, RlConfig
from polya.rl.data import PromptSet, load_prompts
from polya.rl.learner import LEARNER_RESULT
from polya.rl.topology import Role, Topology, build_topology, check_capacity, describe
from polya.training import checkpoints as ckpt
from polya.training import zero

logger = logging.getLogger(__name__)



@dataclass
class RlOutputs:
    """What the stage produced and where."""

    run_dir: str
    output_uri: str
    final_uri: str
    local_dir: str
    summary: dict[str, Any]


@dataclass
class Plan:
    """Everything preflight checked and resolved, before any model weights load."""

    model_path: str
    prompts: PromptSet
    topology: Topology
    deepspeed_path: Path | None
    bf16: bool
    output_store: ArtifactStore
    work_dir: Path
    remote: bool
    notes: list[str] = field(default_factory=list)


# ----- preflight ----------------------------------------------------------------------------
def check_verifier_endpoint(endpoint: str) -> None:
    """Raise :class:`ConfigError` when the verifier service at ``endpoint`` does not answer /health."""
    from polya.verify.client import VerifierClient

    client = VerifierClient(endpoint, max_retries=0, timeout_s=10.0)
    try:
        client.health()
    except ServerError as exc:
        raise ConfigError(f"reward.verifier_endpoint: {exc}; start it with `polya serve-verifier` or unset the endpoint to judge in-process") from None
    finally:
        client.close()


def check_memory(
    config: RlConfig, model_path: str, model_config: Any, prompt_length: int, *, bf16: bool, deepspeed_path: Path | None,
    limit: MemoryLimit | None = None,
) -> MemoryEstimate | None:
    """Refuse (``memory_check`` error) or warn about settings whose estimated memory exceeds this machine's
    ``limit`` (default: the cgroup limit or MemTotal; with GPUs, GPU 0) before any worker starts.

    Each learner trains ``batch_size / num_workers`` completions of ``prompt_length`` (the longest
    kept prompt) + ``max_completion_length`` tokens; a local Ray cluster (no ray_address) puts every
    learner, the driver and the reward worker on this machine. On a remote cluster the nodes' memory
    is not known here: no check. :mod:`polya.training.memory` has the estimate.
    """
    if config.memory_check == "off" or config.ray_address:
        return None
    from polya.models.memory import GIB, ModelShape, gpu_memory, memory_limit
    from polya.training.memory import MachineShare, TrainingSetup, check_training_memory

    workers = config.num_workers
    zero_opt = (zero.read_config(deepspeed_path).get("zero_optimization") or {}) if deepspeed_path else {}
    seq_len = prompt_length + config.max_completion_length
    setup = TrainingSetup(
        rows=config.per_worker_batch, seq_len=seq_len, dtype=config.dtype, mixed_bf16=bf16,
        gradient_checkpointing=config.gradient_checkpointing, zero_stage=zero_opt.get("stage") if deepspeed_path else None,
        offload_optimizer=(zero_opt.get("offload_optimizer") or {}).get("device") in ("cpu", "nvme"),
        offload_params=(zero_opt.get("offload_param") or {}).get("device") in ("cpu", "nvme"),
        world_size=workers, reference_model=config.beta > 0, generation_tokens=config.per_worker_batch * seq_len, on_gpu=config.use_gpu,
    )
    if config.use_gpu:
        limit = limit or gpu_memory(0)
        colocated = config.rollout_engine == "vllm" and config.rollout.vllm_mode == "colocate"
        total = limit.bytes if limit is not None else 0
        extra = {"vllm (colocate)": int(config.rollout.gpu_memory_utilization * total)} if colocated else {}
        share = MachineShare(extra=extra)
    else:
        limit = limit or memory_limit()
        share = MachineShare(learners=workers, other_processes=2, ray=True)
    hints = [
        "gradient_checkpointing true" if not config.gradient_checkpointing else "",
        f"beta 0 (no reference model: {ModelShape.read(model_path, model_config).params * 4 / GIB:.1f} GiB less per learner)" if config.beta > 0 else "",
        "num_workers (every local learner holds the whole model, its gradients and optimizer state)" if workers > 1 and not config.use_gpu else "",
        "dtype bfloat16" if config.dtype == "float32" else "",
    ]
    return check_training_memory(
        ModelShape.read(model_path, model_config), setup, share, mode=config.memory_check, limit=limit,
        what=(f"rl of {config.model} ({workers} learner(s) x {config.per_worker_batch} completions x "
              f"{prompt_length} prompt + {config.max_completion_length} completion tokens)"),
        rows_name="batch_size", rows_value=lambda rows: rows * workers,
        length_name="max_completion_length", length_value=lambda length: max(0, length - prompt_length),
        hints=tuple(h for h in hints if h),
    )


def preflight(config: RlConfig) -> Plan:
    """Check everything a user can get wrong, before any model weights load.

    GPUs present when asked for (locally; on a cluster the capacity check does it); vLLM and
    DeepSpeed importable and the DeepSpeed file accepted; the verifier service reachable; the model's
    config and tokenizer load; the questions load and enough of them fit max_prompt_length; the
    estimated memory fits (:func:`check_memory`); the output store is reachable.
    """
    import torch

    cuda = torch.cuda.is_available()
    if config.use_gpu and config.ray_address is None and not cuda:
        raise ConfigError(
            "use_gpu is true but this machine has no CUDA GPU and no ray_address is set; set use_gpu false "
            "(CPU workers, HF generation) or point ray_address at a Ray cluster with GPUs"
        )
    if config.rollout_engine == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ConfigError("rollout.engine vllm needs the vllm package: pip install vllm (or set rollout.engine hf)")
    if config.reward.verifier_endpoint:
        check_verifier_endpoint(config.reward.verifier_endpoint)

    bf16 = {"on": True, "off": False}.get(config.bf16, config.use_gpu)
    model_path, model_config, tokenizer = load_config_and_tokenizer(config.model)
    prompts = load_prompts(config, tokenizer)

    deepspeed_path = None
    if config.deepspeed:
        deepspeed_path = zero.resolve_path(config.deepspeed)
        steps = config.max_steps or max(1, math.ceil(len(prompts.rows) * config.group_size * config.epochs / config.batch_size))
        text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
        zero.check_config(deepspeed_path, config, per_device_batch=config.per_worker_batch, hidden_size=int(getattr(text, "hidden_size", 4096)),
                          num_training_steps=steps, bf16=bf16, world_size=config.num_workers)

    check_memory(config, model_path, model_config, prompts.longest_prompt or config.max_prompt_length, bf16=bf16, deepspeed_path=deepspeed_path)

    remote = config.remote
    if config.ray_address and not remote:
        logger.warning(
            "ray_address is set but the output %s is a local path: the learners on the cluster write there, so it must be "
            "storage every node and this driver share (else use an s3:// run_dir)", config.output_uri,
        )
    output_store = open_store(config.output_uri)
    output_store.list("config.json")  # reachability of an s3:// output, before anything starts
    return Plan(
        model_path=model_path, prompts=prompts, topology=build_topology(config), deepspeed_path=deepspeed_path, bf16=bf16,
        output_store=output_store, work_dir=ckpt.work_dir(STAGE, config.output_uri, config.local_dir, remote), remote=remote,
    )


# ----- Ray ---------------------------------------------------------------------------------
class RayCluster:
    """Connect to ``ray_address``, or start a local cluster sized for the topology (and stop it at the end)."""

    def __init__(self, config: RlConfig, topology: Topology):
        self.config = config
        self.topology = topology
        self.started_here = False

    @staticmethod
    def _runtime_env(env: dict[str, str]) -> dict[str, Any]:
        # Every worker first demotes Ray's known harmless warnings (polya.rl.ray_logging).
        return {"env_vars": env, "worker_process_setup_hook": "polya.rl.ray_logging.quiet_ray_worker"}

    def __enter__(self) -> "RayCluster":
        import ray

        env = {"OMP_NUM_THREADS": str(self.config.torch_threads or 1), "TOKENIZERS_PARALLELISM": "false"}
        if ray.is_initialized():
            return self
        if self.config.ray_address:
            try:
                ray.init(address=self.config.ray_address, runtime_env=self._runtime_env(env), log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"ray_address {self.config.ray_address!r}: cannot connect to the Ray cluster: {exc}") from None
        else:
            import torch

            need = sum(spec.total_cpus for spec in self.topology.values())
            ray.init(
                address="local",  # a new cluster, never one a stale /tmp/ray/ray_current_cluster points at
                num_cpus=max(int(math.ceil(need)), os.cpu_count() or 1),
                num_gpus=torch.cuda.device_count(),
                include_dashboard=False,
                log_to_driver=True,
                runtime_env=self._runtime_env(env),
                configure_logging=False,
            )
            # Ray's GCS, raylet and agents are this process's descendants: they end with it, SIGKILL included.
            reap_descendants_on_exit()
        self.started_here = True
        return self

    def capacity(self) -> dict[str, float]:
        import ray

        return dict(ray.cluster_resources())

    def __exit__(self, *exc: object) -> None:
        import ray

        if self.started_here and ray.is_initialized():
            ray.shutdown()


# ----- the stage ----------------------------------------------------------------------------
def manifest_config(config: RlConfig, prompts_sha256: str | None = None) -> dict[str, Any]:
    """What the run manifest records for the stage: the settings plus the prompts' digest."""
    return {**config.model_dump(mode="json"), "inputs": {"prompts_sha256": prompts_sha256}}


class RlStage:
    """One execution of the RL stage (the driver: it starts the roles and waits for the learners)."""

    def __init__(self, config: RlConfig):
        self.config = config

    # ----- resume bookkeeping (same rules as the sft stage) ------------------------------
    def _identity(self, plan: Plan) -> dict[str, Any]:
        return {**self.config.identity(), "prompts_sha256": plan.prompts.sha256}

    # ----- entry ---------------------------------------------------------------------------
    def run(self) -> RlOutputs:
        cfg = self.config
        plan = preflight(cfg)
        identity = self._identity(plan)
        digest = ckpt.identity_digest(identity)
        ckpt.check_identity(plan.output_store, cfg.resume, identity)
        done = ckpt.finished_summary(plan.output_store, cfg.resume, digest)
        if done is not None:
            logger.info("%s already holds a finished run with these settings; nothing to train", plan.output_store.uri())
            return self._outputs(plan, done)

        with record_stage(cfg.run_dir, cfg.manifest_stage, manifest_config(cfg, plan.prompts.sha256)) as record:
            summary = self._train(plan, identity, digest)
            record.artifacts = ckpt.run_artifacts(cfg.run_dir, plan.output_store, (ckpt.FINAL, ckpt.SUMMARY, ckpt.METRICS_FILE))
            record.outputs = {
                k: summary.get(k) for k in ("global_step", "reward_first", "reward_last", "accuracy_last", "verdicts", "final", "resumed_from")
            }
        return self._outputs(plan, summary)

    def _train(self, plan: Plan, identity: dict[str, Any], digest: str) -> dict[str, Any]:
        import ray

        cfg = self.config
        plan.work_dir.mkdir(parents=True, exist_ok=True)
        if plan.output_store.exists(LEARNER_RESULT):
            plan.output_store.delete(LEARNER_RESULT)  # written anew by this session's learners
        if cfg.resume == "off":
            ckpt.start_over(plan.work_dir, plan.output_store, plan.remote, (ckpt.METRICS_FILE, ckpt.SUMMARY, LEARNER_RESULT), (ckpt.FINAL,))
        checkpoint = ckpt.resumable_checkpoint(plan.work_dir, plan.output_store, plan.remote) if cfg.resume == "auto" else None
        resumed_step = ckpt.checkpoint_step(checkpoint.name) if checkpoint else None
        if resumed_step is not None:
            ckpt.trim_metrics(plan.work_dir, resumed_step)
        plan.output_store.write_json(ckpt.IDENTITY, {"identity": identity, "config": cfg.model_dump(mode="json")})

        logger.info("RL roles: %s", describe(plan.topology))
        with RayCluster(cfg, plan.topology) as cluster:
            check_capacity(plan.topology, cluster.capacity(),
                           where=f"the Ray cluster at {cfg.ray_address}" if cfg.ray_address else "the local Ray cluster")
            actors: list[Any] = []
            try:
                reward_worker, reward_info = self._start_reward(actors)
                rollout_url = self._start_rollout(plan, actors)
                started = time.monotonic()
                result = self._fit(plan, reward_worker, rollout_url, checkpoint)
                runtime = time.monotonic() - started
                verifier_totals = ray.get(reward_worker.stats.remote())
            finally:
                for actor in actors:
                    try:
                        ray.get(actor.stop.remote() if hasattr(actor, "stop") else actor.close.remote(), timeout=60)
                    except Exception:  # noqa: BLE001 - best effort; the actor is killed next
                        pass
                    ray.kill(actor)
        summary = self._summary(plan, result, runtime, resumed_step, digest, reward_info, verifier_totals)
        self._publish(plan, summary)
        return summary

    def _start_reward(self, actors: list[Any]) -> tuple[Any, dict[str, Any]]:
        import ray

        from polya.rl.reward import RewardWorker
        from polya.verify.config import TOKEN_ENV

        spec = build_topology(self.config)[Role.REWARD]
        reward = self.config.reward
        worker = ray.remote(RewardWorker).options(num_cpus=spec.cpus, name=None, max_concurrency=16).remote(
            reward, os.environ.get(TOKEN_ENV),
        )
        actors.append(worker)
        try:
            info = ray.get(worker.ready.remote())
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
            raise ServerError(f"reward worker: the verifier is not usable: {cause}") from None
        logger.info("reward worker ready: %s", info["source"])
        return worker, info

    def _start_rollout(self, plan: Plan, actors: list[Any]) -> str | None:
        spec = plan.topology.get(Role.ROLLOUT)
        if spec is None or spec.colocated_with is not None:
            return None
        import ray

        from polya.rl.rollout import VLLMRolloutServer

        cfg = self.config
        server = ray.remote(VLLMRolloutServer).options(num_gpus=spec.gpus, num_cpus=spec.cpus).remote(
            plan.model_path, cfg.rollout.gpus, cfg.rollout.server_port, cfg.rollout.gpu_memory_utilization,
            cfg.max_prompt_length + cfg.max_completion_length, "bfloat16" if plan.bf16 else "auto",
        )
        actors.append(server)
        return ray.get(server.start.remote(cfg.rollout.server_timeout_s))

    def _fit(self, plan: Plan, reward_worker: Any, rollout_url: str | None, checkpoint: Path | None) -> Any:
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        from polya.rl.learner import train_loop

        cfg = self.config
        learner = plan.topology[Role.LEARNER]
        loop_config = {
            "config": cfg.model_dump(mode="json"),
            "model_path": plan.model_path,
            "rows": plan.prompts.rows,
            "work_dir": str(plan.work_dir),
            "checkpoint": str(checkpoint) if checkpoint else None,
            "reward_worker": reward_worker,
            "deepspeed_path": str(plan.deepspeed_path) if plan.deepspeed_path else None,
            "bf16": plan.bf16,
            "rollout_url": rollout_url,
            "remote": plan.remote,
            "output_uri": plan.output_store.uri(),
        }
        trainer = TorchTrainer(
            train_loop,
            train_loop_config=loop_config,
            torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=learner.replicas, use_gpu=cfg.use_gpu,
                resources_per_worker={"CPU": learner.cpus, **({"GPU": learner.gpus} if cfg.use_gpu else {})},
            ),
            run_config=RunConfig(
                name="polya-rl", storage_path=str(plan.work_dir / "ray"), failure_config=FailureConfig(max_failures=0),
            ),
        )
        try:
            return trainer.fit()
        except Exception as exc:  # noqa: BLE001 - Ray wraps the worker's error; show its cause
            cause = _root_cause(exc)
            if isinstance(cause, PolyaError):
                raise type(cause)(str(cause)) from None
            raise

    # ----- results -------------------------------------------------------------------------
    def _summary(
        self, plan: Plan, result: Any, runtime: float, resumed_step: int | None, digest: str, reward_info: dict[str, Any],
        verifier_totals: dict[str, int],
    ) -> dict[str, Any]:
        cfg = self.config
        store = plan.output_store
        if not store.exists(LEARNER_RESULT):
            raise PolyaError(f"the learners finished without writing {store.uri(LEARNER_RESULT)}; see the worker log above")
        metrics = store.read_json(LEARNER_RESULT)
        records = store.read_jsonl(ckpt.METRICS_FILE) if store.exists(ckpt.METRICS_FILE) else []
        rewards = [r["reward_mean"] for r in records if r.get("reward_mean") is not None]
        gpus = sum(s.total_gpus for s in plan.topology.values()) if cfg.use_gpu else 0
        return {
            **cfg.provenance("rl", gpus),
            "model": cfg.model,
            "model_path": plan.model_path,
            "questions": len(plan.prompts.rows),
            "questions_source": plan.prompts.source,
            "prompts_dropped_too_long": plan.prompts.dropped_too_long,
            "prompts_sha256": plan.prompts.sha256,
            "topology": {role.value: {"worker": s.worker, "replicas": s.replicas, "cpus": s.cpus, "gpus": s.gpus,
                                      "colocated_with": s.colocated_with.value if s.colocated_with else None}
                         for role, s in plan.topology.items()},
            "rollout_engine": cfg.rollout_engine,
            "reward_source": reward_info.get("source"),
            "group_size": cfg.group_size,
            "batch_size": cfg.batch_size,
            "beta": cfg.beta,
            "world_size": metrics.get("world_size"),
            "global_step": metrics.get("global_step"),
            "max_steps": metrics.get("max_steps"),
            "epoch": metrics.get("epoch"),
            "train_loss": metrics.get("train_loss"),
            "tokens": metrics.get("tokens"),
            "reward_first": rewards[0] if rewards else None,
            "reward_last": rewards[-1] if rewards else None,
            "accuracy_last": records[-1].get("accuracy") if records else None,
            "mean_step_s": round(sum(r["step_s"] for r in records) / len(records), 4) if records else None,
            "verifier": verifier_totals,
            "verdicts": verifier_totals.get("verdicts", 0),
            "session_runtime_s": round(runtime, 3),
            "train_runtime_s": metrics.get("train_runtime_s"),
            **peak_memory(),  # the driver's; the learner's peak is the worker's own
            "peak_rss_mib_learner0": metrics.get("peak_rss_mib_rank0"),
            "resumed_from": f"checkpoint-{resumed_step}" if resumed_step is not None else None,
            "final": plan.output_store.uri(ckpt.FINAL),
            "local_dir": str(plan.work_dir),
            "identity_sha256": digest,
            "completed": True,
        }

    def _publish(self, plan: Plan, summary: dict[str, Any]) -> None:
        plan.output_store.write_json(ckpt.SUMMARY, summary)
        logger.info(
            "trained %s steps (reward %s -> %s, %s verdicts from %s); final policy at %s",
            summary["global_step"], summary["reward_first"], summary["reward_last"], summary["verdicts"], summary["reward_source"], summary["final"],
        )

    def _outputs(self, plan: Plan, summary: dict[str, Any]) -> RlOutputs:
        return RlOutputs(
            run_dir=self.config.run_dir, output_uri=plan.output_store.uri(),
            final_uri=str(summary.get("final") or plan.output_store.uri(ckpt.FINAL)), local_dir=str(plan.work_dir), summary=summary,
        )


def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        nxt = getattr(current, "cause", None) or current.__cause__
        if not isinstance(nxt, BaseException):
            break
        current = nxt
    return current


def run(config: RlConfig) -> RlOutputs:
    """Run (or resume) GRPO on ``config.model`` with rewards from the verifier."""
    return RlStage(config).run()
