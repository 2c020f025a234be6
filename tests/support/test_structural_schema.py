"""The structural-schema validator and the vendored CRDs: provenance intact, and each kind of
problem an API server would refuse or prune is caught, shown with planted bad objects."""

from __future__ import annotations

import copy
import hashlib

import pytest

from support.crds import CRD_DIR, crd_for, crd_problems, provenance, vendored_crds
from support.structural_schema import StructuralSchema


def test_vendored_crds_are_the_upstream_files_named_in_provenance():
    rows = provenance()
    files = {p.name for p in CRD_DIR.glob("*.yaml")}
    assert {row["file"] for row in rows} == files
    for row in rows:
        digest = hashlib.sha256((CRD_DIR / row["file"]).read_bytes()).hexdigest()
        assert digest.startswith(row["sha256_prefix"]), f"{row['file']} differs from {row['repository']}@{row['commit'][:8]}:{row['path']}"
        assert len(row["commit"]) == 40 and row["path"].endswith(row["file"])
    kinds = {kind for _, kind in vendored_crds()}
    assert kinds == {"RayJob", "RayCluster", "PyTorchJob", "TrainJob", "ClusterTrainingRuntime", "ServiceMonitor", "PrometheusRule"}


def raycluster() -> dict:
    """A small valid RayCluster (ray.io/v1, KubeRay 1.7's schema)."""
    container = {
        "name": "ray-head", "image": "polya/trainer:0.1.0",
        "ports": [{"name": "gcs", "containerPort": 6379}, {"name": "dashboard", "containerPort": 8265}],
        "env": [{"name": "HOME", "value": "/tmp"}], "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
    }
    worker = {"name": "ray-worker", "image": "polya/trainer:0.1.0", "resources": {"limits": {"cpu": 4, "memory": "8Gi"}}}
    return {
        "apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "demo", "namespace": "ml", "labels": {"app": "polya"}},
        "spec": {
            "rayVersion": "2.60.0",
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [container]}}},
            "workerGroupSpecs": [{"groupName": "gpu", "replicas": 1, "minReplicas": 0, "maxReplicas": 2, "rayStartParams": {},
                                  "template": {"spec": {"containers": [worker]}}}],
        },
    }


def messages(obj: dict) -> list[str]:
    return [str(p) for p in crd_problems(obj)]


def head(obj: dict) -> dict:
    return obj["spec"]["headGroupSpec"]["template"]["spec"]


def test_a_valid_object_has_no_problems():
    assert messages(raycluster()) == []


