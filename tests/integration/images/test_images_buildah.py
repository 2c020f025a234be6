"""Opt-in (``pytest -m images``): the verifier and cpu images, built for real, run.

No Docker engine and no registry here: ``scripts/build-images-buildah.sh`` builds the Dockerfiles
with Debian's buildah (vfs storage, chroot isolation) on a Debian base image made by mmdebstrap.
Inside each image this runs ``polya --help``, starts ``polya serve-verifier`` and has it answer
``/health`` and judge a math item and two code items (the sandbox runs the code in the image).
Needs root, ``apt-get install -y buildah mmdebstrap``, PyPI and a Debian mirror; building both
images takes about 10 minutes on 2 cores, the checks 2 more (docs/images.md). ``POLYA_IMAGES_REUSE=1`` uses images already
built under ``$BUILDAH_ROOT`` (default /var/tmp/polya-buildah) instead of building again.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from polya.core.processes import stop_process, wait_for_http

pytestmark = [pytest.mark.images, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[3]
BUILDAH_ROOT = Path(os.environ.get("BUILDAH_ROOT", "/var/tmp/polya-buildah"))
IMAGES = {"verifier": "localhost/polya/verifier:0.1.0", "cpu": "localhost/polya/cpu:0.1.0"}
BUILDAH = ["buildah", "--storage-driver", "vfs", "--root", str(BUILDAH_ROOT / "storage"), "--runroot", str(BUILDAH_ROOT / "run")]


def _exists(image: str) -> bool:
    return subprocess.run([*BUILDAH, "inspect", "--type", "image", image], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def built() -> dict:
    if not shutil.which("buildah") or not shutil.which("mmdebstrap") or os.geteuid() != 0:
        pytest.fail("the image tests need root and `apt-get install -y buildah mmdebstrap`")
    if not (os.environ.get("POLYA_IMAGES_REUSE") and all(_exists(i) for i in IMAGES.values())):
        env = {**os.environ, "BUILDAH_ROOT": str(BUILDAH_ROOT)}
        result = subprocess.run(["bash", str(ROOT / "scripts" / "build-images-buildah.sh"), *IMAGES], env=env, timeout=5400,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    figures = json.loads((BUILDAH_ROOT / "figures.json").read_text())
    print(json.dumps(figures, indent=2))  # build seconds and image sizes (docs/images.md records them)
    return figures


@pytest.fixture(scope="module")
def containers(built) -> Iterator[dict[str, str]]:
    """One working container per image (with vfs storage each one is a full copy of the image)."""
    names: dict[str, str] = {}
    try:
        for key, image in IMAGES.items():
            names[key] = subprocess.run([*BUILDAH, "from", image], capture_output=True, text=True, check=True).stdout.strip()
        yield names
    finally:
        for name in names.values():
            subprocess.run([*BUILDAH, "rm", name], capture_output=True)


def run_in(name: str, *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*BUILDAH, "run", "--isolation", "chroot", name, "--", *command], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_polya_help_runs_in_the_image(containers, image):
    result = run_in(containers[image], "polya", "--help")
    assert result.returncode == 0, result.stderr
    assert "serve-verifier" in result.stdout and "pipeline" in result.stdout
    uid = run_in(containers[image], "id", "-u")
    assert uid.stdout.strip() == "10001"  # the images' user, as the chart and the job pods expect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_verifier_in_the_image_answers_health_and_judges(containers, image, tmp_path):
    port = free_port()
    log = tmp_path / "verifier.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen([*BUILDAH, "run", "--isolation", "chroot", containers[image], "--", "polya", "serve-verifier", "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"], stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", proc, 240, what=f"verifier in {image}", log=log)
        items = [
            {"id": "m", "kind": "math", "prediction": "so the total is \\boxed{\\frac{3}{4}}", "reference": "0.75"},
            {"id": "c-ok", "kind": "code", "prompt": "def add(a, b):\n", "prediction": "    return a + b\n",
             "tests": "def check(f):\n    assert f(1, 2) == 3\n", "entry_point": "add"},
            {"id": "c-bad", "kind": "code", "prompt": "def add(a, b):\n", "prediction": "    return a - b\n",
             "tests": "def check(f):\n    assert f(1, 2) == 3\n", "entry_point": "add"},
        ]
        response = httpx.post(f"{url}/v1/verify", json={"items": items}, timeout=120)
        assert response.status_code == 200, response.text
        verdicts = {v["id"]: v for v in response.json()["verdicts"]}
        assert verdicts["m"]["correct"] is True and verdicts["m"]["extracted"] == "\\frac{3}{4}"
        assert verdicts["c-ok"]["correct"] is True and verdicts["c-ok"]["status"] == "pass"
        assert verdicts["c-bad"]["correct"] is False and "AssertionError" in verdicts["c-bad"]["reason"]
    finally:
        stop_process(proc, grace_s=20, group=True)


def test_the_cpu_image_has_the_stack_and_the_embedded_model_offline(containers):
    code = ("import torch, vllm, trl, ray, kfp, polya; from polya.models import EMBEDDED_MODEL, resolve_model; "
            "print(torch.__version__, vllm.__version__, resolve_model(EMBEDDED_MODEL))")
    result = run_in(containers["cpu"], "env", "HF_HUB_OFFLINE=1", "python", "-c", code, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "+cpu" in result.stdout and "/home/polya/.cache/polya/models/smollm2-135m-instruct" in result.stdout
