"""The wheel (what the images and any non-editable install get) carries every data file the package reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "polya"


def test_the_wheel_carries_every_data_file_of_the_package(tmp_path: Path) -> None:
    """Built for real (pip wheel) from a copy of the tree; a file left out of package-data (the
    presets once were) makes `polya --help` fail in every image."""
    tree = tmp_path / "tree"
    shutil.copytree(PACKAGE, tree / "src" / "polya", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"), str(tree)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("polya-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    data = {f"polya/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert data and data <= packed, sorted(data - packed)
