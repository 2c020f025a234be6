"""The chart's alert rules against a real Prometheus (Debian's prometheus/promtool).

- ``promtool check rules`` on the rules extracted from the rendered PrometheusRule;
- ``promtool test rules``: the alerts fire (and stay quiet) on synthetic series;
- a real Prometheus scrapes a running ``polya serve-verifier``, loads the same rules, and every
  metric name the verifier alerts and the dashboard use is present in what it scraped.

Prometheus is installed by ``scripts/install-prometheus.sh`` (CI runs it as root). When the
binaries are missing these tests fail, except for a non-root user without them, where they skip
with the command to run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from polya.core.processes import stop_process, wait_for_http

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("chart_render", REPO / "tests" / "unit" / "chart" / "chart_render.py")
chart_render = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("chart_render", chart_render)
_spec.loader.exec_module(chart_render)

RELEASE, NAMESPACE = chart_render.RELEASE, chart_render.NAMESPACE
VERIFIER_JOB = f"{RELEASE}-polya-verifier"
VLLM_JOB = f"{RELEASE}-polya-vllm"
PROMETHEUS_START_TIMEOUT_S = 60.0
METRIC_RE = re.compile(r"\b(polya_[a-z_]+|vllm:[a-z_:]+)\b")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    hint = "run: bash scripts/install-prometheus.sh (Debian package 'prometheus')"
    if os.geteuid() != 0 and not os.environ.get("POLYA_REQUIRE_PROMETHEUS"):
        pytest.skip(f"'{name}' is not installed and installing it needs root; {hint}")
    pytest.fail(f"'{name}' is not on PATH; {hint}")


@pytest.fixture(scope="module")
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture(scope="module")
def prometheus_bin() -> str:
    return _binary("prometheus")


@pytest.fixture(scope="module")
def rule_groups() -> list[dict[str, Any]]:
    """The groups of the PrometheusRule the chart renders with every component on."""
    chart = chart_render.render_chart({"ray": {"enabled": True}, "monitoring": {"prometheusRules": {"enabled": True}}})
    (rule,) = chart.of_kind("PrometheusRule")
    return rule.body["spec"]["groups"]


@pytest.fixture(scope="module")
def rules_file(rule_groups: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "polya-alerts.yml"
    path.write_text(yaml.safe_dump({"groups": rule_groups}, sort_keys=False))
    return path


def _alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def test_promtool_accepts_the_rendered_rules(promtool: str, rules_file: Path, rule_groups: list[dict[str, Any]]) -> None:
    result = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in rule_groups)
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_bundled_prometheus_config_is_valid_and_carries_the_same_rules(promtool: str, tmp_path: Path, rule_groups: list) -> None:
    chart = chart_render.render_chart(chart_render.load_ci_values("kind"))
    data = chart.get("ConfigMap", f"{RELEASE}-polya-prometheus")["data"]
    assert yaml.safe_load(data["alerts.yml"])["groups"] == rule_groups
    (tmp_path / "alerts.yml").write_text(data["alerts.yml"])
    config = yaml.safe_load(data["prometheus.yml"])
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    # Debian's Prometheus build leaves out Kubernetes service discovery (the chart's image has it):
    # check everything else (relabelling, rules, intervals) with the discovery swapped for a static list.
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs")[0]["namespaces"] == {"names": [NAMESPACE]}
        job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _series(labels: str, values: str) -> dict[str, str]:
    return {"series": labels, "values": values}


def test_alerts_fire_on_synthetic_series(promtool: str, rules_file: Path, tmp_path: Path) -> None:
    """promtool's rule unit tests: each alert fires on a bad series and stays quiet on a good one."""
    v = f'job="{VERIFIER_JOB}", namespace="{NAMESPACE}", instance="v:8080"'
    vl = f'job="{VLLM_JOB}", namespace="{NAMESPACE}", instance="m:8000"'
    rl = f'namespace="{NAMESPACE}", run="exp1"'
    rl_ok = f'namespace="{NAMESPACE}", run="exp2"'
    tests = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [
            {   # verifier: 10% of requests fail with 500, 20% of items time out; a second verifier is healthy
                "interval": "1m",
                "input_series": [
                    _series(f'polya_verifier_requests_total{{{v}, method="POST", path="/v1/verify", status="200"}}', "0+90x20"),
                    _series(f'polya_verifier_requests_total{{{v}, method="POST", path="/v1/verify", status="500"}}', "0+10x20"),
                    _series(f'polya_verifier_items_total{{{v}, kind="math", status="pass"}}', "0+80x20"),
                    _series(f'polya_verifier_items_total{{{v}, kind="math", status="timeout"}}', "0+20x20"),
                    _series(f'polya_verifier_item_timeouts_total{{{v}, kind="math"}}', "0+20x20"),
                    _series(f'polya_verifier_pool_up{{{v}}}', "1x20"),
                    _series(f'up{{{v}}}', "1x20"),
                    _series(f'up{{{vl}}}', "1x5 0x15"),
                    _series(f'vllm:num_requests_waiting{{{vl}}}', "0x20"),
                ],
                "alert_rule_test": [
                    {"eval_time": "15m", "alertname": "PolyaVerifierErrors", "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "job": VERIFIER_JOB},
                         "exp_annotations": {
                             "summary": "Verifier answers more than 5% of requests with 5xx",
                             "description": "10% of the verifier's HTTP requests failed with a server error over 5 minutes."}}]},
                    {"eval_time": "15m", "alertname": "PolyaVerifierTimeouts", "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "job": VERIFIER_JOB},
                         "exp_annotations": {
                             "summary": "More than 10% of judged items hit their deadline",
                             "description": "20% of items timed out (their judge worker was killed and replaced); "
                                            "raise verifier.config.item_deadline_s or add replicas."}}]},
                    {"eval_time": "15m", "alertname": "PolyaVerifierItemErrors", "exp_alerts": []},
                    {"eval_time": "15m", "alertname": "PolyaVerifierDown", "exp_alerts": []},
                    {"eval_time": "15m", "alertname": "PolyaVLLMDown", "exp_alerts": [
                        {"exp_labels": {"severity": "critical", "job": VLLM_JOB, "namespace": NAMESPACE, "instance": "m:8000"},
                         "exp_annotations": {
                             "summary": f"vLLM server {VLLM_JOB} is down",
                             "description": f"No vLLM server of {VLLM_JOB} answers its /metrics scrape: generation, RL rollouts and evaluation stop."}}]},
                    {"eval_time": "15m", "alertname": "PolyaVLLMQueueBacklog", "exp_alerts": []},
                ],
            },
            {   # dead judge pool; vLLM never scraped at all (absent)
                "interval": "1m",
                "input_series": [
                    _series(f'up{{{v}}}', "1x10"),
                    _series(f'polya_verifier_pool_up{{{v}}}', "1 1 0x8"),
                ],
                "alert_rule_test": [
                    {"eval_time": "8m", "alertname": "PolyaVerifierDown", "exp_alerts": [
                        {"exp_labels": {"severity": "critical", "job": VERIFIER_JOB, "namespace": NAMESPACE, "instance": "v:8080"},
                         "exp_annotations": {
                             "summary": "Verifier v:8080 is down or its judge pool is dead",
                             "description": "The scrape of v:8080 fails or polya_verifier_pool_up is 0 (all judge workers gone); "
                                            "/health answers 503 and the pod will be restarted."}}]},
                    {"eval_time": "8m", "alertname": "PolyaVLLMDown", "exp_alerts": [
                        {"exp_labels": {"severity": "critical", "job": VLLM_JOB, "namespace": NAMESPACE},
                         "exp_annotations": {
                             "summary": f"vLLM server {VLLM_JOB} is down",
                             "description": f"No vLLM server of {VLLM_JOB} answers its /metrics scrape: generation, RL rollouts and evaluation stop."}}]},
                ],
            },
            {   # RL: exp1 trains but its reward is flat; exp2's reward rises; exp3 stopped stepping
                "interval": "1m",
                "input_series": [
                    _series(f"polya_rl_steps_total{{{rl}}}", "0+1x120"),
                    _series(f"polya_rl_reward_mean{{{rl}}}", "0.3x120"),
                    _series(f"polya_rl_steps_total{{{rl_ok}}}", "0+1x120"),
                    _series(f"polya_rl_reward_mean{{{rl_ok}}}", "0+0.005x120"),
                    _series(f'polya_rl_steps_total{{namespace="{NAMESPACE}", run="exp3"}}', "0+1x30 30x90"),
                    _series(f'polya_rl_reward_mean{{namespace="{NAMESPACE}", run="exp3"}}', "0+0.01x120"),
                ],
                "alert_rule_test": [
                    {"eval_time": "100m", "alertname": "PolyaRLRewardStalled", "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "run": "exp1"},
                         "exp_annotations": {
                             "summary": "RL reward of run exp1 stopped improving",
                             "description": "The mean reward over the last 30m rose by 0 (at most 0) while training steps kept running."}}]},
                    {"eval_time": "100m", "alertname": "PolyaRLTrainingStalled", "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "namespace": NAMESPACE, "run": "exp3"},
                         "exp_annotations": {
                             "summary": "RL run exp3 made no training step in 30m",
                             "description": "polya_rl_steps_total did not increase for 30m although the run still exports "
                                            "metrics (stuck rollouts or a hung worker)."}}]},
                ],
            },
        ],
    }
    path = tmp_path / "alerts-test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# ---------------------------------------------------------------- a real scrape


