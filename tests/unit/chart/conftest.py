"""Fixtures: the chart rendered once per value set (see chart_render.py)."""

from __future__ import annotations

import pytest
from chart_render import VALUE_SETS, RenderedChart, render_chart


@pytest.fixture(scope="session", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> RenderedChart:
    """The chart rendered once per value set of VALUE_SETS."""
    return render_chart(VALUE_SETS[request.param])


@pytest.fixture(scope="session")
def rendered_gpu() -> RenderedChart:
    return render_chart(VALUE_SETS["gpu"])


@pytest.fixture(scope="session")
def rendered_kind() -> RenderedChart:
    return render_chart(VALUE_SETS["kind"])


@pytest.fixture(scope="session")
def rendered_defaults() -> RenderedChart:
    return render_chart({})
