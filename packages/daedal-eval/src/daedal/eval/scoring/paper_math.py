"""GSM8K / MATH500 scoring exactly as the DAEDAL repository's ``metrics/{gsm8k,math500}.py``.

The two scripts are identical in their scoring. This module reproduces their behaviour,
accidents included (written from reading them; no code taken over). The quirks, each
pinned by a test in ``tests/eval/test_paper_protocol.py``:

* ``\\fbox{5}`` is found by the brace matcher but never unwrapped: the prediction stays
  ``\\fbox{5}`` and can never be right.
* ``\\boxed\\frac{1}{2}`` (no brace after the command) matches up to the first closing
  brace and keeps the command: ``\\boxed\\frac{1}``.
* A stray ``}`` before the group does not stop the brace matcher (depth goes negative and
  only a later return to zero on a ``}`` ends the group).
* A comma is dropped whenever a digit precedes it and three digits follow, whatever comes
  next: ``1,2345`` becomes ``12345``.
* A ``\\text{ …}`` unit is cut only when ``\\text{ `` occurs exactly once
  (``5\\text{ m}\\text{ s}`` keeps both groups).
* ``a/b`` becomes ``\\frac{a}{b}`` when both sides parse as floats (``0.5/2``, ``1e3/2``),
  not only integers.
* Numbers are equal when they differ by strictly less than 1e-6.
* ``\\frac`` at the very end of an answer, or directly followed by another ``\\frac``, makes
  the script raise ``IndexError``; the script then drops the *whole results file*. Here that
  answer is scored incorrect with the reason (:class:`PaperScriptCrash`).
"""

from __future__ import annotations

import re

__all__ = ["PaperScriptCrash", "extract", "is_equiv", "score", "strip_string"]

_THOUSANDS = re.compile(r"(\d),(\d{3})")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


class PaperScriptCrash(Exception):
    """An input on which the paper's script raises instead of returning a verdict."""


def _last_boxed(text: str) -> str | None:
    """The paper's ``last_boxed_only_string``: the whole text when no command occurs."""
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return text
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def _remove_boxed(group: str) -> str:
    if "\\boxed " in group:
        return group[len("\\boxed ") :]
    if group.startswith("\\boxed{") and group.endswith("}"):
        return group[len("\\boxed{") : -1]
    return group  # \fbox{...} and \boxed<no brace> stay as they are


def extract(text: str) -> str | None:
    """The prediction the scripts compare, or None (then the sample is wrong).

    Empty text gives None (the scripts test the group for truth before unwrapping it).
    """
    group = _last_boxed(text)
    prediction = _remove_boxed(group) if group else None
    if prediction is None:
        tag = _ANSWER_TAG.search(text)
        if tag is not None:
            prediction = tag.group(1).strip()
    return prediction


def _fix_fracs(s: str) -> str:
    pieces = s.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        out += "\\frac"
        if not piece:
            raise PaperScriptCrash(
                "IndexError in the script's fix_fracs: '\\frac' ends the answer or is followed by another '\\frac'; "
                "the paper's script drops the whole results file here"
            )
        if piece[0] == "{":
            out += piece
            continue
        if len(piece) < 2:
            return s
        a, b, rest = piece[0], piece[1], piece[2:]
        out += "{" + a + "}" + b + rest if b == "{" else "{" + a + "}{" + b + "}" + rest
    return out


def _remove_right_units(s: str) -> str:
    parts = s.split("\\text{ ")
    return parts[0] if len(parts) == 2 else s


def _fix_sqrt(s: str) -> str:
    parts = s.split("\\sqrt")
    out = parts[0]
    for part in parts[1:]:
        out += "\\sqrt{" + part[0] + "}" + part[1:] if part and part[0] != "{" else "\\sqrt" + part
    return out


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _fix_a_slash_b(s: str) -> str:
    parts = s.split("/")
    if len(parts) == 2 and _is_float(parts[0]) and _is_float(parts[1]):
        return "\\frac{" + parts[0] + "}{" + parts[1] + "}"
    return s


def strip_string(answer: str) -> str:
    """The scripts' ``strip_string`` normalisation, step by step in their order.

    Raises:
        PaperScriptCrash: Where the script raises.
    """
    s = str(answer).strip()
    while _THOUSANDS.search(s):
        s = _THOUSANDS.sub(r"\1\2", s)
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "").replace("\\%", "")
    s = _remove_right_units(s)
    if s.startswith("."):
        s = "0" + s
    s = s.replace(" .", " 0.")
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1].strip()
    s = _fix_sqrt(s)
    s = s.replace(" ", "")
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def is_equiv(prediction: str | None, target: str | None) -> bool:
    """The scripts' ``is_equiv``: floats closer than 1e-6, else equal normalised strings.

    Raises:
        PaperScriptCrash: Where the script raises (normalising either side).
    """
    if prediction is None or target is None:
        return False
    a, b = strip_string(prediction), strip_string(target)
    try:
        if abs(float(a) - float(b)) < 1e-6:
            return True
    except ValueError:
        pass
    return a == b


def score(text: str, target: str) -> tuple[bool, str, str]:
    """``(correct, prediction, detail)`` of one raw generation under the paper's script."""
    prediction = extract(text)
    try:
        correct = is_equiv(prediction, target)
    except PaperScriptCrash as crash:
        return False, prediction or "", f"paper script crashes: {crash}"
    detail = "" if prediction is not None else "no answer extracted"
    return correct, prediction if prediction is not None else "", detail
