"""The pod Kubeflow Trainer v2 makes for a TrainJob, for tests (no Trainer controller runs here).

Trainer starts from the ClusterTrainingRuntime's pod template, applies the TrainJob's ``trainer``
(image and command replaced, env upserted by name, resources replaced) and its ``runtimePatches``
(server-side-apply merges: maps merged, list-maps such as volumes, containers, env and volumeMounts
merged item by item on their ``name``, atomic lists such as tolerations replaced).
:func:`trainjob_pod` does the same with plain dictionaries.
"""

from __future__ import annotations

import copy
from typing import Any

TORCH_DISTRIBUTED_POD: dict[str, Any] = {"containers": [{"name": "node", "image": "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime"}]}
"""The pod of Kubeflow Trainer's own ``torch-distributed`` ClusterTrainingRuntime (kubeflow/trainer
manifests/base/runtimes/torch_distributed.yaml at commit 8c0f5059): one container, nothing else."""

_LIST_MAPS = {"volumes", "containers", "initContainers", "env", "volumeMounts", "imagePullSecrets"}


def _merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            out[k] = _merge(out[k], v, k) if k in out else copy.deepcopy(v)
        return out
    if key in _LIST_MAPS and isinstance(base, list) and isinstance(patch, list):
        items = {item["name"]: copy.deepcopy(item) for item in base}
        for item in patch:
            items[item["name"]] = _merge(items[item["name"]], item) if item["name"] in items else copy.deepcopy(item)
        return list(items.values())
    return copy.deepcopy(patch)


def trainjob_pod(trainjob: dict[str, Any], runtime_pod: dict[str, Any], job: str = "node") -> dict[str, Any]:
    """The pod spec of replicated job ``job`` for ``trainjob`` on a runtime whose pod spec is ``runtime_pod``."""
    pod = copy.deepcopy(runtime_pod)
    trainer = trainjob["spec"].get("trainer") or {}
    node = next(c for c in pod["containers"] if c["name"] == "node")
    for key, field in (("image", "image"), ("command", "command"), ("args", "args"), ("resourcesPerNode", "resources")):
        if key in trainer:
            node[field] = copy.deepcopy(trainer[key])
    if "env" in trainer:
        node["env"] = _merge(node.get("env") or [], trainer["env"], "env")
    for patch in trainjob["spec"].get("runtimePatches") or []:
        for replicated in patch["trainingRuntimeSpec"]["template"]["spec"].get("replicatedJobs") or []:
            if replicated["name"] == job:
                pod = _merge(pod, replicated["template"]["spec"]["template"].get("spec") or {})
    return pod
