"""Judge a free-text math solution against a reference answer with math-verify.

Three steps, each bounded:

1. **Extract** the final answer from the solution's last 20,000 characters
   (:func:`extract_final_answer`): the last ``\\boxed{}`` / ``\\fbox{}`` (a box inside a box: the
   inner one; a last box that is cut off means no answer, not the box before it), else the last
   GSM8K ``#### x``, else the last "the answer is x" / "final answer: x" / "Answer: x" statement,
   cut at a trailing clause ("42 because ..." -> ``42``). An answer over 1,000 characters is
   refused before any parsing.
2. **Normalise** the extracted answer and the reference the same way (:func:`normalize_answer`):

   - ``$`` / ``\\$`` / ``\\(`` ``\\)`` / ``€ £ ¥``, markdown ``**`` and ``\\displaystyle`` are
     dropped; Unicode ``− π ∞ × · √`` become their LaTeX forms;
   - spacing commands: ``\\!`` and ``\\,`` are dropped (they sit inside numbers, ``1\\,234``),
     ``\\;`` ``\\:`` ``\\ `` ``~`` ``\\quad`` become a space; ``{,}`` becomes ``,``;
   - ``\\dfrac`` / ``\\tfrac`` / ``\\cfrac`` -> ``\\frac``; ``\\left`` / ``\\right`` / ``\\bigl`` ...
     are dropped (``\\left.`` with its dot);
   - degrees: ``^\\circ``, ``^{\\circ}``, ``\\degree``, ``°`` are dropped (``30^\\circ`` == ``30``;
     no conversion to radians);
   - ``\\text{}`` / ``\\textrm{}`` / ``\\textbf{}`` / ``\\mbox{}`` / ``\\mathrm{}``: ``and`` / ``or``
     become a comma; a group holding only words (a unit, ``\\text{ cm}^2``) is dropped; any other
     group is unwrapped. When dropping would leave nothing (``\\text{Monday}``), groups are
     unwrapped instead;
   - percent: ``\\%``, ``%`` and the words percent / percentage / pct are dropped (see below);
   - plain unit words after a number: ``12 apples``, ``5 dollars``, ``15 km/h`` -> the number. A
     word must have two letters or more, and math words (``pi``, ``sqrt``, ``sin``, ...) stay;
   - scientific notation ``1.2e3`` / ``1.2E+03`` -> ``1.2\\times 10^{3}`` (math-verify reads
     ``e`` as Euler's number otherwise);
   - thousands separators: a comma followed by exactly three digits is dropped
     (``1,234,567`` -> ``1234567``) unless the answer holds a bracket ``( ) [ ] { }``, i.e. is a
     tuple, set, interval or matrix (``(1,234)`` stays a pair). ``100,200`` alone is read as one
     number, as math-verify does;
   - whitespace is collapsed, leading ``:`` and trailing ``. , ; :`` are stripped.

3. **Compare**. Identical normalised strings are equivalent at once, without math-verify (the
   *fast path*, :attr:`MathVerdict.method` ``"identical"``; math-verify is always handed these
   same normalised strings, so it could only disagree by failing to read the answer it is given
   twice). Two plain numbers (a
   decimal, ``1.2e-19``, ``1.2\\times 10^{-19}``, ``10^{-30}``) are compared exactly, in decimal
   arithmetic, with a **relative tolerance** ``rel_tol`` (default :data:`REL_TOL`, 5e-7: they
   must agree to about seven significant digits), so ``2.88e-19`` != ``5.76e-19`` and
   ``10^{-30}`` != ``4.6e-24`` however small they are, while ``1.0000001`` == ``1``. Two integers
   written as such are compared exactly (``12345679`` != ``12345678``). Anything else goes to math-verify, the
   reference always parsed as the gold (``verify(gold, target)``: math-verify is asymmetric, e.g.
   an equation in the prediction is unwrapped to its right-hand side only when the gold is not an
   equation). math-verify's rules hold there: a float is compared after rounding both sides to 6
   decimals (``float_rounding=6``), so ``0.333333`` == ``1/3`` and ``3.141593`` == ``\\pi`` but
   ``0.333`` != ``1/3`` and ``3.14`` != ``\\pi``; ``x=3`` == ``3``; sets are unordered, tuples and
   intervals are not. Because that rounding is absolute, two numbers below ``1e-4`` it calls equal
   must also pass the relative tolerance.

Percentages follow one rule, **the reference decides the scale**: a percent sign is a unit and
is dropped on both sides, so ``50\\%`` == ``50`` in either direction (GSM8K writes 50 for "50%").
Only when the reference itself is written as a percentage (``50\\%``, ``50 percent``) is the
fraction ``0.5`` accepted too. A prediction ``50\\%`` against a reference ``0.5`` is *not*
equivalent: the prediction's own percent sign never rescales it. (math-verify alone would accept
``50\\%`` == ``0.5`` both ways; the normalisation removes the sign before it sees it.)

**Time is CPU time.** math-verify's own timeouts are wall-clock (``signal.alarm``), so on a
loaded machine a correct answer that needs half a second of sympy could run out of time and read
as wrong. polya turns them off and bounds parsing and comparing by the judge process's CPU time
instead (``ITIMER_PROF``): a verdict does not depend on what else the machine runs. An item over
its budget gets the status ``timeout`` (``correct`` False, ``decided`` False): it is undecided,
never a ``fail``. The limit is a signal, so call :func:`judge_math` from a process's main thread
(the judge pool's workers do). Everything before math-verify is a handful of regex passes over at
most 1,000 characters.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator, Literal

from polya.data.answers import extract_boxed

REL_TOL = 5e-7
"""Default relative tolerance between two numbers: they agree to about seven significant digits
(the relative form of math-verify's rounding to 6 decimals for numbers near 1)."""

_TINY = Decimal("1e-4")
"""Below this magnitude math-verify's 6-decimal rounding cannot tell numbers apart: its "equal"
must also pass the relative tolerance."""

_MAX_CHARS = 20_000
"""Only the tail of a prediction is judged: the final answer is at the end, and hostile
megabyte strings must not reach the LaTeX parser."""

_MAX_ANSWER_CHARS = 1_000
"""A final answer (or reference) longer than this is not an answer; it is not handed to the parser."""

# ----- extraction ------------------------------------------------------------------------------

_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")

# "the answer is x", "final answer: x", "Final Answer: The final answer is $x$.", a line "Answer: x".
# The answer ends at a sentence period (not a decimal point), a newline or the end; an opening
# ``$`` / ``\$`` and markdown ``**`` around it are dropped.
_ANSWER_IS = re.compile(
    r"(?:answer[ \t]{1,8}is|final[ \t]{1,8}answer[ \t]{0,8}(?:is)?|(?:^|\n)[ \t*#]{0,8}answer[ \t]{0,8}(?=[:*]))"
    r"[:* \t]{0,16}(?:\\?\$)?([^\n$]{1,200}?)\$?[* \t]{0,16}(?:\.(?!\d)|\n|$)",
    re.IGNORECASE,
)
_GSM8K = re.compile(r"####\s*([^\n]{1,200})")
# A clause after the answer in "the answer is 42 because ..." / "..., since ...".
_TRAILING_CLAUSE = re.compile(
    r",?\s+(?:because|since|as|which|so|where|given|when|for\s+(?:the|a|an|each|all))\b.*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class MathVerdict:
    """The outcome of judging one solution: ``status`` pass / fail, or ``timeout`` (undecided).

    ``method`` says how the answer was compared: ``identical`` (the fast path: the same text after
    normalisation), ``numbers`` (two plain numbers, exact decimal arithmetic), ``math-verify``, or
    ``none`` (judged before any comparison: no answer, too long, unparseable reference). It is a
    diagnostic: not part of :meth:`to_dict` nor of equality between verdicts.
    """

    correct: bool
    extracted: str | None
    reason: str
    status: Literal["pass", "fail", "timeout"] = "fail"
    method: Literal["identical", "numbers", "math-verify", "none"] = field(default="none", compare=False)

    def __post_init__(self) -> None:
        if self.correct and self.status != "pass":
            object.__setattr__(self, "status", "pass")

    def to_dict(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if key != "method"}


def _last_box(text: str) -> str | None:
    """Content of the last ``\\boxed``/``\\fbox`` command; None when that last box is cut off."""
    last = None
    for last in _BOX_COMMAND.finditer(text):
        pass
    if last is None:
        return None
    # Start at the last box command: a cut-off last box is not replaced by an earlier one.
    return extract_boxed(text[last.start() :])


def extract_final_answer(prediction: str) -> str | None:
    """The final answer written in a solution (as written, not normalised), or None when it states none."""
    text = prediction[-_MAX_CHARS:]
    boxed = _last_box(text)
    if boxed:
        return boxed
    matches = _GSM8K.findall(text)
    if matches:
        return matches[-1].strip() or None
    matches = _ANSWER_IS.findall(text)
    if matches:
        answer = _TRAILING_CLAUSE.sub("", matches[-1]).strip()
        return answer or None
    return None


# ----- normalisation ---------------------------------------------------------------------------

_UNICODE = str.maketrans(
    {
        "−": "-", "–": "-", "π": "\\pi ", "∞": "\\infty ", "×": "\\times ", "·": "\\cdot ", "√": "\\sqrt ",
        "\u00a0": " ", "\u2009": " ", "\u202f": " ",  # no-break and thin spaces
    }
)
_DROP = re.compile(
    r"\\\$|\$|\\[()\[\]]|[€£¥]|\\euro\b|\\pounds\b|\*\*|\\displaystyle|\\textstyle"
    r"|(?<!\\)\\[!,]"  # \! and \, (thin spaces, also inside numbers: 1\,234)
    r"|\\(?:left|right|[bB]igg?[lr]?)(?:\.|(?![A-Za-z]))"  # \left( -> (, \left. -> nothing
    r"|\^\s*\{?\s*\\circ\s*\}?|\\degree\b|°"
)
_SPACE_COMMANDS = re.compile(r"(?<!\\)\\[;: ]|~|\\q?quad\b")
_FRAC = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_BRACED_COMMA = re.compile(r"\{\s*,\s*\}")
# \text{...} and friends without nested braces, with a unit power after it (\text{ cm}^2).
_TEXT_GROUP = re.compile(r"\\(?:text(?:rm|bf|it|normal)?|mbox|mathrm)\s*\{([^{}]*)\}(\s*\^\s*\{?\d\}?)?")
_WORDS = re.compile(r"[A-Za-z][A-Za-z\s./-]*")
_PERCENT = re.compile(r"\\?%|\s*\b(?:per\s?cent(?:age)?|pct)\b", re.IGNORECASE)
_MATH_WORDS = frozenset({"pi", "sqrt", "infty", "infinity", "inf", "ln", "log", "sin", "cos", "tan", "cot", "sec", "csc", "mod", "and", "or"})
_UNIT_WORD = r"[A-Za-z]{2,}(?:\^\{?\d\}?)?"
# Words after a number (or a closing brace / parenthesis): "12 apples", "15 km/h", "3 square feet".
_UNIT_TAIL = re.compile(
    r"(?<=[0-9})])\s*(" + _UNIT_WORD + r"(?:(?:\s+|-)" + _UNIT_WORD + r"|\s*/\s*[A-Za-z]+(?:\^\{?\d\}?)?)*)\s*$"
)
_BARE_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")
_SCIENTIFIC = re.compile(r"(?<![\w.\\])(-?\d+(?:\.\d+)?)[eE]([+-]?\d+)(?![\w.])")
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])")
_BRACKETS = re.compile(r"[()\[\]{}]")
_SPACES = re.compile(r"\s+")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_INTEGER = re.compile(r"-?\d+")


