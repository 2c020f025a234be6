"""Render charts/polya with the real Helm engine (helm-python-sdk, Helm v4) and validate the output.

``render_chart(values)`` returns every rendered object; ``validate_object(obj)`` checks one against
Kubernetes' own schemas (kubernetes-validate, strict: unknown fields fail) or, for the custom
resources, against the upstream CRDs vendored in tests/fixtures/crds (support.crds: structural
schema, list-map keys, CEL rules; unknown fields fail; see its README).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import helm_python as helm
import kubernetes_validate
import yaml
from support.crds import crd_for, crd_problems

REPO = Path(__file__).resolve().parents[3]
CHART_DIR = REPO / "charts" / "polya"
CI_VALUES_DIR = CHART_DIR / "ci"
KUBE_VERSION = "1.30"
RELEASE = "demo"
NAMESPACE = "polya"


@dataclass
class RenderedObject:
    template: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.body["kind"]

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    def __repr__(self) -> str:
        return f"{self.kind}/{self.name} ({self.template})"


@dataclass
class RenderedChart:
    values: dict[str, Any]
    objects: list[RenderedObject]
    notes: str = ""
    raw: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[RenderedObject]:
        return [o for o in self.objects if o.kind == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for o in self.objects:
            if o.kind == kind and o.name == name:
                return o.body
        raise KeyError(f"no {kind}/{name} rendered; have: {sorted((o.kind, o.name) for o in self.objects)}")

    def pod_specs(self) -> Iterator[tuple[RenderedObject, dict[str, Any]]]:
        """Every pod spec: workloads' templates, the RayCluster's head and worker templates, the
        ClusterTrainingRuntime's job templates."""
        for o in self.objects:
            spec = o.body.get("spec", {})
            if o.kind in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
                yield o, spec["template"]["spec"]
            elif o.kind == "RayCluster":
                yield o, spec["headGroupSpec"]["template"]["spec"]
                for group in spec.get("workerGroupSpecs", []):
                    yield o, group["template"]["spec"]
            elif o.kind == "ClusterTrainingRuntime":
                for job in spec["template"]["spec"]["replicatedJobs"]:
                    yield o, job["template"]["spec"]["template"]["spec"]


def load_ci_values(name: str) -> dict[str, Any]:
    """A values file of charts/polya/ci (e.g. "kind" -> ci/kind-values.yaml)."""
    return yaml.safe_load((CI_VALUES_DIR / f"{name}-values.yaml").read_text()) or {}


@functools.lru_cache(maxsize=1)
def _chart() -> helm.Chart:
    return helm.Chart.load(str(CHART_DIR))


def render_chart(values: dict[str, Any] | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE) -> RenderedChart:
    """``helm template`` of the chart with ``values`` (schema validation included)."""
    chart = _chart()
    raw = chart.render(values=copy.deepcopy(values or {}), name=release, namespace=namespace, is_install=True)
    objects: list[RenderedObject] = []
    notes = ""
    for template, text in sorted(raw.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(RenderedObject(template, doc))
    return RenderedChart(values=values or {}, objects=objects, notes=notes, raw=raw)


def validate_object(obj: RenderedObject) -> None:
    """Raise AssertionError naming the object, the path and the reason when ``obj`` is invalid."""
    if crd_for(str(obj.body.get("apiVersion")), obj.kind) is not None:
        problems = crd_problems(obj.body)
        if problems:
            lines = [f"  {str(p)[:300]} ({p.kind})" for p in problems[:10]]
            raise AssertionError(f"{obj!r} does not match the {obj.kind} CRD:\n" + "\n".join(lines))
        return
    try:
        kubernetes_validate.validate(obj.body, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        raise AssertionError(f"{obj!r} is not a valid Kubernetes {KUBE_VERSION} object: {path}: {e.message[:500]}") from None
    except kubernetes_validate.SchemaNotFoundError as e:
        raise AssertionError(f"{obj!r}: no schema to validate it against ({e.message})") from None


VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "kind": load_ci_values("kind"),
    "gpu": load_ci_values("gpu"),
    "external-s3": load_ci_values("external-s3"),
    "pvc-model": load_ci_values("pvc-model"),
    "minimal": {"vllm": {"enabled": False}, "minio": {"enabled": False}, "networkPolicy": {"enabled": False},
                "monitoring": {"grafanaDashboard": {"enabled": False}},
                "pipelineRunner": {"serviceAccount": {"create": False}, "rbac": {"create": False}}},
}
