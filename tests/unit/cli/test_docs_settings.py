"""The settings tables in docs/ come from the configs' help text and stay in step with them."""

from __future__ import annotations

from pathlib import Path

from support.scripts import load_script

ROOT = Path(__file__).resolve().parents[3]


def _script():
    return load_script("docs_settings")


def test_every_settings_table_in_the_docs_matches_its_config() -> None:
    script = _script()
    tables = 0
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        tables += len(script.BLOCK.findall(text))
        assert script.rendered(text) == text, f"{path.name} is out of step with its config: run python scripts/docs_settings.py"
    assert tables >= 1


def test_a_changed_help_text_is_noticed() -> None:
    script = _script()
    text = "<!-- settings: polya.sft.config.SftConfig -->\n| stale |\n<!-- /settings -->"
    fresh = script.rendered(text)
    assert "| `dataset` | str | `polya` |" in fresh and "| stale |" not in fresh