def _replace_text_groups(text: str) -> str:
    def drop_words(match: re.Match[str]) -> str:
        content = match.group(1).strip()
        if content.lower() in ("and", "or", ","):
            return ", "
        if _WORDS.fullmatch(content):
            return " "
        return f" {content} "

    def unwrap(match: re.Match[str]) -> str:
        content = match.group(1).strip()
        return ", " if content.lower() in ("and", "or") else f" {content} "

    dropped = _TEXT_GROUP.sub(drop_words, text)
    if dropped.strip(" ,"):
        return dropped
    return _TEXT_GROUP.sub(unwrap, text)


def _strip_unit_words(text: str) -> str:
    match = _UNIT_TAIL.search(text)
    if match is None:
        return text
    words = re.split(r"[\s/^{}\d-]+", match.group(1).lower())
    if any(word in _MATH_WORDS for word in words):
        return text
    return text[: match.start()]


def _strip_ends(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lstrip(":").strip().rstrip(".,;:").strip()


def normalize_answer(answer: str) -> str:
    """A final answer rewritten so that math-verify sees only the math (rules in the module docstring).

    >>> normalize_answer("\\\\$1,234.50")
    '1234.50'
    >>> normalize_answer("12 \\\\text{ cm}^2.")
    '12'
    >>> normalize_answer("\\\\left(1,234\\\\right)")
    '(1,234)'
    >>> normalize_answer("50\\\\%")
    '50'
    """
    text = answer.translate(_UNICODE)
    text = _DROP.sub("", text)
    text = _SPACE_COMMANDS.sub(" ", text)
    text = _FRAC.sub(r"\\frac", text)
    text = _BRACED_COMMA.sub(",", text)
    text = _replace_text_groups(text)
    text = _PERCENT.sub("", text)
    text = _strip_ends(text)
    text = _strip_ends(_strip_unit_words(text))
    text = _BARE_PI.sub(r"\\pi ", text).strip()
    text = _SCIENTIFIC.sub(r"\1\\times 10^{\2}", text)
    if not _BRACKETS.search(text):
        text = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)
    return text


