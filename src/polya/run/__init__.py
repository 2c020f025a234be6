"""Run bookkeeping: the manifest that records each stage's config, status and artifacts."""

from polya.run.manifest import RunManifest, StageRecord

__all__ = ["RunManifest", "StageRecord"]
