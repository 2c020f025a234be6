"""docs/method.md's table of the paper preset: every key it names exists in the preset with that value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from polya.experiment.config import RunConfig

METHOD = Path(__file__).resolve().parents[3] / "docs" / "method.md"
ROW = re.compile(r"^\| [^|]+ \| [^|]+ \| `(?P<key>[a-z_.]+)` \| `(?P<value>[^`]+)` \| (?P<source>[^|]+) \|$")


def table() -> list[dict[str, str]]:
    text = METHOD.read_text(encoding="utf-8")
    section = text.split("## The paper preset, setting by setting", 1)[1].split("\n## ", 1)[0]
    return [m.groupdict() for line in section.splitlines() if (m := ROW.match(line))]


def value_at(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        assert isinstance(tree, dict) and part in tree, f"{dotted}: no setting '{part}'"
        tree = tree[part]
    return tree


def test_every_key_of_the_table_has_its_value_in_the_paper_preset() -> None:
    rows = table()
    assert len(rows) >= 35
    resolved = RunConfig(preset="paper").model_dump(mode="json")
    wrong = {r["key"]: (r["value"], value_at(resolved, r["key"])) for r in rows if value_at(resolved, r["key"]) != yaml.safe_load(r["value"])}
    assert wrong == {}, "docs/method.md and the paper preset disagree (table value, preset value)"


def test_every_row_names_its_source() -> None:
    for row in table():
        source = row["source"].strip()
        assert source.startswith(("paper", "polya's choice")), row
        if source.startswith("polya's choice"):
            assert ":" in source, f"{row['key']}: say why polya chose it"


def test_every_setting_the_preset_file_sets_is_in_the_table() -> None:
    preset = yaml.safe_load((Path(__file__).resolve().parents[3] / "src/polya/configs/presets/paper.yaml").read_text(encoding="utf-8"))
    keys = {r["key"] for r in table()}

    def leaves(tree: Any, prefix: str = "") -> list[str]:
        if isinstance(tree, dict):
            return [leaf for k, v in tree.items() for leaf in leaves(v, f"{prefix}{k}.")]
        return [prefix.rstrip(".")]

    # Operational settings (servers, concurrency, judges) do not change what the experiment is.
    operational = ("generate.server.", "eval.server.", "generate.concurrency", "eval.concurrency", "generate.judge_workers", "sft.save_steps",
                   "sft.bf16", "rl.preset", "generate.data.subset", "eval.benchmarks", "eval.sampling.preset")
    missing = [k for k in leaves(preset) if k not in keys and not k.startswith(operational)]
    assert missing == []
