"""Ray's internal noise, filtered where it is known to be harmless, so polya's progress stays readable.

Every Ray worker process of polya's jobs runs :func:`quiet_ray_worker` first (Ray's
``worker_process_setup_hook``). It drops, and only drops, messages that say nothing about the
run:

- Ray Train's ``PlacementGroupCleaner`` warns "Failed to query Ray Train Controller actor state"
  every few seconds when the Ray state API is unavailable. The state API is served by the Ray
  dashboard, which polya does not start on a local cluster (it costs memory and start-up time on a
  laptop). The cleaner only removes a placement group left behind by a crashed controller; on a
  local cluster polya shuts the whole cluster down at the end anyway. One demo run printed the
  warning 234 times.

The messages go to DEBUG instead of disappearing (``polya --log-level debug`` shows them), and
errors are never touched.
"""

from __future__ import annotations

import logging

NOISE: dict[str, tuple[str, ...]] = {
    "ray.train.v2._internal.execution.controller.placement_group_cleaner": ("Failed to query Ray Train Controller actor state",),
}
"""Logger name -> message prefixes demoted to DEBUG."""


class DemoteKnownNoise(logging.Filter):
    """Turns the known harmless warnings of one logger into DEBUG records (kept only when DEBUG is on)."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or not str(record.msg).startswith(self.prefixes):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_ray_worker() -> None:
    """Install the filters in this process (Ray calls it at the start of every worker process)."""
    for name, prefixes in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DemoteKnownNoise) for f in logger.filters):
            logger.addFilter(DemoteKnownNoise(prefixes))
