#!/usr/bin/env bash
# End to end on a local kind cluster: create the cluster from kind-config.yaml, build and load the
# CPU images, install charts/polya with charts/polya/ci/kind-values.yaml, upload the embedded model
# to MinIO, run the tiny pipeline as a Job in the cluster, then check the artifacts in MinIO and the
# metrics in the bundled Prometheus (tests/cluster/test_kind_e2e.py does the checks).
#
#   bash scripts/kind-e2e.sh            # everything; keeps the cluster afterwards
#   KEEP_CLUSTER=0 bash scripts/kind-e2e.sh   # delete the cluster at the end
#   SKIP_BUILD=1 bash scripts/kind-e2e.sh     # images already loaded
#
# Needs: docker (running), kind >= 0.24, kubectl, helm >= 3.14, and ./.venv (scripts/install.sh).
# Ports 9000, 9001, 8000, 8080 and 9090 on 127.0.0.1 must be free (kind-config.yaml maps them).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${KIND_CLUSTER:-polya}"
NAMESPACE="${POLYA_NAMESPACE:-polya}"
RELEASE="${POLYA_RELEASE:-polya}"
VALUES="charts/polya/ci/kind-values.yaml"
PY="${POLYA_VENV:-.venv}/bin/python"
TAG="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/polya/Chart.yaml)"
MODEL_PREFIX="models/smollm2-135m-instruct"
RUN_PREFIX="runs/kind-e2e"

log() { echo "[kind-e2e] $*"; }
die() { echo "[kind-e2e] error: $*" >&2; exit 1; }

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed (see docs/chart.md, 'kind end to end')"
done
docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer (docker info failed)"
[ -x "$PY" ] || die "$PY not found: run 'bash scripts/install.sh' first"

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "cluster '$CLUSTER' exists; reusing it"
else
  log "creating cluster '$CLUSTER' from kind-config.yaml"
  kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  [ -f scripts/build-images.sh ] || die "scripts/build-images.sh is missing (it builds polya/{vllm-server,verifier,trainer,cpu}:$TAG)"
  log "building the images and loading them into kind"
  bash scripts/build-images.sh --kind "$CLUSTER"
fi

log "installing the chart without vLLM (MinIO, verifier, Prometheus)"
helm upgrade --install "$RELEASE" charts/polya -n "$NAMESPACE" --create-namespace -f "$VALUES" \
  --set vllm.enabled=false --wait --timeout 10m

log "uploading the embedded model to s3://polya/$MODEL_PREFIX (MinIO on localhost:9000)"
POLYA_S3_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=polya AWS_SECRET_ACCESS_KEY=polya-kind-secret \
  "$PY" - "$MODEL_PREFIX" <<'PYEOF'
import sys
from pathlib import Path
from minio import Minio
from polya.models.embedded import ensure_embedded_checkpoint

prefix = sys.argv[1]
root = Path(ensure_embedded_checkpoint())
client = Minio("127.0.0.1:9000", access_key="polya", secret_key="polya-kind-secret", secure=False)
files = [p for p in root.rglob("*") if p.is_file()]
for path in files:
    client.fput_object("polya", f"{prefix}/{path.relative_to(root).as_posix()}", str(path))
print(f"uploaded {len(files)} files from {root}")
PYEOF

log "installing the chart with vLLM (CPU) and waiting for it (model load takes minutes)"
helm upgrade --install "$RELEASE" charts/polya -n "$NAMESPACE" -f "$VALUES" --wait --timeout 20m

log "running the tiny pipeline as a Job"
FULLNAME="$RELEASE"; case "$RELEASE" in *polya*) ;; *) FULLNAME="$RELEASE-polya";; esac
kubectl -n "$NAMESPACE" delete job polya-e2e-pipeline --ignore-not-found >/dev/null
cat <<YAML | kubectl -n "$NAMESPACE" apply -f -
apiVersion: batch/v1
kind: Job
metadata:
  name: polya-e2e-pipeline
  labels: {app.kubernetes.io/name: polya, app.kubernetes.io/instance: $RELEASE, app.kubernetes.io/component: e2e-pipeline}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {app.kubernetes.io/name: polya, app.kubernetes.io/instance: $RELEASE, app.kubernetes.io/component: e2e-pipeline}
    spec:
      restartPolicy: Never
      serviceAccountName: $FULLNAME-pipeline-runner
      nodeSelector: {polya.dev/pool: cpu}
      securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: pipeline
          image: polya/cpu:$TAG
          imagePullPolicy: Never
          envFrom: [{configMapRef: {name: $FULLNAME-endpoints}}]
          env:
            - {name: HOME, value: /tmp}
            - {name: AWS_ACCESS_KEY_ID, valueFrom: {secretKeyRef: {name: $FULLNAME-minio, key: rootUser}}}
            - {name: AWS_SECRET_ACCESS_KEY, valueFrom: {secretKeyRef: {name: $FULLNAME-minio, key: rootPassword}}}
          command: ["/bin/sh", "-ec"]
          args:
            - >-
              polya run --run-dir "s3://\$POLYA_S3_BUCKET/$RUN_PREFIX" --stages '[generate, select]'
              --generate.server.endpoint "\$POLYA_VLLM_ENDPOINT" --generate.server.served-model-name "\$POLYA_VLLM_MODEL"
              --generate.verifier-endpoint "\$POLYA_VERIFIER_URL" --select.verifier-endpoint "\$POLYA_VERIFIER_URL"
              --generate.data.limit 2 --generate.bootstrap.rounds 1
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
YAML
if ! kubectl -n "$NAMESPACE" wait --for=condition=complete job/polya-e2e-pipeline --timeout=30m; then
  kubectl -n "$NAMESPACE" logs job/polya-e2e-pipeline --tail=200 || true
  die "the pipeline Job did not complete"
fi
kubectl -n "$NAMESPACE" logs job/polya-e2e-pipeline --tail=20

log "checking artifacts in MinIO and metrics in Prometheus"
POLYA_KIND_E2E=1 POLYA_E2E_RUN_PREFIX="$RUN_PREFIX" POLYA_E2E_RELEASE="$FULLNAME" POLYA_E2E_NAMESPACE="$NAMESPACE" \
  "$PY" -m pytest -m cluster tests/cluster -p no:cacheprovider -q

if [ "${KEEP_CLUSTER:-1}" = 0 ]; then
  log "deleting cluster '$CLUSTER'"
  kind delete cluster --name "$CLUSTER"
fi
log "ok"
