"""Inference servers: start a vLLM OpenAI-compatible server, or use an existing endpoint."""

from polya.serving.config import ServerConfig
from polya.serving.vllm_server import ExternalEndpoint, VLLMServer, open_endpoint

__all__ = ["ServerConfig", "VLLMServer", "ExternalEndpoint", "open_endpoint"]