def is_percentage(answer: str) -> bool:
    """Whether an answer is written as a percentage (``50\\%``, ``50%``, ``50 percent``)."""
    return _PERCENT.search(answer) is not None


def _percent_as_fraction(normalised: str) -> str | None:
    """``"50"`` -> ``"0.5"``: the fraction a percentage reference also stands for, when it is a plain number."""
    if not _PLAIN_NUMBER.fullmatch(normalised):
        return None
    try:
        return format(Decimal(normalised).scaleb(-2), "f")
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid decimals
        return None


# ----- numbers -----------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?P<sign>-?)(?:(?P<mantissa>\d+(?:\.\d+)?)(?:\s*\\(?:times|cdot)\s*10\s*\^\s*\{?\s*(?P<exp>[+-]?\d+)\s*\}?)?"
    r"|10\s*\^\s*\{?\s*(?P<power>[+-]?\d+)\s*\}?)"
)


def parse_number(normalised: str) -> Decimal | None:
    """The exact value of a normalised plain number (``12``, ``-0.5``, ``1.2\\times 10^{-19}``,
    ``10^{-30}``), or None for anything else."""
    match = _NUMBER.fullmatch(normalised.strip())
    if match is None:
        return None
    try:
        if match.group("power") is not None:
            value = Decimal(1).scaleb(int(match.group("power")))
        else:
            value = Decimal(match.group("mantissa")).scaleb(int(match.group("exp") or 0))
    except (InvalidOperation, ValueError, OverflowError):  # pragma: no cover - the pattern admits valid numbers
        return None
    return -value if match.group("sign") else value


