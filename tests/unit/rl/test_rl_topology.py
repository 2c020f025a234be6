"""The role -> worker -> resources map and the capacity check."""

from __future__ import annotations

import pytest

from polya.core.errors import ConfigError
from polya.rl.config import RlConfig
from polya.rl.topology import (
    Role,
    build_topology,
    check_capacity,
    describe,
    required_resources,
)


def test_cpu_topology_has_no_reference_without_kl() -> None:
    topology = build_topology(RlConfig())
    assert set(topology) == {Role.LEARNER, Role.ROLLOUT, Role.REWARD}
    assert topology[Role.LEARNER].replicas == 2 and topology[Role.LEARNER].gpus == 0
    assert topology[Role.ROLLOUT].colocated_with is Role.LEARNER
    assert required_resources(topology) == {"CPU": 3.0, "GPU": 0.0}
    assert "learner: 2 x" in describe(topology)


def test_reference_exists_only_with_beta() -> None:
    topology = build_topology(RlConfig(beta=0.04))
    assert topology[Role.REFERENCE].colocated_with is Role.LEARNER


def test_rollout_server_reserves_its_own_gpus() -> None:
    config = RlConfig(preset="paper", num_workers=4, batch_size=256, rollout={"engine": "vllm", "vllm_mode": "server", "gpus": 2})
    topology = build_topology(config)
    assert topology[Role.ROLLOUT].colocated_with is None and topology[Role.ROLLOUT].gpus == 2
    assert required_resources(topology)["GPU"] == 6.0


def test_capacity_check_explains_missing_gpus() -> None:
    topology = build_topology(RlConfig(preset="paper"))
    with pytest.raises(ConfigError) as info:
        check_capacity(topology, {"CPU": 64.0})
    message = str(info.value)
    assert "0 GPU" in message and "learner: 8 x" in message and "use_gpu false" in message
    check_capacity(topology, {"CPU": 64.0, "GPU": 8.0})


def test_capacity_check_counts_cpus() -> None:
    topology = build_topology(RlConfig(num_workers=4, batch_size=32))
    with pytest.raises(ConfigError, match="5 CPU"):
        check_capacity(topology, {"CPU": 2.0})
