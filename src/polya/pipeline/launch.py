"""How a cluster job's pods receive the stage settings: base64 in an environment variable, decoded
into a file by ``python3 -m polya.pipeline.launch`` before the stage command starts.

The settings are text a person wrote (a system prompt with ``$\\boxed{}$``, quotes, backticks,
non-ASCII). A RayJob's entrypoint passes through KubeRay's ``bash -c``, Ray's ``list2cmdline`` and
``/bin/sh -c`` before it runs, so text inside it would be re-quoted and expanded. Here the text
never enters a command line: the job carries it as ASCII base64 in ``$POLYA_STAGE_CONFIG_B64``,
and the command is plain words::

    python3 -m polya.pipeline.launch --config-env POLYA_STAGE_CONFIG_B64 --config-file /tmp/polya-rl.yaml -- polya rl --config /tmp/polya-rl.yaml

which writes the decoded bytes to the file and then replaces itself with the command after ``--``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import re
import sys
from pathlib import Path

CONFIG_ENV = "POLYA_STAGE_CONFIG_B64"
"""Environment variable of a job's pods holding the stage settings (YAML, UTF-8, base64)."""

PLAIN_WORD = re.compile(r"^[A-Za-z0-9_./=:,@+-]+$")
"""A word that bash, ``list2cmdline`` and ``/bin/sh`` all leave as it is (no quotes, spaces, ``$``, globs)."""


def encode_config(text: str) -> str:
    """The value of :data:`CONFIG_ENV` for the settings ``text``."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def stage_command(args: list[str], config_file: str, config_env: str = CONFIG_ENV) -> list[str]:
    """A job pod's command: decode ``$config_env`` into ``config_file``, then run ``args``.

    With plain ``args`` and ``config_file`` (see :data:`PLAIN_WORD`) every word is plain, so the
    command survives any shell it passes through (a RayJob's entrypoint checks this).
    """
    return ["python3", "-m", "polya.pipeline.launch", "--config-env", config_env, "--config-file", config_file, "--", *args]


def write_config(config_env: str, config_file: str) -> Path:
    """Decode ``$config_env`` and write the bytes to ``config_file`` (owner-only); return the path."""
    value = os.environ.get(config_env)
    if value is None:
        raise SystemExit(f"polya.pipeline.launch: environment variable {config_env} is not set; the job manifest must carry the stage settings in it")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SystemExit(f"polya.pipeline.launch: {config_env} is not valid base64 ({exc})") from None
    path = Path(config_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python3 -m polya.pipeline.launch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-env", default=CONFIG_ENV, help="Environment variable holding the settings as base64.")
    parser.add_argument("--config-file", required=True, help="Where to write the decoded settings.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="The command to run after '--'.")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after '--'")
    write_config(args.config_env, args.config_file)
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
