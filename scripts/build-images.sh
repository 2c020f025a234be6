#!/usr/bin/env bash
# Build polya's container images and, for the local kind cluster, load them into it.
#
#   bash scripts/build-images.sh                  # build all four, tag 0.1.0
#   bash scripts/build-images.sh cpu verifier     # only these
#   KIND_CLUSTER=polya bash scripts/build-images.sh --kind cpu verifier   # build, then `kind load`
#   REGISTRY=ghcr.io/acme/ bash scripts/build-images.sh --push            # build and push
#
# Images: polya/vllm-server (CUDA vLLM), polya/verifier (slim), polya/trainer (CUDA: torch,
# DeepSpeed, TRL, Ray, vLLM), polya/cpu (everything on CPU; the kind image). Needs a Docker
# engine (DOCKER=podman works too); the CUDA images are large (~20 GB) and build on any x86_64
# machine, no GPU needed.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${TAG:-0.1.0}"
REGISTRY="${REGISTRY:-}"
DOCKER="${DOCKER:-docker}"
KIND_CLUSTER="${KIND_CLUSTER:-polya}"
ALL=(cpu verifier vllm-server trainer)

load_kind=0
push=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --kind) load_kind=1 ;;
    --push) push=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    cpu|verifier|vllm-server|trainer) targets+=("$arg") ;;
    *) echo "unknown argument '$arg'; images: ${ALL[*]}; flags: --kind --push" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

command -v "$DOCKER" >/dev/null || { echo "error: '$DOCKER' not found; a Docker engine is needed to build images" >&2; exit 1; }
if [ "$load_kind" = 1 ]; then
  command -v kind >/dev/null || { echo "error: kind not found (https://kind.sigs.k8s.io)" >&2; exit 1; }
  kind get clusters | grep -qx "$KIND_CLUSTER" || { echo "error: no kind cluster '$KIND_CLUSTER' (kind create cluster --name $KIND_CLUSTER --config kind-config.yaml)" >&2; exit 1; }
fi

for name in "${targets[@]}"; do
  image="${REGISTRY}polya/${name}:${TAG}"
  echo "[build] $image (docker/$name/Dockerfile)"
  "$DOCKER" build --file "docker/$name/Dockerfile" --build-arg "POLYA_VERSION=$TAG" --tag "$image" \
    --label org.opencontainers.image.licenses=Apache-2.0 --label org.opencontainers.image.source=https://github.com/polya/polya .
  if [ "$push" = 1 ]; then
    echo "[push] $image"
    "$DOCKER" push "$image"
  fi
  if [ "$load_kind" = 1 ]; then
    echo "[kind] loading $image into cluster $KIND_CLUSTER"
    kind load docker-image "$image" --name "$KIND_CLUSTER"
  fi
done
echo "[done] ${targets[*]} (tag $TAG)"
