"""Selection: from verified generations to the SFT datasets of the paper's arms (``polya select``)."""

from polya.select.config import (
    DATASETS,
    DedupConfig,
    DiversityConfig,
    ScorerConfig,
    SelectConfig,
)

__all__ = ["DATASETS", "DedupConfig", "DiversityConfig", "ScorerConfig", "SelectConfig"]
