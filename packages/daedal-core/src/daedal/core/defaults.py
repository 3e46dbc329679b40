"""The built-in policies: with only these, an engine decodes like LLaDA's ``generate``.

They are ordinary plugins. The engine registers each one last and drops it as a whole
when one of the user's policies answers one of its decision hooks, so a user policy
never has to share a hook with a default it replaces.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import attrs
import torch

from daedal.core.canvas import Canvas, Unmask
from daedal.core.errors import ConfigError
from daedal.core.hookspecs import hookimpl
from daedal.core.prediction import Prediction
from daedal.core.state import StashKey, State
from daedal.core.window import Window


def positive_int(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """attrs validator: an int > 0, with an error that names the field."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"`{attribute.name}` must be a positive int, got {value!r}")


def non_negative_float(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """attrs validator: a real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"`{attribute.name}` must be a number >= 0, got {value!r}")


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
    block_length: int
    steps: int
    per_block: int


@attrs.frozen(kw_only=True)
class SemiAutoregressive:
    """LLaDA's block-wise decoding with its linear transfer schedule.

    The generation region is cut into blocks of ``block_length``; each block gets
    ``steps / (gen_length / block_length)`` steps. At a block's first step the masks in the
    block are counted (``M``); step ``s`` of the block commits ``M // S + (s < M % S)``
    positions, the most confident first (``low_confidence``) or in a random order
    (``random``). Masked slots of earlier blocks stay candidates, as in the reference.
    Confidence ties go to the lowest column.

    Attributes:
        block_length: Slots per block; None for one block over the whole generation.
        steps: Steps in total over all blocks; None for one step per generation slot.
        remasking: ``"low_confidence"`` or ``"random"``.
    """

    #: With more steps than masks some steps commit nothing, as in the reference; ``should_stop``
    #: bounds the run by its step count.
    allows_idle_steps: ClassVar[bool] = True

    block_length: int | None = attrs.field(default=None, validator=_optional_positive_int)
    steps: int | None = attrs.field(default=None, validator=_optional_positive_int)
    remasking: Literal["low_confidence", "random"] = attrs.field(default="low_confidence")

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
            schedule = state.stash[_SCHEDULE] = self.schedule(state.canvas)
        return schedule

    @hookimpl
    def should_stop(self, state: State) -> bool:
        return state.step >= self._resolved(state).steps

    @hookimpl
    def select_window(self, state: State) -> Window:
        canvas = state.canvas
        assert canvas is not None
        sched = self._resolved(state)
        block = state.step // sched.per_block
        return Window(start=canvas.prompt_len, end=canvas.prompt_len + (block + 1) * sched.block_length)

    @hookimpl
    def prediction_reads(self, state: State) -> torch.Tensor:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        return canvas.masked & (canvas.columns < window.end[:, None])

    @hookimpl
    def select_unmask(self, state: State, prediction: Prediction) -> Unmask:
        canvas, window = state.canvas, state.window
        assert canvas is not None and window is not None
        sched = self._resolved(state)
        masked = canvas.masked
        cols = canvas.columns
        s = state.step % sched.per_block
        if s == 0:
            block_start = window.end - sched.block_length
            in_block = (cols >= block_start[:, None]) & (cols < window.end[:, None])
            state.stash[_BLOCK_MASKS] = (masked & in_block).sum(1)
        m = state.stash[_BLOCK_MASKS]
        quota = m // sched.per_block + (s < m % sched.per_block).long()
        candidates = masked & (cols < window.end[:, None])
        if self.remasking == "low_confidence":
            score = prediction.confidence
        else:
            score = torch.rand(canvas.tokens.shape, generator=state.generator, device=canvas.device)
        return top_k_unmask(score, candidates, quota, prediction.tokens, canvas.mask_id)


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
        temperature: Sampling temperature (>= 0).
        precision: dtype of the noise arithmetic: ``"float64"`` (LLaDA) or ``"float32"`` (DAEDAL).
    """

    temperature: float = attrs.field(default=0.0, validator=non_negative_float)
    precision: Literal["float64", "float32"] = attrs.field(default="float64")

    @precision.validator
    def _check_precision(self, _attribute: attrs.Attribute, value: str) -> None:
        if value not in ("float64", "float32"):
            raise ConfigError(f"`precision` must be 'float64' or 'float32', got {value!r}")

    @hookimpl
    def prediction_reads(self, state: State) -> bool | None:
        # The reference draws noise for every column and vocabulary entry: the same stream needs them all.
        return True if self.temperature > 0 else None

    @hookimpl(wrapper=True, tryfirst=True)
    def predict(self, state: State):  # type: ignore[no-untyped-def]
        prediction: Prediction = yield
        if self.temperature == 0:
            return prediction
        tokens = gumbel_argmax(prediction.logits, self.temperature, state.generator, self.precision)
        return prediction.resampled(tokens)


def gumbel_argmax(logits: torch.Tensor, temperature: float, generator: torch.Generator, precision: str) -> torch.Tensor:
    """``argmax(exp(l) / (-log U)^T)``, the reference's Gumbel-max sampling."""
    dtype = torch.float64 if precision == "float64" else torch.float32
    l = logits.to(dtype)
    u = torch.rand(l.shape, generator=generator, dtype=dtype, device=l.device)
    return (l.exp() / (-torch.log(u)) ** temperature).argmax(-1)


@attrs.frozen
class ModelPredict:
    """The model's logits for the current canvas, with greedy proposals, at the columns read (``state.reads``)."""

    @hookimpl
    def predict(self, state: State) -> Prediction:
        canvas = state.canvas
        assert canvas is not None
        source = state.run(canvas.tokens, canvas.length, window=state.window)
        return Prediction.from_source(source, state.reads)


#: Set to True in ``state.stash`` to keep the run going one more step although no mask is left
#: (a reproduced reference's trailing idle forward pass); ``NoMasksLeft`` honours it.
HOLD_STOP = StashKey[bool]()


@attrs.frozen
class NoMasksLeft:
    """Stop once no row holds a mask (unless a policy holds the run open with :data:`HOLD_STOP`)."""

    @hookimpl
    def should_stop(self, state: State) -> bool:
        assert state.canvas is not None
        return not bool(state.canvas.masked.any()) and not state.stash.get(HOLD_STOP, False)


def default_policies() -> list[object]:
    """The built-in policies, in the order they answer (all after the user's)."""
    return [FixedLength(), SemiAutoregressive(), ModelPredict(), NoMasksLeft()]
