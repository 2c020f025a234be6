"""Typed stage configs loaded from YAML with CLI overrides."""

from polya.config.base import StageConfig, load_config, parse_overrides

__all__ = ["StageConfig", "load_config", "parse_overrides"]
