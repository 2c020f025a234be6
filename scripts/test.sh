#!/usr/bin/env bash
# Install what the tests need, then run them. This is the README's test command and what CI runs.
#
#   bash scripts/test.sh                 # unit + integration tests (real vLLM server, S3 server, ...)
#   bash scripts/test.sh -m "not integration"   # fast unit tests only
#   bash scripts/test.sh -m gpu          # opt-in: needs an NVIDIA GPU
#   bash scripts/test.sh -m images       # opt-in: builds and runs the CPU images with buildah (root)
#   bash scripts/test.sh -m slow         # opt-in: integration tests too long for the default run
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# A real Prometheus for tests/integration/monitoring (Debian package; needs root, as in CI).
bash scripts/install-prometheus.sh || echo "[test] prometheus/promtool not installed (needs root): tests/integration/monitoring will skip"
VENV="${POLYA_VENV:-.venv}"
export POLYA_CACHE_DIR="${POLYA_CACHE_DIR:-$HOME/.cache/polya}"
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  args=(-m "not gpu and not cluster and not images and not slow")
fi
exec "$VENV/bin/python" -m pytest "${args[@]}"
