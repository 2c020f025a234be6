"""How much memory a training run needs, estimated from the model's config.json before any weights load.

:func:`training_estimate` adds up, for one training process (:class:`TrainingSetup`):

- **weights** ``P x bytes(dtype)``; under ZeRO-3 divided by the data-parallel world size;
- **gradients** ``P_trainable x bytes(dtype)`` (ZeRO-2/3: divided by the world size; DDP over
  several processes keeps a second, bucketed copy);
- **optimizer** AdamW's two states, ``2 x P_trainable x bytes(dtype)``; under DeepSpeed a float32
  master copy and float32 states, ``12`` bytes per trainable parameter with 16-bit weights, ``8``
  with float32 ones, divided by the world size (ZeRO-1 and up); zero on the GPU when offloaded;
  LoRA trains only the adapters (``r x (in + out)`` per targeted linear layer, float32);
- **activations** ``tokens x layers x (18 h + 4 kv + 5 i) x bytes`` (``h`` hidden size, ``kv`` key
  width, ``i`` MLP width, ``tokens = batch x sequence length``: every row full, the worst case
  packing reaches); with gradient checkpointing ``tokens x layers x h`` for the saved layer inputs
  plus one layer's full activations;
- **attention**: the ``batch x 1 x L x L`` boolean mask sdpa and eager get (packed rows, padding);
  eager attention also keeps ``batch x heads x L x L`` float32 scores and probabilities in every
  layer. sdpa on CPU (torch >= 2.3) runs the flash kernel even with a mask, and flash-attention on
  GPUs never builds ``L x L``: linear in the tokens;
- **logits**: TRL's fused LM head (SFT and GRPO) never builds ``batch x L x vocab``; it scores
  tiles of at most 4,096 tokens x 32,768 vocabulary entries, and its torch path (CPU) keeps about
  eleven float32 tile-sized temporaries at once (forward and backward), plus a float32 gradient of
  the output embedding;
- a **runtime** of 0.75 GiB per process (python, torch, transformers, TRL imported: 515 MiB measured,
  plus the dataset and tokenizer).

GRPO adds the reference model (weights only) when ``beta > 0`` and the generation KV cache; a
local Ray cluster puts ``num_workers`` learners, the driver and the reward worker on this machine.

Calibration (the 2-core, 24 GiB CPU box, torch 2.13, transformers 5.19, TRL 1.16; embedded
SmolLM2-135M, float32, sdpa, AdamW, two optimizer steps in a fresh process, peak
``ru_maxrss``; ``tests/integration/training/test_memory_estimate.py`` repeats one)::

    batch x length                          measured peak   estimate    estimate / measured
    1 x 512                                 3,609 MiB       4,735 MiB   1.31
    2 x 512                                 5,112 MiB       6,542 MiB   1.28
    1 x 1024                                5,099 MiB       6,543 MiB   1.28
    2 x 1024 packed                         8,136 MiB      10,157 MiB   1.25
    2 x 1024 packed, gradient checkpointing 5,119 MiB       6,029 MiB   1.18
    1 x 1024 eager                          6,251 MiB       8,703 MiB   1.39

The measured slope is 2.95 MiB per token (activations plus the logit tiles, which stop growing at
4,096 tokens); the estimate's is 3.5. Gradient checkpointing leaves mostly the logit tiles, which
set :data:`LOGIT_TILE_COPIES`. The fixed part is overestimated because the real peak comes before the
gradients are all allocated. The issue's setting (packing, batch 8 x 2,048) estimates 42.8 GiB, of which 34.5 GiB activations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

from polya.models.memory import GIB, MemoryEstimate, MemoryLimit, ModelShape, dtype_bytes

Attention = Literal["eager", "sdpa", "flash"]

RUNTIME_BYTES = int(0.75 * GIB)
"""One training process before the model: python, torch, transformers, TRL, the dataset (515 MiB measured for the imports)."""
RAY_BYTES = int(0.5 * GIB)
"""A local Ray cluster's own processes (GCS, raylet, agents)."""
ACTIVATION_ELEMENTS = (18, 4, 5)
"""Saved activations per token and layer: ``18 h + 4 kv + 5 i`` elements (norm inputs and outputs, q/k/v and their
rotary and repeated copies, attention and o_proj outputs, residuals, the MLP's gate, up, activation and product)."""
LOGIT_TILE_TOKENS = 4096
LOGIT_TILE_VOCAB = 32768
LOGIT_TILE_COPIES = 11
"""TRL's chunked log-prob kernel (trl.kernels.chunked_logprob): token and vocabulary tile sizes, float32 temporaries alive at once."""
EAGER_SCORE_COPIES = 2
"""Eager attention keeps the scores' softmax (and its dropout output) per layer for the backward pass."""


