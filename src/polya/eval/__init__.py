"""Evaluation: pass@k of each arm on math and out-of-distribution benchmarks, diversity, composition.

- :mod:`polya.eval.benchmarks`: the benchmark registry and loaders (hub or local files).
- :mod:`polya.eval.config`: :class:`EvalConfig` and the sampling presets.
- :mod:`polya.eval.stage`: ``run(config) -> EvalOutputs``.
- :mod:`polya.eval.report`: :func:`write_comparison` (JSON, Markdown, PNG).
- :mod:`polya.eval.composition`: the LLM judge of which heuristics a solution uses.
"""

from polya.eval.config import EvalConfig

__all__ = ["EvalConfig"]
