"""The code judge: HumanEval-style script, verdict classification, reasons, limits.

Each judgement runs the script in the real sandbox (about 0.1 s); the hostile programs are in
``tests/integration/verify/test_code_sandbox_adversarial.py``.
"""

from __future__ import annotations

import signal
import sys
import time

import pytest

from polya.verify import VerifyItem, judge_item
from polya.verify.code_judge import (
    CodeVerdict,
    assemble_program,
    build_script,
    judge_code,
    verdict_from_result,
)
from polya.verify.sandbox import SandboxLimits, SandboxResult, run_python_sandboxed

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the code sandbox needs Linux")

PROGRAM = "def add(a, b):\n    return a + b\n"
WRONG_PROGRAM = "def add(a, b):\n    return a - b\n"
TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"


def test_build_script_is_humaneval_shaped() -> None:
    assert build_script("P", "T", "f") == "P\n\nT\n\ncheck(f)"
    assert build_script("P", "T") == "P\n\nT\n\n"


PROMPT = 'from typing import List\n\n\ndef helper(x: int) -> int:\n    return x * 2\n\n\ndef f(xs: List[int]) -> int:\n    """doc"""\n'


def test_an_answer_that_redefines_the_function_keeps_the_whole_prompt() -> None:
    full = "Here it is:\n```python\ndef f(xs):\n    return sum(map(helper, xs))\n```\nDone."
    assert assemble_program(full, PROMPT, "f") == PROMPT + "\ndef f(xs):\n    return sum(map(helper, xs))\n"
    bare = "def f(xs):\n    return 0\n"
    assert assemble_program(bare, PROMPT, "f") == PROMPT + "\n" + bare
    indented = "```python\n    def f(xs):\n        return 1\n```"  # a block indented as a whole
    assert assemble_program(indented, PROMPT, "f") == PROMPT + "\ndef f(xs):\n    return 1\n"


def test_a_body_is_appended_to_the_prompt() -> None:
    body = "    return sum(xs)\n"
    assert assemble_program(body, PROMPT, "f") == PROMPT + body
    assert assemble_program(f"```python\n{body}```", PROMPT, "f") == PROMPT + body


def test_which_block_is_taken() -> None:
    two = "```python\nprint('example')\n```\nthen\n```python\ndef f(xs):\n    return 0\n```\nand\n```python\nf([1])\n```"
    program = assemble_program(two, PROMPT, "f")
    assert "return 0" in program and "example" not in program and "f([1])" not in program
    unterminated = "```python\ndef f(xs):\n    return 1\n"
    assert assemble_program(unterminated, PROMPT, "f").endswith("def f(xs):\n    return 1\n")
    no_language = "```\n    return 2\n```"
    assert assemble_program(no_language, PROMPT, "f") == PROMPT + "    return 2\n"


def test_a_prompt_stub_without_a_body_gets_one_before_a_redefinition() -> None:
    assert assemble_program("def add(a, b):\n    return a + b\n", "def add(a, b):\n", "add") == (
        "def add(a, b):\n    pass\n\ndef add(a, b):\n    return a + b\n"
    )
    assert assemble_program("    return a + b\n", "def add(a, b):\n", "add") == "def add(a, b):\n    return a + b\n"


def test_future_imports_move_to_the_top() -> None:
    answer = "```python\nfrom __future__ import annotations\n\ndef f(xs):\n    return 0\n```"
    assert assemble_program(answer, PROMPT, "f") == "from __future__ import annotations\n" + PROMPT + "\n\ndef f(xs):\n    return 0\n"


def test_without_a_prompt_the_code_is_the_program() -> None:
    assert assemble_program("```python\ndef f():\n    return 1\n```", None, "f") == "def f():\n    return 1\n"
    assert assemble_program(PROGRAM) == PROGRAM


def test_the_verifier_assembles_an_answer_to_a_prompt() -> None:
    prompt = "def double(x):\n    return 2 * x\n\n\ndef add_doubles(a, b):\n    \"\"\"2a + 2b\"\"\"\n"
    tests = "def check(candidate):\n    assert candidate(1, 2) == 6\n"
    answer = "Sure.\n```python\ndef add_doubles(a, b):\n    return double(a) + double(b)\n```"
    item = VerifyItem(kind="code", prompt=prompt, prediction=answer, tests=tests, entry_point="add_doubles")
    assert judge_item(item).status == "pass"
    wrong = item.model_copy(update={"prediction": answer.replace("double(b)", "b")})
    assert judge_item(wrong).status == "fail"