@dataclass(frozen=True)
class TrainingSetup:
    """What one training process does, as far as memory goes."""

    rows: int
    """Sequences per forward pass (SFT's batch_size, GRPO's completions per worker)."""
    seq_len: int
    """Tokens per sequence (the longest a row can be)."""
    dtype: str = "float32"
    """dtype the weights are loaded in (``auto``: the checkpoint's)."""
    mixed_bf16: bool = False
    """bfloat16 autocast: activations in 2 bytes."""
    attention: Attention = "sdpa"
    gradient_checkpointing: bool = False
    lora_targets: tuple[str, ...] | None = None
    """LoRA's target modules (``all-linear`` for every linear layer); None: full fine-tuning."""
    lora_rank: int = 16
    zero_stage: int | None = None
    """DeepSpeed ZeRO stage; None: no DeepSpeed."""
    offload_optimizer: bool = False
    offload_params: bool = False
    world_size: int = 1
    reference_model: bool = False
    """GRPO with beta > 0: a frozen copy of the weights."""
    generation_tokens: int = 0
    """GRPO: tokens whose KV cache generation holds (completions x (prompt + completion))."""
    on_gpu: bool = False


def trainable_params(model: ModelShape, setup: TrainingSetup) -> int:
    """Parameters the optimizer updates: all of them, or LoRA's adapters."""
    if setup.lora_targets is None:
        return model.params
    linear = model.linear_targets
    names = linear if "all-linear" in setup.lora_targets else [n for n in linear if n in setup.lora_targets]
    per_layer = sum(setup.lora_rank * sum(linear[name]) for name in names)
    return per_layer * model.layers


def training_estimate(model: ModelShape, setup: TrainingSetup, what: str = "training") -> MemoryEstimate:
    """The memory one training process needs (see the module docstring for each part)."""
    wbytes = dtype_bytes(model.dtype) if setup.dtype == "auto" else dtype_bytes(setup.dtype)
    abytes = 2 if setup.mixed_bf16 else wbytes
    world = max(1, setup.world_size)
    stage = setup.zero_stage
    trainable = trainable_params(model, setup)
    lora = setup.lora_targets is not None
    train_bytes = 4 if lora else wbytes  # peft keeps adapters in float32

    weights = model.params * wbytes
    if stage == 3:
        weights = math.ceil(weights / world)
    if stage is not None and setup.offload_params and setup.on_gpu:
        weights = 0
    grads = trainable * train_bytes
    if stage is not None and stage >= 2:
        grads = math.ceil(grads / world)
    if stage is None:
        optimizer = 2 * trainable * train_bytes
        if world > 1:
            grads *= 2  # DDP's gradient buckets
    else:
        optimizer = trainable * (12 if train_bytes == 2 else 8)
        optimizer = math.ceil(optimizer / world) if stage >= 1 else optimizer
        if setup.offload_optimizer and setup.on_gpu:
            optimizer = 0

    tokens = setup.rows * setup.seq_len
    h, kv, i = model.hidden, model.kv_width, model.intermediate * model.experts_per_token
    per_layer_token = (ACTIVATION_ELEMENTS[0] * h + ACTIVATION_ELEMENTS[1] * kv + ACTIVATION_ELEMENTS[2] * i) * abytes
    if setup.gradient_checkpointing:
        activations = tokens * (model.layers * h * abytes + per_layer_token)
    else:
        activations = tokens * model.layers * per_layer_token
    attention = 0 if setup.attention == "flash" else setup.rows * setup.seq_len**2  # the boolean mask
    if setup.attention == "eager":
        layers_held = 1 if setup.gradient_checkpointing else model.layers
        attention += EAGER_SCORE_COPIES * setup.rows * model.heads * setup.seq_len**2 * 4 * layers_held
    logits = LOGIT_TILE_COPIES * min(tokens, LOGIT_TILE_TOKENS) * min(model.vocab, LOGIT_TILE_VOCAB) * 4
    logits += model.vocab * model.hidden * 4  # the output embedding's float32 gradient accumulator
    parts = {
        "weights": weights, "gradients": grads, "optimizer": optimizer, "activations": activations,
        "attention": attention, "logits": logits,
    }
    if setup.reference_model:
        parts["reference model"] = model.params * wbytes if stage != 3 else math.ceil(model.params * wbytes / world)
    if setup.generation_tokens:
        parts["kv cache"] = setup.generation_tokens * model.layers * 2 * kv * abytes
    if not setup.on_gpu:
        parts["runtime"] = RUNTIME_BYTES
    return MemoryEstimate(what, parts, "cuda" if setup.on_gpu else "cpu")


