"""The training layer shared by ``polya sft`` and ``polya rl``.

- :mod:`polya.training.config`: ``TrainingConfig``, the settings both stages share, defined once.
- :mod:`polya.training.checkpoints`: output folders, identity, resume and start-over rules.
- :mod:`polya.training.zero`: DeepSpeed ZeRO presets, filled and checked before any model loads.
- :mod:`polya.training.callbacks`: the metrics file and checkpoint upload to an ``s3://`` output.

Heavy imports (torch, transformers, DeepSpeed) happen inside functions; importing the config is cheap.
"""
