"""Settings for the model server that a stage talks to."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from polya.core.config import StageConfig, http_url
from polya.models import EMBEDDED_MODEL
from polya.models.memory import MEMORY_CHECK_HELP, MemoryCheck

JUDGE_API_KEY_ENV = "POLYA_JUDGE_API_KEY"
"""Environment variable read for an LLM judge's API key (adherence scoring, composition analysis) when its config sets none."""


class ServerConfig(StageConfig):
    """How polya reaches an OpenAI-compatible model server.

    With ``endpoint`` unset polya starts ``python -m vllm.entrypoints.openai.api_server`` for
    ``model`` and always stops it afterwards; with ``endpoint`` set (the cluster case) it uses that
    server as it is. ``endpoints`` lists several running servers of one model (generate spreads its
    requests over them, :class:`polya.sampling.pool.EndpointPool`); a one-element list is ``endpoint``.
    """

    model: str = Field(
        default=EMBEDDED_MODEL,
        description=f"Model to serve: '{EMBEDDED_MODEL}' (the embedded default), an HF hub id, or a local checkpoint directory.",
    )
    endpoint: Annotated[str | None, http_url("http://localhost:8000/v1")] = Field(
        default=None,
        description="Base URL of an already running OpenAI-compatible server (e.g. http://vllm:8000/v1). When set, no server is started.",
    )
    endpoints: list[Annotated[str | None, http_url("http://vllm-0:8000/v1")]] = Field(
        default_factory=list,
        description=(
            "Base URLs of several running OpenAI-compatible servers of the same model (e.g. the pods behind the chart's vLLM "
            "Service), used by generate: each request goes to the live server with the fewest in flight; a server that keeps "
            "failing is dropped and its requests go to the others. Not together with endpoint; one URL is the same as endpoint."
        ),
    )
    api_key: str | None = Field(
        default=None, description="Bearer token for the endpoint (also read from $POLYA_API_KEY / $OPENAI_API_KEY)."
    )
    served_model_name: str | None = Field(
        default=None, description="Model name to request; default: the name the server reports at /v1/models."
    )
    host: str = Field(default="127.0.0.1", description="Address the started server binds to.")
    port: int = Field(default=0, ge=0, le=65535, description="Port for the started server; 0 picks a free port.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        default="auto", description="Weights dtype for the started server (auto: bfloat16 on CPU, the model's dtype on GPU)."
    )
    max_model_len: int = Field(default=4096, ge=256, description="Maximum context length (prompt + completion) in tokens.")
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0.0, le=1.0, description="Fraction of GPU memory vLLM may use (GPU only)."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs per model replica (GPU only).")
    cpu_kv_cache_gib: int = Field(default=4, ge=1, description="KV-cache size in GiB on CPU (sets VLLM_CPU_KVCACHE_SPACE).")
    memory_check: MemoryCheck = Field(
        default="error",
        description=MEMORY_CHECK_HELP + " For a started server: its weights plus, on CPU, cpu_kv_cache_gib against the memory free now.",
    )
    max_num_seqs: int = Field(default=128, ge=1, description="Maximum sequences the server batches at once.")
    vllm_extensions: bool = Field(
        default=True,
        description="The server is vLLM: send vLLM request extensions (per-choice token ids). Turn off for other OpenAI-compatible servers.",
    )
    extra_args: list[str] = Field(
        default_factory=list, description="Extra command-line arguments passed to the vLLM server as they are."
    )
    startup_timeout_s: float = Field(default=900.0, gt=0, description="Seconds to wait for the server's /health before giving up.")
    log_file: str | None = Field(
        default=None, description="Where the started server's log goes; default: the run directory's logs/vllm-server.log."
    )

    @field_validator("endpoints", mode="after")
    @classmethod
    def _drop_blank(cls, value: list[str | None]) -> list[str]:
        urls = [url for url in value if url]
        duplicated = sorted({url for url in urls if urls.count(url) > 1})
        if duplicated:
            raise ValueError(f"lists {', '.join(duplicated)} more than once; name each server once")
        return urls

    @model_validator(mode="after")
    def _one_way_to_name_servers(self) -> "ServerConfig":
        if self.endpoint and self.endpoints:
            raise ValueError("set server.endpoint (one running server) or server.endpoints (several), not both")
        if len(self.endpoints) == 1:  # one server: exactly the endpoint case
            object.__setattr__(self, "endpoint", self.endpoints[0])
            object.__setattr__(self, "endpoints", [])
        return self


