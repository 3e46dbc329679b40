"""KV caches (Fast-dLLM's prefix and dual caches, reference semantics c.2) as policies.

:class:`KVCache` asks the engine for a cached model session. The session treats each
step's window as the block: when a row's window moves to a new block the row gets one full
forward pass (which also refills the cache), and later steps of the block feed only the
block and the suffix (``"prefix"``) or only the block (``"dual"``), attending to cached
keys and values for the rest. The cached entries are frozen for the block even though,
under bidirectional attention, they would change as the block fills: that is the
approximation, and its cost in accuracy is what ``benchmarks/bench_session.py cache``
reports.

The decoders' ``cache=`` option adds this policy, and for LLaDA's and Fast-dLLM's
decoders also the block loop of Fast-dLLM's ``generate_with_prefix_cache`` /
``generate_with_dual_cache``: each block runs until it holds no mask
(:class:`BlockQuotaUnmask` keeps LLaDA's per-block transfer schedule), and a block whose
first, full step commits every mask still gets one more (cached, idle) forward pass, as
the reference's loop does (:class:`CachedBlocks`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import attrs
import torch

from daedal.core import Prediction, StashKey, State, Unmask, Window, hookimpl
from daedal.core.defaults import HOLD_STOP, top_k_unmask
from daedal.core.hookspecs import IDLE_STEPS
from daedal.policies._validate import int_at_least, one_of
from daedal.policies.fast_dllm import ParallelUnmask, fp64_confidence
from daedal.policies.unmask import BlockPointer, masked_in_window

#: Cache strategies (None: no cache).
CACHE_KINDS = ("prefix", "dual")

_BLOCK = StashKey[torch.Tensor]()  # [B] window start of each row's current block
_STEPS = StashKey[torch.Tensor]()  # [B] steps taken in it
_MASKS = StashKey[torch.Tensor]()  # [B] masks it held at its first step


def check_cache(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """attrs validator: None, ``"prefix"`` or ``"dual"``."""
    if value is not None and value not in CACHE_KINDS:
        from daedal.core import ConfigError

        raise ConfigError(f"`{attribute.name}` must be None, 'prefix' or 'dual', got {value!r}")


@attrs.frozen(kw_only=True)
class KVCache:
    """Run the model session with a KV cache.

    Attributes:
        kind: ``"prefix"`` (cache the columns before the block) or ``"dual"`` (cache the
            prefix and the suffix; feed only the block).
    """

    kind: str = attrs.field(default="dual", validator=one_of(*CACHE_KINDS))

    @hookimpl
    def select_cache(self, state: State) -> str:
        return self.kind


def _track(state: State, window: Window) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: whether this step starts a block, and the steps already taken in it (rows without a window keep theirs)."""
    block = state.stash.get(_BLOCK)
    steps = state.stash.get(_STEPS)
    active = window.end > window.start
    if block is None or steps is None or block.shape != window.start.shape:
        block = window.start.clone()
        new = active
        steps = torch.zeros_like(window.start)
    else:
        new = active & (window.start != block)
        steps = torch.where(new, 0, steps)
    state.stash[_BLOCK] = torch.where(active, window.start, block)
    state.stash[_STEPS] = steps + active.long()
    return new, steps


@attrs.frozen(kw_only=True)
class CachedBlocks:
    """Fast-dLLM's cached block loop: the first block holding a mask, one extra step after a one-step block.

    In the reference's cached loops the block's first step is a full forward pass and the
    loop then runs cached steps until the block holds no mask -- at least one. A block
    filled by its first step therefore costs one more, idle, forward pass; this window
    policy keeps such a row on its filled block for that step (and holds the run open if it
    is the last block).

    Attributes:
        block_length: Slots per block.
    """

    block_length: int = attrs.field(default=32, validator=int_at_least(1))

    @hookimpl
    def select_window(self, state: State) -> Window:
        canvas = state.canvas
        assert canvas is not None
        window = BlockPointer(block_length=self.block_length).select_window(state)
        block, steps = state.stash.get(_BLOCK), state.stash.get(_STEPS)
        if block is not None and steps is not None and block.shape == window.start.shape:
            # A row whose block was filled by its single (full) step stays on it for one idle step.
            owes = (steps == 1) & (window.start != block)
            end = torch.minimum(block + self.block_length, canvas.length)
            window = Window(start=torch.where(owes, block, window.start), end=torch.where(owes, end, window.end))
        _track(state, window)
        return window

    @hookimpl
    def on_event(self, event: object, state: State) -> None:
        if getattr(event, "kind", None) != "step-finished":
            return
        after = event.after  # type: ignore[attr-defined]
        steps = state.stash.get(_STEPS)
        if steps is None:
            return
        # The run may not end while a row still owes the idle step of a one-step block.
        state.stash[HOLD_STOP] = bool(((steps == 1) & ~after.masked.any(1)).any())


