"""Rewrite the settings tables in docs/*.md from the configs' help text (docs come from code).

A table sits between ``<!-- settings: polya.sft.config.SftConfig -->`` and ``<!-- /settings -->``;
tests/unit/cli/test_docs_settings.py fails when one is out of step with its config.

    .venv/bin/python scripts/docs_settings.py
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from polya.cli.options import settings_table

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"(<!-- settings: ([\w.]+) -->\n)(.*?)(<!-- /settings -->)", re.DOTALL)


def rendered(text: str) -> str:
    def table(match: re.Match[str]) -> str:
        module, _, name = match.group(2).rpartition(".")
        return match.group(1) + settings_table(getattr(importlib.import_module(module), name)) + match.group(4)

    return BLOCK.sub(table, text)


def main() -> int:
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        new = rendered(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote the settings of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
