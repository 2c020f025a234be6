"""vLLM server launcher and endpoint checks, without vLLM: the command line, settings validation,
start-up failures (exit, never healthy), process-group cleanup and unreachable endpoints."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

import polya.serving.vllm_server as vllm_server
from polya.core.config import load_config
from polya.core.errors import ConfigError, ServerError
from polya.models.embedded import EMBEDDED_MODEL
from polya.serving import ExternalEndpoint, ServerConfig, VLLMServer, open_endpoint
from polya.serving.vllm_server import Endpoint, free_port


def flag_value(cmd: list[str], flag: str) -> str:
    assert flag in cmd, f"{flag} missing from {cmd}"
    return cmd[cmd.index(flag) + 1]


@pytest.fixture()
def on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_server, "_on_cpu", lambda: True)


@pytest.fixture()
def on_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vllm_server, "_on_cpu", lambda: False)


# ----- the command line ---------------------------------------------------------------------------


def test_command_on_cpu(tmp_path: Path, on_cpu: None) -> None:
    server = VLLMServer(ServerConfig(port=8123, max_model_len=2048, max_num_seqs=16), tmp_path)
    cmd = server.command("/models/smol")
    assert cmd[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert flag_value(cmd, "--model") == "/models/smol"
    assert flag_value(cmd, "--port") == "8123"
    assert flag_value(cmd, "--host") == "127.0.0.1"
    assert flag_value(cmd, "--served-model-name") == "smollm2-135m-instruct"  # the embedded default's name
    assert flag_value(cmd, "--dtype") == "bfloat16"  # auto means bfloat16 on CPU
    assert flag_value(cmd, "--max-model-len") == "2048"
    assert flag_value(cmd, "--max-num-seqs") == "16"
    assert "--api-key" not in cmd
    assert "--gpu-memory-utilization" not in cmd and "--tensor-parallel-size" not in cmd
    assert server.endpoint.base_url == "http://127.0.0.1:8123/v1"
    assert server.endpoint.model == "smollm2-135m-instruct"
    assert server.endpoint.api_key is None


def test_command_on_gpu(tmp_path: Path, on_gpu: None) -> None:
    cfg = ServerConfig(model="org/model", port=8124, gpu_memory_utilization=0.5, tensor_parallel_size=2)
    cmd = VLLMServer(cfg, tmp_path).command("/resolved/org-model")
    assert flag_value(cmd, "--dtype") == "auto"
    assert flag_value(cmd, "--gpu-memory-utilization") == "0.5"
    assert flag_value(cmd, "--tensor-parallel-size") == "2"
    assert flag_value(cmd, "--served-model-name") == "org/model"  # a non-embedded model is served under its own name


def test_command_explicit_dtype_served_name_api_key_and_extra_args(tmp_path: Path, on_cpu: None) -> None:
    cfg = ServerConfig(
        model="org/model",
        port=9000,
        dtype="float32",
        served_model_name="policy",
        api_key="sekrit",
        extra_args=["--enforce-eager", "--seed", "3"],
    )
    server = VLLMServer(cfg, tmp_path)
    cmd = server.command("/m")
    assert flag_value(cmd, "--dtype") == "float32"
    assert flag_value(cmd, "--served-model-name") == "policy"
    assert flag_value(cmd, "--api-key") == "sekrit"
    assert cmd[-3:] == ["--enforce-eager", "--seed", "3"]  # appended as given, last
    assert server.endpoint.model == "policy"
    assert server.endpoint.headers() == {"Authorization": "Bearer sekrit"}


def test_port_zero_picks_a_free_port(tmp_path: Path, on_cpu: None) -> None:
    server = VLLMServer(ServerConfig(port=0), tmp_path)
    assert 0 < server.port < 65536
    assert flag_value(server.command("/m"), "--port") == str(server.port)
    assert server.endpoint.base_url == f"http://127.0.0.1:{server.port}/v1"


def test_log_path_default_and_override(tmp_path: Path) -> None:
    assert VLLMServer(ServerConfig(port=1), tmp_path / "logs").log_path == tmp_path / "logs" / "vllm-server.log"
    assert VLLMServer(ServerConfig(port=1, log_file=str(tmp_path / "x.log")), tmp_path).log_path == tmp_path / "x.log"


def test_endpoint_root_url_and_headers() -> None:
    assert Endpoint("http://h:1/v1", "m").root_url == "http://h:1"
    assert Endpoint("http://h:1", "m").root_url == "http://h:1"
    assert Endpoint("http://h:1/v1", "m").headers() == {}


# ----- settings validation ----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["ftp://x", "localhost:8000", "vllm:8000/v1"])
def test_endpoint_must_be_http(endpoint: str) -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        ServerConfig(endpoint=endpoint)


def test_a_blank_endpoint_means_unset() -> None:
    assert ServerConfig(endpoint="").endpoint is None and ServerConfig(endpoint="  ").endpoint is None


def test_endpoint_error_through_load_config_names_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(ServerConfig, overrides={"endpoint": "ftp://x"})
    msg = str(info.value)
    assert "endpoint:" in msg and "'ftp://x'" in msg


def test_endpoint_trailing_slash_is_removed() -> None:
    assert ServerConfig(endpoint="http://vllm:8000/v1/").endpoint == "http://vllm:8000/v1"
    assert ServerConfig(endpoint="https://x").endpoint == "https://x"
    assert ServerConfig().model == EMBEDDED_MODEL and ServerConfig().endpoint is None


def test_several_endpoints_are_checked_like_endpoint_and_one_is_endpoint() -> None:
    config = ServerConfig(endpoints=["http://vllm-0:8000/v1/", "", "http://vllm-1:8000/v1"])
    assert config.endpoints == ["http://vllm-0:8000/v1", "http://vllm-1:8000/v1"] and config.endpoint is None
    one = ServerConfig(endpoints=["http://vllm-0:8000/v1"])
    assert (one.endpoint, one.endpoints) == ("http://vllm-0:8000/v1", [])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"endpoints": ["http://a:1/v1", "vllm:8000/v1"]}, "http:// or https://"),
        ({"endpoints": ["http://a:1/v1", "http://a:1/v1/"]}, "more than once"),
        ({"endpoint": "http://a:1/v1", "endpoints": ["http://b:1/v1", "http://c:1/v1"]}, "not both"),
    ],
)
def test_bad_endpoints_are_rejected(bad: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServerConfig.model_validate(bad)


@pytest.mark.parametrize("bad", [{"port": 70000}, {"dtype": "int8"}, {"gpu_memory_utilization": 0}, {"max_model_len": 10}])
def test_bad_server_settings_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ServerConfig.model_validate(bad)


# ----- an external endpoint ----------------------------------------------------------------------


def test_external_endpoint_closed_port_fails_fast_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    owner = ExternalEndpoint(ServerConfig(endpoint=url))
    assert owner.base_url == url + "/v1"  # /v1 is added when missing
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        owner.start()
    assert time.monotonic() - started < 5.0
    msg = str(info.value)
    assert f"{url}/v1" in msg and "server.endpoint" in msg


def test_open_endpoint_with_endpoint_never_starts_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("a server process was started")

    monkeypatch.setattr(vllm_server.subprocess, "Popen", forbidden)
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServerError, match="cannot reach"):
        with open_endpoint(ServerConfig(endpoint=url), tmp_path):
            pass


def test_external_endpoint_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("POLYA_API_KEY", "from-env")
    assert ExternalEndpoint(ServerConfig(endpoint="http://x/v1")).api_key == "from-env"
    assert ExternalEndpoint(ServerConfig(endpoint="http://x/v1", api_key="explicit")).api_key == "explicit"


# ----- starting a server process that fails ---------------------------------------------------------


def _fake_server(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(vllm_server, "resolve_model", lambda model: "/dummy/model")
    monkeypatch.setattr(VLLMServer, "command", lambda self, model_path: [sys.executable, "-c", code])


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process in the group, zombies included, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            members.append((int(entry), fields[0]))
    return members


def test_server_that_exits_during_startup_raises_with_code_and_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_server(monkeypatch, "import sys; print('boom'); sys.exit(3)")
    server = VLLMServer(ServerConfig(startup_timeout_s=30), tmp_path / "logs")
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        server.start()
    assert time.monotonic() - started < 10.0  # noticed the exit, did not wait for the timeout
    msg = str(info.value)
    assert "exited with code 3" in msg
    assert "boom" in msg
    assert str(server.log_path) in msg
    log = server.log_path.read_text()
    assert "$ " in log and "boom" in log  # the command line and the output are both logged
    assert not server.alive()


def test_server_that_never_becomes_healthy_times_out_and_its_group_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_server(monkeypatch, "import time; time.sleep(60)")
    server = VLLMServer(ServerConfig(startup_timeout_s=2), tmp_path)
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        server.start()
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 15.0
    msg = str(info.value)
    assert "did not become healthy within 2s" in msg and "server.startup_timeout_s" in msg
    assert server.process is not None
    pgid = server.process.pid  # start_new_session: the server leads its own process group
    assert server.process.poll() is not None
    assert not server.alive()
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_children_of_the_server_are_stopped_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Like vLLM's engine workers: a child process in the server's group must not outlive a failed start.
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "time.sleep(60)"
    )
    _fake_server(monkeypatch, code)
    server = VLLMServer(ServerConfig(startup_timeout_s=2), tmp_path)
    with pytest.raises(ServerError):
        server.start()
    assert server.process is not None
    pgid = server.process.pid
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        alive = [(pid, state) for pid, state in _group_members(pgid) if state != "Z"]
        if not alive:
            break
        time.sleep(0.05)
    assert not alive, f"processes of the server's group still running: {alive}"


def test_stop_is_idempotent_and_safe_before_start(tmp_path: Path) -> None:
    server = VLLMServer(ServerConfig(port=1), tmp_path)
    server.stop()  # never started
    assert not server.alive()


def test_context_manager_stops_server_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_server(monkeypatch, "import sys; sys.exit(5)")
    server = VLLMServer(ServerConfig(), tmp_path)
    with pytest.raises(ServerError, match="code 5"):
        with server:
            pytest.fail("the body must not run when the server failed to start")
    assert not server.alive()


def test_a_kv_cache_larger_than_free_memory_is_refused_before_the_server_starts(embedded_checkpoint: str, monkeypatch) -> None:
    import pytest

    from polya.core.errors import ConfigError
    from polya.models.memory import GIB, memory_free
    from polya.serving.config import ServerConfig
    from polya.serving.vllm_server import check_server_memory, server_memory

    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    too_big = int(memory_free().bytes / GIB) + 8
    with pytest.raises(ConfigError, match=r"the vLLM server for .* needs about .*kv cache .* lower server.cpu_kv_cache_gib"):
        check_server_memory(ServerConfig(cpu_kv_cache_gib=too_big), embedded_checkpoint, on_cpu=True)
    check_server_memory(ServerConfig(cpu_kv_cache_gib=too_big, memory_check="off"), embedded_checkpoint, on_cpu=True)
    estimate, _ = server_memory(ServerConfig(cpu_kv_cache_gib=1), embedded_checkpoint, on_cpu=True)
    assert estimate.parts["weights"] == 134_515_008 * 2 and estimate.parts["kv cache"] == GIB  # bfloat16 on CPU
