"""What happens to a RayJob's ``entrypoint`` between the manifest and the process, for tests.

KubeRay (v1.7, ``common.BuildJobSubmitCommand``, K8sJobMode) joins ``ray job submit ... -- <entrypoint>``
and friends with spaces into one ``/bin/bash -ce`` script in the submitter pod; bash splits the
entrypoint into words; Ray's CLI (``ray/dashboard/modules/job/cli.py``) joins those words again with
``subprocess.list2cmdline``; the job supervisor (``job_supervisor.py``) runs the result with
``shell=True`` (``/bin/sh -c``) in the head pod's environment.

:func:`run_submitter` runs that script with bash. The ``ray`` it calls is either the real Ray CLI
against a running Ray head (the integration test) or :func:`stand_in_ray_cli`, a few lines doing
what the real one does with the entrypoint (unit tests: no Ray cluster).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

STAND_IN_RAY_CLI = """#!{python}
# What Ray's CLI does with a job's entrypoint: `ray job submit -- WORDS...` joins the words with
# subprocess.list2cmdline and the job supervisor runs the result with shell=True (/bin/sh -c).
# `ray job status`: never submitted before; `ray job logs`: nothing more to show.
import subprocess, sys
args = sys.argv[1:]
if args[:2] == ["job", "submit"]:
    sys.exit(subprocess.call(subprocess.list2cmdline(args[args.index("--") + 1:]), shell=True))
sys.exit(1 if args[:2] == ["job", "status"] else 0)
"""


def kuberay_submitter_script(entrypoint: str, address: str = "http://127.0.0.1:8265", job_id: str = "polya-rl-x-abcde",
                             wait: bool = False) -> str:
    """The bash script KubeRay runs in a RayJob's submitter pod (without its wait-for-dashboard loop).

    ``wait``: submit with ``--no-wait`` and follow the logs (KubeRay's way); the stand-in runs the job
    at submit time, so with a real Ray head ``wait`` makes ``ray job logs --follow`` wait for the end.
    """
    words = ["if", "!", "ray", "job", "status", "--address", address, job_id, ">/dev/null", "2>&1", ";", "then",
             "ray", "job", "submit", "--address", address, "--no-wait", "--submission-id", job_id, "--", entrypoint.strip(), ";",
             "fi", ";", "ray", "job", "logs", "--address", address, "--follow", job_id]
    return " ".join(words)


def stand_in_ray_cli(folder: Path) -> Path:
    """Write the stand-in ``ray`` executable into ``folder``; return the folder (to put first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    ray = folder / "ray"
    ray.write_text(STAND_IN_RAY_CLI.format(python=sys.executable))
    ray.chmod(0o755)
    return folder


def head_env(manifest: dict[str, Any]) -> dict[str, str]:
    """The literal environment of a RayJob's head container (what the entrypoint's process inherits)."""
    head = manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in head["env"] if "value" in e}


def run_submitter(entrypoint: str, env: dict[str, str], path: list[Path], **script: Any) -> subprocess.CompletedProcess:
    """Run KubeRay's submitter script for ``entrypoint`` with bash; ``path`` goes before /usr/bin:/bin."""
    env = {**env, "PATH": ":".join([*map(str, path), "/usr/bin", "/bin"])}
    return subprocess.run(["/bin/bash", "-ce", "--", kuberay_submitter_script(entrypoint, **script)], env=env,
                          capture_output=True, text=True, timeout=600)
