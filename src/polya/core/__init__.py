"""The core layer: what every other layer builds on, importing none of them.

- :mod:`polya.core.errors`: the user-facing errors (``PolyaError`` and its kinds).
- :mod:`polya.core.config`: ``StageConfig``, the one preset mechanism, identity, YAML + overrides.
- :mod:`polya.core.digest`: canonical JSON and SHA-256, the one way to fingerprint anything.
- :mod:`polya.core.layout`: ``RunLayout``, the only place that spells the paths of a run directory.
- :mod:`polya.core.manifest`: the run manifest and ``record_stage``, how every stage records itself.
- :mod:`polya.core.memory`: peak memory (``peak_rss_mib``) and out-of-memory kills read from the kernel log.
- :mod:`polya.core.processes`: child processes that end with polya, and ``ProcessIdentity`` (is that process still running?).
- :mod:`polya.core.outputs`: the stages' outputs as typed models, each read through one function.
- :mod:`polya.core.store`: artifact stores (a local folder or an S3 prefix) and record shards.
"""
