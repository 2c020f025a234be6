"""The rollout role as its own Ray actor: TRL's vLLM server on dedicated GPUs (``rollout.vllm_mode: server``).

With ``vllm_mode: colocate`` (the default on GPUs) each learner worker holds a vLLM engine on its
own GPU and no actor is needed. With ``server``, :class:`VLLMRolloutServer` reserves
``rollout.gpus`` GPUs in the Ray cluster and runs ``trl vllm-serve`` there (tensor-parallel over
them); the learners send it prompts over HTTP and push the updated weights after every step over
NCCL (TRL's ``VLLMClient``). The command line is TRL's own (``trl.scripts.vllm_serve.build_command``:
``vllm serve`` with the weight-transfer engine and dev-mode endpoints TRL's client needs).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time

import httpx

from polya.core.errors import ServerError

logger = logging.getLogger(__name__)


class VLLMRolloutServer:
    """TRL's vLLM server in a subprocess of this actor; :meth:`start` returns its base URL once healthy."""

    def __init__(self, model_path: str, gpus: int, port: int, gpu_memory_utilization: float, max_model_len: int, dtype: str = "auto"):
        self.model_path = model_path
        self.gpus = gpus
        self.port = port
        self.gpu_memory_utilization = gpu_memory_utilization
        self.max_model_len = max_model_len
        self.dtype = dtype
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="polya-rollout-"), "vllm-serve.log")

    def command(self) -> list[str]:
        """The server's command line (TRL's ``vllm serve`` invocation for trainers)."""
        from trl.scripts.vllm_serve import ScriptArguments, build_command

        return build_command(ScriptArguments(
            model=self.model_path, tensor_parallel_size=self.gpus, host="0.0.0.0", port=self.port,
            gpu_memory_utilization=self.gpu_memory_utilization, max_model_len=self.max_model_len, dtype=self.dtype,
        ))

    def start(self, timeout_s: float) -> str:
        """Start the server and wait for ``/health``; return ``http://<node ip>:<port>``."""
        import ray

        host = ray.util.get_node_ip_address()
        with open(self.log_path, "wb") as log:
            env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1"}  # the weight-transfer endpoints TRL's client uses
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://{host}:{self.port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"rollout server (vllm serve) exited with {self.process.returncode}: {self._tail()}")
            try:
                if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                    logger.info("rollout server up at %s (%s GPUs)", url, self.gpus)
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(2.0)
        self.stop()
        raise ServerError(f"rollout server did not answer {url}/health within {timeout_s:.0f}s (rollout.server_timeout_s): {self._tail()}")

    def _tail(self, chars: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as log:
                return log.read().decode("utf-8", "replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
