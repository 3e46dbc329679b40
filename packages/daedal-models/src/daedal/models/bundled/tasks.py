"""Synthetic instruction tasks of the bundled tiny model.

Every family's answer length is a function of its prompt, so a variable-length decoder
must read the prompt to know where to put the end of text:

=========  ===============================  ==============================  ==============
family     prompt                           answer                          answer tokens
=========  ===============================  ==============================  ==============
reverse    ``reverse: a b c``               ``c b a``                       n (1-24)
sort       ``sort: d a c``                  ``a c d``                       n (1-24)
repeat     ``repeat: a b``                  ``a a b b``                     2n (2-48)
add        ``add: 3 4 5``                   ``3 + 4 = 7 , 7 + 5 = 12``      6(n-1)-1 (5-47)
=========  ===============================  ==============================  ==============

``reverse``, ``sort`` and ``repeat`` draw distinct letters ``a``-``z`` (so every answer
token can be found in the prompt); ``add`` draws terms ``1``-``5`` (with repeats) and
writes one ``x + y = s`` step per term after the first (2-9 terms, so 1-8 steps),
numbers being single word tokens.

The API is what the model card, the training script, the quality command and the
``synthetic`` evaluation suite share:

* :data:`FAMILIES`, :data:`SIZES` (inclusive size range of each family),
* :func:`make_example` draws one ``(prompt, answer)`` pair,
* :func:`heldout_set` is the fixed evaluation set (sizes spread evenly),
* :func:`expected_answer` recomputes the answer from a prompt, :func:`score` checks an
  output by exact match after dropping end-of-text tokens.

Only the standard library is imported here.
"""

from __future__ import annotations

import random
import re
import string
import zlib
from collections.abc import Iterable

__all__ = [
    "ADD_TERMS",
    "FAMILIES",
    "LETTERS",
    "DIGITS",
    "MAX_NUMBER",
    "SIZES",
    "END_TOKENS",
    "answer_tokens",
    "check_prompt",
    "expected_answer",
    "family_of",
    "heldout_set",
    "is_heldout",
    "make_example",
    "normalize",
    "score",
    "words",
]

FAMILIES: tuple[str, ...] = ("reverse", "sort", "repeat", "add")
"""The task families, in the order tables list them."""

SIZES: dict[str, tuple[int, int]] = {
    "reverse": (1, 24),
    "sort": (1, 24),
    "repeat": (1, 24),
    "add": (2, 9),
}
"""Inclusive range of the size (number of items / terms) of each family."""

LETTERS: tuple[str, ...] = tuple(string.ascii_lowercase)
DIGITS: tuple[str, ...] = tuple(str(d) for d in range(10))
ADD_TERMS: tuple[int, ...] = (1, 2, 3, 4, 5)
MAX_NUMBER = 99
"""Numbers ``0..MAX_NUMBER`` are single tokens (the largest running sum is 45)."""

END_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|eot_id|>")
"""Tokens that end a generation; :func:`score` ignores them."""


def words() -> list[str]:
    """Every ordinary (non-special) word of the task language, in a fixed order."""
    out = ["user", "assistant", ":", "+", "=", ","]
    out += list(FAMILIES)
    out += list(LETTERS)
    out += [str(n) for n in range(MAX_NUMBER + 1)]
    return out


def _check_family(family: str) -> None:
    if family not in SIZES:
        raise ValueError(f"family={family!r} is not a task family; use one of {list(FAMILIES)}.")


def _check_size(family: str, size: int) -> None:
    lo, hi = SIZES[family]
    if not isinstance(size, int) or isinstance(size, bool) or not lo <= size <= hi:
        raise ValueError(f"size={size!r} is out of range for family {family!r}; use an integer in [{lo}, {hi}].")


def _answer(family: str, items: list[str]) -> list[str]:
    if family == "reverse":
        return items[::-1]
    if family == "sort":
        return sorted(items)
    if family == "repeat":
        return [w for item in items for w in (item, item)]
    # add: one step "running + term = new" per term after the first, joined by commas.
    total = int(items[0])
    steps: list[str] = []
    for term in items[1:]:
        new = total + int(term)
        if steps:
            steps.append(",")
        steps += [str(total), "+", term, "=", str(new)]
        total = new
    return steps


SPLIT_MIN_PROMPTS = 1000
"""Sizes with fewer distinct prompts than this are not split into train / held out."""


def _n_prompts(family: str, size: int) -> int:
    if family == "add":
        return len(ADD_TERMS) ** size
    n = 1
    for i in range(size):  # ordered draws of distinct letters
        n *= len(LETTERS) - i
    return n


def is_heldout(prompt: str) -> bool:
    """Whether a prompt belongs to the held-out split (a fixed 1-in-8 hash split).

    Training never sees a held-out prompt of a size with at least
    :data:`SPLIT_MIN_PROMPTS` distinct prompts; smaller sizes (e.g. ``reverse`` of one
    letter: 26 prompts, ``add`` of up to four terms) are shared by both splits.
    """
    return zlib.crc32(prompt.encode("utf-8")) % 8 == 0


