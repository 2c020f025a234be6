"""polya: mid-training on self-generated Pólya-heuristic solutions before RL."""

__version__ = "0.1.0"
