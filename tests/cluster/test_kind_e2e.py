"""Checks after scripts/kind-e2e.sh: the tiny pipeline's artifacts in MinIO, metrics in Prometheus.

Opt-in (marker ``cluster``); run through the script, which installs the chart on kind and runs the
pipeline first: ``bash scripts/kind-e2e.sh``. Ports come from kind-config.yaml (MinIO 9000,
Prometheus 9090 on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

pytestmark = pytest.mark.cluster

if not os.environ.get("POLYA_KIND_E2E"):
    pytest.skip("kind end to end: run `bash scripts/kind-e2e.sh` (it sets POLYA_KIND_E2E=1)", allow_module_level=True)

MINIO = os.environ.get("POLYA_E2E_MINIO", "127.0.0.1:9000")
PROMETHEUS = os.environ.get("POLYA_E2E_PROMETHEUS", "http://127.0.0.1:9090")
RELEASE = os.environ.get("POLYA_E2E_RELEASE", "polya")
NAMESPACE = os.environ.get("POLYA_E2E_NAMESPACE", "polya")
RUN_PREFIX = os.environ.get("POLYA_E2E_RUN_PREFIX", "runs/kind-e2e")
BUCKET = "polya"


@pytest.fixture(scope="module")
def minio():
    from minio import Minio

    return Minio(MINIO, access_key="polya", secret_key=os.environ.get("POLYA_E2E_MINIO_PASSWORD", "polya-kind-secret"), secure=False)


def _query(expr: str) -> list[dict]:
    response = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def _eventually(expr: str, timeout_s: float = 120.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = _query(expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(2)


def test_pipeline_artifacts_are_in_minio(minio) -> None:
    names = {o.object_name for o in minio.list_objects(BUCKET, prefix=f"{RUN_PREFIX}/", recursive=True)}
    assert f"{RUN_PREFIX}/manifest.json" in names, sorted(names)[:50]
    assert f"{RUN_PREFIX}/generate/summary.json" in names
    assert any(n.startswith(f"{RUN_PREFIX}/generate/generations/round-01/") for n in names)
    assert f"{RUN_PREFIX}/select/report.json" in names
    manifest = json.loads(minio.get_object(BUCKET, f"{RUN_PREFIX}/manifest.json").read())
    assert manifest["stages"]["generate"]["status"] == "done", manifest["stages"]
    summary = json.loads(minio.get_object(BUCKET, f"{RUN_PREFIX}/generate/summary.json").read())
    assert summary, "empty generate summary"


def test_model_was_served_from_minio(minio) -> None:
    names = {o.object_name for o in minio.list_objects(BUCKET, prefix="models/", recursive=True)}
    assert any(n.endswith("config.json") for n in names)


def test_prometheus_scrapes_vllm_and_the_verifier() -> None:
    for component in ("vllm", "verifier"):
        up = _eventually(f'up{{job="{RELEASE}-{component}", namespace="{NAMESPACE}"}} == 1')
        assert up, f"{RELEASE}-{component} is not scraped (up != 1)"
    assert _eventually(f'vllm:num_requests_running{{namespace="{NAMESPACE}"}}'), "no vllm:* metrics scraped"
    items = _eventually(f'sum(polya_verifier_items_total{{namespace="{NAMESPACE}"}}) > 0')
    assert items, "the verifier judged nothing during the pipeline (polya_verifier_items_total)"
    tokens = _eventually(f'sum(vllm:generation_tokens_total{{namespace="{NAMESPACE}"}}) > 0')
    assert tokens, "vLLM generated no tokens during the pipeline"


def test_alert_rules_are_loaded_and_nothing_is_down() -> None:
    groups = httpx.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert {"PolyaVerifierDown", "PolyaVLLMDown", "PolyaRLRewardStalled"} <= set(rules)
    assert all(r["health"] == "ok" for r in rules.values()), {n: r.get("lastError") for n, r in rules.items()}
    assert rules["PolyaVerifierDown"]["state"] == "inactive"
    assert rules["PolyaVLLMDown"]["state"] == "inactive"
