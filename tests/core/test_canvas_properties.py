"""Property tests: every canvas invariant (I1-I7) under random legal and illegal decisions."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from daedal.core import Canvas, CanvasError, Expand, Unmask
from daedal.core.testing import strategies as dst


def strip(canvas: Canvas) -> list[list[int]]:
    return [[t for t in row if t != canvas.mask_id] for row in canvas.rows()]


@given(canvas=dst.canvases(), data=st.data())
def test_unmask_writes_only_masked_positions(canvas, data):
    u = data.draw(dst.unmasks(canvas))
    out = canvas.apply(u)
    changed = out.tokens != canvas.tokens
    assert not (changed & ~canvas.masked).any()  # I2
    assert not ((out.tokens == canvas.mask_id) & u.where).any()
    assert torch.equal(out.masked.sum(1), canvas.masked.sum(1) - u.where.sum(1))
    assert torch.equal(out.length, canvas.length)


@given(canvas=dst.canvases(), data=st.data())
def test_expand_preserves_order_and_grows_by_factor(canvas, data):
    e = data.draw(dst.expands(canvas))
    out = canvas.apply(None, e)
    assert strip(out) == strip(canvas)  # I3: every non-mask token keeps its order
    assert torch.equal(out.length, canvas.length + (e.factor - 1) * e.where.sum(1))
    assert torch.equal(out.masked.sum(1), canvas.masked.sum(1) + (e.factor - 1) * e.where.sum(1))
    assert (out.length <= out.max_length).all()  # I4


@given(canvas=dst.canvases(), data=st.data())
def test_prompt_untouched_and_padding_is_pad(canvas, data):
    u = data.draw(dst.unmasks(canvas))
    e = data.draw(dst.expands(canvas, exclude=u.where))
    out = canvas.apply(u, e)
    for before, after, p in zip(canvas.rows(), out.rows(), canvas.prompt_len.tolist(), strict=True):
        assert after[:p] == before[:p]  # I1
    assert (out.tokens[~out.valid] == out.pad_id).all()  # I4
    assert torch.equal(out.prompt_len, canvas.prompt_len)


@given(canvas=dst.canvases(), data=st.data())
def test_rows_are_independent(canvas, data):
    u = data.draw(dst.unmasks(canvas))
    e = data.draw(dst.expands(canvas, exclude=u.where))
    out = canvas.apply(u, e)
    for b in range(canvas.batch_size):
        alone = Canvas(
            tokens=canvas.tokens[b : b + 1, : int(canvas.length[b])],
            prompt_len=canvas.prompt_len[b : b + 1],
            length=canvas.length[b : b + 1],
            max_length=canvas.max_length[b : b + 1],
            mask_id=canvas.mask_id,
            pad_id=canvas.pad_id,
        )
        w = int(canvas.length[b])
        one = alone.apply(
            Unmask(where=u.where[b : b + 1, :w], tokens=u.tokens[b : b + 1, :w]),
            Expand(where=e.where[b : b + 1, :w], factor=e.factor),
        )
        assert one.rows()[0] == out.rows()[b]  # I5


@given(canvas=dst.canvases(), data=st.data())
def test_remask_turns_committed_tokens_back_into_masks(canvas, data):
    r = data.draw(dst.remasks(canvas))
    out = canvas.apply(remask=r)
    assert (out.tokens[r.where] == canvas.mask_id).all()
    assert torch.equal(out.tokens[~r.where], canvas.tokens[~r.where])
    assert not (r.where & ~canvas.generation).any()  # I7: prompt never remasked


@given(canvas=dst.canvases(), data=st.data())
def test_illegal_unmask_is_rejected(canvas, data):
    illegal = canvas.valid & ~canvas.masked  # prompt or committed slots
    if not illegal.any():
        return
    where = torch.zeros_like(illegal)
    b, c = torch.nonzero(illegal)[data.draw(st.integers(0, int(illegal.sum()) - 1))].tolist()
    where[b, c] = True
    with pytest.raises(CanvasError, match="not masked|prompt"):
        canvas.apply(Unmask(where=where, tokens=torch.full_like(canvas.tokens, 3)))


@given(canvas=dst.canvases())
def test_unmask_may_not_write_the_mask_id(canvas):
    if not canvas.masked.any():
        return
    with pytest.raises(CanvasError, match="mask id"):
        canvas.apply(Unmask(where=canvas.masked, tokens=torch.full_like(canvas.tokens, canvas.mask_id)))


@given(canvas=dst.canvases(headroom=0))
def test_expansion_past_max_length_raises_unless_truncating(canvas):
    if not canvas.masked.any():
        return
    e = Expand(where=canvas.masked, factor=3)
    with pytest.raises(CanvasError, match="max_length"):
        canvas.apply(None, e)
    out = canvas.apply(None, Expand(where=canvas.masked, factor=3, truncate=True))
    assert torch.equal(out.length, canvas.length)  # no headroom: cut back to the maximum


@given(canvas=dst.canvases(), data=st.data())
def test_overlapping_unmask_and_expand_is_rejected(canvas, data):
    if not canvas.masked.any():
        return
    u = Unmask(where=canvas.masked, tokens=torch.full_like(canvas.tokens, 3))
    with pytest.raises(CanvasError, match="both unmasked and expanded"):
        canvas.apply(u, Expand(where=canvas.masked, factor=2))


def test_expand_example_inserts_masks_in_place():
    c = Canvas.from_prompts([[7, 8]], gen_length=4, mask_id=15, pad_id=0, max_length=20)
    c = c.apply(Unmask(where=torch.tensor([[0, 0, 1, 0, 0, 1]], dtype=torch.bool), tokens=torch.full((1, 6), 4)))
    out = c.apply(None, Expand(where=torch.tensor([[0, 0, 0, 1, 0, 0]], dtype=torch.bool), factor=3))
    assert out.rows() == [[7, 8, 4, 15, 15, 15, 15, 4]]


def test_bad_shapes_and_factor_are_rejected():
    c = Canvas.from_prompts([[1, 2]], gen_length=2, mask_id=15, pad_id=0)
    with pytest.raises(CanvasError, match="Unmask.where"):
        c.apply(Unmask(where=torch.zeros(1, 3, dtype=torch.bool), tokens=torch.zeros(1, 3, dtype=torch.long)))
    with pytest.raises(CanvasError, match="factor"):
        Expand(where=torch.zeros(1, 4, dtype=torch.bool), factor=0)
    with pytest.raises(CanvasError, match="prompts"):
        Canvas.from_prompts([], gen_length=2, mask_id=15, pad_id=0)


class CanvasMachine(RuleBasedStateMachine):
    """Interleaves unmask, expand and remask decisions; invariants hold after every one."""

    @initialize(canvas=dst.canvases(headroom=40))
    def start(self, canvas):
        self.canvas = canvas
        self.prompts = [row[:p] for row, p in zip(canvas.rows(), canvas.prompt_len.tolist(), strict=True)]
        self.max_length = canvas.max_length.clone()

    @precondition(lambda self: bool(self.canvas.masked.any()))
    @rule(data=st.data())
    def unmask(self, data):
        before = strip(self.canvas)
        u = data.draw(dst.unmasks(self.canvas))
        self.canvas = self.canvas.apply(u)
        assert all(len(a) >= len(b) for a, b in zip(strip(self.canvas), before, strict=True))

    @precondition(lambda self: bool(self.canvas.masked.any()))
    @rule(data=st.data())
    def expand(self, data):
        before = strip(self.canvas)
        self.canvas = self.canvas.apply(None, data.draw(dst.expands(self.canvas, max_factor=4)))
        assert strip(self.canvas) == before

    @rule(data=st.data())
    def remask(self, data):
        self.canvas = self.canvas.apply(remask=data.draw(dst.remasks(self.canvas)))

    @rule(data=st.data())
    def unmask_and_expand(self, data):
        u = data.draw(dst.unmasks(self.canvas))
        e = data.draw(dst.expands(self.canvas, max_factor=4, exclude=u.where))
        self.canvas = self.canvas.apply(u, e)

    @invariant()
    def prompt_is_untouched(self):
        rows = self.canvas.rows()
        assert [r[: len(p)] for r, p in zip(rows, self.prompts, strict=True)] == self.prompts

    @invariant()
    def padding_is_pad(self):
        assert (self.canvas.tokens[~self.canvas.valid] == self.canvas.pad_id).all()

    @invariant()
    def lengths_within_maximum(self):
        assert (self.canvas.length <= self.max_length).all()
        assert (self.canvas.length >= self.canvas.prompt_len).all()
        assert self.canvas.width == int(self.canvas.length.max())


TestCanvasMachine = CanvasMachine.TestCase
TestCanvasMachine.settings = settings(max_examples=60, stateful_step_count=12, deadline=None)
