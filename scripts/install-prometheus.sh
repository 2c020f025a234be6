#!/usr/bin/env bash
# Install Prometheus and promtool (Debian's `prometheus` package) for the monitoring tests.
# Idempotent: does nothing when both commands are already on PATH.
#
#   bash scripts/install-prometheus.sh      # as root on Debian/Ubuntu (CI runs it from scripts/test.sh)
#
# The tests in tests/integration/monitoring/ start a real Prometheus that scrapes a running
# verifier and check the chart's alert rules with `promtool check rules` / `promtool test rules`.
# Without root or apt this script says what to do and exits non-zero; it never half-installs.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  echo "[prometheus] already installed: $(prometheus --version 2>&1 | head -n1)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "[prometheus] error: apt-get not found. Install Prometheus >= 2.42 so that 'prometheus' and" >&2
  echo "             'promtool' are on PATH (https://prometheus.io/download/), then run the tests again." >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "[prometheus] error: installing the Debian 'prometheus' package needs root." >&2
    echo "             Run: sudo apt-get install -y --no-install-recommends prometheus" >&2
    exit 1
  fi
fi

echo "[prometheus] installing Debian package 'prometheus' (prometheus + promtool)"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package from starting a system Prometheus service during the install;
# the tests start their own on a free port.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus; then
  echo "[prometheus] apt-get install failed; refreshing the package lists and trying again"
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus
fi

for cmd in prometheus promtool; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "[prometheus] error: '$cmd' is still not on PATH after installing the package" >&2
    exit 1
  fi
done
echo "[prometheus] ok: $(prometheus --version 2>&1 | head -n1)"
