"""EvalConfig: presets, validation messages, and the `polya eval` command's settings."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from polya.core.config import load_config
from polya.core.errors import ConfigError
from polya.eval.config import EvalConfig, EvalSamplingConfig
from polya.models.embedded import EMBEDDED_MODEL


def test_defaults_are_the_offline_cpu_demo() -> None:
    cfg = EvalConfig()
    assert cfg.arms == {"base": EMBEDDED_MODEL}
    assert [(b.name, b.limit) for b in cfg.benchmarks] == [("synthetic", 8)]
    assert (cfg.sampling.preset, cfg.sampling.n, cfg.sampling.max_tokens) == ("cpu-demo", 4, 256)
    assert cfg.sampling.resolved_ks() == [1, 2, 4]
    assert not cfg.judge.enabled


def test_presets_fill_what_is_not_given() -> None:
    greedy = EvalSamplingConfig(preset="greedy")
    assert (greedy.n, greedy.temperature, greedy.resolved_ks()) == (1, 0.0, [1])
    passk = EvalSamplingConfig(preset="pass@k")
    assert (passk.n, passk.temperature, passk.resolved_ks()) == (64, 1.0, [1, 2, 4, 8, 16, 32, 64])
    smaller = EvalSamplingConfig.model_validate({"preset": "pass@k", "n": 16, "temperature": 0.6})
    assert (smaller.n, smaller.temperature, smaller.max_tokens, smaller.resolved_ks()) == (16, 0.6, 3072, [1, 2, 4, 8, 16])
    assert EvalSamplingConfig(n=8, ks=[8, 1]).resolved_ks() == [1, 8]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sampling": {"n": 4, "ks": [8]}}, "ks [8] are outside 1..n=4"),
        ({"sampling": {"preset": "greedy", "n": 4}}, "n=4 samples at temperature 0"),
        ({"sampling": {"preset": "best"}}, "sampling.preset"),
        ({"benchmarks": ["gsm9k"]}, "unknown benchmark 'gsm9k'; valid: synthetic, gsm8k, math500"),
        ({"benchmarks": ["gsm8k", "gsm8k"]}, "['gsm8k'] are listed twice"),
        ({"benchmarks": []}, "at least one benchmark"),
        ({"arms": {"a": "m1", "b": "m2"}, "endpoint": "http://x:8000/v1"}, "endpoint serves one model but 2 arms"),
        ({"endpoints": {"c": "http://x:8000/v1"}}, "endpoints names arms ['c']"),
        ({"arms": {"bad/name": "m"}}, "arm name 'bad/name'"),
        ({"server": {"endpoint": "http://x:8000/v1"}}, "set endpoint (one arm) or endpoints"),
        ({"server": {"model": "Qwen/Qwen2.5-0.5B"}}, "name the models in arms"),
        ({"judge": {"enabled": True}}, "judge.enabled needs judge.endpoint"),
        ({"verifier_endpoint": "verifier:8080"}, "verifier_endpoint: Value error, must be an http"),
        ({"sampling": {"temprature": 1}}, "did you mean 'temperature'"),
    ],
)
def test_bad_settings_are_named(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(EvalConfig, overrides=overrides)
    assert message in str(err.value)


def test_arm_endpoints() -> None:
    one = EvalConfig(endpoint="http://h:8000/v1/")
    assert one.arm_endpoint("base") == "http://h:8000/v1"
    two = EvalConfig(arms={"base": "m0", "polya": "s3://b/runs/x/sft/polya/final"}, endpoints={"polya": "http://p:8000/v1"})
    assert two.arm_endpoint("base") is None and two.arm_endpoint("polya") == "http://p:8000/v1"


def test_cli_eval_prints_resolved_settings() -> None:
    from polya.cli.main import cli

    result = CliRunner().invoke(
        cli,
        ["eval", "--print-config", "--sampling.preset", "pass@k", "--sampling.n", "8",
         "--benchmarks", "[gsm8k, {name: math500, path: m.jsonl, limit: 5}]", "--arms", "{base: m0, polya: m1}"],
    )
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["sampling"]["n"] == 8 and printed["sampling"]["temperature"] == 1.0
    assert [b["name"] for b in printed["benchmarks"]] == ["gsm8k", "math500"]
    assert printed["benchmarks"][1]["path"] == "m.jsonl" and printed["arms"] == {"base": "m0", "polya": "m1"}
    assert "--sampling.preset" in CliRunner().invoke(cli, ["eval", "--help"]).output
