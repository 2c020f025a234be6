"""What each KFP component does, as plain functions, one module per stage.

Each step maps artifact folders and pipeline parameters onto a stage config, calls the stage's
``run(config)`` and lays the result out as the output artifact. Artifact layouts (all folders):

============  ===========================================================================
questions     ``questions.jsonl`` (normalized question records) and ``data.json``; after decontaminate also
              ``decontaminate/report.json``, ``report.md`` and ``manifest.json``
generations   a run directory holding ``generate/`` and ``manifest.json``
datasets      a run directory holding ``select/<dataset>/train.jsonl`` + cards, ``select/report.json``
loop data     (the outer loop's ``iterate`` output) ``select/<dataset>/train.jsonl``, the rows an iteration's SFT trains on, and ``iteration.json``
model         a Hugging Face checkpoint (``config.json``, weights, tokenizer) and ``polya-summary.json``
evaluation    a run directory holding ``eval/results.json``, ``eval/report.md`` and plots
report        the comparison of several evaluations (``write_comparison``)
============  ===========================================================================

A parameter left at None keeps the stage config's own value; any value given, 0 included, is used.

- :mod:`~polya.pipeline.steps.common`: settings, artifact folders, metrics (shared by the steps).
- :mod:`~polya.pipeline.steps.cluster`: submitting a step's training as a cluster job and waiting.
- :mod:`~polya.pipeline.steps.data`, ``decontaminate``, ``generate``, ``select``, ``iterate`` (the outer bootstrap loop),
  ``sft``, ``rl``, ``eval``, ``report``: one step each.
"""