@attrs.frozen(kw_only=True)
class CachedParallelUnmask(ParallelUnmask):
    """:class:`~daedal.policies.ParallelUnmask` allowing the idle steps of :class:`CachedBlocks`."""

    daedal_capabilities: ClassVar[frozenset[str]] = frozenset({IDLE_STEPS})


@attrs.frozen(kw_only=True)
class BlockQuotaUnmask:
    """LLaDA's transfer schedule inside each row's block, the block ending when it holds no mask.

    At a block's first step its masks are counted (``M``); step ``s`` of the block commits
    ``M // S + (s < M % S)`` of its masked slots (``S`` = ``steps_per_block``), the most
    confident first (``low_confidence``) or in a random order (``random``), as
    ``generate_with_prefix_cache`` / ``generate_with_dual_cache`` do. Ties go to the lowest column.

    Attributes:
        steps_per_block: ``S``.
        remasking: ``"low_confidence"`` or ``"random"``.
    """

    daedal_capabilities: ClassVar[frozenset[str]] = frozenset({IDLE_STEPS})

    steps_per_block: int = attrs.field(default=32, validator=int_at_least(1))
    remasking: Literal["low_confidence", "random"] = attrs.field(
        default="low_confidence", validator=one_of("low_confidence", "random")
    )

    @hookimpl
    def prediction_reads(self, state: State) -> torch.Tensor:
        return masked_in_window(state)

    @hookimpl
    def select_unmask(self, state: State, prediction: Prediction) -> Unmask:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        candidates = masked_in_window(state)
        steps = state.stash.get(_STEPS)
        block = state.stash.get(_BLOCK)
        # CachedBlocks (or this policy, with another window) counts the steps of each block.
        if steps is None or block is None or not torch.equal(block, window.start):
            _, taken = _track(state, window)
        else:
            taken = steps - 1
        masks = state.stash.get(_MASKS)
        first = taken == 0
        count = candidates.sum(1)
        masks = count if masks is None or masks.shape != count.shape else torch.where(first, count, masks)
        state.stash[_MASKS] = masks
        s = self.steps_per_block
        quota = masks // s + (taken < masks % s).long()
        quota = torch.where(taken < s, quota, candidates.sum(1))  # past the schedule: whatever is left
        if self.remasking == "low_confidence":
            score = fp64_confidence(prediction)  # Fast-dLLM ranks by an fp64 softmax
        else:
            score = state.uniform(canvas.tokens.shape, batch=True)
        return top_k_unmask(score, candidates, quota, prediction.tokens, canvas.mask_id)


def cached_llada_parts(bundle: Any) -> list[object]:
    """``LLaDADecoding(cache=...)``: Fast-dLLM's cached block loop with LLaDA's per-block transfer schedule."""
    from daedal.core import FixedLength, GumbelTemperature
    from daedal.policies._bundle import part_kwargs
    from daedal.policies.padding import LeftPaddedFixedLength
    from daedal.policies.sampling import ClassifierFreeGuidance

    blocks = bundle.gen_length // bundle.block_length
    length = part_kwargs(bundle, FixedLength)
    baseline = bundle.reference_compat  # the DAEDAL repository's baseline: left-padded prompts, fp32 noise
    parts: list[object] = [
        LeftPaddedFixedLength(**length) if baseline else FixedLength(**length),
        CachedBlocks(block_length=bundle.block_length),
        BlockQuotaUnmask(steps_per_block=bundle.total_steps // blocks, remasking=bundle.remasking),
        KVCache(kind=bundle.cache),
    ]
    if bundle.temperature > 0:
        gumbel = part_kwargs(bundle, GumbelTemperature)
        precision = "float32" if baseline else "float64"
        parts.append(GumbelTemperature(**gumbel, precision=precision, streams=bundle.streams))
    if bundle.cfg_scale > 0:
        parts.append(ClassifierFreeGuidance(**part_kwargs(bundle, ClassifierFreeGuidance)))
    return parts
