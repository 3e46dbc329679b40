"""The ELBO of ``log p(answer | prompt)`` under a masked diffusion model, Monte-Carlo or exact.

For an answer of ``L`` tokens after a prompt, a masked diffusion model bounds the
log-likelihood from below by

    ELBO = - E_{l ~ U{1..L}} E_{S ~ U(subsets of size l)} [ (L / l) * sum_{i in S} CE_i(S) ]

where ``CE_i(S)`` is the cross-entropy of answer token ``i`` predicted from the sequence
whose answer slots ``S`` are masked (the prompt is never masked). This is the estimator of
LLaDA's ``get_log_likelihood``:

* Monte-Carlo (``mc_num`` samples in mini-batches of ``batch_size`` rows): per mini-batch
  one masking count ``k`` is drawn and spread evenly over the rows (row ``i`` masks
  ``((k - 1 + round(i * L / batch_size)) mod L) + 1`` slots), each row at uniformly random
  positions; the estimate is minus the mean of the rows' masked cross-entropy divided by
  their masking ratio. The offsets are computed in integers (halves rounded up) so every
  row's count is exactly uniform on ``1..L`` and the estimator is unbiased for the ELBO
  (the reference rounds a float ``linspace`` half-to-even, which skews the counts a little
  when ``i * L / batch_size`` ends in one half).
* Exact (``exact=True``, answers of at most :data:`EXACT_MAX_TOKENS` tokens): every
  non-empty subset of answer slots is one row, weighted ``1 / (l * C(L, l))`` by its size
  ``l``, so the expectation above is computed without sampling.
* Classifier-free guidance (``cfg_scale > 0``): each row is also run with the whole prompt
  masked, and the logits are ``uncond + (cfg_scale + 1) * (cond - uncond)``.

The batched :func:`log_likelihoods` packs the rows of many ``(prompt, answer)`` pairs into
shared forward calls and runs each distinct row once. Pairs with the same prompt draw the
same random numbers (common random numbers: their masks coincide when their answers have
the same length), which makes the comparison of multiple-choice answers less noisy and
lets their identical rows (all answer slots masked, for instance) share one forward row.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from daedal.core.errors import ConfigError

__all__ = [
    "EXACT_MAX_TOKENS",
    "Estimate",
    "log_likelihood",
    "log_likelihoods",
    "masking_counts",
]

#: Longest answer ``exact=True`` accepts: ``2**12 - 1 = 4095`` rows per answer.
EXACT_MAX_TOKENS = 12


class Estimate(float):
    """A log-likelihood estimate: a float carrying its Monte-Carlo standard error.

    Attributes:
        value: The estimate (also the float's own value).
        stderr: Standard error of the estimate: the spread of its Monte-Carlo rows over
            the square root of their number (0 for exact values; NaN for a single sample).
        n_tokens: Tokens scored (the answer's length).
        samples: Rows the estimate averages (Monte-Carlo samples, or subsets when exact).
        exact: Whether the value was computed by enumeration.
    """

    stderr: float
    n_tokens: int
    samples: int
    exact: bool

    def __new__(
        cls, value: float, stderr: float = 0.0, *, n_tokens: int = 0, samples: int = 0, exact: bool = False
    ) -> Estimate:
        obj = super().__new__(cls, value)
        obj.stderr = float(stderr)
        obj.n_tokens = int(n_tokens)
        obj.samples = int(samples)
        obj.exact = bool(exact)
        return obj

    @property
    def value(self) -> float:
        return float(self)

    def __repr__(self) -> str:
        kind = "exact" if self.exact else f"mc_num={self.samples}"
        return f"Estimate({float(self)!r}, stderr={self.stderr!r}, n_tokens={self.n_tokens}, {kind})"

    def __reduce__(self) -> Any:
        return (_rebuild, (float(self), self.stderr, self.n_tokens, self.samples, self.exact))


def _rebuild(value: float, stderr: float, n_tokens: int, samples: int, exact: bool) -> Estimate:
    return Estimate(value, stderr, n_tokens=n_tokens, samples=samples, exact=exact)


# -- validation ------------------------------------------------------------------------------


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"`{name}` must be a positive int, got {value!r}")
    return value


def check_settings(mc_num: Any, batch_size: Any, cfg_scale: Any, seed: Any) -> None:
    """Validate the estimator's settings (shared by every entry point)."""
    _positive_int("mc_num", mc_num)
    _positive_int("batch_size", batch_size)
    if mc_num % batch_size:
        raise ConfigError(
            f"`mc_num` must be a positive multiple of `batch_size` (mini-batches of equal size), got "
            f"mc_num={mc_num} with batch_size={batch_size}: pass e.g. mc_num={batch_size * max(1, round(mc_num / batch_size))}"
        )
    if (
        isinstance(cfg_scale, bool)
        or not isinstance(cfg_scale, (int, float))
        or not math.isfinite(cfg_scale)
        or cfg_scale < 0
    ):
        raise ConfigError(f"`cfg_scale` must be a finite number >= 0 (0 disables guidance), got {cfg_scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"`seed` must be a non-negative int, got {seed!r}")


def _ids(name: str, ids: Any) -> list[int]:
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise ConfigError(f"`{name}` must be a 1-D sequence of token ids, got a tensor of shape {tuple(ids.shape)}")
        return [int(v) for v in ids.tolist()]
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise ConfigError(
            f"`{name}` must be a sequence of token ids (encode text with adapter.encode), got {ids!r:.80}"
        )
    out = list(ids)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in out):
        raise ConfigError(f"`{name}` must hold int token ids, got {out!r:.80}")
    return out


def check_pair(
    adapter: Any, prompt_ids: Any, answer_ids: Any, *, exact: bool = False, where: str = ""
) -> tuple[list[int], list[int]]:
    """Token lists of one ``(prompt, answer)`` pair, checked against the adapter.

    Raises:
        ConfigError: Empty or too long answer, ids outside the vocabulary or equal to the
            mask id, prompt and answer longer together than the model accepts, or
            ``exact=True`` on an answer longer than :data:`EXACT_MAX_TOKENS`.
    """
    prompt = _ids(f"prompt_ids{where}", prompt_ids)
    answer = _ids(f"answer_ids{where}", answer_ids)
    max_length = int(getattr(adapter, "max_length", 1 << 30))
    if not answer:
        raise ConfigError(f"`answer_ids{where}` is empty: a log-likelihood needs at least one answer token")
    if len(answer) > max_length:
        raise ConfigError(
            f"`answer_ids{where}` has {len(answer)} tokens but the model accepts at most max_length={max_length}: "
            "score it in windows (rolling_log_likelihood) or shorten it"
        )
    if len(prompt) + len(answer) > max_length:
        raise ConfigError(
            f"`prompt_ids{where}` ({len(prompt)} tokens) and the answer ({len(answer)}) exceed the model's "
            f"max_length={max_length}: cut the prompt from the left to {max_length - len(answer)} tokens"
        )
    vocab, mask_id = int(adapter.vocab_size), int(adapter.mask_id)
    for name, ids in ((f"prompt_ids{where}", prompt), (f"answer_ids{where}", answer)):
        bad = [v for v in ids if not 0 <= v < vocab]
        if bad:
            raise ConfigError(f"`{name}` holds ids outside the vocabulary [0, {vocab}): {bad[:5]}")
    if mask_id in answer:
        raise ConfigError(f"`answer_ids{where}` contains the mask id {mask_id}: an answer is made of real tokens")
    if exact and len(answer) > EXACT_MAX_TOKENS:
        raise ConfigError(
            f"`exact=True` enumerates 2**L - 1 mask subsets and accepts answers of at most {EXACT_MAX_TOKENS} "
            f"tokens, but `answer_ids{where}` has {len(answer)}: use exact=False (Monte-Carlo, mc_num samples)"
        )
    return prompt, answer


# -- the sampling plan -----------------------------------------------------------------------


def pair_seed(seed: int, prompt: Sequence[int]) -> int:
    """The seed of one pair's random numbers: a function of ``seed`` and the prompt only.

    Answers to the same prompt therefore draw the same numbers (common random numbers),
    and an estimate does not depend on which other pairs are scored with it.
    """
    digest = hashlib.blake2b(f"{seed}|{','.join(map(str, prompt))}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def masking_counts(k: torch.Tensor, answer_len: int, batch_size: int) -> torch.Tensor:
    """Masked slots of each row of the mini-batches whose first row masks ``k`` slots.

    Row ``i`` masks ``((k - 1 + round(i * L / batch_size)) mod L) + 1`` slots (halves rounded
    up, in integer arithmetic), so the counts of one mini-batch are spread evenly over
    ``1..L`` and, ``k`` being uniform, each row's count is uniform.

    Args:
        k: ``[M]`` first-row counts in ``1..L``.
        answer_len: ``L``.
        batch_size: Rows per mini-batch.

    Returns:
        ``[M, batch_size]`` counts in ``1..L``.
    """
    i = torch.arange(batch_size, dtype=torch.long)
    offset = (2 * i * answer_len + batch_size) // (2 * batch_size)
    return (k.long()[:, None] - 1 + offset[None, :]) % answer_len + 1


class _Plan:
    """The rows of one pair: which answer slots each masks and its weight in the estimate."""

    __slots__ = ("prompt", "answer", "masks", "weights", "exact")

    def __init__(
        self, prompt: list[int], answer: list[int], masks: torch.Tensor, weights: torch.Tensor, exact: bool
    ) -> None:
        self.prompt, self.answer = prompt, answer
        self.masks, self.weights, self.exact = masks, weights, exact


def _monte_carlo_plan(
    prompt: list[int], answer: list[int], mc_num: int, batch_size: int, seed: int, seed_on_answer: bool = False
) -> _Plan:
    L = len(answer)
    n_batches = mc_num // batch_size
    gen = torch.Generator().manual_seed(pair_seed(seed, [*prompt, -1, *answer] if seed_on_answer else prompt))
    k = torch.randint(1, L + 1, (n_batches,), generator=gen)
    counts = masking_counts(k, L, batch_size).reshape(-1)  # [mc_num]
    # A uniformly random subset of size c: the c slots with the smallest uniform keys.
    keys = torch.rand(mc_num, L, generator=gen)
    ranks = keys.argsort(dim=1).argsort(dim=1)
    masks = ranks < counts[:, None]
    weights = (L / counts.double()) / mc_num
    return _Plan(prompt, answer, masks, weights, exact=False)


def _exact_plan(prompt: list[int], answer: list[int]) -> _Plan:
    L = len(answer)
    subsets = torch.arange(1, 1 << L, dtype=torch.long)
    masks = ((subsets[:, None] >> torch.arange(L)) & 1).bool()
    sizes = masks.sum(1)
    # E_l E_{|S|=l} (L/l) sum_S CE, with l uniform on 1..L: weight 1/(l * C(L, l)) per subset.
    comb = torch.tensor([math.comb(L, s) for s in range(L + 1)], dtype=torch.float64)
    weights = 1.0 / (sizes.double() * comb[sizes])
    return _Plan(prompt, answer, masks, weights, exact=True)


# -- forward passes --------------------------------------------------------------------------


def _row_tokens(plan: _Plan, mask_id: int) -> torch.Tensor:
    answer = torch.tensor(plan.answer, dtype=torch.long)
    noisy = torch.where(plan.masks, torch.full_like(answer, mask_id), answer)
    prompt = torch.tensor(plan.prompt, dtype=torch.long).expand(len(noisy), -1)
    return torch.cat((prompt, noisy), dim=1)


def guide(cond: torch.Tensor, uncond: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """Classifier-free guidance ``uncond + (cfg_scale + 1) * (cond - uncond)``.

    A token ruled out (``-inf``) by both logits stays ruled out instead of becoming NaN.
    """
    out = uncond + (cfg_scale + 1) * (cond - uncond)
    return torch.where(torch.isneginf(cond) & torch.isneginf(uncond), cond, out)


def _masked_cross_entropy(
    adapter: Any,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    starts: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    cfg_scale: float,
) -> torch.Tensor:
    """Sum over each row's masked answer slots of the cross-entropy of its target token.

    Identical rows (same tokens, length and prompt length) run through the model once;
    their logits serve every row's own targets.

    Args:
        tokens: ``[R, T]`` noisy rows, right-padded.
        lengths: ``[R]`` valid lengths.
        starts: ``[R]`` first answer column (the prompt length).
        targets: ``[R, A]`` answer tokens (padded past each answer).
        masked: ``[R, A]`` which answer slots are masked (False on padding).
        cfg_scale: Guidance scale; > 0 adds rows with the prompt masked.

    Returns:
        ``[R]`` float64 sums.
    """
    key = torch.cat((tokens, lengths[:, None], starts[:, None]), dim=1)
    distinct, inverse = torch.unique(key, dim=0, return_inverse=True)
    d_tokens, d_lengths, d_starts = distinct[:, :-2], distinct[:, -2], distinct[:, -1]
    device = adapter.device
    if cfg_scale > 0:
        in_prompt = torch.arange(d_tokens.shape[1])[None, :] < d_starts[:, None]
        uncond = d_tokens.masked_fill(in_prompt, int(adapter.mask_id))
        batch, batch_len = torch.cat((d_tokens, uncond)), torch.cat((d_lengths, d_lengths))
    else:
        batch, batch_len = d_tokens, d_lengths
    logits = adapter.logits(batch.to(device), batch_len.to(device))
    # Read the answer slots of the distinct rows only, then each row's own target tokens.
    cols = torch.arange(targets.shape[1])
    answer_cols = (d_starts[:, None] + cols[None, :]).clamp(max=tokens.shape[1] - 1).to(logits.device)

    def pick(block: torch.Tensor) -> torch.Tensor:  # [D, T, V] -> [D, A, V] at the answer slots
        return block.gather(1, answer_cols[:, :, None].expand(-1, -1, block.shape[-1])).float()

    if cfg_scale > 0:
        cond_logits, uncond_logits = logits.chunk(2)
        picked = guide(pick(cond_logits), pick(uncond_logits), cfg_scale)
    else:
        picked = pick(logits)
    logp = torch.log_softmax(picked, dim=-1)
    inv = inverse.to(logp.device)
    nll = -logp[inv[:, None], cols.to(logp.device)[None, :], targets.to(logp.device)]  # [R, A]
    return torch.where(masked.to(nll.device), nll.double(), 0.0).sum(1).cpu()


def _run_rows(
    adapter: Any,
    plans: Sequence[_Plan],
    *,
    rows_per_forward: int,
    cfg_scale: float,
    advance: Callable[[int], None],
) -> list[torch.Tensor]:
    """Per-row masked cross-entropy sums of every plan, distinct rows computed once."""
    mask_id = int(adapter.mask_id)
    pad_id = int(getattr(adapter, "pad_id", 0))
    # Flatten (plan, row) into one list: plans with equal prompts sit next to each other (their
    # shared rows then meet in one forward call), shorter prompts first (less padding).
    order = sorted(range(len(plans)), key=lambda j: (len(plans[j].prompt), plans[j].prompt, len(plans[j].answer)))
    row_plan = torch.cat([torch.full((len(plans[j].weights),), j, dtype=torch.long) for j in order])
    row_index = torch.cat([torch.arange(len(plans[j].weights)) for j in order])
    out = [torch.empty(len(p.weights), dtype=torch.float64) for p in plans]
    cache: dict[int, torch.Tensor] = {}
    for start in range(0, len(row_plan), rows_per_forward):
        chunk_plan = row_plan[start : start + rows_per_forward]
        chunk_row = row_index[start : start + rows_per_forward]
        members = torch.unique_consecutive(chunk_plan).tolist()
        width = max(len(plans[j].prompt) + len(plans[j].answer) for j in members)
        a_width = max(len(plans[j].answer) for j in members)
        pieces, lens, starts, targets, masked = [], [], [], [], []
        for j in members:
            plan = plans[j]
            rows = chunk_row[chunk_plan == j]
            if j not in cache:
                cache.clear()  # plans are visited in order: only the current one is needed again
                cache[j] = _row_tokens(plan, mask_id)
            toks = cache[j][rows]
            pieces.append(torch.nn.functional.pad(toks, (0, width - toks.shape[1]), value=pad_id))
            lens.append(torch.full((len(rows),), toks.shape[1], dtype=torch.long))
            starts.append(torch.full((len(rows),), len(plan.prompt), dtype=torch.long))
            answer = torch.tensor(plan.answer, dtype=torch.long)
            targets.append(torch.nn.functional.pad(answer, (0, a_width - len(answer)), value=0).expand(len(rows), -1))
            masked.append(torch.nn.functional.pad(plan.masks[rows], (0, a_width - len(answer)), value=False))
        tokens, lengths = torch.cat(pieces), torch.cat(lens)
        starts_t, targets_t, masked_t = torch.cat(starts), torch.cat(targets), torch.cat(masked)
        sums = _masked_cross_entropy(adapter, tokens, lengths, starts_t, targets_t, masked_t, cfg_scale)
        for j in members:
            sel = chunk_plan == j
            out[j][chunk_row[sel]] = sums[sel]
        advance(len(chunk_plan))
    return out


def _finish(plan: _Plan, sums: torch.Tensor) -> Estimate:
    value = -float((plan.weights * sums).sum())
    L = len(plan.answer)
    if plan.exact:
        return Estimate(value, 0.0, n_tokens=L, samples=len(sums), exact=True)
    # The spread of the rows, taken as independent (ignoring what the stratification saves):
    # unlike the spread of a few mini-batch means, it is itself a stable estimate.
    per_row = sums * (L / plan.masks.sum(1).double())
    stderr = float(per_row.std(unbiased=True)) / math.sqrt(len(per_row)) if len(per_row) >= 2 else float("nan")
    return Estimate(value, stderr, n_tokens=L, samples=len(sums), exact=False)


def _progress_bar(enabled: bool, total: int, label: str) -> Any:
    """A rich progress bar over rows (a no-op context when disabled)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext(lambda n: None)

    @contextlib.contextmanager
    def bar() -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        progress.start()
        task = progress.add_task(label, total=total)
        try:
            yield lambda n: progress.advance(task, n)
        finally:
            progress.stop()

    return bar()


#: Rows (forward-pass work) above which ``progress=None`` shows a bar.
PROGRESS_MIN_ROWS = 4096


def log_likelihoods(
    adapter: Any,
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    mc_num: int = 128,
    batch_size: int = 32,
    cfg_scale: float = 0.0,
    seed: int = 0,
    exact: bool = False,
    rows_per_forward: int | None = None,
    progress: bool | None = None,
    seed_on_answer: bool = False,
) -> list[Estimate]:
    """The ELBO of many ``(prompt_ids, answer_ids)`` pairs, sharing forward passes.

    Every pair's rows (``mc_num`` Monte-Carlo samples, or every mask subset when
    ``exact``) are packed into forward calls of ``rows_per_forward`` rows; a row that
    several pairs share (same prompt, same visible answer tokens) is computed once. Each
    estimate equals what :func:`log_likelihood` returns for its pair alone (up to float
    rounding of the packed forward).

    Args:
        adapter: Any :class:`~daedal.core.ModelAdapter` (only ``logits`` is called).
        pairs: ``(prompt_ids, answer_ids)`` token lists (or 1-D tensors).
        mc_num: Monte-Carlo samples per pair, a multiple of ``batch_size``.
        batch_size: Rows of one stratified mini-batch (one masking count spread over them).
        cfg_scale: Classifier-free guidance scale (0: none).
        seed: Seed; a pair's samples depend only on it and the pair's prompt.
        exact: Enumerate every mask subset instead of sampling (answers of at most
            :data:`EXACT_MAX_TOKENS` tokens).
        rows_per_forward: Rows per forward call (default ``batch_size``; twice as many are
            run with guidance).
        progress: Show a progress bar (None: when the work exceeds :data:`PROGRESS_MIN_ROWS` rows).
        seed_on_answer: Seed each pair on its prompt and answer, so that pairs sharing a
            prompt draw independent numbers (perplexity windows; multiple choice wants the default).

    Returns:
        One :class:`Estimate` per pair, in order.
    """
    check_settings(mc_num, batch_size, cfg_scale, seed)
    if rows_per_forward is None:
        rows_per_forward = batch_size
    _positive_int("rows_per_forward", rows_per_forward)
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise ConfigError(f"`pairs` must be a list of (prompt_ids, answer_ids) pairs, got {pairs!r:.80}")
    plans = []
    for n, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ConfigError(f"`pairs[{n}]` must be a (prompt_ids, answer_ids) pair, got {pair!r:.80}")
        prompt, answer = check_pair(
            adapter, pair[0], pair[1], exact=exact, where=f" of pairs[{n}]" if len(pairs) > 1 else ""
        )
        plans.append(
            _exact_plan(prompt, answer)
            if exact
            else _monte_carlo_plan(prompt, answer, mc_num, batch_size, seed, seed_on_answer)
        )
    if not plans:
        return []
    total = sum(len(p.weights) for p in plans)
    show = total > PROGRESS_MIN_ROWS if progress is None else progress
    with _progress_bar(show, total, "log-likelihood rows") as advance:
        sums = _run_rows(adapter, plans, rows_per_forward=rows_per_forward, cfg_scale=float(cfg_scale), advance=advance)
    return [_finish(plan, s) for plan, s in zip(plans, sums, strict=True)]


def log_likelihood(
    adapter: Any,
    prompt_ids: Sequence[int],
    answer_ids: Sequence[int],
    *,
    mc_num: int = 128,
    batch_size: int = 32,
    cfg_scale: float = 0.0,
    seed: int = 0,
    exact: bool = False,
) -> Estimate:
    """The ELBO of ``log p(answer | prompt)``: LLaDA's estimator, or its exact value.

    Args:
        adapter: Any :class:`~daedal.core.ModelAdapter` (only ``logits`` is called).
        prompt_ids: Prompt token ids (never masked; may be empty).
        answer_ids: Answer token ids (at least one).
        mc_num: Monte-Carlo samples, a multiple of ``batch_size`` (LLaDA: 128; 1 for
            single-token answers such as MMLU's).
        batch_size: Rows per forward pass and per stratified mini-batch.
        cfg_scale: Classifier-free guidance scale (0: none); unconditional rows mask the prompt.
        seed: Same seed, same estimate.
        exact: Enumerate every mask subset (answers of at most :data:`EXACT_MAX_TOKENS` tokens).

    Returns:
        An :class:`Estimate`: a float (the log-likelihood bound, in nats) with ``.stderr``.

    Raises:
        ConfigError: Empty answer, prompt and answer longer than ``adapter.max_length``,
            ``mc_num`` not a positive multiple of ``batch_size``, ``exact`` on a long answer.
    """
    return log_likelihoods(
        adapter,
        [(prompt_ids, answer_ids)],
        mc_num=mc_num,
        batch_size=batch_size,
        cfg_scale=cfg_scale,
        seed=seed,
        exact=exact,
        progress=False,
    )[0]