def test_duplicate_list_map_keys_are_refused():
    obj = raycluster()
    head(obj)["containers"].append(copy.deepcopy(head(obj)["containers"][0]))  # two containers named ray-head
    assert any("containers[1]: duplicate entry with name='ray-head'" in m for m in messages(obj))
    obj = raycluster()
    head(obj)["containers"][0]["env"].append({"name": "HOME", "value": "/root"})
    assert any("env[1]: duplicate entry with name='HOME'" in m for m in messages(obj))
    # ports are keyed by (containerPort, protocol): the defaulted protocol TCP makes these two equal
    obj = raycluster()
    head(obj)["containers"][0]["ports"].append({"name": "gcs-again", "containerPort": 6379, "protocol": "TCP"})
    assert any("ports[2]: duplicate entry with containerPort=6379, protocol='TCP'" in m for m in messages(obj))
    obj["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 6379, "protocol": "UDP"}]
    head(obj)["containers"][0]["ports"].pop()
    assert messages(obj) == []


def test_unknown_fields_are_reported_as_what_the_api_server_prunes():
    obj = raycluster()
    head(obj)["containers"][0]["resourcez"] = {}
    obj["spec"]["workerGroupSpecs"][0]["replica"] = 3
    problems = crd_problems(obj)
    assert {(p.path, p.kind) for p in problems} == {
        ("spec.headGroupSpec.template.spec.containers[0].resourcez", "unknown"),
        ("spec.workerGroupSpecs[0].replica", "unknown"),
    }
    obj = raycluster()
    obj["metadata"]["labelz"] = {}
    assert [str(p) for p in crd_problems(obj)] == ["metadata.labelz: unknown field in ObjectMeta"]


def test_wrong_types_int_or_string_and_patterns():
    obj = raycluster()
    obj["spec"]["workerGroupSpecs"][0]["replicas"] = "3"
    assert any("workerGroupSpecs[0].replicas: must be of type integer, got str" in m for m in messages(obj))
    obj = raycluster()
    obj["spec"]["workerGroupSpecs"][0]["replicas"] = 2**31
    assert any("out of the int32 range" in m for m in messages(obj))
    obj = raycluster()
    limits = head(obj)["containers"][0]["resources"]["limits"]
    limits["cpu"] = 2.5  # a quantity is an int or a string, never a float
    limits["memory"] = "four gigs"
    found = messages(obj)
    assert any("limits.cpu: must be an integer or a string, got float" in m for m in found)
    assert any("limits.memory: 'four gigs' does not match the pattern" in m for m in found)
    obj = raycluster()
    obj["spec"]["autoscalerOptions"] = {"upscalingMode": "Fast"}
    assert any("upscalingMode: 'Fast' is not one of ['Default', 'Aggressive', 'Conservative']" in m for m in messages(obj))
    obj = raycluster()
    del obj["spec"]["workerGroupSpecs"][0]["groupName"]
    assert any("workerGroupSpecs[0].groupName: required field is missing" in m for m in messages(obj))
    obj = raycluster()
    obj["metadata"]["name"] = "Demo_Cluster"
    obj["metadata"]["labels"]["app"] = "pólya"
    found = messages(obj)
    assert any("metadata.name: 'Demo_Cluster' is not a DNS-1123 subdomain" in m for m in found)
    assert any("metadata.labels.app: label value 'pólya' is invalid" in m for m in found)


def test_nullable_and_nulls():
    obj = raycluster()
    obj["status"] = {"lastUpdateTime": None}  # nullable in RayCluster's status
    assert messages(obj) == []
    obj = raycluster()
    obj["spec"]["rayVersion"] = None  # not nullable: the API server drops it
    assert [(p.path, p.kind) for p in crd_problems(obj)] == [("spec.rayVersion", "unknown")]


def test_cel_rules_run_and_transition_rules_are_skipped():
    trainjob = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "x" * 63, "namespace": "ml"},
        "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": {"numNodes": 2, "numProcPerNode": 1}},
    }
    assert messages(trainjob) == []  # runtimeRef.kind / apiGroup defaulted; the immutability rules read oldSelf
    trainjob["metadata"]["name"] = "x" * 64  # a valid DNS subdomain, but the CRD's own rule caps it at 63
    assert messages(trainjob) == ["<root>: metadata.name must be no more than 63 characters"]
    trainjob["metadata"]["name"] = "ok"
    trainjob["spec"]["trainer"]["numProcPerNode"] = 0
    assert messages(trainjob) == ["spec.trainer.numProcPerNode: numProcPerNode must be greater than or equal to 1"]
    rayjob = {
        "apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "j", "namespace": "ml"},
        "spec": {"entrypoint": "x", "deletionStrategy": {"onSuccess": {"policy": "DeleteCluster"}}},
    }
    assert any("requires either BOTH onSuccess and onFailure" in m for m in messages(rayjob))


def test_sets_and_embedded_resources():
    schema = StructuralSchema({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "ids": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-list-type": "set"},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True, "properties": {"spec": {"type": "object"}}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }},
        },
    })
    good = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"ids": [1, 2], "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}, "extra": {"any": [1]}}}
    assert schema.problems(good) == []
    bad = copy.deepcopy(good)
    bad["spec"]["ids"] = [1, 2, 1]
    del bad["spec"]["template"]["kind"]
    bad["spec"]["template"]["metadata"]["owner"] = "me"
    assert sorted(str(p) for p in schema.problems(bad)) == [
        "spec.ids[2]: duplicate value 1 in a set (also at index 0)",
        "spec.template.kind: required in an embedded resource",
        "spec.template.metadata.owner: unknown field in ObjectMeta",
    ]


def test_every_served_version_is_known_and_an_unknown_kind_is_a_problem():
    assert crd_for("ray.io/v1", "RayJob").plural == "rayjobs" and crd_for("ray.io/v1alpha1", "RayJob") is not None
    assert crd_for("trainer.kubeflow.org/v1alpha1", "ClusterTrainingRuntime").namespaced is False
    assert "no vendored CRD serves kubeflow.org/v1 TFJob" in messages({"apiVersion": "kubeflow.org/v1", "kind": "TFJob"})[0]


@pytest.mark.parametrize("name", ["ok", "a" * 63])
def test_object_meta_names(name):
    obj = raycluster()
    obj["metadata"]["name"] = name
    assert messages(obj) == []
