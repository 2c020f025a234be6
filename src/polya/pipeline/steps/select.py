"""The ``select`` step: the select stage on a generations artifact; the output holds ``select/`` and the manifest."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from polya.core.errors import ConfigError
from polya.core.layout import MANIFEST, RunLayout
from polya.pipeline.steps.common import given, prepare_output, split_list, stage_config


def select_step(
    config_yaml: str, generations_dir: str, output_dir: str, datasets: str | None = None, n_per_question: int | None = None,
    verifier_endpoint: str | None = None, decontamination_dir: str | None = None,
) -> dict[str, Any]:
    """Run the select stage on a generations artifact; return each dataset's size and file.

    The input artifact is never written to: its ``generate/`` folder is linked into the output
    run directory for the stage to read, and the link is removed afterwards. The report of a
    decontamination artifact (``decontamination_dir``) is copied in, so the dataset cards say what
    was removed.
    """
    from polya.select.config import SelectConfig
    from polya.select.stage import run

    source = Path(generations_dir)
    generate = RunLayout.generate.root
    if not (source / generate).is_dir():
        raise ConfigError(f"generations artifact {generations_dir} holds no {generate}/ folder (produce it with the generate component)")
    out = prepare_output(output_dir)
    link = out / generate
    if link.is_symlink() or link.exists():
        link.unlink() if link.is_symlink() else shutil.rmtree(link)
    if (source / MANIFEST).is_file():
        shutil.copyfile(source / MANIFEST, out / MANIFEST)
    decontaminate = RunLayout.decontaminate.root
    if decontamination_dir:
        if not (Path(decontamination_dir) / decontaminate).is_dir():
            raise ConfigError(
                f"decontamination artifact {decontamination_dir} holds no {decontaminate}/ folder (produce it with the decontaminate component)"
            )
        shutil.copytree(Path(decontamination_dir) / decontaminate, out / decontaminate, dirs_exist_ok=True)
    forced = given({"run_dir": str(out)}, datasets=split_list(datasets), n_per_question=n_per_question, verifier_endpoint=verifier_endpoint or None)
    cfg = stage_config(SelectConfig, config_yaml, forced)
    link.symlink_to(source.resolve() / generate, target_is_directory=True)
    try:
        result = run(cfg)
    finally:
        link.unlink()
    return {name: {"examples": d.examples, "questions": d.questions, "path": d.data_path} for name, d in result.datasets.items()}


def dataset_file(datasets_dir: str, dataset: str) -> Path:
    """The training file of ``dataset`` in a datasets artifact, with an error listing the datasets present."""
    layout = RunLayout(datasets_dir)
    for path in layout.select.data_files(dataset):
        if Path(layout.uri(path)).is_file():
            return Path(layout.uri(path))
    present = sorted(p.name for p in Path(layout.uri(layout.select.root)).glob("*") if p.is_dir() and p.name != "scores")
    raise ConfigError(
        f"datasets artifact {datasets_dir} has no dataset {dataset!r}; datasets present: {', '.join(present) or 'none'} "
        "(add it to the select stage's datasets)"
    )
