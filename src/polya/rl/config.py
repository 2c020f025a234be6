"""``RlConfig``: every setting of the RL stage (``polya rl --help``).

Pure value checks happen here (pydantic, before anything is read): the group size divides the
batch, the batch splits evenly over the learner workers, a DeepSpeed preset or vLLM rollouts are
asked for only together with GPUs. The checks that need the machine, the cluster or the network
(GPUs present, the Ray cluster has the capacity the roles ask for, the verifier answers, the model
and the questions load) run in :func:`polya.rl.stage.preflight`, still before any weights load.

Two presets fill every setting the user did not give:

- ``cpu`` (the default): the embedded SmolLM2-135M model on offline synthetic questions, 2 CPU
  workers in a local Ray cluster, HF generation, short prompts and answers;
- ``paper``: the paper's GRPO recipe (group size 16, 1,024-token prompts, 3,072-token responses,
  no KL term, one epoch of DAPO-Math-17K) on GPUs with vLLM rollouts and DeepSpeed ZeRO-3.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Mapping

from pydantic import Field, model_validator

from polya.core.config import StageConfig, location
from polya.core.layout import RunLayout, TrainingLayout
from polya.data.config import DataConfig
from polya.training.config import TrainingConfig
from polya.verify.config import JudgeSettings

STAGE = "rl"

GRPO_OPTIMIZER: dict[str, Any] = {"learning_rate": 1e-6, "lr_scheduler": "constant", "warmup_ratio": 0.0, "epochs": 1.0, "logging_steps": 1}
"""GRPO's usual optimizer setting (TRL's and verl's defaults): small constant learning rate, no warm-up, one pass."""

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        **GRPO_OPTIMIZER,
        # 2 learners x 4 completions: the field defaults (group 16, batch 32) need about 36 GiB by polya's
        # estimate and were killed by Ray's memory monitor on the 24 GiB reference box (learners at 10 GB each).
        "group_size": 4,
        "batch_size": 8,
        "max_steps": 8,
        "save_steps": 4,
    },
    "paper": {
        **GRPO_OPTIMIZER,
        "data": {
            "source": "hf:open-r1/DAPO-Math-17k-Processed",
            "subset": "en",
            "columns": {"question": "prompt", "answer": "solution"},
        },
        "group_size": 16,
        "batch_size": 512,
        "max_prompt_length": 1024,
        "max_completion_length": 3072,
        "max_steps": None,
        "beta": 0.0,
        "epsilon": 0.2,
        "epsilon_high": 0.28,
        "loss_type": "dapo",
        "temperature": 1.0,
        "use_gpu": True,
        "num_workers": 8,
        "rollout": {"engine": "vllm", "vllm_mode": "colocate", "gpu_memory_utilization": 0.3},
        "deepspeed": "zero3",
        "bf16": "on",
        "dtype": "bfloat16",
        "gradient_checkpointing": True,
        "save_steps": 50,
        "torch_threads": 0,
    },
}
"""Values each preset puts under the user's settings (the user's win); the other fields keep their defaults.

Both start from :data:`GRPO_OPTIMIZER`; ``cpu`` adds budgets a CPU finishes in minutes. The paper reports group size, lengths, no KL, one epoch of DAPO-Math-17K and verl with vLLM; the
batch size, learning rate and clipping are not public: 512 completions (32 prompts x 16) per step,
1e-6 and DAPO's clip-higher (0.2 / 0.28) with token-level loss are verl's DAPO recipe values.
"""


