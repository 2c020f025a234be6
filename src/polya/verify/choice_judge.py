"""Judge a free-text answer to a multiple-choice question (MuSR style) against the correct option.

:func:`judge_choice` maps the prediction's last 20,000 characters to one option, then compares it
with the reference.

**What counts as naming an option** (a *mention*):

- a letter in a strong form: ``(B)``, ``[B]``, ``B)``, ``**B**``, a line that is only ``B`` or
  ``B.``, ``option B`` / ``choice B``, ``B is the correct answer``. Letters are upper case and
  within the options (``A`` .. the n-th letter);
- a 1-based number: ``option 2``, ``choice #2``;
- an option's text, matched after folding case, whitespace, markdown (``*``, ``_``, backticks)
  and curly quotes, at word boundaries (``The murderer is Mr. Green``). When one option's text
  contains another's (``knife`` / ``kitchen knife``), the longer, more specific match wins;
- inside an answer statement only, a bare letter too (``Answer: B``, ``the answer is B``). ``A``
  or ``I`` followed by a lower-case word is an article or a pronoun (``A knife``, ``I think``),
  except before ``is``/``since``/``because``/``and``/``or``/... (``A is correct``).

A mention right after a negation (``not``, ``n't``, ``nor``, ``neither``, ``rather than``,
``instead of``) does not count: "the answer is not A but C" names C.

**How the option is chosen:**

1. *Answer statements*: "answer is ...", "Answer: ...", "final answer: ...", "the correct option
   is ...", "I choose ...". A statement reaches to the end of its sentence (a ``.``/``!``/``?``/``;``
   that ends a sentence, not the one in ``Mr.`` or inside an option's text), its line, or 300
   characters; a statement whose line is empty continues on the next line. The **last** statement
   that names any option decides, by its **first** option; an earlier statement naming another
   option is a corrected answer (as the last ``\\boxed{}`` wins in math), and a later option in
   the same statement after other words is a reason, not an answer ("the answer is B because
   Mr. Green was away" names B).
2. *No statement names an option*: the **last** mention in the text decides ("I suspected
   Mrs. Peacock, but the murderer is Mr. Green" names Mr. Green).
3. Nothing found -> ``no option found``.

**Ambiguity**: options *stated together* with the deciding one -- separated from it only by
connectors (``or``, ``and``, ``either``, ``nor``, commas, slashes, brackets, colons, periods,
whitespace) -- are part of the answer too. Two different options stated together as the final
answer ("the answer is A or C", "it is either Mr. Green or Mrs. Peacock", the option list restated
at the end) make the verdict ``ambiguous``: hedging is never rewarded. ``(B) Mrs. Peacock`` names
one option twice and is not ambiguous.

The reference is the correct option's text (matched after the same folding), its letter (``B`` or
``(b)``) or its 0-based index as a string, tried in that order: with options ``["1", "2"]`` the
reference ``"1"`` is the option whose text is ``1``. A reference that is none of these raises
:class:`ValueError` naming what would be valid.

Verdict reasons: ``matches reference``, ``does not match reference``, ``ambiguous``,
``no option found``. ``extracted`` is the chosen option's letter (``option 27`` past ``Z``);
for ``ambiguous``, the letters of the options named, comma-separated.

Bounded work: every scan is linear in the 20,000-character tail (regexes without nested
repetition, ``str.rfind`` per option); only an option's last 64 occurrences count, and an option
longer than 2,000 characters is named by its letter or number only. A megabyte of output, or
hundreds of overlapping options, costs milliseconds.
"""

from __future__ import annotations

import bisect
import re
import string
from dataclasses import asdict, dataclass

_MAX_CHARS = 20_000
"""Only the tail of a prediction is judged: the final answer is at the end."""

_MAX_SCOPE_CHARS = 300
"""An answer statement is at most this long."""

_MAX_OPTION_CHARS = 2_000
"""An option longer than this is named by its letter or number only, never matched as text."""

_MAX_MENTIONS_PER_OPTION = 64
"""Only the last occurrences of an option's text count: the answer is at the end, and a text
that repeats an option thousands of times must not cost thousands of mentions per option."""

_LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class ChoiceVerdict:
    """The outcome of judging one multiple-choice answer."""

    correct: bool
    extracted: str | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    index: int


# ----- folding -----------------------------------------------------------------------------------

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})
_MARKDOWN = frozenset("*_`")
_OPTION_LABEL = re.compile(r"^\(?[a-z]\)\s*")


def _fold(text: str) -> tuple[str, list[int]]:
    """Lower-cased text without markdown, whitespace runs as one space; and each char's original index."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text.translate(_QUOTES)):
        if ch in _MARKDOWN:
            continue
        if ch.isspace():
            if chars and chars[-1] == " ":
                continue
            ch = " "
        else:
            low = ch.lower()
            ch = low if len(low) == 1 else ch
        chars.append(ch)
        origin.append(i)
    return "".join(chars), origin


_MARKDOWN_RUN = re.compile(r"[*_`]")
_WHITESPACE_RUN = re.compile(r"\s+")


def _fold_option(text: str) -> str:
    """An option's text folded as :func:`_fold` folds the prediction, without a leading ``(a)`` label or a trailing period."""
    text = _WHITESPACE_RUN.sub(" ", _MARKDOWN_RUN.sub("", text.translate(_QUOTES))).strip()
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer: fold as _fold does
        lowered = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    return _OPTION_LABEL.sub("", lowered).rstrip(".").strip()


def option_label(index: int) -> str:
    """``0`` -> ``"A"``; past ``Z``, ``"option 27"``."""
    return _LETTERS[index] if index < len(_LETTERS) else f"option {index + 1}"


# ----- the reference -----------------------------------------------------------------------------

_REFERENCE_LETTER = re.compile(r"\(?([A-Za-z])\)?[.)]?")


def resolve_reference(options: list[str], reference: str) -> int:
    """The 0-based index of the option ``reference`` names: its text, its letter or its 0-based index."""
    if not options:
        raise ValueError("a choice question needs a non-empty 'options' list")
    ref = reference.strip()
    folded = _fold_option(ref) if len(ref) <= _MAX_OPTION_CHARS else ""
    if folded:
        for i, option in enumerate(options):
            if len(option) <= _MAX_OPTION_CHARS and _fold_option(option) == folded:
                return i
    letter = _REFERENCE_LETTER.fullmatch(ref)
    if letter is not None:
        index = _LETTERS.index(letter.group(1).upper())
        if index < len(options):
            return index
    if ref.isascii() and ref.isdigit() and int(ref) < len(options):
        return int(ref)
    last = option_label(min(len(options), len(_LETTERS)) - 1)
    raise ValueError(
        f"reference {reference[:80]!r} names no option: give an option's text, its letter A-{last} "
        f"or its 0-based index 0-{len(options) - 1}"
    )


# ----- mentions ----------------------------------------------------------------------------------

_STRONG_LETTER = re.compile(
    r"\(([A-Z])\)"  # (B)
    r"|\[([A-Z])\]"  # [B]
    r"|(?<![A-Za-z0-9(\[])([A-Z])\)"  # B)
    r"|\*\*\s*\(?([A-Z])\)?[.:]?\s*\*\*"  # **B**, **(B)**
    r"|(?m:^[ \t>#*-]*([A-Z])[.:]?[ \t*]*$)"  # a line that is only "B" or "B."
    r"|(?i:\b(?:option|choice)\s+)([A-Z])(?![A-Za-z0-9])"  # option B
    r"|(?<![A-Za-z0-9])([A-Z])(?=\s+is\s+(?:the\s+)?(?:(?:correct|right|best|final)\s+)?(?:answer|option|choice)\b)"
)
_NUMBERED = re.compile(r"\b(?:option|choice)\s*(?:#|no\.?|number)?\s*(\d{1,4})\b", re.IGNORECASE)
_WEAK_LETTER = re.compile(r"(?<![A-Za-z0-9'])([A-Z])(?![A-Za-z0-9'])")
# "A knife", "I think": an article or a pronoun, not a letter ("A is correct", "A since ..." are letters).
_ARTICLE_OR_PRONOUN = re.compile(
    r"[AI]\s+(?!(?:is|was|since|because|as|and|or|but|so|which|for|if|though|although|seems|appears)\b)[a-z]"
)
# What may stand between two options stated together: "A or C", "Mr. Green and Mrs. Peacock", "(A) Mr. Green".
_LINK = re.compile(r"[\s,/&*()\[\]:.\-]*(?:(?:either|or|and|nor)\b[\s,/&*()\[\]:.\-]*)*", re.IGNORECASE)
_MAX_LINK_CHARS = 40
_NEGATION = re.compile(r"(?:\bnot|n't|\bnor|\bneither|\brather\s+than|\binstead\s+of)\s+(?:be\s+)?$", re.IGNORECASE)

