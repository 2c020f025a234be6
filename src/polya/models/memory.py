"""What a model takes in memory and what this machine has, known before any weights load.

One definition of each, used by every check that runs before a model loads (SFT and GRPO in
:mod:`polya.training.memory`, the vLLM servers polya starts in :mod:`polya.serving.vllm_server`):

- :class:`ModelShape`: the sizes memory depends on, read from the checkpoint's ``config.json``
  (the parameter count exactly from the safetensors headers when the files are local, else from
  the config's sizes); reading them loads no weights;
- :func:`memory_limit`: the memory this machine or pod may use: cgroup v2 ``memory.max``, else
  cgroup v1 ``memory.limit_in_bytes``, else ``MemTotal`` of ``/proc/meminfo``;
  :func:`memory_free`: that limit minus what is in use; :func:`gpu_memory`: per CUDA device;
- :class:`MemoryEstimate` and :func:`check_fits`: named parts in bytes, compared with a limit; over
  it a :class:`~polya.core.errors.ConfigError` that names the settings to lower, above
  :data:`WARN_FRACTION` of it a warning; ``memory_check`` (``error``, ``warn``, ``off``) decides.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from polya.core.errors import ConfigError

logger = logging.getLogger(__name__)

GIB = 2**30

MemoryCheck = Literal["error", "warn", "off"]
MEMORY_CHECK_HELP = (
    "Estimate the memory the run needs from the model's config.json before any weights load and compare it with this "
    "machine's limit (cgroup memory.max, else MemTotal; per GPU with CUDA): error: refuse a run that does not fit, "
    "naming the settings to lower and the largest values that fit; warn: only log it; off: skip the check. A warning "
    "is logged above 80% of the limit."
)
"""Help text of every ``memory_check`` setting (training stages and the model server)."""

WARN_FRACTION = 0.8
"""An estimate above this share of the limit is logged as a warning."""

DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "float64": 8, "int8": 1, "uint8": 1}

CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")


def dtype_bytes(dtype: str | None, default: int = 4) -> int:
    """Bytes per element of a dtype name (``float32``, ``torch.bfloat16``, ...); ``default`` when unknown."""
    if not dtype:
        return default
    return DTYPE_BYTES.get(str(dtype).removeprefix("torch."), default)


# ----- the model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only model that its memory depends on."""

    params: int
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    tied_embeddings: bool
    dtype: str
    """The checkpoint's dtype (``config.json``'s ``dtype`` / ``torch_dtype``)."""
    experts_per_token: int = 1
    """MoE: experts each token passes through (their activations count); 1 for dense models."""

    @property
    def kv_width(self) -> int:
        """Elements of one token's keys (or values) in one layer."""
        return self.kv_heads * self.head_dim

    @property
    def linear_targets(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of a block, by the usual module names (for LoRA)."""
        q = self.heads * self.head_dim
        return {
            "q_proj": (self.hidden, q), "k_proj": (self.hidden, self.kv_width), "v_proj": (self.hidden, self.kv_width),
            "o_proj": (q, self.hidden), "gate_proj": (self.hidden, self.intermediate), "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }

    def weight_bytes(self, dtype: str) -> int:
        """Bytes of the weights loaded in ``dtype`` (``auto``: the checkpoint's)."""
        return self.params * dtype_bytes(self.dtype if dtype == "auto" else dtype)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], checkpoint: str | Path | None = None) -> "ModelShape":
        """The shape from a ``config.json`` dict (a multimodal config's text part), with the exact parameter
        count of ``checkpoint``'s safetensors files when it is a local folder that has them."""
        text = dict(config.get("text_config") or config)
        hidden = int(text.get("hidden_size") or text.get("d_model") or text.get("n_embd") or 0)
        layers = int(text.get("num_hidden_layers") or text.get("n_layer") or text.get("num_layers") or 0)
        heads = int(text.get("num_attention_heads") or text.get("n_head") or 0)
        vocab = int(text.get("vocab_size") or 0)
        if not (hidden and layers and heads and vocab):
            raise ConfigError(
                f"model {checkpoint or ''}: config.json lacks hidden_size / num_hidden_layers / num_attention_heads / vocab_size; "
                "polya cannot estimate its memory (set memory_check off to skip the estimate)"
            )
        kv_heads = int(text.get("num_key_value_heads") or heads)
        head_dim = int(text.get("head_dim") or hidden // heads)
        intermediate = int(text.get("intermediate_size") or text.get("n_inner") or 4 * hidden)
        experts = int(text.get("num_local_experts") or text.get("num_experts") or 0)
        per_token = int(text.get("num_experts_per_tok") or 1) if experts else 1
        if experts and text.get("moe_intermediate_size"):
            intermediate = int(text["moe_intermediate_size"])
        tied = bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", True)))
        dtype = str(config.get("dtype") or config.get("torch_dtype") or text.get("dtype") or text.get("torch_dtype") or "float32")
        counted = safetensors_params(checkpoint) if checkpoint is not None else None
        if counted is None:
            q = heads * head_dim
            attention = hidden * q * 2 + hidden * kv_heads * head_dim * 2
            mlp = 3 * hidden * intermediate * max(1, experts)
            counted = vocab * hidden * (1 if tied else 2) + layers * (attention + mlp + 2 * hidden) + hidden
        return cls(
            params=counted, vocab=vocab, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
            intermediate=intermediate, tied_embeddings=tied, dtype=dtype.removeprefix("torch."), experts_per_token=per_token,
        )

    @classmethod
    def read(cls, model_path: str, hf_config: Any = None) -> "ModelShape":
        """The shape of the checkpoint ``model_path`` (a local folder or a hub id): its ``config.json``, or the
        already loaded HF config ``hf_config``. Loads no weights."""
        path = Path(model_path)
        if (path / "config.json").is_file():
            try:
                config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"model {model_path}: cannot read config.json: {exc}") from None
            return cls.from_config(config, path)
        if hf_config is None:
            from transformers import AutoConfig

            hf_config = AutoConfig.from_pretrained(model_path)
        return cls.from_config(hf_config.to_dict())


