"""The upstream CRDs vendored in tests/fixtures/crds (see its README), and validation of custom
resources against them: :func:`crd_problems` is what an API server with these CRDs installed
would refuse (or prune) when ``obj`` is created."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support.structural_schema import Problem, StructuralSchema

CRD_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "crds"


@dataclass(frozen=True)
class Crd:
    """One served version of a vendored CRD."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    storage: bool
    schema: StructuralSchema
    file: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.lru_cache(maxsize=1)
def vendored_crds() -> dict[tuple[str, str], Crd]:
    """Every served version of every vendored CRD, by ``(apiVersion, kind)``."""
    out: dict[tuple[str, str], Crd] = {}
    for row in provenance():
        doc = _load(CRD_DIR / row["file"])
        spec = doc["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            crd = Crd(spec["group"], version["name"], spec["names"]["kind"], spec["names"]["plural"], spec["scope"] == "Namespaced",
                      bool(version.get("storage")), StructuralSchema(version["schema"]["openAPIV3Schema"]), row["file"])
            out[(crd.api_version, crd.kind)] = crd
    return out


def provenance() -> list[dict[str, str]]:
    """The rows of PROVENANCE.tsv: file, repository, ref, commit, path, sha256_prefix."""
    with (CRD_DIR / "PROVENANCE.tsv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def crd_for(api_version: str, kind: str) -> Crd | None:
    return vendored_crds().get((api_version, kind))


def crd_problems(obj: dict[str, Any]) -> list[Problem]:
    """What an API server with the vendored CRDs would refuse or prune in ``obj`` (no CRD: one problem)."""
    crd = crd_for(str(obj.get("apiVersion")), str(obj.get("kind")))
    if crd is None:
        known = sorted(f"{a} {k}" for a, k in vendored_crds())
        return [Problem("", f"no vendored CRD serves {obj.get('apiVersion')} {obj.get('kind')}; vendored: {', '.join(known)}")]
    return crd.schema.problems(obj)
