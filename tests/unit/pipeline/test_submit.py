"""``polya pipeline submit`` through the real ``kfp.Client`` against kfp_api_server (a real HTTP
server speaking the KFP v2beta1 REST subset the client uses; no KFP runs on the test machine)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from kfp_api_server import KfpApiServer

from polya.cli.main import cli
from polya.core.errors import ConfigError, PolyaError
from polya.pipeline.kfp import KfpAuth, submit_pipeline


def test_cli_submit_sends_the_compiled_pipeline_arguments_and_token():
    with KfpApiServer() as api:
        result = CliRunner().invoke(cli, [
            "pipeline", "submit", "--pipeline", "smoke", "--host", api.url, "--token", "s3cret", "--experiment", "gsm8k",
            "--arg", "data_limit=3", "--arg", "heuristics=analogy,decomposition", "--arg", "generate_config={concurrency: 2}",
            "--run-name", "try-1", "--wait", "--images.tag", "dev",
        ])
        assert result.exit_code == 0, result.output
        out = json.loads(result.output.strip().splitlines()[-1])
        assert out["state"] == "SUCCEEDED" and out["run_id"] in api.runs and out["experiment"] == "gsm8k"
        create = next(r for r in api.requests if r["method"] == "POST" and r["path"].startswith("/apis/v2beta1/runs"))
        body = create["body"]
        assert body["display_name"] == "try-1" and body["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "polya-smoke"
        assert body["runtime_config"]["parameters"] == {"data_limit": 3, "heuristics": "analogy,decomposition", "generate_config": "{concurrency: 2}"}
        executors = body["pipeline_spec"]["pipeline_spec"]["deploymentSpec"]["executors"]
        assert "secretAsEnv" in json.dumps(body["pipeline_spec"]["platform_spec"])
        assert {e["container"]["image"] for e in executors.values()} == {"polya/cpu:dev"}
        assert {k.lower(): v for k, v in create["headers"].items()}.get("authorization") == "Bearer s3cret"
        assert [e["display_name"] for e in api.experiments.values()] == ["gsm8k"]


def test_submit_reuses_the_experiment_and_reports_a_failed_run():
    with KfpApiServer(final_state="FAILED") as api:
        auth = KfpAuth(host=api.url, cookies="authservice_session=abc")
        first = submit_pipeline("smoke", auth, {"rounds": 1})
        with pytest.raises(PolyaError, match="ended in state FAILED"):
            submit_pipeline("smoke", auth, wait=True)
        assert len(api.experiments) == 1 and len(api.runs) == 2 and first["run_id"] in api.runs
        assert any("authservice_session=abc" in {k.lower(): v for k, v in r["headers"].items()}.get("cookie", "") for r in api.requests)


def test_submit_refuses_unknown_parameters_before_contacting_the_server():
    with pytest.raises(ConfigError, match="unknown pipeline parameter"):
        submit_pipeline("polya", KfpAuth(host="http://127.0.0.1:9"), {"modle": "x"})
