"""Render charts/polya with the real Helm engine (helm-python-sdk, Helm v4) and validate the output.

``render_chart(values)`` returns every rendered object; ``validate_object(obj)`` checks one against
Kubernetes' own schemas (kubernetes-validate, strict: unknown fields fail) or, for the custom
resources, against the CRD schema subsets vendored in tests/fixtures/crds (see its README).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import helm_python as helm
import importlib_resources
import jsonschema
import kubernetes_validate
import referencing
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART_DIR = REPO / "charts" / "polya"
CI_VALUES_DIR = CHART_DIR / "ci"
CRD_DIR = REPO / "tests" / "fixtures" / "crds"
KUBE_VERSION = "1.30"
RELEASE = "demo"
NAMESPACE = "polya"

CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.yaml",
    ("ray.io/v1", "RayCluster"): "raycluster.yaml",
}


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
        """Every pod spec: workloads' templates and the RayCluster's head and worker templates."""
        for o in self.objects:
            spec = o.body.get("spec", {})
            if o.kind in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
                yield o, spec["template"]["spec"]
            elif o.kind == "RayCluster":
                yield o, spec["headGroupSpec"]["template"]["spec"]
                for group in spec.get("workerGroupSpecs", []):
                    yield o, group["template"]["spec"]


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


def _strict(schema: Any) -> Any:
    """Unknown fields fail: additionalProperties false on every object that lists its properties."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-")}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.lru_cache(maxsize=1)
def _k8s_definitions() -> dict[str, Any]:
    version = [v for v in kubernetes_validate.utils.all_versions() if v.startswith(KUBE_VERSION)][-1]
    ref = importlib_resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json"
    )
    return json.loads(ref.read_text())


@functools.lru_cache(maxsize=None)
def _crd_validator(filename: str) -> jsonschema.Draft202012Validator:
    crd = yaml.safe_load((CRD_DIR / filename).read_text())
    schema = _strict(crd["openAPIV3Schema"])
    schema["properties"]["metadata"] = {
        "$ref": "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    }
    registry = referencing.Registry().with_resource(
        "https://kubernetes.io/api/_definitions.json", referencing.Resource.from_contents(_k8s_definitions())
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_object(obj: RenderedObject) -> None:
    """Raise AssertionError naming the object, the path and the reason when ``obj`` is invalid."""
    key = (obj.body.get("apiVersion"), obj.kind)
    if key in CUSTOM_KINDS:
        errors = sorted(_crd_validator(CUSTOM_KINDS[key]).iter_errors(obj.body), key=lambda e: list(e.path))
        if errors:
            lines = [f"  {'.'.join(map(str, e.path)) or '<root>'}: {e.message[:300]}" for e in errors[:10]]
            raise AssertionError(f"{obj!r} does not match the {key[1]} CRD schema:\n" + "\n".join(lines))
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
