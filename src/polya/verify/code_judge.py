"""Judge a program against its tests, HumanEval style, in a sandbox.

:func:`assemble_program` turns a model's answer to a HumanEval-style prompt into the program to
test, whatever form the answer takes: a whole program, the entry-point function alone, or only
the rest of its body (a completion), bare or in a ```` ```python ```` block with text around it.
The whole prompt is kept in front (imports, helper functions such as HumanEval/38's
``encode_cyclic``, the signature), so an answer that redefines only the entry point still finds
the helpers; its definition replaces the prompt's stub. The eval stage and the verifier's
``prompt`` field both assemble programs with it.

The script run is ``program + "\\n\\n" + tests + "\\n\\n" + "check(<entry_point>)"`` (the last part only
when an entry point is given). Exit status 0 is a pass; an exception or a non-zero exit is a fail,
its reason the exception line and the source line it was raised at; the deadline is a timeout; a
script that does not compile, or a sandbox that could not run it, is an error. The service's
process never compiles the untrusted code: syntax errors are read from the sandboxed run.

Isolation is :mod:`polya.verify.sandbox`'s (namespaces, an unprivileged uid, rlimits); the mode
in force is logged on the first judgement of a process, as a warning when it is not the full one.
"""

from __future__ import annotations

import logging
import re
import signal
import textwrap
import threading
from dataclasses import asdict, dataclass
from typing import Literal

from polya.verify.sandbox import (
    SCRIPT_NAME,
    SandboxLimits,
    SandboxResult,
    run_python_sandboxed,
)

logger = logging.getLogger(__name__)

CodeStatus = Literal["pass", "fail", "timeout", "error"]

_MAX_REASON_CHARS = 300
_SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")
_TRACEBACK_HEADER = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)')
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")

_mode_logged = False
_mode_lock = threading.Lock()


@dataclass(frozen=True)
class CodeVerdict:
    """The outcome of running one program against its tests."""

    status: CodeStatus
    correct: bool
    reason: str
    output_tail: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_FENCES = ("", "python", "py", "python3")
_FUTURE_IMPORT = re.compile(r"^from[ \t]+__future__[ \t]+import\b.*\n?", re.MULTILINE)


