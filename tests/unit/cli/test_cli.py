"""The ``polya`` command line: every stage is listed, every setting is an option, precedence, exit codes.

Nothing here starts a model server: ``generate``, ``run`` and ``serve-model`` are only invoked
with ``--print-config`` (or with invalid settings, which fail before any server starts).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from polya import __version__
from polya.cli.main import EXIT_USER_ERROR, cli, main
from polya.core.config import field_paths
from polya.experiment.config import STAGES, RunConfig
from polya.generate.config import GenerateConfig
from polya.serving.config import ServerConfig

STAGE_COMMANDS = ("generate", "serve-model", "serve-verifier", "verify", "select", "sft", "rl", "eval", "run", "pipeline")


def leaf_paths(model: type[BaseModel]) -> list[str]:
    """Dotted paths of every leaf field of the pydantic model."""
    return field_paths(model)


@pytest.fixture(autouse=True)
def _restore_sigterm() -> Iterator[None]:
    """``main()`` installs a SIGTERM handler; give the test process its own back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Call the console entry point; return (exit code, stdout, stderr)."""
    code: Any = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err


def printed_config(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run_main(argv + ["--print-config"], capsys)
    assert code == 0, err
    return yaml.safe_load(out)


# ----- help -------------------------------------------------------------------------------


def test_top_level_help_lists_every_stage_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:", 1)[1]
    listed = {line.split()[0] for line in commands.splitlines() if line.strip()}
    for name in STAGE_COMMANDS:
        assert name in listed, f"`polya --help` does not list {name}"


def test_short_help_flag_and_version(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["-h"]).exit_code == 0
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_generate_help_mentions_every_leaf_field(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["generate", "--help"])
    assert result.exit_code == 0, result.output
    paths = leaf_paths(GenerateConfig)
    assert len(paths) > 40  # data.*, server.*, sampling.*, bootstrap.* and the top-level settings
    missing = [p for p in paths if f"--{p.replace('_', '-')}" not in result.output]
    assert not missing, f"no option for {missing}"
    for flag in ("--sampling.max-tokens", "--bootstrap.token-budget", "--data.synthetic.count", "--server.extra-args"):
        assert flag in result.output
    for flag in ("--config", "--set", "--print-config"):
        assert flag in result.output


def test_generate_help_shows_descriptions_and_defaults(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["generate", "--help"], terminal_width=200)
    text = " ".join(result.output.split())  # undo wrapping
    assert "Maximum completion tokens per sample." in text
    assert "[int; default: 384]" in text
    assert "default: [all]" in text  # heuristics, a list default shown in flow style


def test_serve_model_help_has_server_fields_but_no_endpoint(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve-model", "--help"])
    assert result.exit_code == 0
    for path in leaf_paths(ServerConfig):
        flag = f"--{path.replace('_', '-')}"
        if path in ("endpoint", "endpoints"):
            assert flag not in result.output
        else:
            assert flag in result.output, flag
    assert "--log-dir" in result.output


def test_run_help_has_nested_generate_fields(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    for path in leaf_paths(RunConfig):
        assert f"--{path.replace('_', '-')}" in result.output, path


# ----- --print-config and precedence ----------------------------------------------------------


def test_print_config_defaults_match_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed_config(["generate"], capsys) == GenerateConfig().model_dump(mode="json")


def test_precedence_defaults_file_set_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "gen.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "sampling": {"temperature": 0.1, "top_p": 0.5, "max_tokens": 100},
                "bootstrap": {"rounds": 3},
                "heuristics": ["analogy"],
            }
        )
    )
    cfg = printed_config(
        [
            "generate",
            "--config", str(config_file),
            "--set", "sampling.temperature=0.2",
            "--set", "sampling.top_p=0.6",
            "--sampling.temperature", "0.3",
        ],
        capsys,
    )
    assert cfg["sampling"]["temperature"] == 0.3  # --field beats --set and the file
    assert cfg["sampling"]["top_p"] == 0.6  # --set beats the file
    assert cfg["sampling"]["max_tokens"] == 100  # the file beats the defaults
    assert cfg["bootstrap"]["rounds"] == 3
    assert cfg["heuristics"] == ["analogy"]
    assert cfg["sampling"]["seed"] == 0  # untouched default
    assert cfg["bootstrap"]["samples"] == GenerateConfig().bootstrap.samples


def test_field_options_parse_yaml_values(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = printed_config(
        [
            "generate",
            "--heuristics", "[analogy, working_backward]",
            "--sampling.max-tokens", "12",
            "--sampling.max_tokens", "12",  # the YAML spelling of the flag works too
            "--progress", "false",
            "--bootstrap.token-budget", "1000",
            "--server.extra-args", "[--enforce-eager]",
            "--run-dir", "123",  # a str field keeps digits as text
        ],
        capsys,
    )
    assert cfg["heuristics"] == ["analogy", "working_backward"]
    assert cfg["sampling"]["max_tokens"] == 12
    assert cfg["progress"] is False
    assert cfg["bootstrap"]["token_budget"] == 1000
    assert cfg["server"]["extra_args"] == ["--enforce-eager"]
    assert cfg["run_dir"] == "123"


def test_run_config_print_shares_run_dir(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = printed_config(["run", "--run-dir", "runs/x", "--generate.sampling.max-tokens", "32"], capsys)
    assert cfg["run_dir"] == "runs/x"
    assert cfg["generate"]["run_dir"] == "runs/x"
    assert cfg["generate"]["sampling"]["max_tokens"] == 32
    assert cfg["stages"] == list(STAGES)
    assert cfg["sft"]["run_dir"] == cfg["rl"]["run_dir"] == cfg["eval"]["run_dir"] == "runs/x"


def test_serve_model_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = printed_config(["serve-model", "--port", "8123", "--dtype", "float32"], capsys)
    assert cfg["port"] == 8123 and cfg["dtype"] == "float32"


def test_print_config_via_clirunner(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["generate", "--sampling.temperature", "0.5", "--print-config"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["sampling"]["temperature"] == 0.5


# ----- user errors exit 2 ----------------------------------------------------------------------


def test_bad_value_exits_2_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["generate", "--sampling.temperature", "5", "--print-config"], capsys)
    assert code == EXIT_USER_ERROR == 2
    assert "sampling.temperature" in err and "(got 5)" in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("args, fragments", [
    (["generate", "--set", "bootstrap.rounds=0"], ["bootstrap.rounds"]),
    (["generate", "--set", "sampling.temprature=0.5"], ["sampling.temprature: unknown key", "did you mean 'temperature'?"]),
    (["generate", "--set", "sampling.temperature"], ["key=value"]),
    (["generate", "--config", "{missing}"], ["config file not found", "{missing}"]),
    (["generate", "--sampling.temprature", "0.5"], ["No such option"]),
    (["generate", "--heuristics", "[]"], ["heuristics", "at least one heuristic"]),
    (["run", "--stages", "[nonsense]"], ["unknown stage 'nonsense'", "generate"]),
])
def test_user_errors_exit_2_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragments: list[str]) -> None:
    missing = str(tmp_path / "nope.yaml")
    code, _out, err = run_main([a.format(missing=missing) for a in args] + ["--print-config"], capsys)
    assert code == 2
    for fragment in fragments:
        assert fragment.format(missing=missing) in err


def test_run_with_unknown_arm_fails_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_main(["run", "--arms", "[base, polya_rl]"], capsys)
    assert code == 2
    assert "unknown arm 'polya_rl'" in err and "polya_sft_rl" in err


