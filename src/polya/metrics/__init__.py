"""Measures shared by selection, evaluation and RL logging.

- :mod:`polya.metrics.passk`: the unbiased pass@k estimator and its averages.
- :mod:`polya.metrics.diversity`: the Vendi score of a set of solutions (TF-IDF cosine kernel).
"""

from polya.metrics.passk import PASS_AT_K_VALUES, default_ks, mean_pass_at_k, pass_at_k

__all__ = ["PASS_AT_K_VALUES", "default_ks", "mean_pass_at_k", "pass_at_k"]
