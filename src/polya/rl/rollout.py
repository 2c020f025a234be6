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
from dataclasses import dataclass, field

from polya.core.processes import start_owned, stop_process, wait_for_http

logger = logging.getLogger(__name__)


@dataclass(repr=False, eq=False)  # an actor class: Ray wraps it, the generated repr and eq would not apply
class VLLMRolloutServer:
    """TRL's vLLM server in a subprocess of this actor; :meth:`start` returns its base URL once healthy."""

    model_path: str
    gpus: int
    port: int
    gpu_memory_utilization: float
    max_model_len: int
    dtype: str = "auto"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    log_path: str = field(default_factory=lambda: os.path.join(tempfile.mkdtemp(prefix="polya-rollout-"), "vllm-serve.log"), init=False)

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
            # Its own session and a reaper: it ends with this actor's process, however that ends.
            self.process = start_owned(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        url = f"http://{host}:{self.port}"
        try:
            wait_for_http(f"{url}/health", self.process, timeout_s, what="rollout server (vllm serve)", log=self.log_path,
                          poll_s=2.0, hint=" (rollout.server_timeout_s)")
        except BaseException:
            self.stop()
            raise
        logger.info("rollout server up at %s (%s GPUs)", url, self.gpus)
        return url

    def stop(self) -> None:
        stop_process(self.process, 30.0, group=True)
        self.process = None
