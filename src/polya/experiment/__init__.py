"""The experiment layer: the arms of the comparison and ``polya run``, the experiment end to end.

- :mod:`polya.experiment.arms`: what each arm name means (one definition for ``polya run`` and the KFP pipeline).
- :mod:`polya.experiment.config`: ``RunConfig``, one section per stage, presets ``cpu-demo`` and ``paper``.
- :mod:`polya.experiment.run`: ``run(config)``, generate -> select -> sft -> rl -> eval for the arms.
"""
