"""The built-in policies: with only these, an engine decodes like LLaDA's ``generate``.

They are ordinary plugins. The engine registers each one last and drops it as a whole
when one of the user's policies answers one of its decision hooks, so a user policy
never has to share a hook with a default it replaces.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch

from daedal.core.canvas import Canvas, Unmask
from daedal.core.errors import ConfigError
from daedal.core.hookspecs import IDLE_STEPS, KEEPS_MASK_PROPOSALS, hookimpl
from daedal.core.prediction import Prediction
from daedal.core.state import StashKey, State
from daedal.core.window import Window


def positive_int(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """attrs validator: an int > 0, with an error that names the field."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"`{attribute.name}` must be a positive int, got {value!r}")


def non_negative_float(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """attrs validator: a finite real number >= 0 (NaN and infinity refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ConfigError(f"`{attribute.name}` must be a finite number >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class FixedLength:
    """Start every row as its prompt followed by ``gen_length`` masks.

    Attributes:
        gen_length: Generation slots per row.
        max_gen_length: Generation slots a row may grow to through expansions (default: ``gen_length``).
    """

    gen_length: int = attrs.field(default=128, validator=positive_int)
    max_gen_length: int | None = attrs.field(default=None)

    @max_gen_length.validator
    def _check_max(self, attribute: attrs.Attribute, value: int | None) -> None:
        if value is not None:
            positive_int(self, attribute, value)
            if value < self.gen_length:
                raise ConfigError(
                    f"`max_gen_length` {value} is smaller than `gen_length` {self.gen_length}: raise it or omit it"
                )

    @hookimpl
    def initial_canvas(self, state: State) -> Canvas:
        a = state.adapter
        plen = torch.tensor([len(p) for p in state.prompts])
        return Canvas.from_prompts(
            state.prompts,
            gen_length=self.gen_length,
            mask_id=a.mask_id,
            pad_id=a.pad_id,
            max_length=plen + (self.max_gen_length or self.gen_length),
            device=a.device,
        )


_BLOCK_MASKS = StashKey[torch.Tensor]()
_SCHEDULE = StashKey["_Schedule"]()


def _optional_positive_int(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None:
        positive_int(_inst, attribute, value)


@attrs.frozen
class _Schedule:
    block_length: int | None  # None: one block over each row's whole generation (a re-plan)
    steps: int
    per_block: int
    first_step: int = 0
    reshaping_steps: int = 0  # the engine's count of reshaping steps when the plan was made

    @property
    def end(self) -> int:
        return self.first_step + self.steps


@attrs.frozen(kw_only=True)
class SemiAutoregressive:
    """LLaDA's block-wise decoding with its linear transfer schedule.

    The generation region is cut into blocks of ``block_length``; each block gets
    ``steps / (gen_length / block_length)`` steps. At a block's first step the masks in the
    block are counted (``M``); step ``s`` of the block commits ``M // S + (s < M % S)``
    positions, the most confident first (``low_confidence``) or in a random order
    (``random``). Masked slots of earlier blocks stay candidates, as in the reference.
    Confidence ties go to the lowest column.

    Mask proposals: with ``mask_proposals="keep-masked"`` (LLaDA's ``generate``) a selected
    slot whose proposal is the mask id stays masked, so a run may end with masks (the
    engine reports them in ``result.stats.masks_left``); with ``"next-best"`` (the engine's
    built-in decoder) the slot takes the engine's proposal, the most likely other id.

    Re-planning: the schedule is made from the canvas at the first step. When its steps
    are used up, masks are left, and an ``Expand`` or ``Remask`` changed the canvas since
    the plan was made, it makes a new plan over the current canvas: one block over each
    row's whole generation, with one step per mask of the row that has the most. So a
    decoder of this class never ends early because another policy changed the canvas.

    Attributes:
        block_length: Slots per block; None for one block over the whole generation.
        steps: Steps in total over all blocks; None for one step per generation slot.
        remasking: ``"low_confidence"`` or ``"random"``.
        mask_proposals: ``"keep-masked"`` (the reference) or ``"next-best"``.
        streams: Where random remasking draws: ``"batch"`` (the reference's draws over the
            batch tensor) or ``"rows"`` (per-row streams: a row's order does not depend on its
            batch); see :mod:`daedal.core.streams`.
    """

    block_length: int | None = attrs.field(default=None, validator=_optional_positive_int)
    steps: int | None = attrs.field(default=None, validator=_optional_positive_int)
    remasking: Literal["low_confidence", "random"] = attrs.field(default="low_confidence")
    mask_proposals: Literal["keep-masked", "next-best"] = attrs.field(default="keep-masked")
    streams: Literal["batch", "rows"] = attrs.field(default="batch")

    @streams.validator
    def _check_streams(self, attribute: attrs.Attribute, value: str) -> None:
        check_streams(self, attribute, value)

    @mask_proposals.validator
    def _check_mask_proposals(self, _attribute: attrs.Attribute, value: str) -> None:
        if value not in ("keep-masked", "next-best"):
            raise ConfigError(f"`mask_proposals` must be 'keep-masked' or 'next-best', got {value!r}")

    @property
    def daedal_capabilities(self) -> frozenset[str]:
        """Idle steps (zero quotas, as in the reference); mask proposals kept masked in the reference mode."""
        if self.mask_proposals == "keep-masked":
            return frozenset({IDLE_STEPS, KEEPS_MASK_PROPOSALS})
        return frozenset({IDLE_STEPS})

    @remasking.validator
    def _check_remasking(self, _attribute: attrs.Attribute, value: str) -> None:
        if value not in ("low_confidence", "random"):
            raise ConfigError(f"`remasking` must be 'low_confidence' or 'random', got {value!r}")

    def schedule(self, canvas: Canvas) -> _Schedule:
        """Resolve and validate the block length and steps for this canvas."""
        gen = canvas.gen_length
        first = int(gen[0])
        if bool((gen != first).any()):
            raise ConfigError(
                f"`SemiAutoregressive` needs the same generation length in every row, got {gen.tolist()}: "
                "use FixedLength or a policy that brings its own window"
            )
        block_length = self.block_length or first
        steps = self.steps or first
        if first % block_length:
            raise ConfigError(
                f"`block_length` {block_length} does not divide the generation length {first}: "
                "choose a block length that divides it"
            )
        blocks = first // block_length
        if steps % blocks:
            raise ConfigError(
                f"`steps` {steps} is not a multiple of the number of blocks {blocks} "
                f"(gen_length {first} / block_length {block_length}): choose steps divisible by {blocks}"
            )
        return _Schedule(block_length, steps, steps // blocks)

    def _resolved(self, state: State) -> _Schedule:
        schedule = state.stash.get(_SCHEDULE)
        if schedule is None:
            assert state.canvas is not None  # the engine sets it before any step hook
            first = self.schedule(state.canvas)
            schedule = state.stash[_SCHEDULE] = attrs.evolve(first, reshaping_steps=state.counters.reshaping_steps)
        return schedule

    @hookimpl
    def should_stop(self, state: State) -> bool:
        schedule = self._resolved(state)
        if state.step < schedule.end:
            return False
        canvas = state.canvas
        assert canvas is not None
        if state.counters.reshaping_steps == schedule.reshaping_steps:
            return True  # the plan ran on the canvas it was made for: done, as in the reference
        masks = int(canvas.masked.sum(1).max())  # one sync, once per plan
        if masks == 0:
            return True
        state.stash[_SCHEDULE] = _Schedule(
            block_length=None,
            steps=masks,
            per_block=masks,
            first_step=state.step,
            reshaping_steps=state.counters.reshaping_steps,
        )
        return False

    @hookimpl
    def select_window(self, state: State) -> Window:
        canvas = state.canvas
        assert canvas is not None
        sched = self._resolved(state)
        if sched.block_length is None:
            return Window.whole(canvas.prompt_len, canvas.length)
        block = (state.step - sched.first_step) // sched.per_block
        return Window(start=canvas.prompt_len, end=canvas.prompt_len + (block + 1) * sched.block_length)

    @hookimpl
    def select_unmask(self, state: State, prediction: Prediction) -> Unmask:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        sched = self._resolved(state)
        masked = canvas.masked
        cols = canvas.columns
        s = (state.step - sched.first_step) % sched.per_block
        if s == 0:
            block_start = window.start if sched.block_length is None else window.end - sched.block_length
            in_block = (cols >= block_start[:, None]) & (cols < window.end[:, None])
            state.stash[_BLOCK_MASKS] = (masked & in_block).sum(1)
        m = state.stash[_BLOCK_MASKS]
        quota = m // sched.per_block + (s < m % sched.per_block).long()
        candidates = masked & (cols < window.end[:, None])
        # The reference ranks and commits its own proposals, the mask id included (such a slot
        # stays masked); "next-best" takes the engine's proposals, never the mask id.
        reference = self.mask_proposals == "keep-masked"
        tokens = prediction.raw_tokens if reference else prediction.tokens
        if self.remasking == "low_confidence":
            score = prediction.raw_confidence if reference else prediction.confidence
        else:
            score = state.uniform(canvas.tokens.shape, batch=self.streams == "batch")
        return top_k_unmask(score, candidates, quota, tokens, canvas.mask_id)


def top_k_unmask(
    score: torch.Tensor, candidates: torch.Tensor, k: torch.Tensor, tokens: torch.Tensor, mask_id: int
) -> Unmask:
    """Commit, per row, the ``k[b]`` highest-scoring candidates (ties: lowest column first).

    Selected positions whose proposed token is the mask id stay masked (committing the
    mask id would change nothing), as in LLaDA's reference.
    """
    score = score.masked_fill(~candidates, float("-inf"))
    order = torch.sort(score, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    where = (ranks < k[:, None]) & candidates & (tokens != mask_id)
    return Unmask(where=where, tokens=tokens)


@attrs.frozen(kw_only=True)
class GumbelTemperature:
    """Sample proposals with the Gumbel-max trick as LLaDA implements it.

    ``argmax(exp(logits) / (-log U) ** temperature)`` with ``U ~ Uniform(0, 1)`` drawn from
    the run's generator; confidences keep using the un-noised softmax. At temperature 0
    the proposals stay greedy.

    Attributes:
        temperature: Sampling temperature (finite, >= 0).
        precision: dtype of the noise arithmetic: ``"float64"`` (LLaDA) or ``"float32"`` (DAEDAL).
        streams: Where the noise comes from: ``"batch"`` (the references' draws over the
            ``[B, T, V]`` tensor) or ``"rows"`` (per-row streams: a row samples the same
            tokens in any batch); see :mod:`daedal.core.streams`.
    """

    temperature: float = attrs.field(default=0.0, validator=non_negative_float)
    precision: Literal["float64", "float32"] = attrs.field(default="float64")
    streams: Literal["batch", "rows"] = attrs.field(default="batch")

    @streams.validator
    def _check_streams(self, attribute: attrs.Attribute, value: str) -> None:
        check_streams(self, attribute, value)

    @precision.validator
    def _check_precision(self, _attribute: attrs.Attribute, value: str) -> None:
        if value not in ("float64", "float32"):
            raise ConfigError(f"`precision` must be 'float64' or 'float32', got {value!r}")

    @hookimpl(wrapper=True, tryfirst=True)
    def predict(self, state: State):  # type: ignore[no-untyped-def]
        prediction: Prediction = yield
        if self.temperature == 0:
            return prediction
        dtype = torch.float64 if self.precision == "float64" else torch.float32
        u = state.uniform(prediction.logits.shape, dtype=dtype, batch=self.streams == "batch")
        tokens = gumbel_argmax(prediction.logits, self.temperature, u)
        return attrs.evolve(prediction, tokens=tokens, sampled=True)


def gumbel_argmax(logits: torch.Tensor, temperature: float, u: torch.Tensor) -> torch.Tensor:
    """``argmax(exp(l) / (-log u)^T)``, the reference's Gumbel-max sampling, in ``u``'s dtype."""
    l = logits.to(u.dtype)
    return (l.exp() / (-torch.log(u)) ** temperature).argmax(-1)


def check_streams(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """attrs validator: ``"batch"`` or ``"rows"``."""
    if value not in ("batch", "rows"):
        raise ConfigError(
            f"`{attribute.name}` must be 'batch' (the reference's draws over the batch) or 'rows' "
            f"(per-row streams, batch-invariant), got {value!r}"
        )


@attrs.frozen
class ModelPredict:
    """The adapter's logits for the current canvas, with greedy proposals."""

    @hookimpl
    def predict(self, state: State) -> Prediction:
        canvas = state.canvas
        assert canvas is not None
        return Prediction.greedy(state.forward(canvas.tokens, canvas.length, window=state.window))


@attrs.frozen
class NoMasksLeft:
    """Stop once no row holds a mask."""

    @hookimpl
    def should_stop(self, state: State) -> bool:
        assert state.canvas is not None
        return not bool(state.canvas.masked.any())


def default_policies() -> list[object]:
    """The built-in policies, in the order they answer (all after the user's).

    The built-in decoder is LLaDA's schedule with the engine's proposal rule
    (``mask_proposals="next-best"``): a run of the built-in decoder never ends with a mask.
    """
    return [FixedLength(), SemiAutoregressive(mask_proposals="next-best"), ModelPredict(), NoMasksLeft()]