def test_correct_program_passes() -> None:
    verdict = judge_code(PROGRAM, TESTS, "add")
    assert verdict == CodeVerdict(status="pass", correct=True, reason="all tests passed", output_tail="")


def test_failed_assertion_names_exception_and_failing_line() -> None:
    verdict = judge_code(WRONG_PROGRAM, TESTS, "add")
    assert verdict.status == "fail" and not verdict.correct
    assert verdict.reason == "AssertionError (at: assert candidate(1, 2) == 3)"
    assert verdict.output_tail.rstrip().endswith("AssertionError")


def test_assertion_message_is_kept() -> None:
    tests = "def check(candidate):\n    assert candidate(1, 2) == 4, 'one plus two'\n"
    verdict = judge_code(PROGRAM, tests, "add")
    assert verdict.reason.startswith("AssertionError: one plus two (at: assert candidate(1, 2) == 4")


def test_runtime_error_in_program_is_a_fail() -> None:
    verdict = judge_code("def add(a, b):\n    return a / 0\n", TESTS, "add")
    assert verdict.status == "fail"
    assert verdict.reason.startswith("ZeroDivisionError: division by zero (at: return a / 0)")


def test_tests_without_entry_point_run_as_written() -> None:
    assert judge_code(PROGRAM, "assert add(2, 2) == 4\n").status == "pass"
    assert judge_code(PROGRAM, "assert add(2, 2) == 5\n").status == "fail"


def test_nonzero_exit_without_traceback_is_a_fail() -> None:
    verdict = judge_code("import sys\nprint('giving up')\nsys.exit(3)\n", "")
    assert verdict.status == "fail"
    assert verdict.reason == "exit code 3: giving up"


def test_early_exit_zero_passes() -> None:
    # HumanEval's contract: exit status 0 is a pass, whatever the tests would have done later.
    assert judge_code("import sys\nsys.exit(0)\n", "assert False\n").status == "pass"


def test_syntax_error_in_program_is_a_fail() -> None:
    """The model's program not compiling is a wrong answer (fail), not a judging error."""
    verdict = judge_code("def add(a, b:\n    return a + b\n", TESTS, "add")
    assert verdict.status == "fail" and not verdict.correct
    assert verdict.reason.startswith("syntax error in the program (line 1): SyntaxError:")


def test_syntax_error_in_tests_is_an_error() -> None:
    verdict = judge_code(PROGRAM, "def check(candidate)\n    pass\n", "add")
    assert verdict.status == "error"
    assert verdict.reason.startswith("syntax error in the tests (line 1): SyntaxError:")


def test_indentation_error_counts_as_syntax_error() -> None:
    verdict = judge_code("def add(a, b):\nreturn a + b\n", TESTS, "add")
    assert verdict.status == "fail"
    assert "IndentationError" in verdict.reason and "in the program" in verdict.reason


def test_syntax_error_raised_at_run_time_is_a_fail() -> None:
    verdict = judge_code("def add(a, b):\n    return eval('a +')\n", TESTS, "add")
    assert verdict.status == "fail"
    assert verdict.reason.startswith("SyntaxError")


def test_null_byte_in_program_is_a_fail() -> None:
    verdict = judge_code(PROGRAM + "\x00", TESTS, "add")
    assert verdict.status == "fail" and "null byte" in verdict.reason


def test_infinite_loop_times_out_at_the_deadline() -> None:
    started = time.monotonic()
    verdict = judge_code("def add(a, b):\n    while True:\n        pass\n", TESTS, "add", timeout_s=1.0)
    assert verdict.status == "timeout" and not verdict.correct
    assert verdict.reason == "deadline exceeded (1s)"
    assert time.monotonic() - started < 3.0