class RewardConfig(JudgeSettings):
    """How completions are rewarded: the verifier's math verdict, plus an optional format reward.

    Every field but where and how the verifier runs is part of the RL identity, so a new reward
    weight decides what is trained (a resumed run with another weight is refused). The judge
    settings are those of every stage that judges (:class:`polya.verify.config.JudgeSettings`).
    """

    OPERATIONAL: ClassVar[frozenset[str]] = frozenset({"verifier_endpoint", "judge_workers", "verifier_cpus"})
    RENAMED: ClassVar[Mapping[str, str]] = {"verifier_workers": "judge_workers"}

    correct: float = Field(default=1.0, gt=0.0, le=100.0, description="Reward for an answer the verifier judges correct (incorrect: 0).")
    format: float = Field(
        default=0.0, ge=0.0, le=100.0,
        description="Extra reward when the verifier finds a final answer statement (\\boxed{}, 'The answer is ...'), right or wrong; 0: off (the paper's setting).",
    )
    judge_workers: int = Field(default=1, ge=1, le=512, description="Judge processes of the reward worker's in-process pool (ignored with verifier_endpoint).")
    rejudge_timeout_s: float = Field(
        default=30.0, ge=0, le=600,
        description=(
            "A completion whose verdict is undecided (timeout / error) is judged once more with this many CPU seconds and "
            "rewarded 0 only if it stays undecided; 0: rewarded 0 at once. metrics.jsonl counts both (rejudged, undecided)."
        ),
    )
    verifier_cpus: float = Field(
        default=1.0, ge=0.0, le=512.0, description="CPUs the reward worker (a Ray actor) reserves in the cluster; 0: it shares the learners' CPUs."
    )


class RolloutConfig(StageConfig):
    """The rollout role: who generates the group of completions per prompt."""

    engine: Literal["auto", "hf", "vllm"] = Field(
        default="auto",
        description="hf: transformers generate inside each learner worker (CPU path, tests); vllm: vLLM (GPUs only); auto: vllm with GPUs, hf without.",
    )
    vllm_mode: Literal["colocate", "server"] = Field(
        default="colocate",
        description="colocate: a vLLM engine inside each learner worker, sharing its GPU; server: a separate Ray actor runs TRL's vLLM server on its own GPUs and receives the weights after every step.",
    )
    gpus: int = Field(default=1, ge=1, le=64, description="GPUs of the rollout server (vllm_mode server), used for tensor parallelism.")
    gpu_memory_utilization: float = Field(
        default=0.3, gt=0.0, le=0.95, description="Share of each GPU vLLM may take (colocate: leave the rest to the learner)."
    )
    server_port: int = Field(default=8000, ge=1024, le=65535, description="HTTP port of the rollout server (vllm_mode server).")
    server_timeout_s: float = Field(default=600.0, gt=0.0, description="Seconds the learners wait for the rollout server to come up.")


