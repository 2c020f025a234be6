"""The generation stage (``polya generate``)."""

from polya.generate.config import BootstrapConfig, GenerateConfig, SamplingConfig

__all__ = ["BootstrapConfig", "GenerateConfig", "SamplingConfig"]
