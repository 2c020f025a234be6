"""Judge one :class:`VerifyItem` of any kind: the single dispatch point behind the pool, the service and the CLI.

:func:`judge_item` never raises for bad model output: a judge that throws gives a verdict with
status ``error``, one that runs out of time a verdict with status ``timeout``: both are
*undecided* (:attr:`Verdict.decided` is False), never ``fail``. Math judging limits its CPU time
with a signal (``ITIMER_PROF``), so call it from a process's main thread;
:class:`polya.verify.pool.JudgePool` runs it in worker processes that do.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from polya.verify.math_judge import REL_TOL
from polya.verify.protocol import Verdict, VerifyItem

logger = logging.getLogger(__name__)

_REASON_CHARS = 300
"""Exception messages put in a verdict's reason are cut to this length."""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (possible in JSON input) replaced, so it encodes as UTF-8."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def oversized_verdict(item: VerifyItem, max_prediction_chars: int | None) -> Verdict | None:
    """The verdict for a prediction too long to judge, or None when it may be judged.

    An over-long output is the model's fault, so it is judged wrong (``fail``), not an error.
    """
    if max_prediction_chars is None or len(item.prediction) <= max_prediction_chars:
        return None
    return Verdict(
        id=item.id, kind=item.kind, correct=False, status="fail", extracted=None,
        reason=f"prediction longer than {max_prediction_chars} characters",
    )


def _judge_math(item: VerifyItem, math_timeout_s: float, math_rel_tol: float) -> dict[str, Any]:
    from polya.verify.math_judge import judge_math

    assert item.reference is not None  # VerifyItem's validator guarantees it
    out = judge_math(item.prediction, item.reference, timeout_s=item.timeout_s or math_timeout_s, rel_tol=math_rel_tol)
    return {"correct": out.correct, "status": out.status, "extracted": out.extracted, "reason": out.reason}


def _judge_choice(item: VerifyItem) -> dict[str, Any]:
    from polya.verify.choice_judge import judge_choice

    assert item.options is not None and item.reference is not None
    out = judge_choice(item.prediction, item.options, item.reference)
    correct = bool(out.correct)
    return {"correct": correct, "status": "pass" if correct else "fail", "extracted": out.extracted, "reason": out.reason}


def _judge_code(item: VerifyItem, code_timeout_s: float, code_memory_mb: int) -> dict[str, Any]:
    from polya.verify.code_judge import assemble_program, judge_code

    assert item.tests is not None
    program = assemble_program(item.prediction, item.prompt, item.entry_point) if item.prompt else item.prediction
    out = judge_code(program, item.tests, item.entry_point, timeout_s=item.timeout_s or code_timeout_s, memory_mb=code_memory_mb)
    status = out.status if out.status in ("pass", "fail", "timeout", "error") else "error"
    return {"correct": bool(out.correct) and status == "pass", "status": status, "extracted": None, "reason": out.reason}


def judge_item(
    item: VerifyItem,
    *,
    math_timeout_s: float = 5.0,
    math_rel_tol: float = REL_TOL,
    code_timeout_s: float = 10.0,
    code_memory_mb: int = 1024,
    max_prediction_chars: int | None = None,
) -> Verdict:
    """Judge ``item`` with the judge for its kind and time it; never raises for bad model output.

    ``math_timeout_s`` / ``code_timeout_s`` apply unless the item sets its own ``timeout_s``.
    """
    start = time.perf_counter()
    early = oversized_verdict(item, max_prediction_chars)
    if early is not None:
        return early
    try:
        if item.kind == "math":
            fields = _judge_math(item, math_timeout_s, math_rel_tol)
        elif item.kind == "choice":
            fields = _judge_choice(item)
        elif item.kind == "code":
            fields = _judge_code(item, code_timeout_s, code_memory_mb)
        else:  # unreachable: VerifyItem.kind is a Literal
            raise AssertionError(f"unknown kind {item.kind!r}")
    except ImportError as exc:
        fields = {"correct": False, "status": "error", "extracted": None, "reason": f"no judge for kind '{item.kind}': {exc}"}
    except Exception as exc:  # a judge bug or hostile input must not take the caller down
        logger.debug("judge for %s item %s raised", item.kind, item.id, exc_info=True)
        message = str(exc)[:_REASON_CHARS]
        fields = {
            "correct": False, "status": "error", "extracted": None,
            "reason": f"judge error: {type(exc).__name__}" + (f": {message}" if message else ""),
        }
    extracted = fields["extracted"]
    if extracted is not None:
        extracted = _printable(str(extracted))
    return Verdict(
        id=item.id,
        kind=item.kind,
        correct=fields["correct"],
        status=fields["status"],
        extracted=extracted,
        reason=_printable(str(fields["reason"])),
        latency_s=time.perf_counter() - start,
    )