def make_example(family: str, rng: random.Random, size: int | None = None, split: str | None = None) -> tuple[str, str]:
    """Draw one ``(prompt, answer)`` pair of ``family``.

    Args:
        family: One of :data:`FAMILIES`.
        rng: The source of randomness (a seeded :class:`random.Random`).
        size: Number of items (terms for ``add``); drawn uniformly from :data:`SIZES`
            when None.
        split: ``"train"`` or ``"heldout"`` to draw only from that split (see
            :func:`is_heldout`), None for any prompt.

    Returns:
        The prompt text (e.g. ``"reverse: a b c"``) and the answer text (``"c b a"``).
    """
    _check_family(family)
    if split not in (None, "train", "heldout"):
        raise ValueError(f"split={split!r} is not a split; use 'train', 'heldout' or None.")
    lo, hi = SIZES[family]
    if size is None:
        size = rng.randint(lo, hi)
    _check_size(family, size)
    while True:
        prompt, answer = _draw(family, rng, size)
        if split is None or _n_prompts(family, size) < SPLIT_MIN_PROMPTS:
            return prompt, answer
        if is_heldout(prompt) == (split == "heldout"):
            return prompt, answer


def _draw(family: str, rng: random.Random, size: int) -> tuple[str, str]:
    if family == "add":
        items = [str(rng.choice(ADD_TERMS)) for _ in range(size)]
    else:  # distinct letters: every item can be found again in the prompt
        items = rng.sample(LETTERS, size)
    return f"{family}: {' '.join(items)}", " ".join(_answer(family, items))


def heldout_set(n_per_family: int = 50, seed: int = 1234) -> list[dict]:
    """The evaluation set: ``n_per_family`` prompts per family, sizes spread evenly.

    Example ``i`` of a family has size ``lo + i * (hi - lo + 1) // n_per_family``, so
    every size appears about equally often and the set covers the whole range.

    Returns:
        Dicts with keys ``family``, ``size``, ``prompt``, ``answer``; families in
        :data:`FAMILIES` order.
    """
    if not isinstance(n_per_family, int) or isinstance(n_per_family, bool) or n_per_family < 1:
        raise ValueError(f"n_per_family={n_per_family!r} must be a positive integer.")
    rng = random.Random(seed)
    out = []
    for family in FAMILIES:
        lo, hi = SIZES[family]
        for i in range(n_per_family):
            size = lo + i * (hi - lo + 1) // n_per_family
            prompt, answer = make_example(family, rng, size, split="heldout")
            out.append({"family": family, "size": size, "prompt": prompt, "answer": answer})
    return out


_TOKEN = re.compile(r"\w+|[^\w\s]+")
_END = re.compile("|".join(re.escape(t) for t in END_TOKENS))


def normalize(text: str) -> list[str]:
    """Word tokens of ``text`` with end-of-text tokens removed (the tokenizer's split)."""
    return _TOKEN.findall(_END.sub(" ", text))


def family_of(prompt: str) -> str:
    """The family named by a prompt's first word (``"reverse: a b"`` -> ``"reverse"``)."""
    toks = normalize(prompt)
    if not toks or toks[0] not in SIZES:
        raise ValueError(f"prompt={prompt!r} does not start with a task family; start it with one of {list(FAMILIES)}.")
    return toks[0]


def expected_answer(prompt: str, family: str | None = None) -> str:
    """Recompute the answer of a prompt (e.g. ``"sort: 3 1"`` -> ``"1 3"``)."""
    family = family or family_of(prompt)
    _check_family(family)
    toks = normalize(prompt)
    if toks[:2] != [family, ":"]:
        raise ValueError(f"prompt={prompt!r} is not a {family!r} prompt; write it as '{family}: item item ...'.")
    return " ".join(_answer(family, toks[2:]))


def check_prompt(prompt: str) -> str | None:
    """Why a prompt is not one of the tasks, or None when it is.

    >>> check_prompt("sort: 3 1 2")
    'sort takes distinct letters a-z'
    """
    toks = normalize(prompt)
    if not toks or toks[0] not in SIZES:
        return f"it does not start with one of {', '.join(FAMILIES)}"
    family = toks[0]
    if toks[1:2] != [":"]:
        return f"write it as '{family}: item item ...'"
    items = toks[2:]
    lo, hi = SIZES[family]
    if not lo <= len(items) <= hi:
        return f"{family} takes {lo} to {hi} items, not {len(items)}"
    if family == "add":
        if not all(t in {str(n) for n in ADD_TERMS} for t in items):
            return f"add takes terms {ADD_TERMS[0]}-{ADD_TERMS[-1]}"
    elif not all(t in LETTERS for t in items) or len(set(items)) != len(items):
        return f"{family} takes distinct letters a-z"
    return None


def answer_tokens(family: str, size: int) -> int:
    """Length in tokens of the answer of a ``family`` prompt with ``size`` items."""
    _check_family(family)
    _check_size(family, size)
    return {"reverse": size, "sort": size, "repeat": 2 * size, "add": 6 * (size - 1) - 1}[family]


def score(family: str, prompt: str, output_text: str) -> bool:
    """Exact match of ``output_text`` against the prompt's answer.

    End-of-text tokens (:data:`END_TOKENS`) and whitespace differences are ignored;
    anything else (a missing, extra or wrong token) fails.
    """
    return normalize(output_text) == normalize(expected_answer(prompt, family))


def iter_examples(
    rng: random.Random, families: Iterable[str] = FAMILIES, split: str | None = "train"
) -> Iterable[tuple[str, str, str]]:
    """Endless ``(family, prompt, answer)`` triples, families in round-robin order."""
    fams = list(families)
    while True:
        for family in fams:
            prompt, answer = make_example(family, rng, split=split)
            yield family, prompt, answer
