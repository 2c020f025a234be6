"""Bad settings fail before Ray or any weights start, with a message that says what to change."""

from __future__ import annotations

import pytest

from polya.cli.main import main
from polya.core.errors import ConfigError
from polya.rl.config import RlConfig
from polya.rl.stage import preflight


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gpus_asked_for_where_there_are_none(tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="use_gpu is true but this machine has no CUDA GPU"):
        preflight(RlConfig(run_dir=str(tmp_path), use_gpu=True, num_workers=2))


def test_unreachable_verifier_endpoint(tmp_path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ConfigError, match=f"reward.verifier_endpoint: verifier at {url} is not reachable"):
        preflight(RlConfig(run_dir=str(tmp_path), reward={"verifier_endpoint": url}))


def test_cli_exits_2_with_the_message(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["rl", "--run-dir", str(tmp_path), "--group-size", "5"])
    assert info.value.code == 2
    assert "group_size (5) must divide batch_size (8)" in capsys.readouterr().err
    assert not (tmp_path / "rl").exists()


def test_learners_that_do_not_fit_are_refused_before_ray(tmp_path) -> None:
    from polya.models.memory import GIB, memory_limit

    if memory_limit().bytes > 64 * GIB:
        pytest.skip("this machine has room for the setting")
    config = RlConfig(run_dir=str(tmp_path), group_size=16, batch_size=64, max_completion_length=1024, num_workers=2)
    with pytest.raises(ConfigError, match=r"rl of .* needs about .* lower batch_size \(the largest that fits at max_completion_length 1024: \d+\)"):
        preflight(config)
    small = RlConfig(run_dir=str(tmp_path), group_size=4, batch_size=8, max_completion_length=16, num_workers=2)
    assert preflight(small).prompts.longest_prompt > 0