def test_output_is_captured_in_the_tail() -> None:
    verdict = judge_code("print('hello from the program')\n" + PROGRAM, TESTS, "add")
    assert verdict.status == "pass"
    assert verdict.output_tail == "hello from the program\n"


def test_memory_limit_applies() -> None:
    program = "def add(a, b):\n    block = bytearray(300 * 1024 * 1024)\n    return a + b\n"
    assert judge_code(program, TESTS, "add", memory_mb=1024).status == "pass"
    verdict = judge_code(program, TESTS, "add", memory_mb=128)
    assert verdict.status == "fail" and verdict.reason.startswith("MemoryError")


def test_verdict_fields_and_dict() -> None:
    verdict = judge_code(WRONG_PROGRAM, TESTS, "add")
    assert set(verdict.to_dict()) == {"status", "correct", "reason", "output_tail"}
    with pytest.raises(AttributeError):
        verdict.status = "pass"  # type: ignore[misc]


def test_bad_entry_point_is_refused() -> None:
    with pytest.raises(ValueError, match="entry_point"):
        judge_code(PROGRAM, TESTS, "add); import os; (")


@pytest.mark.parametrize("field, value", [("timeout_s", 0), ("memory_mb", 8), ("max_processes", 0), ("output_limit_bytes", -1)])
def test_sandbox_limits_are_validated(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SandboxLimits(**{field: value})


def _result(**changes: object) -> SandboxResult:
    fields: dict[str, object] = dict(
        exit_code=None, signal=None, timed_out=False, output_tail="", output_bytes=0, isolation="namespaces", error=None, wall_s=0.1
    )
    fields.update(changes)
    return SandboxResult(**fields)  # type: ignore[arg-type]


def test_classification_of_sandbox_outcomes() -> None:
    cpu = verdict_from_result(_result(signal=int(signal.SIGXCPU)), "", "", 5)
    assert (cpu.status, cpu.reason) == ("timeout", "CPU time limit exceeded")
    killed = verdict_from_result(_result(signal=int(signal.SIGKILL)), "", "", 5)
    assert (killed.status, killed.reason) == ("fail", "killed by SIGKILL")
    broken = verdict_from_result(_result(error="starting the program failed: EAGAIN"), "", "", 5)
    assert broken.status == "error" and broken.reason == "sandbox failure: starting the program failed: EAGAIN"
    late = verdict_from_result(_result(timed_out=True), "", "", 2.5)
    assert (late.status, late.reason) == ("timeout", "deadline exceeded (2.5s)")


CHAINED = (  # the last exception of a chain is the verdict's reason
    "Traceback (most recent call last):\n"
    '  File "/tmp/x/main.py", line 2, in <module>\n'
    "    {}['k']\n"
    "KeyError: 'k'\n\n"
    "During handling of the above exception, another exception occurred:\n\n"
    "Traceback (most recent call last):\n"
    '  File "/tmp/x/main.py", line 4, in <module>\n'
    "    raise ValueError('bad\\nvalue')\n"
    "ValueError: bad\n"
    "value\n"
)
FORKED = (  # a fork bomb's children print tracebacks at once; the one cut off last has only its header
    "Traceback (most recent call last):\n"
    '  File "/tmp/x/main.py", line 3, in <module>\n'
    "    os.fork()\n"
    "BlockingIOError: [Errno 11] Resource temporarily unavailable\n"
    "Traceback (most recent call last):\n"
)


@pytest.mark.parametrize("output, reason", [
    (CHAINED, "ValueError: bad (at: raise ValueError('bad\\nvalue'))"),
    (FORKED, "BlockingIOError: [Errno 11] Resource temporarily unavailable (at: os.fork())"),
])
def test_the_reason_is_the_last_complete_traceback(output: str, reason: str) -> None:
    verdict = verdict_from_result(_result(exit_code=1, output_tail=output), "", "", 5)
    assert (verdict.status, verdict.reason) == ("fail", reason)


def test_sandbox_reports_its_isolation_and_output_size() -> None:
    result = run_python_sandboxed("print('x' * 10)", SandboxLimits(timeout_s=5))
    assert result.error is None and result.exit_code == 0
    assert result.mode in ("namespaces", "user-namespaces", "rlimits")
    assert result.output_bytes == 11


