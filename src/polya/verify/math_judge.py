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

3. **Compare** with math-verify, the reference always parsed as the gold
   (``verify(gold, target)``: math-verify is asymmetric, e.g. an equation in the prediction is
   unwrapped to its right-hand side only when the gold is not an equation). Identical
   normalised strings are equivalent without calling math-verify. math-verify's defaults hold:
   a float is compared after rounding both sides to 6 decimals (``float_rounding=6``), so
   ``0.333333`` == ``1/3`` and ``3.141593`` == ``\\pi`` but ``0.333`` != ``1/3`` and
   ``3.14`` != ``\\pi``; ``x=3`` == ``3``; sets are unordered, tuples and intervals are not.

Percentages follow one rule, **the reference decides the scale**: a percent sign is a unit and
is dropped on both sides, so ``50\\%`` == ``50`` in either direction (GSM8K writes 50 for "50%").
Only when the reference itself is written as a percentage (``50\\%``, ``50 percent``) is the
fraction ``0.5`` accepted too. A prediction ``50\\%`` against a reference ``0.5`` is *not*
equivalent: the prediction's own percent sign never rescales it. (math-verify alone would accept
``50\\%`` == ``0.5`` both ways; the normalisation removes the sign before it sees it.)

math-verify bounds its own work with ``signal.alarm``, which only works on a process's main
thread: call :func:`judge_math` from the main thread of a worker process (the generate stage runs
it in a process pool), never from a thread. Everything before math-verify is a handful of regex
passes over at most 1,000 characters.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation

from polya.data.answers import extract_boxed

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
    """The outcome of judging one solution."""

    correct: bool
    extracted: str | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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


# ----- judging ---------------------------------------------------------------------------------


def judge_math(prediction: str, reference: str, timeout_s: int = 5) -> MathVerdict:
    """Judge ``prediction`` (a full solution) against ``reference`` (a final answer).

    ``extracted`` is the answer as the solution wrote it; reasons: ``equivalent``,
    ``not equivalent``, ``no final answer found``, ``final answer longer than ...``,
    ``final answer could not be parsed``, ``reference answer could not be parsed``.
    """
    from math_verify import parse, verify

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
    if target_text in golds:
        return MathVerdict(True, extracted, "equivalent")

    gold = []
    for text in golds:
        parsed = parse(f"${text}$", parsing_timeout=timeout_s) or parse(text, parsing_timeout=timeout_s)
        gold.extend(parsed)
    if not gold:
        return MathVerdict(False, extracted, "reference answer could not be parsed")
    target = parse(f"$\\boxed{{{target_text}}}$", parsing_timeout=timeout_s)
    if not target:
        return MathVerdict(False, extracted, "final answer could not be parsed")
    ok = verify(gold, target, timeout_seconds=timeout_s)
    return MathVerdict(bool(ok), extracted, "equivalent" if ok else "not equivalent")
