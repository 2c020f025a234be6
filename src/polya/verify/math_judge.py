"""Judge a free-text math solution against a reference answer with math-verify.

The final answer is taken from the solution (last ``\\boxed{}``, else GSM8K ``#### x``, else
"the answer is x"), then compared with the reference by math-verify, the reference always parsed
as the gold. math-verify bounds its own work with ``signal.alarm``, which only works on a
process's main thread: call :func:`judge_math` from the main thread of a worker process (the
generate stage runs it in a process pool), never from a thread.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_MAX_CHARS = 20_000
"""Only the tail of a prediction is judged: the final answer is at the end, and hostile
megabyte strings must not reach the LaTeX parser."""

# The answer ends at a sentence period (not a decimal point), a newline or the end; an optional
# opening ``$`` or LaTeX ``\$`` before it is dropped.
_MAX_ANSWER_CHARS = 1_000
"""A final answer longer than this is not an answer; it is not handed to the parser."""

_ANSWER_IS = re.compile(r"answer is[:\s]*(?:\\?\$)?([^\n$]{1,200}?)\$?\s*(?:\.(?!\d)|\n|$)", re.IGNORECASE)
_GSM8K = re.compile(r"####\s*([^\n]{1,200})")


@dataclass(frozen=True)
class MathVerdict:
    """The outcome of judging one solution."""

    correct: bool
    extracted: str | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces, if any."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    while idx >= 0:
        start = text.find("{", idx)
        head = text[idx:start] if start >= 0 else ""
        if start >= 0 and head in ("\\boxed", "\\fbox", "\\boxed ", "\\fbox "):
            depth = 0
            for pos in range(start, len(text)):
                ch = text[pos]
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        return text[start + 1 : pos].strip()
            return None  # unbalanced: the answer was cut off
        if text.startswith("\\boxed ", idx):
            token = text[idx + len("\\boxed ") :].split(maxsplit=1)
            return token[0].rstrip(".$") if token else None
        idx = max(text.rfind("\\boxed", 0, idx), text.rfind("\\fbox", 0, idx))
    return None


def extract_final_answer(prediction: str) -> str | None:
    """The final answer written in a solution, or None when it states none."""
    text = prediction[-_MAX_CHARS:]
    boxed = _last_boxed(text)
    if boxed:
        return boxed
    matches = _GSM8K.findall(text)
    if matches:
        return matches[-1].strip()
    matches = _ANSWER_IS.findall(text)
    if matches:
        return matches[-1].strip()
    return None


def judge_math(prediction: str, reference: str, timeout_s: int = 5) -> MathVerdict:
    """Judge ``prediction`` (a full solution) against ``reference`` (a final answer)."""
    from math_verify import parse, verify

    extracted = extract_final_answer(prediction)
    if extracted is None:
        return MathVerdict(False, None, "no final answer found")
    if len(extracted) > _MAX_ANSWER_CHARS:
        return MathVerdict(False, extracted[:80] + "...", f"final answer longer than {_MAX_ANSWER_CHARS} characters")
    gold = parse(f"${reference}$", parsing_timeout=timeout_s)
    if not gold:
        gold = parse(reference, parsing_timeout=timeout_s)
    if not gold:
        return MathVerdict(False, extracted, "reference answer could not be parsed")
    target = parse(f"$\\boxed{{{extracted}}}$", parsing_timeout=timeout_s)
    if not target:
        return MathVerdict(False, extracted, "final answer could not be parsed")
    ok = verify(gold, target, timeout_seconds=timeout_s)
    return MathVerdict(bool(ok), extracted, "equivalent" if ok else "not equivalent")
