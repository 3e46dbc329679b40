"""Hypothesis strategies for canvases, run states and the decisions that may legally change them.

Example::

    from hypothesis import given, strategies as st
    from daedal.core.testing import strategies as dst

    @given(canvas=dst.canvases(), data=st.data())
    def test_unmask_keeps_prompt(canvas, data):
        out = canvas.apply(data.draw(dst.unmasks(canvas)))
        ...
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from daedal.core.canvas import Canvas, Expand, Remask, Unmask
from daedal.core.state import State
from daedal.core.testing.helpers import make_state
from daedal.core.window import Window

MASK_ID = 15
PAD_ID = 0
#: Ordinary token ids drawn for prompts and committed slots.
TOKENS = st.integers(min_value=1, max_value=MASK_ID - 1)


@st.composite
def canvases(
    draw: st.DrawFn,
    *,
    max_batch: int = 4,
    max_prompt: int = 6,
    max_gen: int = 12,
    headroom: int = 24,
    mask_id: int = MASK_ID,
    pad_id: int = PAD_ID,
) -> Canvas:
    """Random right-padded canvases: ragged prompts, partly committed generation slots.

    Args:
        max_batch: Largest number of rows.
        max_prompt: Longest prompt.
        max_gen: Most generation slots per row.
        headroom: Largest extra room between a row's length and its ``max_length``.
        mask_id: The mask id (ordinary tokens are drawn below it).
        pad_id: The pad id.
    """
    batch = draw(st.integers(1, max_batch))
    prompts, gens, rooms = [], [], []
    for _ in range(batch):
        prompts.append(draw(st.lists(TOKENS, min_size=1, max_size=max_prompt)))
        gens.append(draw(st.lists(st.one_of(st.just(mask_id), TOKENS), min_size=0, max_size=max_gen)))
        rooms.append(draw(st.integers(0, headroom)))
    rows = [p + g for p, g in zip(prompts, gens, strict=True)]
    width = max(len(r) for r in rows)
    tokens = torch.full((batch, width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
    length = torch.tensor([len(r) for r in rows])
    return Canvas(
        tokens=tokens,
        prompt_len=torch.tensor([len(p) for p in prompts]),
        length=length,
        max_length=length + torch.tensor(rooms),
        mask_id=mask_id,
        pad_id=pad_id,
    )


def _subset(draw: st.DrawFn, allowed: torch.Tensor) -> torch.Tensor:
    picks = draw(st.lists(st.booleans(), min_size=allowed.numel(), max_size=allowed.numel()))
    return torch.tensor(picks, dtype=torch.bool).reshape(allowed.shape) & allowed


@st.composite
def unmasks(draw: st.DrawFn, canvas: Canvas) -> Unmask:
    """A legal unmask: a subset of the masked slots, each given an ordinary id."""
    where = _subset(draw, canvas.masked)
    fills = draw(st.lists(TOKENS, min_size=canvas.tokens.numel(), max_size=canvas.tokens.numel()))
    tokens = torch.tensor(fills, dtype=torch.long).reshape(canvas.tokens.shape)
    tokens = torch.where(tokens == canvas.mask_id, 1, tokens)
    return Unmask(where=where, tokens=tokens)


@st.composite
def expands(draw: st.DrawFn, canvas: Canvas, *, max_factor: int = 8, exclude: torch.Tensor | None = None) -> Expand:
    """A legal expansion: masked slots (not in ``exclude``) widened without passing any row's maximum."""
    factor = draw(st.integers(1, max_factor))
    allowed = canvas.masked if exclude is None else canvas.masked & ~exclude
    where = _subset(draw, allowed)
    # Drop selections, last column first, until every row fits its maximum.
    room = (canvas.max_length - canvas.length) // max(factor - 1, 1) if factor > 1 else None
    if room is not None:
        keep_rank = torch.cumsum(where.long(), 1)
        where = where & (keep_rank <= room[:, None])
    return Expand(where=where, factor=factor)


@st.composite
def remasks(draw: st.DrawFn, canvas: Canvas, *, exclude: torch.Tensor | None = None) -> Remask:
    """A legal remask: committed generation tokens (not in ``exclude``) turned back into masks."""
    allowed = canvas.generation & ~canvas.masked
    if exclude is not None:
        allowed = allowed & ~exclude
    return Remask(where=_subset(draw, allowed))


def empty_unmask(canvas: Canvas) -> Unmask:
    """An unmask that commits nothing."""
    return Unmask.none_like(canvas)


@st.composite
def windows(draw: st.DrawFn, canvas: Canvas) -> Window:
    """A window inside each row's generation region (possibly empty for some rows)."""
    starts, ends = [], []
    for p, n in zip(canvas.prompt_len.tolist(), canvas.length.tolist(), strict=True):
        start = draw(st.integers(p, n))
        starts.append(start)
        ends.append(draw(st.integers(start, n)))
    return Window(start=torch.tensor(starts, device=canvas.device), end=torch.tensor(ends, device=canvas.device))


@st.composite
def states(draw: st.DrawFn, *, with_window: bool = True, max_step: int = 64, **canvas_options: int) -> State:
    """Run states for property tests of a single hook: a random canvas, step and window.

    The state's adapter is a :class:`~daedal.core.testing.FakeAdapter` whose vocabulary
    ends at the canvas's mask id, so ``state.forward`` gives logits for the canvas.

    Args:
        with_window: Draw a window (as the hooks after ``select_window`` see); else None.
        max_step: Largest step index drawn.
        canvas_options: Passed to :func:`canvases` (``max_batch``, ``max_gen``, ``headroom``...).

    Example::

        @given(state=dst.states())
        def test_fill_stays_in_the_window(state):
            prediction = Prediction.greedy(state.forward(state.canvas.tokens, state.canvas.length))
            unmask = MyFill().select_unmask(state, prediction)
            assert not (unmask.where & ~state.window.mask(state.canvas.width)).any()
    """
    canvas = draw(canvases(**canvas_options))
    window = draw(windows(canvas)) if with_window else None
    return make_state(
        canvas=canvas,
        step=draw(st.integers(0, max_step)),
        window=window,
        seed=draw(st.integers(0, 2**16)),
    )
