"""Building blocks for policy tests: a bundle of explicit parts, a run state, companion policies.

Example::

    from daedal.core.testing.helpers import Parts, make_state

    state = make_state([[5, 6, 7]], gen_length=4)
    unmask = MyFill().select_unmask(state, prediction_for(state))

The companions (:class:`BlockWindow`, :class:`ConfidentFill`) are the small policies
:class:`~daedal.core.testing.contract.PolicyContract` lists beside the policy under test
for the hooks it leaves alone. Unlike the built-in defaults they re-plan at every step, so
they keep working when the policy under test grows or re-masks the canvas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import torch

from daedal.core.canvas import Canvas, Unmask
from daedal.core.config import EngineConfig
from daedal.core.defaults import positive_int
from daedal.core.hookspecs import hookimpl
from daedal.core.prediction import Prediction
from daedal.core.state import State
from daedal.core.testing.fake import FakeAdapter
from daedal.core.window import Window


def assert_canvas_equal(actual: Canvas, expected: Canvas) -> None:
    """Fail with a readable message unless two canvases hold the same rows and metadata."""
    assert actual.mask_id == expected.mask_id and actual.pad_id == expected.pad_id, (
        f"mask/pad ids differ: {actual.mask_id}/{actual.pad_id} != {expected.mask_id}/{expected.pad_id}"
    )
    assert torch.equal(actual.prompt_len, expected.prompt_len), (
        f"prompt lengths differ: {actual.prompt_len.tolist()} != {expected.prompt_len.tolist()}"
    )
    assert torch.equal(actual.length, expected.length), (
        f"lengths differ: {actual.length.tolist()} != {expected.length.tolist()}"
    )
    assert actual.rows() == expected.rows(), f"rows differ:\n{actual.rows()}\n{expected.rows()}"


class Parts:
    """A bundle of explicit policies, for testing parts together: ``Parts(Stage1(), Fill())``.

    The engine (and the contract) replace it by its parts, in the order given.
    """

    def __init__(self, *policies: object) -> None:
        self._parts = list(policies)

    def parts(self) -> list[object]:
        """The bundled policies, in the order they answer."""
        return list(self._parts)

    def __repr__(self) -> str:
        return f"Parts({', '.join(map(repr, self._parts))})"


def make_state(
    prompts: Sequence[Sequence[int]] | None = None,
    *,
    canvas: Canvas | None = None,
    gen_length: int = 8,
    max_gen_length: int | None = None,
    adapter: Any = None,
    step: int = 0,
    window: Window | None = None,
    seed: int = 0,
    config: EngineConfig | None = None,
) -> State:
    """A run :class:`~daedal.core.State`, for calling a hook directly in a unit test.

    Args:
        prompts: Prompt ids per row (default: two short prompts; taken from ``canvas`` when given).
        canvas: The current canvas (default: each prompt followed by ``gen_length`` masks).
        gen_length: Generation slots of the default canvas.
        max_gen_length: Generation slots the default canvas may grow to (default: ``gen_length``).
        adapter: The model (default: a :class:`FakeAdapter` whose mask id is the canvas's).
        step: The step index the hooks see.
        window: The step's window (default: None, as before ``select_window``).
        seed: Seed of the state's generator.
        config: The engine configuration (default: ``EngineConfig(seed=seed)``).
    """
    if canvas is None:
        if adapter is None:
            adapter = FakeAdapter(vocab_size=40)
        prompts = [list(p) for p in (prompts if prompts is not None else [[5, 6, 7], [8]])]
        plen = torch.tensor([len(p) for p in prompts])
        canvas = Canvas.from_prompts(
            prompts,
            gen_length=gen_length,
            mask_id=adapter.mask_id,
            pad_id=adapter.pad_id,
            max_length=plen + (max_gen_length or gen_length),
        )
    else:
        if adapter is None:
            adapter = FakeAdapter(
                vocab_size=canvas.mask_id + 1, pad_id=canvas.pad_id, eos_id=1 if canvas.pad_id != 1 else 3
            )
        if prompts is None:
            prompts = [row[:p] for row, p in zip(canvas.rows(), canvas.prompt_len.tolist(), strict=True)]
    if adapter.mask_id != canvas.mask_id:
        raise ValueError(
            f"`adapter` has mask_id {adapter.mask_id} but the canvas uses {canvas.mask_id}: pass a matching adapter"
        )
    return State(
        adapter=adapter,
        config=config or EngineConfig(seed=seed),
        prompts=[list(p) for p in prompts],
        canvas=canvas,
        step=step,
        window=window,
        generator=torch.Generator(device=canvas.device).manual_seed(seed),
    )


# -- companions: policies that give the policy under test room to act ------------------------


@attrs.frozen(kw_only=True)
class BlockWindow:
    """A window of one block per row: the block of ``block_length`` slots holding the row's first mask.

    Blocks are counted from the end of the prompt and recomputed at every step, so the
    window follows expansions and re-masks. A row without masks gets an empty window.
    Narrower than the generation region on purpose: a fill or expansion rule that ignores
    the window decides outside it and the contract notices.
    """

    block_length: int = attrs.field(default=4, validator=positive_int)

    @hookimpl
    def select_window(self, state: State) -> Window:
        canvas = state.canvas
        assert canvas is not None, "select_window is called with a canvas"
        masked = canvas.masked
        first = torch.where(masked, canvas.columns, canvas.width).amin(1)
        offset = (first - canvas.prompt_len).clamp(min=0) // self.block_length * self.block_length
        start = canvas.prompt_len + offset
        end = torch.minimum(start + self.block_length, canvas.length)
        none_left = ~masked.any(1)
        start = torch.where(none_left, canvas.length, start)
        end = torch.where(none_left, canvas.length, end)
        return Window(start=start, end=end)


@attrs.frozen(kw_only=True)
class ConfidentFill:
    """Commit, per row, the ``per_step`` most confident masked slots inside the window.

    Proposals equal to the mask id are replaced by the most likely other token, so every
    step commits at least one slot of every row that has a mask in its window.
    """

    per_step: int = attrs.field(default=2, validator=positive_int)

    @hookimpl
    def select_unmask(self, state: State, prediction: Prediction) -> Unmask:
        canvas = state.canvas
        assert canvas is not None, "select_unmask is called with a canvas"
        window = state.window or Window.whole(canvas.prompt_len, canvas.length)
        candidates = canvas.masked & window.mask(canvas.width)
        tokens = prediction.tokens
        other = prediction.logits.float().index_fill(
            -1, torch.tensor([canvas.mask_id], device=tokens.device), float("-inf")
        )
        tokens = torch.where(tokens == canvas.mask_id, other.argmax(-1), tokens)
        score = prediction.confidence.masked_fill(~candidates, float("-inf"))
        order = torch.sort(score, dim=1, descending=True, stable=True).indices
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        return Unmask(where=candidates & (ranks < self.per_step), tokens=tokens)
