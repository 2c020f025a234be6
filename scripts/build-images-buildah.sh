#!/usr/bin/env bash
# Build polya's CPU images without a Docker engine or a registry: Debian's buildah (vfs storage,
# chroot isolation) on a base image made from Debian packages by mmdebstrap.
#
#   bash scripts/build-images-buildah.sh                  # verifier and cpu
#   bash scripts/build-images-buildah.sh verifier         # only this one
#   BUILDAH_ROOT=/var/tmp/polya-buildah bash scripts/build-images-buildah.sh --clean   # delete storage and base
#
# Needs root, `apt-get install buildah mmdebstrap`, a Debian mirror ($MIRROR) and PyPI. The base
# image `localhost/polya/debian-python:$SUITE` (python3, venv, ca-certificates; made once, kept)
# goes in as the Dockerfiles' PYTHON_IMAGE. $CA_BUNDLE (default: this machine's bundle) is copied
# into it and pip is pointed at it, for networks that reach PyPI through a TLS-inspecting proxy.
# For the cpu image, docker/wheelhouse/ gets torch's CPU wheel first (`pip download` of the pinned
# version from $TORCH_INDEX and pip's own configuration), so the build needs no PyTorch index, and
# wheels of the pinned source-only packages ($SOURCE_ONLY: `pip wheel` here, from pip's cache when
# it holds them), so the build compiles nothing.
# Images and the figures ($BUILDAH_ROOT/figures.json: seconds and bytes per image) stay under
# $BUILDAH_ROOT. The CUDA images (vllm-server, trainer) start FROM the vLLM image of a registry
# and are not built here.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT_DIR="${BUILDAH_ROOT:-/var/tmp/polya-buildah}"
TAG="${TAG:-0.1.0}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
TORCH_INDEX="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
SOURCE_ONLY="${SOURCE_ONLY:-}"
PYTHON="${PYTHON:-python3}"
BASE="localhost/polya/debian-python:$SUITE"
B=(buildah --storage-driver vfs --root "$ROOT_DIR/storage" --runroot "$ROOT_DIR/run")
ALL=(verifier cpu)

targets=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    --clean) rm -rf "$ROOT_DIR"; echo "[clean] removed $ROOT_DIR"; exit 0 ;;
    verifier|cpu) targets+=("$arg") ;;
    vllm-server|trainer) echo "error: $arg starts FROM a CUDA vLLM image in a registry; build it with scripts/build-images.sh and a Docker engine" >&2; exit 2 ;;
    *) echo "unknown argument '$arg'; images: ${ALL[*]}; flags: --clean" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install -y buildah mmdebstrap)" >&2; exit 1; }
done
mkdir -p "$ROOT_DIR"
figures="$ROOT_DIR/figures.json"
[ -f "$figures" ] || echo '{}' > "$figures"

record() {  # record <key> <seconds> <image>: merge one figure into figures.json
  "$PYTHON" - "$figures" "$@" "$(uname -m), $(nproc) cores" <<'EOF'
import json, sys
path, key, seconds, image, machine = sys.argv[1:]
data = json.load(open(path))
data[key] = {"seconds": int(seconds), "image": image, "machine": machine}
json.dump(data, open(path, "w"), indent=2, sort_keys=True)
EOF
}

base_image() {
  if "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
    echo "[base] $BASE exists"
    return
  fi
  echo "[base] mmdebstrap $SUITE (minbase + python3, python3-venv, python-is-python3, ca-certificates) from $MIRROR"
  local start tar ctr
  start=$(date +%s)
  tar="$ROOT_DIR/base-$SUITE.tar"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates "$SUITE" "$tar" "$MIRROR"
  ctr=$("${B[@]}" from scratch)
  "${B[@]}" add "$ctr" "$tar" /
  "${B[@]}" copy "$ctr" "$CA_BUNDLE" /etc/ssl/certs/ca-certificates.crt
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label org.opencontainers.image.description="Debian $SUITE minbase with python3 (mmdebstrap), base of polya's CPU images" \
    --cmd '["python3"]' "$ctr"
  "${B[@]}" commit --quiet --format docker "$ctr" "$BASE" >/dev/null
  "${B[@]}" rm "$ctr" >/dev/null
  rm -f "$tar"
  record base "$(( $(date +%s) - start ))" "$BASE"
}

pin() {  # pin <package>: its version in docker/constraints-cpu.txt
  grep -i -E "^$1==" docker/constraints-cpu.txt | cut -d= -f3
}

wheelhouse() {
  local torch name
  mkdir -p docker/wheelhouse
  torch=$(pin torch)
  if ls docker/wheelhouse/torch-"${torch%%+*}"*.whl >/dev/null 2>&1; then
    echo "[wheelhouse] torch $torch already there"
  else
    echo "[wheelhouse] pip download torch==$torch${TORCH_INDEX:+ (index $TORCH_INDEX)}"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest docker/wheelhouse \
      ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "torch==$torch"
  fi
  for name in $SOURCE_ONLY; do
    echo "[wheelhouse] pip wheel $name==$(pin "$name")"
    "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir docker/wheelhouse "$name==$(pin "$name")"
  done
}

base_image
for name in "${targets[@]}"; do
  image="polya/${name}:${TAG}"
  extra=()
  if [ "$name" = cpu ]; then
    wheelhouse
    extra=(--build-arg TORCH_INDEX=)
  fi
  echo "[build] $image (docker/$name/Dockerfile, base $BASE)"
  start=$(date +%s)
  "${B[@]}" bud --isolation chroot --format docker --file "docker/$name/Dockerfile" \
    --build-arg "PYTHON_IMAGE=$BASE" --build-arg "POLYA_VERSION=$TAG" "${extra[@]}" \
    --label org.opencontainers.image.licenses=Apache-2.0 --label org.opencontainers.image.source=https://github.com/polya/polya \
    --tag "$image" .
  record "$name" "$(( $(date +%s) - start ))" "localhost/$image"
done
"$PYTHON" - "$figures" "$ROOT_DIR" <<'EOF'
import json, subprocess, sys
path, root = sys.argv[1:]
data = json.load(open(path))
for entry in data.values():
    if entry.get("image"):
        out = subprocess.run(["buildah", "--storage-driver", "vfs", "--root", f"{root}/storage", "--runroot", f"{root}/run",
                              "images", "--json", entry["image"]], capture_output=True, text=True, check=True)
        entry["size"] = json.loads(out.stdout)[0]["size"]
json.dump(data, open(path, "w"), indent=2, sort_keys=True)
print(json.dumps(data, indent=2, sort_keys=True))
EOF
echo "[done] ${targets[*]} (tag $TAG); figures in $figures"