def numbers_close(a: Decimal, b: Decimal, rel_tol: float = REL_TOL) -> bool:
    """``|a - b| <= rel_tol x max(|a|, |b|)``, in exact decimal arithmetic (0 equals only 0)."""
    return abs(a - b) <= Decimal(str(rel_tol)) * max(abs(a), abs(b))


# ----- CPU time ---------------------------------------------------------------------------------


class CpuTimeExceeded(BaseException):
    """Raised inside a judge when it used up its CPU time (a BaseException, so that math-verify's
    own ``except Exception`` handlers do not swallow it)."""


@contextlib.contextmanager
def cpu_time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CpuTimeExceeded` in the block once this process spent ``seconds`` of CPU time in it.

    Main thread only (a signal handler); elsewhere the block runs without a limit, and the judge
    pool's wall-clock deadline stays the backstop.
    """
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise CpuTimeExceeded(f"more than {seconds:g}s of CPU time")

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _math_verify() -> tuple[Any, Any]:
    """math-verify's ``parse`` and ``verify``, with its wall-clock timeouts (and their warning) off."""
    import math_verify.grader as grader
    import math_verify.parser as parser

    grader.TIMEOUT_WARNING_SHOWN = parser.TIMEOUT_WARNING_SHOWN = True
    return parser.parse, grader.verify


def _numeric_value(expr: Any) -> Decimal | None:
    """A real number sympy evaluates ``expr`` to, or None."""
    try:
        if getattr(expr, "is_number", False) and expr.is_real:
            return Decimal(str(float(expr.evalf(30))))
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    return None


def _tiny_and_far(gold: list[Any], target: list[Any], rel_tol: float) -> bool:
    """Whether math-verify's "equal" holds only because both numbers round to the same 6 decimals."""
    a, b = (_numeric_value(gold[0]) if gold else None), (_numeric_value(target[0]) if target else None)
    if a is None or b is None or max(abs(a), abs(b)) >= _TINY:
        return False
    return not numbers_close(a, b, rel_tol)


# ----- judging ---------------------------------------------------------------------------------

_fast_path_hits = 0


def fast_path_hits() -> int:
    """How many :func:`judge_math` calls in this process were decided by the fast path (answers
    identical after normalisation: no math-verify)."""
    return _fast_path_hits



def judge_math(
    prediction: str, reference: str, timeout_s: float = 5, rel_tol: float = REL_TOL, *, fast_path: bool = True
) -> MathVerdict:
    """Judge ``prediction`` (a full solution) against ``reference`` (a final answer).

    ``timeout_s`` is the CPU time parsing and comparing may take (see the module docstring);
    ``rel_tol`` the relative tolerance between numbers; ``fast_path=False`` compares answers that
    are identical after normalisation like any others (for tests). ``extracted`` is the answer as the
    solution wrote it; reasons: ``equivalent``, ``not equivalent``, ``no final answer found``,
    ``final answer longer than ...``, ``final answer could not be parsed``, ``reference answer
    could not be parsed``, and for status ``timeout`` ``timed out after ...s of CPU time``.
    """
    global _fast_path_hits
    extracted = extract_final_answer(prediction)
    if extracted is None:
        return MathVerdict(False, None, "no final answer found")
    if len(extracted) > _MAX_ANSWER_CHARS:
        return MathVerdict(False, extracted[:80] + "...", f"final answer longer than {_MAX_ANSWER_CHARS} characters")
    if len(reference) > _MAX_ANSWER_CHARS:
        return MathVerdict(False, extracted, f"reference answer longer than {_MAX_ANSWER_CHARS} characters")

    target_text = normalize_answer(extracted)
    gold_text = normalize_answer(reference)
    if not gold_text:
        return MathVerdict(False, extracted, "reference answer could not be parsed")
    if not target_text:
        return MathVerdict(False, extracted, "final answer could not be parsed")
    golds = [gold_text]
    if is_percentage(reference) and not is_percentage(extracted):
        fraction = _percent_as_fraction(gold_text)
        if fraction is not None:
            golds.append(fraction)
    if fast_path and target_text in golds:
        _fast_path_hits += 1
        return MathVerdict(True, extracted, "equivalent", method="identical")
    target_number = parse_number(target_text)
    gold_numbers = [parse_number(text) for text in golds]
    if target_number is not None and all(n is not None for n in gold_numbers):
        if _INTEGER.fullmatch(target_text) and all(_INTEGER.fullmatch(text) for text in golds):
            ok = any(target_number == n for n in gold_numbers)  # two integers: exact (12345679 is not 12345678)
        else:
            ok = any(numbers_close(target_number, n, rel_tol) for n in gold_numbers if n is not None)
        return MathVerdict(ok, extracted, "equivalent" if ok else "not equivalent", method="numbers")

    parse, verify = _math_verify()
    try:
        with cpu_time_limit(timeout_s):
            gold = []
            for text in golds:
                parsed = parse(f"${text}$", parsing_timeout=None) or parse(text, parsing_timeout=None)
                gold.extend(parsed)
            if not gold:
                return MathVerdict(False, extracted, "reference answer could not be parsed", method="math-verify")
            target = parse(f"$\\boxed{{{target_text}}}$", parsing_timeout=None)
            if not target:
                return MathVerdict(False, extracted, "final answer could not be parsed", method="math-verify")
            ok = bool(verify(gold, target, timeout_seconds=None)) and not _tiny_and_far(gold, target, rel_tol)
    except CpuTimeExceeded:
        return MathVerdict(False, extracted, f"timed out after {timeout_s:g}s of CPU time", status="timeout", method="math-verify")
    return MathVerdict(ok, extracted, "equivalent" if ok else "not equivalent", method="math-verify")
