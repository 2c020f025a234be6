"""Find and import the KFP components (``components/<name>/component.py``) and pipelines
(``pipelines/<name>.py``) of the polya source tree.

They live beside ``src/`` (the kubeflow/pipelines-components layout), not inside the installed
package, so they are imported by file path. The tree is found from ``$POLYA_REPO_DIR``, else
next to this package (an editable install or a source checkout, as in the images), else the
current directory.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from polya.core.errors import ConfigError

COMPONENTS = ("data", "decontaminate", "generate", "merge", "select", "iterate", "sft", "rl", "eval", "report")
"""One component per stage (and ``merge``, which joins the shards of a generation); the folder name under ``components/``."""

PIPELINES = ("polya", "smoke")
"""The pipelines under ``pipelines/``: the full experiment, and a tiny CPU one (data -> generate -> select)."""

_FUNCTION = {"eval": "evaluate"}  # component folder -> function name where the stage name is a builtin


def repo_root() -> Path:
    """The folder holding ``components/`` and ``pipelines/``."""
    candidates = []
    if os.environ.get("POLYA_REPO_DIR"):
        candidates.append(Path(os.environ["POLYA_REPO_DIR"]))
    candidates.append(Path(__file__).resolve().parents[3])
    candidates.append(Path.cwd())
    for folder in candidates:
        if (folder / "components").is_dir() and (folder / "pipelines").is_dir():
            return folder
    raise ConfigError(
        "cannot find the components/ and pipelines/ folders (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "); run from the polya source tree or set POLYA_REPO_DIR to it"
    )


def _import(path: Path, module_name: str) -> ModuleType:
    if module_name in sys.modules:
        return sys.modules[module_name]
    if not path.is_file():
        raise ConfigError(f"{path} not found")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def load_component(name: str) -> Any:
    """The KFP component of stage ``name`` (a ``PythonComponent``; its function is ``.python_func``)."""
    if name not in COMPONENTS:
        raise ConfigError(f"unknown component {name!r}; components: {', '.join(COMPONENTS)}")
    module = _import(repo_root() / "components" / name / "component.py", f"polya_kfp_components.{name}")
    return getattr(module, _FUNCTION.get(name, name))


def load_pipeline_module(name: str) -> ModuleType:
    """The module ``pipelines/<name>.py``; it defines ``build_pipeline(build: PipelineBuildConfig)``."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}; pipelines: {', '.join(PIPELINES)}")
    return _import(repo_root() / "pipelines" / f"{name}.py", f"polya_kfp_pipelines.{name}")
