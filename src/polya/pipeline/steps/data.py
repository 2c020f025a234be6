"""The ``data`` step: the questions a ``DataConfig`` describes, as a questions artifact."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from polya.core.errors import ConfigError
from polya.pipeline.steps.common import given, prepare_output, stage_config

logger = logging.getLogger(__name__)

QUESTIONS_FILE = "questions.jsonl"


def data_step(config_yaml: str, output_dir: str, source: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Load the questions a ``DataConfig`` describes and write them as ``questions.jsonl``."""
    from polya.data.config import DataConfig
    from polya.data.loader import load_questions, write_questions

    cfg = stage_config(DataConfig, config_yaml, given({}, source=source or None, limit=limit))
    out = prepare_output(output_dir)
    qset = load_questions(cfg)
    count = write_questions(qset.records, out / QUESTIONS_FILE)
    summary = {"questions": count, "source": qset.source, "skipped": qset.skipped, "config": cfg.model_dump(mode="json")}
    (out / "data.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    logger.info("data: %s questions from %s -> %s", count, qset.source, out)
    return summary


def questions_file(questions_dir: str) -> str:
    """The questions file of a questions artifact."""
    path = Path(questions_dir) / QUESTIONS_FILE
    if not path.is_file():
        raise ConfigError(f"questions artifact {questions_dir} holds no {QUESTIONS_FILE} (produce it with the data component)")
    return str(path)
