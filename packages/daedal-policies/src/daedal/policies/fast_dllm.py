"""Fast-dLLM's parallel decoding (reference semantics c.1): several tokens per step inside a block.

Blocks are decoded in order (the :class:`~daedal.policies.BlockPointer` window); in the
current block every step commits

* ``threshold``: the most confident masked slot, plus every other masked slot with
  confidence ``>= threshold``;
* ``factor``: with the masked slots' confidences sorted, ``c_0 >= c_1 >= ...``, the first
  ``n`` slots, where ``n`` is the first index ``j >= 1`` with ``c_j < 1 - factor / (j + 2)``
  -- except that a first failure at the last slot, or none, commits every slot (the
  reference's loop bound, kept as is).

Confidences are softmax probabilities in fp64 as in the reference; proposals may come from
a Gumbel temperature wrapper. A block takes as many steps as it needs, so the forward-pass
count is data-dependent. Ties go to the lowest column. ``FastDllm(cache="prefix" | "dual")``
adds Fast-dLLM's KV caches (c.2, c.3; :mod:`daedal.policies.cache`).
"""

from __future__ import annotations

import attrs
import torch

from daedal.core import ConfigError, FixedLength, GumbelTemperature, Prediction, State, Unmask, hookimpl
from daedal.policies._bundle import from_part, part_kwargs
from daedal.policies._validate import optional, positive, unit_interval
from daedal.policies.unmask import BlockPointer, first_true, masked_in_window


def _ranks(score: torch.Tensor) -> torch.Tensor:
    """Rank of each column by descending score (0 = best; ties: lowest column first)."""
    order = torch.sort(score, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return ranks


def fp64_confidence(prediction: Prediction) -> torch.Tensor:
    """``[B, T]`` fp64 softmax probability of each proposal, as Fast-dLLM computes it (NaN where not computed)."""
    logits = prediction.values.double()
    proposed = prediction.gather(prediction.tokens).clamp(min=0)
    picked = logits.gather(-1, proposed.unsqueeze(-1)).squeeze(-1)
    return prediction.scatter(torch.exp(picked - torch.logsumexp(logits, -1)), float("nan"))


@attrs.frozen(kw_only=True)
class ParallelUnmask:
    """Fast-dLLM's confidence-threshold or factor-based parallel unmasking within the window.

    Attributes:
        threshold: Commit every slot with confidence ``>= threshold`` (and always the best one).
        factor: Factor-based rule instead (see the module); set exactly one of the two.
    """

    threshold: float | None = attrs.field(default=0.9, validator=optional(unit_interval))
    factor: float | None = attrs.field(default=None, validator=optional(positive))

    def __attrs_post_init__(self) -> None:
        if (self.threshold is None) == (self.factor is None):
            raise ConfigError(
                f"set exactly one of `threshold` ({self.threshold!r}) and `factor` ({self.factor!r}): "
                "e.g. threshold=0.9, or factor=1.0 with threshold=None"
            )

    @hookimpl
    def prediction_reads(self, state: State) -> torch.Tensor:
        return masked_in_window(state)

    @hookimpl
    def select_unmask(self, state: State, prediction: Prediction) -> Unmask:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        candidates = masked_in_window(state)
        conf = fp64_confidence(prediction)
        score = conf.masked_fill(~candidates, float("-inf"))
        ranks = _ranks(score)
        if self.threshold is not None:
            where = candidates & ((ranks == 0) | (conf >= self.threshold))
        else:
            ordered = torch.sort(score, dim=1, descending=True, stable=True).values
            index = torch.arange(ordered.shape[1], device=ordered.device)
            count = candidates.sum(1)
            assert self.factor is not None  # checked in __attrs_post_init__
            bar = 1 - self.factor / (index + 2).double()
            fails = (index >= 1) & (index < count[:, None]) & (ordered < bar)
            first = first_true(fails)
            n = torch.where(first >= count - 1, count, first)
            where = candidates & (ranks < n[:, None])
        # The engine's proposals are never the mask id: every selected slot is committed.
        return Unmask(where=where, tokens=prediction.tokens)


@attrs.frozen(kw_only=True)
class FastDllm:
    """Fast-dLLM's ``generate(gen_length, block_length, temperature, threshold, factor)`` without caches.

    Attributes:
        gen_length: Generation slots per row.
        block_length: Block size (must divide ``gen_length``).
        threshold: Confidence threshold (default 0.9); None when ``factor`` is used.
        factor: Factor of the factor-based rule (None: threshold rule).
        temperature: Gumbel-max temperature (fp64 noise, as the reference).
        cache: None, ``"prefix"`` or ``"dual"``: ``generate_with_prefix_cache`` /
            ``generate_with_dual_cache`` (see :mod:`daedal.policies.cache`).
    """

    # Each field is the part's own (default and validator): see daedal.policies._bundle.
    gen_length: int = from_part(FixedLength, "gen_length", default=256)
    block_length: int = from_part(BlockPointer, "block_length")
    threshold: float | None = from_part(ParallelUnmask, "threshold")
    factor: float | None = from_part(ParallelUnmask, "factor")
    temperature: float = from_part(GumbelTemperature, "temperature")
    cache: str | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        from daedal.policies.cache import check_cache

        check_cache(self, attrs.fields(FastDllm).cache, self.cache)
        if self.gen_length % self.block_length:
            raise ConfigError(
                f"`block_length` {self.block_length} does not divide `gen_length` {self.gen_length}: "
                "choose a block length that divides the generation length"
            )
        self.parts()

    def parts(self) -> list[object]:
        """The policies this bundle stands for."""
        parts: list[object] = [FixedLength(**part_kwargs(self, FixedLength))]
        if self.cache is None:
            parts += [
                BlockPointer(**part_kwargs(self, BlockPointer)),
                ParallelUnmask(**part_kwargs(self, ParallelUnmask)),
            ]
        else:
            from daedal.policies.cache import CachedBlocks, CachedParallelUnmask, KVCache

            parts += [
                CachedBlocks(**part_kwargs(self, BlockPointer)),
                CachedParallelUnmask(**part_kwargs(self, ParallelUnmask)),
                KVCache(kind=self.cache),
            ]
        if self.temperature > 0:
            parts.append(GumbelTemperature(**part_kwargs(self, GumbelTemperature), precision="float64"))
        return parts
