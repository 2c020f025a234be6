"""Ray's known harmless warnings go to DEBUG in worker processes; everything else passes untouched."""

from __future__ import annotations

import logging

import pytest

from polya.rl.ray_logging import NOISE, quiet_ray_worker

CLEANER = next(iter(NOISE))


def test_the_cleaner_warning_is_demoted_and_others_are_not(caplog: pytest.LogCaptureFixture) -> None:
    quiet_ray_worker()
    quiet_ray_worker()  # idempotent: one filter
    logger = logging.getLogger(CLEANER)
    assert len(logger.filters) == 1
    with caplog.at_level(logging.INFO):
        logger.warning("Failed to query Ray Train Controller actor state. State API may be temporarily unavailable.")
        logger.warning("Controller actor died; removing placement group pg-1")
        logger.error("Failed to query Ray Train Controller actor state, and it is an error")
    assert [(r.levelname, r.getMessage()[:40]) for r in caplog.records] == [
        ("WARNING", "Controller actor died; removing placemen"),
        ("ERROR", "Failed to query Ray Train Controller act"),
    ]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=CLEANER):
        logger.warning("Failed to query Ray Train Controller actor state.")
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
