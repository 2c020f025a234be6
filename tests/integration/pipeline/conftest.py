"""The Kubernetes API stand-in lives with the unit tests (tests/unit/pipeline/kube_api_server.py); share it here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "pipeline"))