@pytest.fixture(scope="module")
def judged_verifier(start_verifier: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real verifier that has judged a pass, a fail, a code timeout and rejected a bad request."""
    proc = start_verifier(tmp_path_factory.mktemp("verifier") / "verifier.log", "--workers", "1", "--code-timeout-s", "1")
    items = [
        {"kind": "math", "prediction": "So the answer is \\boxed{4}.", "reference": "4"},
        {"kind": "math", "prediction": "So the answer is \\boxed{5}.", "reference": "4"},
        {"kind": "code", "prediction": "def f():\n    while True:\n        pass\n", "tests": "f()"},
    ]
    response = httpx.post(f"{proc.url}/v1/verify", json={"items": items}, timeout=120)
    assert response.status_code == 200, response.text
    statuses = [v["status"] for v in response.json()["verdicts"]]
    assert statuses == ["pass", "fail", "timeout"], response.json()
    assert httpx.post(f"{proc.url}/v1/verify", json={"items": [{"kind": "nope"}]}, timeout=30).status_code == 422
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def prometheus(prometheus_bin: str, judged_verifier: Any, rules_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the verifier every second with the chart's job and namespace labels."""
    workdir = tmp_path_factory.mktemp("prometheus")
    target = judged_verifier.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_file)],
        "scrape_configs": [{
            "job_name": VERIFIER_JOB,
            "static_configs": [{"targets": [target], "labels": {"namespace": NAMESPACE}}],
        }],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = workdir / "prometheus.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [prometheus_bin, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=handle, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/-/ready", proc, PROMETHEUS_START_TIMEOUT_S, what="prometheus", log=log, poll_s=0.3)
        yield url
    finally:
        stop_process(proc, grace_s=20)


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def _wait_for(url: str, expr: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = _query(url, expr)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_prometheus_scrapes_every_metric_the_verifier_alerts_use(prometheus: str, rule_groups: list) -> None:
    up = _wait_for(prometheus, f'up{{job="{VERIFIER_JOB}", namespace="{NAMESPACE}"}} == 1')
    assert up, "the verifier target is not up"
    _wait_for(prometheus, "polya_verifier_item_timeouts_total")
    scraped = set(httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=10).json()["data"])
    verifier_rules = next(g for g in rule_groups if g["name"] == "polya-verifier")["rules"]
    used = {m for r in verifier_rules for m in METRIC_RE.findall(r["expr"])}
    assert used >= {"polya_verifier_requests_total", "polya_verifier_items_total", "polya_verifier_item_timeouts_total",
                    "polya_verifier_pool_up", "polya_verifier_worker_crashes_total"}
    assert used <= scraped, f"alert rules use metrics the verifier does not export: {sorted(used - scraped)}"

    dashboard = json.loads((chart_render.CHART_DIR / "dashboards" / "polya.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    dashboard_verifier = {m for e in exprs for m in METRIC_RE.findall(e) if m.startswith("polya_verifier_")}
    assert len(dashboard_verifier) >= 8
    assert dashboard_verifier <= scraped, f"the dashboard uses metrics the verifier does not export: {sorted(dashboard_verifier - scraped)}"


def test_rules_load_and_verifier_alerts_stay_quiet_on_a_healthy_verifier(prometheus: str, rule_groups: list) -> None:
    deadline = time.monotonic() + 30
    while True:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        evaluated = [r for r in rules if r.get("health") != "unknown"]
        if (rules and len(evaluated) == len(rules)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {r["name"] for r in rules} == set(_alerts(rule_groups))
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    states = {r["name"]: r["state"] for r in rules}
    assert states["PolyaVerifierDown"] == "inactive"
    # one request of one (the 422 is a client error) and no 5xx: the error alert has nothing to fire on
    assert states["PolyaVerifierErrors"] == "inactive"
    # no vLLM server is scraped here: its "down" alert is pending (absent), exactly as it would be on a cluster
    assert states["PolyaVLLMDown"] in ("pending", "firing")
    pool_up = _query(prometheus, f'polya_verifier_pool_up{{job="{VERIFIER_JOB}"}}')
    assert pool_up and pool_up[0]["value"][1] == "1"
    timeouts = _query(prometheus, f'polya_verifier_item_timeouts_total{{job="{VERIFIER_JOB}", kind="code"}}')
    assert timeouts and float(timeouts[0]["value"][1]) == 1.0
