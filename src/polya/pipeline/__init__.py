"""Kubeflow Pipelines glue: the pipeline's build settings, the steps the KFP components call,
cluster job manifests (PyTorchJob, RayJob) with a submit-wait-clean-up runner, and the
compile / submit / run-local entry points behind ``polya pipeline``.

Stage logic stays in the stage packages; everything here only maps artifacts and settings onto
their ``run(config)`` functions, so the CLI, the components and the tests call the same code.
"""

from polya.pipeline.config import PipelineBuildConfig

__all__ = ["PipelineBuildConfig"]