@dataclass(frozen=True)
class MachineShare:
    """Processes a run puts on one machine besides the learner(s) it estimates."""

    learners: int = 1
    other_processes: int = 0
    """Processes without a model (a Ray driver, the reward worker): a runtime each."""
    ray: bool = False
    extra: dict[str, int] = field(default_factory=dict)


def machine_estimate(model: ModelShape, setup: TrainingSetup, share: MachineShare, what: str) -> MemoryEstimate:
    """What the whole machine needs: ``share.learners`` learners plus the other processes."""
    one = training_estimate(model, setup, what)
    if share.learners == 1 and not share.other_processes and not share.ray and not share.extra:
        return one
    parts = {f"{name} x {share.learners}" if share.learners > 1 else name: value * share.learners for name, value in one.parts.items()}
    if share.other_processes:
        parts[f"other processes x {share.other_processes}"] = RUNTIME_BYTES * share.other_processes
    if share.ray:
        parts["ray"] = RAY_BYTES
    parts.update(share.extra)
    return MemoryEstimate(what, parts, one.device)


def largest_fitting(model: ModelShape, setup: TrainingSetup, share: MachineShare, limit: int, field_name: str, low: int) -> int | None:
    """The largest ``rows`` or ``seq_len`` (``field_name``), from ``low`` up to the setup's own value, that fits ``limit``."""
    from polya.models.memory import largest

    def fits(value: int) -> bool:
        return machine_estimate(model, replace(setup, **{field_name: value}), share, "").total <= limit

    return largest(fits, low, getattr(setup, field_name))


def check_training_memory(
    model: ModelShape, setup: TrainingSetup, share: MachineShare, *, mode: str, limit: MemoryLimit, what: str,
    rows_name: str, length_name: str, rows_value: Callable[[int], int] = lambda rows: rows,
    length_value: Callable[[int], int] = lambda length: length, hints: tuple[str, ...] = (),
    accumulation: tuple[str, int] | None = None,
) -> MemoryEstimate:
    """Estimate, compare with ``limit`` and raise or warn (:func:`polya.models.memory.check_fits`).

    The advice names ``rows_name`` and ``length_name`` with the largest values that fit (the
    setting's value for a number of rows or a length: ``rows_value``, ``length_value``) and the
    stage's other ``hints``; with ``accumulation`` (the setting's name and value), how to keep the
    global batch with fewer rows per pass.
    """
    from polya.models.memory import check_fits

    estimate = machine_estimate(model, setup, share, what)
    if mode == "off":
        return estimate
    advice = ""
    if estimate.total > 0.8 * limit.bytes:
        rows = largest_fitting(model, setup, share, limit.bytes, "rows", 1)
        length = largest_fitting(model, setup, share, limit.bytes, "seq_len", 32)
        found = []
        current_length = length_value(setup.seq_len)
        found.append(
            f"lower {rows_name} (the largest that fits at {length_name} {current_length}: {rows_value(rows)})" if rows
            else f"{rows_name} 1 does not fit at {length_name} {current_length}"
        )
        if rows and accumulation and rows < setup.rows:
            name, value = accumulation
            found.append(
                f"(keep the global batch: {rows_name} {rows_value(rows)} with {name} {math.ceil(setup.rows * value / rows)})"
            )
        if length:
            rounded = length - length % 64 if length >= 64 else length
            found.append(f"or {length_name} (the largest that fits at {rows_name} {rows_value(setup.rows)}: {length_value(rounded)})")
        else:
            found.append(f"no {length_name} fits at {rows_name} {rows_value(setup.rows)}")
        advice = "; ".join([", ".join(found), *hints])
    check_fits(estimate, limit, mode, advice)  # type: ignore[arg-type]
    return estimate
