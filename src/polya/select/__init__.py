"""Selection: from verified generations to the SFT datasets of the paper's arms (``polya select``)."""

from polya.select.config import ARMS, DedupConfig, DiversityConfig, ScorerConfig, SelectConfig

__all__ = ["ARMS", "DedupConfig", "DiversityConfig", "ScorerConfig", "SelectConfig"]