_MARKER = re.compile(
    r"\b(?:(?:final|correct|right|best|my|the)\s+)?(?:answer|option|choice)[*\s]*(?:is\b|would\s+be\b|will\s+be\b|should\s+be\b|[:=])"
    r"|\bI\s+(?:would\s+|will\s+|'d\s+)?(?:choose|pick|select|go\s+with)\b",
    re.IGNORECASE,
)
_SCOPE_LEAD = re.compile(r"[\s*#:=\-]*")
_BREAK = re.compile(r"[.!?;](?=\s|$)|\n")
_ABBREVIATION = re.compile(r"\b(?:mr|mrs|ms|dr|st|prof|jr|sr|vs|etc|mt|lt|col|capt|sgt|gen)$", re.IGNORECASE)


def _letter_mentions(text: str, n_options: int) -> list[_Mention]:
    found = []
    for match in _STRONG_LETTER.finditer(text):
        letter = next(group for group in match.groups() if group)
        index = _LETTERS.index(letter)
        if index < n_options:
            found.append(_Mention(match.start(), match.end(), index))
    return found


def _number_mentions(text: str, n_options: int) -> list[_Mention]:
    found = []
    for match in _NUMBERED.finditer(text):
        index = int(match.group(1)) - 1
        if 0 <= index < n_options:
            found.append(_Mention(match.start(), match.end(), index))
    return found


def _text_mentions(text: str, options: list[str]) -> list[_Mention]:
    folded, origin = _fold(text)
    first_index: dict[str, int] = {}
    for i, option in enumerate(options):
        if len(option) <= _MAX_OPTION_CHARS:
            first_index.setdefault(_fold_option(option), i)
    found = []
    for needle, index in first_index.items():
        if not needle:
            continue
        count = 0
        start = folded.rfind(needle)
        while start >= 0 and count < _MAX_MENTIONS_PER_OPTION:
            end = start + len(needle)
            before_ok = start == 0 or not (needle[0].isalnum() and folded[start - 1].isalnum())
            after_ok = end == len(folded) or not (needle[-1].isalnum() and folded[end].isalnum())
            if before_ok and after_ok:
                found.append(_Mention(origin[start], origin[end - 1] + 1, index))
                count += 1
            start = folded.rfind(needle, 0, end - 1) if end > 1 else -1
    return found


def _most_specific(mentions: list[_Mention]) -> list[_Mention]:
    """Drop mentions inside a longer mention of another option; sorted by start."""
    ordered = sorted(mentions, key=lambda m: (m.start, -(m.end - m.start)))
    kept: list[_Mention] = []
    cover_end = -1
    cover_index = -1
    for mention in ordered:
        if mention.end <= cover_end and mention.index != cover_index:
            continue
        kept.append(mention)
        if mention.end > cover_end:
            cover_end, cover_index = mention.end, mention.index
    return kept


def _not_negated(text: str, mentions: list[_Mention]) -> list[_Mention]:
    return [m for m in mentions if not _NEGATION.search(text, max(0, m.start - 40), m.start)]


def _sentence_breaks(text: str, protected: list[_Mention]) -> list[int]:
    """Positions that end a sentence, except inside an option's text and after ``Mr.``-like abbreviations."""
    spans = sorted((m.start, m.end) for m in protected)
    starts = [s for s, _ in spans]
    breaks = []
    for match in _BREAK.finditer(text):
        pos = match.start()
        if text[pos] != "\n":
            k = bisect.bisect_right(starts, pos) - 1
            if k >= 0 and spans[k][0] <= pos < spans[k][1]:
                continue
            if text[pos] == "." and _ABBREVIATION.search(text, max(0, pos - 5), pos):
                continue
        breaks.append(pos)
    return breaks


