"""Log-likelihood of whole documents in windows, for perplexity.

A document of ``N`` tokens (after an optional prompt) is cut into consecutive windows of
``window`` tokens; window ``w`` is scored as the answer to the ``context`` tokens before it
(the prompt and the document so far, cut from the left), and the document's
log-likelihood is the sum of its windows' ELBOs. By the chain rule this bounds the
log-likelihood of the document under the model restricted to ``context`` tokens of memory.
Windows are seeded on their own tokens, so windows and documents draw independent numbers
and the standard errors add in quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from daedal.core.errors import ConfigError
from daedal.eval.likelihood.estimator import Estimate, _ids, check_settings, log_likelihoods

__all__ = ["default_window", "rolling_log_likelihood", "rolling_log_likelihoods", "window_pairs"]


def default_window(adapter: Any) -> tuple[int, int]:
    """``(window, context)`` by default: half the model's ``max_length`` each."""
    max_length = int(adapter.max_length)
    window = max(1, max_length // 2)
    return window, max_length - window


def _resolve(adapter: Any, window: int | None, context: int | None) -> tuple[int, int]:
    max_length = int(adapter.max_length)
    default_w, _ = default_window(adapter)
    window = default_w if window is None else window
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= max_length:
        raise ConfigError(f"`window` must be an int in [1, max_length={max_length}], got {window!r}")
    context = max_length - window if context is None else context
    if isinstance(context, bool) or not isinstance(context, int) or context < 0 or window + context > max_length:
        raise ConfigError(
            f"`context` must be an int >= 0 with window + context <= max_length={max_length}, got {context!r} "
            f"(window={window}): pass context={max_length - window} or less"
        )
    return window, context


def window_pairs(
    prompt: Sequence[int], text: Sequence[int], window: int, context: int
) -> list[tuple[list[int], list[int]]]:
    """The ``(prompt, answer)`` pairs that score ``text`` after ``prompt`` in windows."""
    prompt, text = list(prompt), list(text)
    pairs = []
    for start in range(0, len(text), window):
        before = prompt + text[:start]
        pairs.append((before[len(before) - context :] if context else [], text[start : start + window]))
    return pairs


def rolling_log_likelihoods(
    adapter: Any,
    documents: Sequence[Sequence[int] | tuple[Sequence[int], Sequence[int]]],
    *,
    window: int | None = None,
    context: int | None = None,
    mc_num: int = 128,
    batch_size: int = 32,
    cfg_scale: float = 0.0,
    seed: int = 0,
    exact: bool = False,
    progress: bool | None = None,
) -> list[Estimate]:
    """Log-likelihood of each document, summed over its windows.

    Args:
        adapter: Any :class:`~daedal.core.ModelAdapter`.
        documents: Token lists, or ``(prompt_ids, text_ids)`` pairs whose text alone is scored.
        window: Tokens scored per window (default: half of ``adapter.max_length``).
        context: Tokens of context before each window (default: the rest of ``max_length``).
        mc_num: Monte-Carlo samples per window (as in :func:`~daedal.eval.likelihood.log_likelihood`).
        batch_size: Rows per stratified mini-batch and forward pass.
        cfg_scale: Classifier-free guidance scale (0: none).
        seed: Seed; a window's samples depend only on it and the window's tokens.
        exact: Enumerate every mask subset (windows of at most 12 tokens).
        progress: Show a progress bar (None: on long runs).

    Returns:
        One :class:`Estimate` per document (``n_tokens`` = its length; ``stderr`` the
        windows' errors in quadrature).
    """
    check_settings(mc_num, batch_size, cfg_scale, seed)
    window, context = _resolve(adapter, window, context)
    spans, pairs = [], []
    for n, doc in enumerate(documents):
        if isinstance(doc, tuple) and len(doc) == 2 and not isinstance(doc[0], int):
            prompt, text = _ids(f"documents[{n}][0]", doc[0]), _ids(f"documents[{n}][1]", doc[1])
        else:
            prompt, text = [], _ids(f"documents[{n}]", doc)
        if not text:
            raise ConfigError(f"`documents[{n}]` has no tokens to score: drop empty documents")
        doc_pairs = window_pairs(prompt, text, window, context)
        spans.append((len(pairs), len(pairs) + len(doc_pairs), len(text)))
        pairs += doc_pairs
    estimates = log_likelihoods(
        adapter,
        pairs,
        mc_num=mc_num,
        batch_size=batch_size,
        cfg_scale=cfg_scale,
        seed=seed,
        exact=exact,
        progress=progress,
        seed_on_answer=True,
    )
    out = []
    for lo, hi, n_tokens in spans:
        part = estimates[lo:hi]
        out.append(
            Estimate(
                sum(float(e) for e in part),
                math.sqrt(sum(e.stderr**2 for e in part)),
                n_tokens=n_tokens,
                samples=sum(e.samples for e in part),
                exact=exact,
            )
        )
    return out


def rolling_log_likelihood(adapter: Any, ids: Sequence[int], **kwargs: Any) -> Estimate:
    """:func:`rolling_log_likelihoods` of one document."""
    return rolling_log_likelihoods(adapter, [ids], **kwargs)[0]
