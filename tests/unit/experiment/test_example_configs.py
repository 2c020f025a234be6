"""Every example config shipped in configs/ validates against its stage's config model."""

from __future__ import annotations

from pathlib import Path

import pytest

from polya.core.config import load_config
from polya.experiment.config import RunConfig
from polya.generate.config import GenerateConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
MODELS = {"generate": GenerateConfig, "run": RunConfig}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_config_validates(path: Path) -> None:
    model = MODELS[path.name.split("-", 1)[0]]
    config = load_config(model, path)
    assert isinstance(config, model)


def test_there_are_example_configs() -> None:
    assert len(list(CONFIGS.glob("*.yaml"))) >= 2