def safetensors_params(checkpoint: str | Path) -> int | None:
    """Elements of every tensor in the folder's ``*.safetensors`` files, read from their headers
    (8 bytes of length, then JSON); None when the folder has none or a header is unreadable."""
    folder = Path(checkpoint)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    total = 0
    try:
        for file in files:
            with open(file, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
            total += sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    except (OSError, ValueError, KeyError, struct.error):
        return None
    return total


# ----- the machine ----------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryLimit:
    """How much memory this machine or pod may use, and where that number comes from."""

    bytes: int
    source: str

    def __str__(self) -> str:
        return f"{self.bytes / GIB:.1f} GiB ({self.source})"


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo(key: str, meminfo: Path) -> int | None:
    try:
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition(":")
            if name == key:
                return int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cgroup_limit(root: Path = CGROUP_ROOT) -> MemoryLimit | None:
    """The cgroup's memory limit: v2 ``memory.max`` (``max``: none), else v1 ``memory/memory.limit_in_bytes``
    (a value near 2**63: none); None without a limit."""
    v2 = root / "memory.max"
    if v2.is_file():
        value = _read_int(v2)
        return MemoryLimit(value, f"cgroup {v2}") if value is not None else None
    v1 = root / "memory" / "memory.limit_in_bytes"
    value = _read_int(v1)
    if value is not None and value < 2**62:
        return MemoryLimit(value, f"cgroup {v1}")
    return None


def cgroup_usage(root: Path = CGROUP_ROOT) -> int | None:
    """Bytes the cgroup uses now (v2 ``memory.current``, v1 ``memory.usage_in_bytes``)."""
    return _read_int(root / "memory.current") if (root / "memory.current").is_file() else _read_int(root / "memory" / "memory.usage_in_bytes")


def memory_limit(root: Path = CGROUP_ROOT, meminfo: Path = MEMINFO) -> MemoryLimit:
    """The memory this machine or pod may use: the cgroup limit when there is one and it is below
    ``MemTotal``, else ``MemTotal``."""
    total = _meminfo("MemTotal", meminfo)
    group = cgroup_limit(root)
    if group is not None and (total is None or group.bytes < total):
        return group
    if total is None:
        raise ConfigError(f"cannot read MemTotal from {meminfo} nor a cgroup memory limit; set memory_check off to skip the memory check")
    return MemoryLimit(total, f"MemTotal of {meminfo}")


def memory_free(root: Path = CGROUP_ROOT, meminfo: Path = MEMINFO) -> MemoryLimit:
    """The memory free now: the cgroup limit minus its usage, or ``MemAvailable``, whichever is smaller."""
    candidates: list[MemoryLimit] = []
    group = cgroup_limit(root)
    usage = cgroup_usage(root)
    if group is not None and usage is not None:
        candidates.append(MemoryLimit(max(0, group.bytes - usage), f"{group.source} minus usage"))
    available = _meminfo("MemAvailable", meminfo)
    if available is not None:
        candidates.append(MemoryLimit(available, f"MemAvailable of {meminfo}"))
    if not candidates:
        return memory_limit(root, meminfo)
    return min(candidates, key=lambda c: c.bytes)


def gpu_memory(device: int = 0) -> MemoryLimit:
    """Free memory of CUDA device ``device`` now (``torch.cuda.mem_get_info``)."""
    import torch

    free, total = torch.cuda.mem_get_info(device)
    return MemoryLimit(int(free), f"free on cuda:{device} of {total / GIB:.1f} GiB")


# ----- estimates and the check ------------------------------------------------------------------
@dataclass
class MemoryEstimate:
    """An estimate in named parts (bytes), of what one run needs where (``device``: ``cpu`` or ``cuda``)."""

    what: str
    parts: dict[str, int] = field(default_factory=dict)
    device: str = "cpu"

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        shown = ", ".join(f"{name} {value / GIB:.2f}" for name, value in self.parts.items() if value >= GIB // 100)
        return f"{self.total / GIB:.1f} GiB ({shown})"


def check_fits(estimate: MemoryEstimate, limit: MemoryLimit, mode: MemoryCheck, advice: str) -> None:
    """Raise :class:`ConfigError` (``mode`` error) or log a warning when ``estimate`` exceeds ``limit``;
    log a warning above :data:`WARN_FRACTION` of it. ``advice`` says what to lower (and to what)."""
    if mode == "off":
        return
    need, have = estimate.total, limit.bytes
    if need > have:
        message = (
            f"{estimate.what} needs about {estimate.describe()} but {estimate.device} memory is {limit}; {advice}. "
            "(memory_check off skips this estimate.)"
        )
        if mode == "error":
            raise ConfigError(message)
        logger.warning("%s", message)
    elif need > WARN_FRACTION * have:
        logger.warning(
            "%s needs about %s, %.0f%% of the %s memory (%s); it may be killed for memory: %s",
            estimate.what, estimate.describe(), 100 * need / have, estimate.device, limit, advice,
        )
    else:
        logger.info("%s needs about %s of %s", estimate.what, estimate.describe(), limit)


def largest(fits: Any, low: int, high: int) -> int | None:
    """The largest ``n`` in ``[low, high]`` with ``fits(n)`` (``fits`` falls as ``n`` grows); None when none does."""
    if high < low or not fits(low):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def env_gib(name: str) -> float | None:
    """A GiB amount from the environment variable ``name`` (unset or not a number: None)."""
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return None