def _defines(code: str, entry_point: str | None) -> bool:
    """Whether ``code`` defines ``entry_point`` at its outermost level."""
    if not entry_point:
        return False
    return re.search(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", code, re.MULTILINE) is not None


def _answer_code(answer: str, entry_point: str | None) -> str:
    """The code in an answer: the last fenced block that defines ``entry_point``, else the last python block,
    else the last block, else the whole text."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(answer)]
    if not blocks:
        return answer
    defining = [body for _lang, body in blocks if _defines(textwrap.dedent(body), entry_point)]
    python = [body for lang, body in blocks if lang in _PYTHON_FENCES]
    return (defining or python or [blocks[-1][1]])[-1]


def _stub_body(prompt: str) -> str:
    """``pass`` under a block header the prompt ends with (``def f(a, b):`` and no body yet), else nothing.

    A docstring is a body: HumanEval's prompts need nothing. Without one, a full definition after
    the prompt would not compile.
    """
    for line in reversed(prompt.splitlines()):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not stripped.endswith(":"):
            return ""
        return line[: len(line) - len(line.lstrip())] + "    pass\n"
    return ""


def assemble_program(answer: str, prompt: str | None = None, entry_point: str | None = None) -> str:
    """The program to test from a model's ``answer`` to a HumanEval-style ``prompt``.

    The code is the answer's last fenced block that defines ``entry_point`` (else its last python
    block, else its last block, else the whole answer). Code that defines ``entry_point`` at its
    outermost level follows the whole prompt, so the prompt's imports and helpers stay and the
    answer's definitions replace the prompt's (``from __future__`` imports move to the top, where
    Python wants them); any other code continues the body of the prompt's last function and is
    appended to the prompt as it is. Without a prompt, the code alone.
    """
    code = _answer_code(answer, entry_point)
    if not prompt:
        return code
    whole = textwrap.dedent(code)
    if not _defines(whole, entry_point):
        return prompt + code
    futures = "".join(line.rstrip("\n") + "\n" for line in _FUTURE_IMPORT.findall(whole))
    head = prompt if prompt.endswith("\n") else prompt + "\n"
    return futures + head + _stub_body(head) + "\n" + _FUTURE_IMPORT.sub("", whole)


def build_script(program: str, tests: str, entry_point: str | None = None) -> str:
    """The script the sandbox runs: program, tests, then ``check(entry_point)`` when given."""
    return program + "\n\n" + tests + "\n\n" + (f"check({entry_point})" if entry_point else "")


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 3] + "..."


def _log_isolation(result: SandboxResult) -> None:
    global _mode_logged
    with _mode_lock:
        if _mode_logged or result.error is not None:
            return
        _mode_logged = True
    if result.mode == "namespaces":
        logger.info("code sandbox: %s", result.isolation)
    else:
        logger.warning("code sandbox is best-effort on this machine: %s", result.isolation)


def _syntax_error(lines: list[str], program: str, tests: str) -> str | None:
    """The reason for a compile error of the script (printed without a traceback header), or None."""
    if not lines or any(line.startswith(_TRACEBACK_HEADER) for line in lines):
        return None
    match = _EXCEPTION_LINE.match(lines[-1])
    if match is None or match.group("type") not in _SYNTAX_ERRORS:
        return None
    line_number = None
    for line in reversed(lines):
        frame = _FRAME.match(line)
        if frame and frame.group("file").endswith(SCRIPT_NAME):
            line_number = int(frame.group("line"))
            break
    message = f"{match.group('type')}: {match.group('message') or ''}".rstrip(": ")
    if line_number is None:
        return f"syntax error in the script: {message}"
    program_lines = program.count("\n") + 1
    tests_start = program_lines + 2  # program, blank line, then the tests
    if line_number <= program_lines:
        return f"syntax error in the program (line {line_number}): {message}"
    if line_number < tests_start + tests.count("\n") + 1:
        return f"syntax error in the tests (line {line_number - tests_start + 1}): {message}"
    return f"syntax error in the entry point call (line {line_number}): {message}"


def _exception_reason(lines: list[str]) -> tuple[str, str] | None:
    """(exception type, reason) from the last complete traceback in the output, or None.

    Processes the program forked may print tracebacks interleaved with one another, and one killed
    mid-write leaves a header with nothing after it, so a traceback that does not end in an
    exception line is passed over for the one before it.
    """
    starts = [index for index, line in enumerate(lines) if line.startswith(_TRACEBACK_HEADER)]
    for start in reversed(starts):
        found = _traceback_reason(lines[start + 1 :])
        if found is not None:
            return found
    return None


def _traceback_reason(lines: list[str]) -> tuple[str, str] | None:
    source = None
    for line in lines:
        if line.startswith(" ") or not line.strip():
            stripped = line.strip()
            if _FRAME.match(line):
                source = None
            elif stripped and set(stripped) - set("^~ "):
                source = stripped
            continue
        match = _EXCEPTION_LINE.match(line)
        if match is None:
            return None
        reason = line.strip() + (f" (at: {source})" if source else "")
        return match.group("type").rsplit(".", 1)[-1], _clip(reason)
    return None


def _last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return _clip(lines[-1]) if lines else ""


def verdict_from_result(result: SandboxResult, program: str, tests: str, timeout_s: float) -> CodeVerdict:
    """Classify a sandboxed run of :func:`build_script`'s script."""
    output = result.output_tail

    def verdict(status: CodeStatus, reason: str) -> CodeVerdict:
        return CodeVerdict(status=status, correct=status == "pass", reason=reason, output_tail=output)

    if result.error is not None:
        return verdict("error", _clip(f"sandbox failure: {result.error}"))
    if result.timed_out:
        return verdict("timeout", f"deadline exceeded ({timeout_s:g}s)")
    if result.signal is not None:
        if result.signal == signal.SIGXCPU:
            return verdict("timeout", "CPU time limit exceeded")
        name = signal.Signals(result.signal).name if result.signal in signal.valid_signals() else str(result.signal)
        return verdict("fail", f"killed by {name}")
    if result.exit_code == 0:
        return verdict("pass", "all tests passed")
    lines = output.splitlines()
    syntax = _syntax_error(lines, program, tests)
    if syntax is not None:
        # The model's own program not compiling is a wrong answer; broken tests are our error.
        return verdict("fail" if syntax.startswith("syntax error in the program") else "error", _clip(syntax))
    exception = _exception_reason(lines)
    if exception is not None:
        return verdict("fail", exception[1])
    last = _last_line(output)
    return verdict("fail", f"exit code {result.exit_code}" + (f": {last}" if last else ""))


def judge_code(
    program: str,
    tests: str,
    entry_point: str | None = None,
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> CodeVerdict:
    """Run ``program`` against ``tests`` (HumanEval: ``check(entry_point)``) in a fresh sandbox.

    Blocks until the sandbox is gone (at most about ``timeout_s`` plus a few seconds of teardown);
    safe to call from many threads at once.
    """
    if entry_point is not None and not all(part.isidentifier() for part in entry_point.split(".")):
        raise ValueError(f"entry_point must be a Python name such as 'has_close_elements', got {entry_point!r}")
    if "\x00" in program:
        return CodeVerdict(status="fail", correct=False, reason="the program contains a null byte", output_tail="")
    limits = SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
    result = run_python_sandboxed(build_script(program, tests, entry_point), limits)
    _log_isolation(result)
    verdict = verdict_from_result(result, program, tests, timeout_s)
    logger.debug("code verdict %s (%s) in %.2fs [%s]", verdict.status, verdict.reason, result.wall_s, result.mode)
    return verdict