class RlConfig(TrainingConfig):
    """GRPO with verifiable rewards: TRL's GRPOTrainer in Ray Train workers, rewards from the verifier."""

    PRESETS = PRESETS
    OPERATIONAL: ClassVar[frozenset[str]] = TrainingConfig.OPERATIONAL | {"ray_address", "num_workers", "cpus_per_worker", "torch_threads", "preset"}
    """``num_workers`` may change: the *global* batch is what is trained; the per-worker share is derived."""

    preset: Literal["cpu", "paper"] = Field(
        default="cpu",
        description="Defaults to start from: cpu (learning rate 1e-6 constant, 8 steps, group 4, batch 8, 2 CPU workers, embedded model, short sequences) or paper (group 16, 1024/3072 tokens, no KL, GPUs, vLLM, ZeRO-3). Settings you give win.",
    )
    start: str = Field(
        default="base",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="The arm the policy comes from (base, or <dataset>_sft after SFT); names the output folder <run_dir>/rl/<start>.",
    )
    data: DataConfig = Field(
        default_factory=lambda: DataConfig(synthetic={"count": 64, "difficulties": [1]}),
        description="The RL questions (any question source: synthetic, GSM8K train, DAPO-Math-17K, a JSONL/Parquet file).",
    )
    system_prompt: str | None = Field(
        default=None, description="System message of every prompt; unset: the heuristic catalog's (the one evaluation uses); empty: no system message."
    )
    answer_format: str | None = Field(
        default=None, description="Sentence after each question asking for the final answer; unset: the catalog's (\\boxed{}); empty: none."
    )
    group_size: int = Field(default=16, ge=2, le=1024, description="Completions sampled per prompt; advantages are computed within each group.")
    batch_size: int = Field(
        default=32, ge=2, le=1_000_000,
        description="Completions per optimizer step over all learner workers (prompts per step x group_size); must be a multiple of group_size and split evenly over num_workers.",
    )
    max_prompt_length: int = Field(default=512, ge=16, le=1_048_576, description="Prompts longer than this (in tokens, chat template applied) are left out of the RL data.")
    max_completion_length: int = Field(default=128, ge=1, le=1_048_576, description="Most tokens generated per completion.")
    temperature: float = Field(default=1.0, gt=0.0, le=10.0, description="Sampling temperature of the rollouts.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling of the rollouts (1: off).")
    beta: float = Field(
        default=0.0, ge=0.0, le=100.0,
        description="KL coefficient against the reference (initial) policy; 0 (the paper's setting): no KL term and no reference model is loaded.",
    )
    epsilon: float = Field(default=0.2, gt=0.0, lt=1.0, description="Lower clipping range of the importance ratio (PPO-style clip).")
    epsilon_high: float | None = Field(default=None, gt=0.0, lt=10.0, description="Upper clipping range (DAPO clip-higher); unset: epsilon.")
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = Field(
        default="grpo", description="How token losses are averaged: grpo (per sequence, then batch), dapo (over all tokens), dr_grpo, bnpo (TRL's definitions)."
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        default="group", description="Divide advantages by the reward std of the group (GRPO), of the batch, or not at all (Dr. GRPO)."
    )
    num_iterations: int = Field(default=1, ge=1, le=64, description="Optimizer passes over each generated batch (mu in the GRPO paper).")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="The reward: verifier verdicts and the optional format reward.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="The rollout engine (HF generate on CPU, vLLM on GPUs).")
    ray_address: Annotated[str | None, location("an address such as ray://head:10001 or auto")] = Field(
        default=None,
        description="Ray cluster to run on (ray://head:10001 or auto, e.g. a KubeRay cluster); unset: start a local Ray cluster in this process.",
    )
    num_workers: int = Field(default=2, ge=1, le=4096, description="Learner workers (Ray Train, one process each; one GPU each with use_gpu).")
    use_gpu: bool = Field(default=False, description="Give each learner worker a GPU (NCCL); false: CPU workers over gloo.")
    cpus_per_worker: float = Field(default=1.0, gt=0.0, le=512.0, description="CPUs each learner worker reserves.")
    torch_threads: int = Field(default=1, ge=0, le=512, description="torch threads per learner worker (0: torch's default); 1 keeps CPU workers from fighting for cores.")

    @model_validator(mode="after")
    def _consistent(self) -> "RlConfig":
        if self.batch_size % self.group_size:
            raise ValueError(
                f"group_size ({self.group_size}) must divide batch_size ({self.batch_size}): every step trains whole groups; "
                f"valid batch sizes are multiples of {self.group_size}, e.g. {self.group_size * max(1, self.batch_size // self.group_size)}"
            )
        if self.batch_size % self.num_workers:
            raise ValueError(
                f"batch_size ({self.batch_size}) must split evenly over num_workers ({self.num_workers}); "
                f"use a multiple of {self.num_workers * self.group_size // _gcd(self.num_workers, self.group_size)}"
            )
        if self.deepspeed is not None and not self.use_gpu:
            raise ValueError(f"deepspeed ({self.deepspeed}) needs use_gpu true; unset deepspeed for CPU workers (DDP over gloo)")
        if self.rollout.engine == "vllm" and not self.use_gpu:
            raise ValueError("rollout.engine vllm needs use_gpu true; use rollout.engine hf (or auto) for CPU workers")
        if self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise ValueError(f"epsilon_high ({self.epsilon_high}) must be >= epsilon ({self.epsilon})")
        return self

    # ----- derived ------------------------------------------------------------------------
    @property
    def layout(self) -> TrainingLayout:
        """``<run_dir>/rl/<start>``: one output folder (and manifest record) per RL arm."""
        return RunLayout.rl(self.start)

    @property
    def rollout_engine(self) -> Literal["hf", "vllm"]:
        """The engine that generates: ``rollout.engine``, with ``auto`` resolved by ``use_gpu``."""
        if self.rollout.engine == "auto":
            return "vllm" if self.use_gpu else "hf"
        return self.rollout.engine

    @property
    def prompts_per_step(self) -> int:
        """Distinct prompts per optimizer step."""
        return self.batch_size // self.group_size

    @property
    def per_worker_batch(self) -> int:
        """Completions each learner worker trains on per step."""
        return self.batch_size // self.num_workers


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a
