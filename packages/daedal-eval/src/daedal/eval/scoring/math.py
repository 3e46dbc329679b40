"""Answer extraction, normalisation and equivalence for GSM8K and MATH500.

This follows the DAEDAL evaluation scripts (reference semantics E5), which
in turn follow the MATH benchmark's ``is_equiv``: pull the final answer out of the raw
generation (the last ``\\boxed{...}``), normalise both the prediction and the target
with the same string rewrites, then compare numerically when both are numbers and
literally otherwise.

Example::

    >>> extract_answer("so <answer>\\\\boxed{\\\\dfrac{1}{2}}</answer>")
    '\\\\dfrac{1}{2}'
    >>> is_correct("\\\\boxed{0.5}", "\\\\frac12")
    True
"""

from __future__ import annotations

import re

__all__ = [
    "extract_answer",
    "find_last_boxed",
    "gsm8k_target",
    "is_correct",
    "is_equivalent",
    "normalize",
]

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# A comma between digits that is followed by exactly three digits groups thousands
# ("1,234,567"); "(1,2)" or "1,23" are left alone.
_DIGIT_GROUP_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def find_last_boxed(text: str) -> str | None:
    """Return the last ``\\boxed{...}`` (else ``\\fbox{...}``) group, braces matched.

    Args:
        text: Raw model output.

    Returns:
        The command with its braced argument, e.g. ``"\\boxed{\\frac{1}{2}}"``; ``None``
        when neither command occurs or its braces never close.
    """
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
            if depth < 0:  # a stray closing brace before any opening one
                return None
    return None


def _unwrap(boxed: str) -> str:
    for command in ("\\boxed{", "\\fbox{"):
        if boxed.startswith(command) and boxed.endswith("}"):
            return boxed[len(command) : -1]
    # "\boxed" followed by something other than a brace, e.g. "\boxed\frac{1}{2}": the
    # matched group is everything after the command name.
    return boxed[len("\\boxed") :] if boxed.startswith("\\boxed") else boxed[len("\\fbox") :]


def extract_answer(text: str) -> str:
    """Pull the predicted answer out of a raw generation.

    The order is the evaluation scripts': ``\\boxed `` with a space (up to the next ``$``);
    else the last ``\\boxed{…}`` / ``\\fbox{…}`` with matched braces; else, when neither
    command occurs, the whole text; and only when a command occurs but its braces never
    close, the first ``<answer>…</answer>`` (stripped). With no usable tag either, the
    whole text is the prediction (it will almost never match a target).

    Args:
        text: Raw decoded generation (special tokens kept).

    Returns:
        The prediction string, not yet normalised.
    """
    if "\\boxed " in text:
        return text.split("\\boxed ")[-1].split("$")[0]
    if "\\boxed" not in text and "\\fbox" not in text:
        return text
    boxed = find_last_boxed(text)
    if boxed is not None:
        return _unwrap(boxed)
    tag = _ANSWER_TAG.search(text)
    if tag is not None:
        return tag.group(1).strip()
    return text


def gsm8k_target(answer: str) -> str:
    """The final answer of a GSM8K ``answer`` field: the text after ``####``, stripped.

    Raises:
        ValueError: The field has no ``####`` marker (not a GSM8K answer).
    """
    if "####" not in answer:
        raise ValueError(f"`answer` must contain '#### <final answer>' (GSM8K format), got {answer[-80:]!r}")
    return answer.split("####")[-1].strip()


def _cut_text_unit(s: str) -> str:
    """Drop a ``\\text{ unit}`` suffix: the space after the brace marks a unit ("10\\text{ cm}")."""
    start = s.find("\\text{ ")
    return s if start < 0 else s[:start]


def _fix_sqrt(s: str) -> str:
    """``\\sqrt2`` → ``\\sqrt{2}`` (one character argument)."""
    parts = s.split("\\sqrt")
    out = parts[0]
    for part in parts[1:]:
        if part and part[0] != "{":
            out += "\\sqrt{" + part[0] + "}" + part[1:]
        else:
            out += "\\sqrt" + part
    return out


def _fix_fracs(s: str) -> str:
    """``\\frac12`` → ``\\frac{1}{2}``, ``\\frac1{2}`` → ``\\frac{1}{2}``."""
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part.startswith("{"):
            out += part
            continue
        if len(part) < 2:
            return s  # "\frac" with fewer than two characters after it: leave the string alone
        a, b, rest = part[0], part[1], part[2:]
        if b == "{":
            out += "{" + a + "}" + b + rest
        else:
            out += "{" + a + "}{" + b + "}" + rest
    return out


def _fix_slash(s: str) -> str:
    """``3/4`` (two integers) → ``\\frac{3}{4}``."""
    pieces = s.split("/")
    if len(pieces) != 2:
        return s
    try:
        a, b = int(pieces[0]), int(pieces[1])
    except ValueError:
        return s
    if s != f"{a}/{b}":
        return s
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def normalize(answer: str) -> str:
    """Normalise an answer string the way the evaluation scripts do.

    Steps, in order: strip; remove thousands commas; drop newlines and ``\\!``; ``\\\\`` →
    ``\\``; ``tfrac``/``dfrac`` → ``frac``; drop ``\\left``/``\\right``, degree marks,
    ``\\$`` and ``\\%``; cut a trailing ``\\text{ …}`` unit; a leading ``.`` and `` .``
    become ``0.``; ``x=…`` with a left side of at most two characters keeps the right
    side; ``\\sqrtX`` → ``\\sqrt{X}``; remove spaces; ``\\fracab`` → ``\\frac{a}{b}``;
    ``0.5`` → ``\\frac{1}{2}``; integer ``a/b`` → ``\\frac{a}{b}``.

    Args:
        answer: A prediction or a target.

    Returns:
        The normalised string (possibly empty).
    """
    s = answer.strip()
    s = _DIGIT_GROUP_COMMA.sub("", s)
    s = s.replace("\n", "").replace("\\!", "")
    s = s.replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "")
    s = _cut_text_unit(s)
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1]
    s = _fix_sqrt(s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_slash(s)


def _as_float(s: str) -> float | None:
    try:
        value = float(s)
    except ValueError:
        return None
    return value if value == value else None  # NaN never equals anything


def is_equivalent(prediction: str, target: str, *, tolerance: float = 1e-6) -> bool:
    """Compare two *unnormalised* answers after normalising both.

    Equivalent when both normalised strings parse as floats that differ by at most
    ``tolerance``, or else when the normalised strings are identical.
    """
    a, b = normalize(prediction), normalize(target)
    fa, fb = _as_float(a), _as_float(b)
    if fa is not None and fb is not None and abs(fa - fb) <= tolerance:
        return True
    return a == b


def is_correct(text: str, target: str) -> bool:
    """Score a raw generation against a target answer (extraction + equivalence)."""
    return is_equivalent(extract_answer(text), target)
