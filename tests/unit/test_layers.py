"""Layers point one way: a module never imports from a layer above its own, and stages never import each other.

The layers, bottom to top (docs/architecture.md draws them):

    core          polya.core (errors, config, digest, layout, manifest, outputs, store) and polya itself
    shared        data, heuristics, models, metrics, serving, sampling, verify, training
    stages        generate, select, sft, rl, eval (independent of each other)
    experiment    polya.experiment (arms, RunConfig, polya run)
    pipeline      polya.pipeline, components/*/component.py, pipelines/*.py
    cli           polya.cli

Every import counts, including those inside functions. The checker is shown to catch a planted
upward import and a planted stage-to-stage import in a copy of the tree.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("polya.core",)),
    ("shared", (
        "polya.data", "polya.heuristics", "polya.models", "polya.metrics", "polya.serving", "polya.sampling", "polya.verify",
        "polya.training",
    )),
    ("stages", ("polya.generate", "polya.select", "polya.sft", "polya.rl", "polya.eval")),
    ("experiment", ("polya.experiment",)),
    ("pipeline", ("polya.pipeline", "components", "pipelines")),
    ("cli", ("polya.cli",)),
]
ROOT_MODULE = "polya"
"""The package itself holds only ``__version__``: it counts as core."""
INDEPENDENT = LAYERS[2][1]
"""Packages of one layer that must not import each other (the stages)."""


def layer_of(module: str) -> tuple[int, str] | None:
    """(layer index, owning package) of a polya module, by the longest matching package; None outside polya."""
    if module == ROOT_MODULE:
        return 0, ROOT_MODULE
    best: tuple[int, str] | None = None
    for index, (_name, packages) in enumerate(LAYERS):
        for package in packages:
            if (module == package or module.startswith(package + ".")) and (best is None or len(package) > len(best[1])):
                best = (index, package)
    return best


def module_name(path: Path, root: Path) -> str:
    """The dotted module of a file under the tree ``root`` (``src/polya/x/y.py`` -> ``polya.x.y``)."""
    relative = path.relative_to(root / "src") if (root / "src") in path.parents else path.relative_to(root)
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            out.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)  # `from polya import x`
    return out


def python_files(root: Path) -> list[Path]:
    files = sorted((root / "src" / "polya").rglob("*.py"))
    files += sorted((root / "components").glob("*/component.py"))
    files += sorted((root / "pipelines").glob("*.py"))
    return files


def violations(root: Path) -> list[str]:
    """Every import from a higher layer, or from another package of an independent layer."""
    found: dict[tuple[str, str], str] = {}  # one report per import statement and imported package
    for path in python_files(root):
        module = module_name(path, root)
        own = layer_of(module)
        assert own is not None, f"{path} belongs to no layer: add its package to LAYERS"
        for line, target in imports_of(path, module):
            other = layer_of(target)
            if other is None or other[1] == own[1]:
                continue
            where = f"{path.relative_to(root)}:{line}"
            if other[0] > own[0]:
                found.setdefault((where, other[1]), f"{where}: {module} ({LAYERS[own[0]][0]}) imports {target} ({LAYERS[other[0]][0]}), a layer above")
            elif own[1] in INDEPENDENT and other[1] in INDEPENDENT:
                found.setdefault((where, other[1]), f"{where}: stage {own[1]} imports stage {other[1]}; move what they share to a lower layer")
    return sorted(found.values())


def package_cycles(root: Path, layer: int) -> list[list[str]]:
    """Cycles between the packages of one layer (each may use the others, but not in a circle)."""
    edges: dict[str, set[str]] = {p: set() for p in LAYERS[layer][1]}
    for path in python_files(root):
        module = module_name(path, root)
        own = layer_of(module)
        if own is None or own[0] != layer:
            continue
        for _line, target in imports_of(path, module):
            other = layer_of(target)
            if other is not None and other[0] == layer and other[1] != own[1]:
                edges[own[1]].add(other[1])
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt in trail:
                cycle = trail[trail.index(nxt):] + [nxt]
                if sorted(cycle[:-1]) not in [sorted(c[:-1]) for c in cycles]:
                    cycles.append(cycle)
            else:
                visit(nxt, trail + [nxt])

    for start in edges:
        visit(start, [start])
    return cycles


def test_the_tree_has_one_way_layers() -> None:
    found = violations(REPO)
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_shared_services_import_each_other_without_cycles() -> None:
    assert package_cycles(REPO, 1) == []


def _copy_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    for part in ("src", "components", "pipelines"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


def test_a_planted_upward_import_is_caught(tmp_path: Path) -> None:
    copy = _copy_tree(tmp_path)
    digest = copy / "src" / "polya" / "core" / "digest.py"
    digest.write_text(digest.read_text(encoding="utf-8") + "\n\ndef _late():\n    from polya.cli.main import cli\n    return cli\n", encoding="utf-8")
    found = violations(copy)
    assert len(found) == 1 and "polya.core.digest (core) imports polya.cli.main (cli), a layer above" in found[0]
    assert found[0].startswith("src/polya/core/digest.py:")


def test_a_planted_stage_to_stage_import_is_caught(tmp_path: Path) -> None:
    copy = _copy_tree(tmp_path)
    stage = copy / "src" / "polya" / "eval" / "stage.py"
    stage.write_text(stage.read_text(encoding="utf-8") + "\nfrom polya.generate.stage import run as _generate  # noqa\n", encoding="utf-8")
    found = violations(copy)
    assert found == [f"src/polya/eval/stage.py:{len(stage.read_text().splitlines())}: stage polya.eval imports stage polya.generate; move what they share to a lower layer"]


def test_a_planted_cycle_between_shared_services_is_caught(tmp_path: Path) -> None:
    copy = _copy_tree(tmp_path)
    models = copy / "src" / "polya" / "models" / "resolve.py"
    models.write_text(models.read_text(encoding="utf-8") + "\nfrom polya.training.config import TrainingConfig  # noqa\n", encoding="utf-8")
    assert any(set(c) == {"polya.models", "polya.training"} for c in package_cycles(copy, 1))
