"""Pull the final answer out of a worked solution: GSM8K's ``#### 72`` and MATH's ``\\boxed{...}``.

Both functions run in one linear pass with no recursion, so a hostile multi-megabyte string (a
model that loops ``\\boxed{\\boxed{...`` forever) costs milliseconds, not minutes.
"""

from __future__ import annotations

import re

from polya.core.errors import DataError

GSM8K_MARKER = "####"

# A comma between digits that is followed by exactly three digits: the thousands separator.
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")

# Tokens that matter for brace matching. ``\\`` and ``\{`` / ``\}`` are escapes, not groups.
_BOX_TOKENS = re.compile(r"\\\\|\\[{}]|\\(?:boxed|fbox)(?![A-Za-z])|[{}]")
# What follows ``\boxed`` when it has no braces: ``\boxed 5`` -> ``5``.
_BARE_BOX_ARG = re.compile(r"[ \t]*([^\s${}]+)")
_WHITESPACE = re.compile(r"\s*")


def _clean_number(text: str) -> str:
    """Drop ``$`` signs and thousands commas: ``"$1,234"`` -> ``"1234"``."""
    text = text.replace("$", "").strip()
    return _THOUSANDS_COMMA.sub("", text)


def extract_gsm8k_answer(text: str) -> str:
    """The final answer of a GSM8K solution: what follows the last ``####``, cleaned.

    Whitespace is stripped, dollar signs dropped and thousands commas removed. Only the first
    line after the marker counts.

    >>> extract_gsm8k_answer("48/2 = 24 clips in May.\\n#### 72")
    '72'
    >>> extract_gsm8k_answer("#### 1,234")
    '1234'
    >>> extract_gsm8k_answer("She pays $3 + $4 = $7.\\n#### $7")
    '7'

    Raises :class:`~polya.core.errors.DataError` when there is no ``####`` marker or nothing after it.
    """
    pos = text.rfind(GSM8K_MARKER)
    if pos < 0:
        raise DataError(f"GSM8K solution has no '{GSM8K_MARKER}' answer marker")
    rest = text[pos + len(GSM8K_MARKER) :].strip()
    first_line = rest.split("\n", 1)[0].strip()
    answer = _clean_number(first_line)
    if not answer:
        raise DataError(f"GSM8K solution has nothing after its last '{GSM8K_MARKER}' marker")
    return answer


def split_gsm8k_solution(text: str) -> tuple[str, str]:
    """Split a GSM8K solution into its reasoning and its final answer.

    >>> split_gsm8k_solution("48/2 = 24 clips in May.\\n48+24 = 72 in all.\\n#### 72")
    ('48/2 = 24 clips in May.\\n48+24 = 72 in all.', '72')

    The reasoning is everything before the last ``####``, stripped; the answer is
    :func:`extract_gsm8k_answer`'s. Raises :class:`~polya.core.errors.DataError` without a marker.
    """
    answer = extract_gsm8k_answer(text)
    return text[: text.rfind(GSM8K_MARKER)].strip(), answer


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, or ``None``.

    Nested braces are matched properly, escaped braces (``\\{``, ``\\}``) do not count as
    groups, and the brace-less form ``\\boxed 5`` is understood. "Last" means the box that opens
    last, so for nested boxes the innermost one wins; a box that is never closed is ignored.

    >>> extract_boxed(r"so $x = \\boxed{\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    >>> extract_boxed(r"first \\boxed{1}, then \\boxed{2}")
    '2'
    >>> extract_boxed(r"\\boxed{\\boxed{5}}")
    '5'
    >>> extract_boxed(r"The answer is $\\boxed 7$.")
    '7'
    >>> extract_boxed("no box here") is None
    True
    """
    # (command start, content start, content end) of the box opened last so far.
    best: tuple[int, int, int] | None = None
    # One entry per open brace: the box's command start, or -1 for a plain group.
    stack: list[int] = []
    content_starts: list[int] = []
    pos = 0
    n = len(text)
    while True:
        match = _BOX_TOKENS.search(text, pos)
        if match is None:
            break
        token = match.group()
        pos = match.end()
        if token == "{":
            stack.append(-1)
            content_starts.append(pos)
        elif token == "}":
            if stack:
                start = stack.pop()
                content_start = content_starts.pop()
                if start >= 0 and (best is None or start > best[0]):
                    best = (start, content_start, match.start())
        elif token[1] in "bf":  # \boxed or \fbox
            after = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
            if after < n and text[after] == "{":
                stack.append(match.start())
                content_starts.append(after + 1)
                pos = after + 1
            else:
                bare = _BARE_BOX_ARG.match(text, pos)
                if bare is not None:
                    end = bare.end(1)
                    while end > bare.start(1) + 1 and text[end - 1] in ".,;":
                        end -= 1  # "\boxed 5." -> "5"
                    if best is None or match.start() > best[0]:
                        best = (match.start(), bare.start(1), end)
                    pos = bare.end()
        # "\\", "\{" and "\}" are escapes: skip them.
    if best is None:
        return None
    return text[best[1] : best[2]].strip()