# ----- choosing ----------------------------------------------------------------------------------


def _statement_scopes(text: str, breaks: list[int]):
    """(start, end) of each answer statement, last first."""
    for marker in reversed(list(_MARKER.finditer(text))):
        start = _SCOPE_LEAD.match(text, marker.end()).end()  # type: ignore[union-attr]
        if start >= len(text):
            continue
        k = bisect.bisect_left(breaks, start)
        end = breaks[k] if k < len(breaks) else len(text)
        yield start, min(end, start + _MAX_SCOPE_CHARS)


def _stated_together(text: str, mentions: list[_Mention], anchor: int, step: int) -> list[int]:
    """The options of ``mentions[anchor]`` and of its neighbours linked to it by connectors only
    ("A or C", "(A) Mr. Green"), walking forward (``step=1``) or backward (``step=-1``)."""
    current = mentions[anchor]
    indices = {current.index}
    j = anchor + step
    while 0 <= j < len(mentions):
        neighbour = mentions[j]
        left, right = (current, neighbour) if step > 0 else (neighbour, current)
        gap = text[left.end : right.start] if right.start > left.end else ""
        if len(gap) > _MAX_LINK_CHARS or not _LINK.fullmatch(gap):
            break
        indices.add(neighbour.index)
        current = neighbour
        j += step
    return sorted(indices)


def _verdict_of(indices: list[int]) -> tuple[list[int], str]:
    return indices, "found" if len(indices) == 1 else "ambiguous"


def extract_choice(prediction: str, options: list[str]) -> tuple[list[int], str]:
    """The options the prediction settles on: ``([i], "found")``, ``([i, j], "ambiguous")`` or ``([], "no option found")``."""
    text = prediction[-_MAX_CHARS:]
    n = len(options)
    text_mentions = _text_mentions(text, options)
    mentions = _most_specific(_letter_mentions(text, n) + _number_mentions(text, n) + text_mentions)
    mentions = _not_negated(text, mentions)
    breaks = _sentence_breaks(text, text_mentions)
    starts = [m.start for m in mentions]

    # 1. The last answer statement that names an option: its first option, and any stated with it.
    for start, end in _statement_scopes(text, breaks):
        lo = bisect.bisect_left(starts, start)
        in_scope = [m for m in mentions[lo : bisect.bisect_left(starts, end)] if m.end <= end]
        scope = text[start:end]
        bare = scope.strip(" \t*.:)(")
        if len(bare) == 1 and bare.upper() in _LETTERS[:n]:  # "answer: b"
            in_scope.append(_Mention(start, end, _LETTERS.index(bare.upper())))
        for match in _WEAK_LETTER.finditer(scope):
            index = _LETTERS.index(match.group(1))
            if index < n and not _ARTICLE_OR_PRONOUN.match(scope, match.start()):
                in_scope.append(_Mention(start + match.start(), start + match.end(), index))
        in_scope = _not_negated(text, _most_specific(in_scope))
        if in_scope:
            return _verdict_of(_stated_together(text, in_scope, 0, 1))

    # 2. No statement: the last mention, and any stated with it.
    if not mentions:
        return [], "no option found"
    last = max(range(len(mentions)), key=lambda k: (mentions[k].end, -mentions[k].start))
    return _verdict_of(_stated_together(text, mentions, last, -1))


def judge_choice(prediction: str, options: list[str], reference: str) -> ChoiceVerdict:
    """Judge ``prediction`` (free text) against ``reference`` (the correct option of ``options``).

    Raises :class:`ValueError` when ``options`` is empty or ``reference`` names no option.
    """
    correct_index = resolve_reference(options, reference)
    indices, status = extract_choice(prediction, options)
    if status == "no option found":
        return ChoiceVerdict(False, None, "no option found")
    if status == "ambiguous":
        return ChoiceVerdict(False, ", ".join(option_label(i) for i in indices), "ambiguous")
    (index,) = indices
    if index == correct_index:
        return ChoiceVerdict(True, option_label(index), "matches reference")
    return ChoiceVerdict(False, option_label(index), "does not match reference")
