"""The machine's memory limit from real-format cgroup and meminfo files, the model's shape from its config.json, the check."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from polya.core.errors import ConfigError
from polya.models.memory import GIB, MemoryEstimate, MemoryLimit, ModelShape, check_fits, cgroup_limit, memory_free, memory_limit

MEMINFO = "MemTotal:       24683568 kB\nMemFree:        19360320 kB\nMemAvailable:   22049452 kB\n"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "meminfo").write_text(MEMINFO)
    return tmp_path / "cgroup"


def test_cgroup_v2_max_means_no_limit(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"memory.max": "max\n", "memory.current": "1073741824\n"})
    assert cgroup_limit(root) is None
    limit = memory_limit(root, tmp_path / "meminfo")
    assert limit.bytes == 24683568 * 1024 and "MemTotal" in limit.source


def test_cgroup_v2_number_is_the_limit(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"memory.max": "8589934592\n", "memory.current": "2147483648\n"})
    limit = memory_limit(root, tmp_path / "meminfo")
    assert limit.bytes == 8 * GIB and "memory.max" in limit.source
    free = memory_free(root, tmp_path / "meminfo")
    assert free.bytes == 6 * GIB  # below MemAvailable: the cgroup's room wins


def test_cgroup_v1_limit_and_its_unlimited_value(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"memory/memory.limit_in_bytes": "4294967296\n", "memory/memory.usage_in_bytes": "1073741824\n"})
    assert memory_limit(root, tmp_path / "meminfo").bytes == 4 * GIB
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_limit(root) is None
    assert memory_limit(root, tmp_path / "meminfo").bytes == 24683568 * 1024


def test_a_limit_above_memtotal_is_memtotal(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"memory.max": str(64 * GIB)})
    assert memory_limit(root, tmp_path / "meminfo").bytes == 24683568 * 1024


def test_the_embedded_model_shape(embedded_checkpoint: str) -> None:
    shape = ModelShape.read(embedded_checkpoint)
    assert (shape.vocab, shape.hidden, shape.layers, shape.heads, shape.kv_heads, shape.tied_embeddings) == (49152, 576, 30, 9, 3, True)
    assert shape.params == 134_515_008  # from the safetensors headers
    import json

    formula = ModelShape.from_config(json.loads((Path(embedded_checkpoint) / "config.json").read_text()))
    assert formula.params == shape.params  # the config's sizes give the same count


def test_check_modes(caplog: pytest.LogCaptureFixture) -> None:
    estimate = MemoryEstimate("a run", {"weights": 3 * GIB})
    with pytest.raises(ConfigError, match=r"a run needs about 3.0 GiB .* memory is 2.0 GiB \(test\); lower x"):
        check_fits(estimate, MemoryLimit(2 * GIB, "test"), "error", "lower x")
    with caplog.at_level(logging.WARNING, logger="polya.models.memory"):
        check_fits(estimate, MemoryLimit(2 * GIB, "test"), "warn", "lower x")
        check_fits(estimate, MemoryLimit(int(3.5 * GIB), "test"), "error", "lower x")  # 86%: a warning
        check_fits(estimate, MemoryLimit(2 * GIB, "test"), "off", "lower x")
    assert len(caplog.records) == 2 and "86%" in caplog.records[1].getMessage()
