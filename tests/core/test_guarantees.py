"""What the engine guarantees whatever the policies do: checked model output and decisions,
no mask left in a result, one rule for mask proposals, limits, a step cap, who decided."""

from __future__ import annotations

import math

import attrs
import pytest
import torch

from daedal.core import (
    AdapterError,
    ConfigError,
    Engine,
    EngineConfig,
    Expand,
    FixedLength,
    GumbelTemperature,
    PluginError,
    PolicyError,
    Remask,
    RunStarted,
    SemiAutoregressive,
    Unmask,
    hookimpl,
)
from daedal.core.state import LIMITS, Limits
from daedal.core.testing import FakeAdapter

PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12]]


@pytest.fixture
def adapter():
    return FakeAdapter(vocab_size=40, seed=1)


def _fake_with(fn, vocab: int = 40) -> FakeAdapter:
    """A fake whose logits are ``fn(tokens, length, normal_logits)``."""
    base = FakeAdapter(vocab_size=vocab, seed=1)
    return FakeAdapter(vocab_size=vocab, seed=1, logits_fn=lambda t, n: fn(t, n, base.logits(t, n)))


@attrs.frozen
class FillLeftmost:
    token: int = 4

    @hookimpl
    def select_unmask(self, state, prediction):
        masked = state.canvas.masked
        first = masked & (masked.cumsum(1) == 1)
        return Unmask(where=first, tokens=torch.full_like(state.canvas.tokens, self.token))


# -- checked model output ------------------------------------------------------------------


def _nan_everywhere(t, n, x):
    return torch.full_like(x, float("nan"))


def _pos_inf_at_one_slot(t, n, x):
    x = x.clone()
    x[1, 6, 3] = float("inf")
    return x


def _neg_inf_row(t, n, x):
    x = x.clone()
    x[0, 4, :] = float("-inf")
    return x


def _nan_at_one_slot(t, n, x):
    x = x.clone()
    x[1, 7, 9] = float("nan")
    return x


@pytest.mark.parametrize(
    ("fn", "kind", "rows"),
    [
        (_nan_everywhere, "NaN", "[0, 1]"),
        (_pos_inf_at_one_slot, "+inf", "[1]"),
        (_neg_inf_row, "all -inf", "[0]"),
        (_nan_at_one_slot, "NaN", "[1]"),
    ],
)
def test_non_finite_logits_raise_an_adapter_error_naming_adapter_step_and_rows(fn, kind, rows):
    engine = Engine(_fake_with(fn), [FixedLength(gen_length=8)])
    with pytest.raises(AdapterError) as info:
        engine.generate(PROMPTS)
    message = str(info.value)
    assert "adapter FakeAdapter" in message and "at step 0" in message
    assert kind in message and f"rows {rows}" in message


def test_a_banned_token_at_minus_inf_is_fine(adapter):
    # -inf at some ids (banned tokens, the fake's mask id) is a legal distribution.
    out = Engine(adapter, [FixedLength(gen_length=8)]).generate(PROMPTS)
    assert all(adapter.mask_id not in row for row in out.tokens)


def test_non_finite_logits_past_a_rows_length_are_ignored():
    def nan_in_padding(t, n, x):
        x = x.clone()
        cols = torch.arange(t.shape[1])
        x[cols[None, :].expand(t.shape[0], -1) >= n[:, None]] = float("nan")
        return x

    out = Engine(_fake_with(nan_in_padding), [FixedLength(gen_length=4)]).generate(PROMPTS)
    assert out.lengths == [4, 4]


@pytest.mark.parametrize(
    ("fn", "needle"),
    [
        (lambda t, n, x: x[:, :-1], "shape"),  # one slot missing
        (lambda t, n, x: x.transpose(1, 2), "shape"),  # [B, V, T]
        (lambda t, n, x: torch.cat([x, x[..., :3]], -1), "43 wide"),  # wider than the vocabulary
        (lambda t, n, x: x[..., :-2], "38 wide"),  # narrower
        (lambda t, n, x: x[0], "shape"),  # 2-D
    ],
)
def test_logits_of_the_wrong_shape_or_width_raise_before_any_policy_reads_them(fn, needle):
    base = FakeAdapter(vocab_size=40, seed=1)

    class Bent(FakeAdapter):
        def logits(self, tokens, length, *, window=None):
            return fn(tokens, length, base.logits(tokens, length))

    with pytest.raises(AdapterError, match=needle) as info:
        Engine(Bent(vocab_size=40, seed=1), [FixedLength(gen_length=8)]).generate(PROMPTS)
    assert "adapter Bent" in str(info.value) and "step 0" in str(info.value)


def test_boolean_logits_are_refused():
    class Boolean(FakeAdapter):
        def logits(self, tokens, length, *, window=None):
            return super().logits(tokens, length) > 0

    with pytest.raises(AdapterError, match="torch.bool logits"):
        Engine(Boolean(vocab_size=40), [FixedLength(gen_length=4)]).generate(PROMPTS)


def test_committed_ids_must_lie_in_the_vocabulary(adapter):
    engine = Engine(adapter, [FixedLength(gen_length=4), FillLeftmost(token=1_000_000)])
    with pytest.raises(PolicyError, match=r"id 1000000, outside the vocabulary \[0, 40\)") as info:
        engine.generate(PROMPTS)
    assert info.value.code == "illegal-decision" and "FillLeftmost" in str(info.value)
    with pytest.raises(PolicyError, match="outside the vocabulary"):
        Engine(adapter, [FixedLength(gen_length=4), FillLeftmost(token=-3)]).generate(PROMPTS)


def test_mask_id_equal_to_eos_id_is_refused():
    adapter = FakeAdapter(vocab_size=40, eos_id=39)
    with pytest.raises(AdapterError, match="mask_id == eos_id == 39"):
        Engine(adapter)


def test_mask_id_outside_the_vocabulary_is_refused():
    adapter = FakeAdapter(vocab_size=40)
    adapter.mask_id = 40
    with pytest.raises(AdapterError, match=r"mask_id 40 outside its vocabulary \[0, 40\)"):
        Engine(adapter)


@pytest.mark.parametrize("value", [math.inf, math.nan, -0.5, True])
def test_temperature_must_be_finite(value):
    with pytest.raises(ConfigError, match="temperature"):
        GumbelTemperature(temperature=value)


@pytest.mark.parametrize("prompt", [b"5 6 7", bytearray(b"\x05\x06"), memoryview(b"\x05")])
def test_bytes_prompts_are_refused(adapter, prompt):
    with pytest.raises(ConfigError, match=r"prompts\[1\]` is .*pass text as str"):
        Engine(adapter).generate([[5, 6], prompt])


def test_unknown_capability_is_refused(adapter):
    @attrs.frozen
    class Odd:
        daedal_capabilities = frozenset({"time-travel"})

        @hookimpl
        def select_unmask(self, state, prediction):
            return None

    with pytest.raises(PluginError, match="unknown capabilities \\['time-travel'\\]"):
        Engine(adapter, [Odd()])


# -- the step cap --------------------------------------------------------------------------


@attrs.frozen
class PingPong:
    """Commit the leftmost mask and remask the leftmost committed generation token: forever."""

    @hookimpl
    def select_unmask(self, state, prediction):
        masked = state.canvas.masked
        return Unmask(where=masked & (masked.cumsum(1) == 1), tokens=torch.full_like(state.canvas.tokens, 4))

    @hookimpl
    def select_remask(self, state, prediction, unmask):
        committed = state.canvas.generation & ~state.canvas.masked
        return Remask(where=committed & (committed.cumsum(1) == 1))


def test_an_endless_unmask_remask_loop_hits_the_derived_step_cap(adapter):
    engine = Engine(adapter, [FixedLength(gen_length=2), PingPong()])
    with pytest.raises(PolicyError, match="step cap 1052") as info:  # 1024 + 4 x (5 + 2)
        engine.generate(PROMPTS)
    assert info.value.code == "no-progress" and "max_steps" in str(info.value)


def test_an_explicit_max_steps_ends_the_loop_without_masks(adapter):
    engine = Engine(adapter, [FixedLength(gen_length=2), PingPong()], config=EngineConfig(max_steps=10))
    out = engine.generate(PROMPTS)
    assert out.stats.stopped_by == "max_steps" and out.stats.steps == 10
    assert out.stats.final_fill > 0
    assert all(adapter.mask_id not in row for row in out.tokens)


# -- never a silent mask -----------------------------------------------------------------------


@attrs.frozen
class ExpandFirstMask:
    """A third-party expansion policy: widen each row's last mask into 3 at the first steps."""

    steps: int = 2

    @hookimpl
    def select_expand(self, state, prediction, unmask):
        if state.step >= self.steps:
            return None
        canvas = state.canvas
        free = canvas.masked & ~unmask.where
        room = canvas.length + 2 <= canvas.max_length
        last = free & (free.flip(1).cumsum(1).flip(1) == 1) & room[:, None]
        return Expand(where=last, factor=3)


@attrs.frozen
class RemaskOnce:
    """A third-party remask policy: at step 3 put two committed tokens of each row back."""

    @hookimpl
    def select_remask(self, state, prediction, unmask):
        if state.step != 3:
            return None
        committed = state.canvas.generation & ~state.canvas.masked & ~unmask.where
        return Remask(where=committed & (committed.cumsum(1) <= 2))


def _no_masks(out, adapter):
    return all(adapter.mask_id not in row for row in out.tokens) and out.stats.masks_left == 0


def test_defaults_with_a_third_party_expansion_policy_finish_every_mask(adapter):
    engine = Engine(adapter, [FixedLength(gen_length=8, max_gen_length=16), ExpandFirstMask()])
    out = engine.generate(PROMPTS, record=True)
    assert out.stats.expansions == 4 and out.lengths == [12, 12]
    assert _no_masks(out, adapter)
    # The default decoder re-planned: it kept decoding after its 8 planned steps, no final fill needed.
    assert out.stats.final_fill == 0 and out.stats.steps > 8 and out.stats.stopped_by == "done"


def test_defaults_with_a_remask_policy_predict_the_remasked_tokens_again(adapter):
    out = Engine(adapter, [FixedLength(gen_length=8), RemaskOnce()]).generate(PROMPTS, record=True)
    remasked = sum(len(r) for e in out.trace.of_kind("step-finished") for r in e["remasked"])
    assert remasked == 4
    assert _no_masks(out, adapter) and out.stats.final_fill == 0 and out.stats.steps == 8 + 2


def test_a_fixed_schedule_with_a_remask_policy_re_plans(adapter):
    # LLaDA's schedule over 2 blocks: once its 8 steps are used up, the 4 remasked slots get a new plan.
    engine = Engine(adapter, [FixedLength(gen_length=8), SemiAutoregressive(block_length=4, steps=8), RemaskOnce()])
    out = engine.generate(PROMPTS)
    assert _no_masks(out, adapter) and out.stats.steps == 10 and out.stats.final_fill == 0


def _mask_loving_adapter() -> FakeAdapter:
    """Random logits whose argmax is the mask id at every other column, at every step."""
    base = FakeAdapter(vocab_size=10, seed=2, predict_mask=True)

    def logits(tokens, length):
        x = base.logits(tokens, length).clone()
        even = (torch.arange(tokens.shape[1]) % 2 == 0)[None, :]
        x[..., base.mask_id] = torch.where(even, x.amax(-1) + 1.0, x[..., base.mask_id])
        return x

    return FakeAdapter(vocab_size=10, seed=2, predict_mask=True, logits_fn=logits)


def test_the_built_in_decoder_never_leaves_a_mask_when_the_model_proposes_it():
    adapter = _mask_loving_adapter()
    probe = adapter.logits(torch.tensor([[3, 4, 9, 9, 9, 9]]), torch.tensor([6]))
    assert (probe.argmax(-1) == adapter.mask_id).float().mean() == 0.5  # the argmax is often the mask
    out = Engine(adapter, [FixedLength(gen_length=16)]).generate([[3, 4], [5, 6, 7]])
    assert _no_masks(out, adapter) and out.stats.stopped_by == "done" and out.stats.final_fill == 0
    # The same model under LLaDA's reference rule keeps half of the slots masked, and says so.
    with pytest.warns(UserWarning, match="still masked"):
        ref = Engine(adapter, [FixedLength(gen_length=16), SemiAutoregressive()]).generate([[3, 4], [5, 6, 7]])
    left = sum(row.count(adapter.mask_id) for row in ref.tokens)
    assert left >= 8 and ref.stats.masks_left == left


def test_the_reference_decoder_keeps_mask_proposals_but_says_so():
    adapter = FakeAdapter(vocab_size=10, seed=2, predict_mask=True)
    engine = Engine(adapter, [FixedLength(gen_length=16), SemiAutoregressive(block_length=8, steps=16)])
    with pytest.warns(UserWarning, match="still masked"):
        out = engine.generate([[3, 4], [5, 6, 7]])
    left = sum(row.count(adapter.mask_id) for row in out.tokens)
    assert left > 0 and out.stats.masks_left == left and out.stats.stopped_by == "policy"


def test_prediction_tokens_are_never_the_mask_id_and_raw_tokens_keep_the_proposal():
    adapter = FakeAdapter(vocab_size=10, seed=2, predict_mask=True)
    seen = []

    @attrs.frozen
    class Spy:
        @hookimpl
        def select_unmask(self, state, prediction):
            seen.append((prediction.tokens.clone(), prediction.raw_tokens.clone(), prediction.argmax.clone()))
            return None

    Engine(adapter, [Spy(), FixedLength(gen_length=8), SemiAutoregressive(mask_proposals="next-best")]).generate(
        [[3, 4]]
    )
    assert seen and all(bool((tokens != adapter.mask_id).all()) for tokens, _, _ in seen)
    assert any(bool((raw == adapter.mask_id).any()) for _, raw, _ in seen)
    assert all(torch.equal(raw, argmax) for _, raw, argmax in seen)
    for tokens, raw, _ in seen:  # only the mask proposals were replaced
        keep = raw != adapter.mask_id
        assert torch.equal(tokens[keep], raw[keep])


# -- limits ----------------------------------------------------------------------------------------


@attrs.frozen
class PublishLimits:
    limits: Limits

    @hookimpl
    def on_event(self, event, state):
        if isinstance(event, RunStarted):
            state.stash[LIMITS] = self.limits


def test_max_new_tokens_bounds_every_expand_through_the_canvas(adapter):
    engine = Engine(
        adapter,
        [PublishLimits(Limits(max_new_tokens=10)), FixedLength(gen_length=8, max_gen_length=16), ExpandFirstMask()],
    )
    out = engine.generate(PROMPTS)
    assert out.lengths == [10, 10] and out.canvas.max_length.tolist() == [13, 15]

    @attrs.frozen
    class Greedy(ExpandFirstMask):  # ignores the room the canvas gives
        @hookimpl
        def select_expand(self, state, prediction, unmask):
            free = state.canvas.masked & ~unmask.where
            return Expand(where=free & (free.cumsum(1) == 1), factor=5)

    engine = Engine(
        adapter, [PublishLimits(Limits(max_new_tokens=10)), FixedLength(gen_length=8, max_gen_length=16), Greedy()]
    )
    with pytest.raises(PolicyError, match="past their `max_length`") as info:
        engine.generate(PROMPTS)
    assert "select_expand" in str(info.value) and "Greedy" in str(info.value)


def test_the_model_maximum_bounds_the_canvas_ceiling():
    adapter = FakeAdapter(vocab_size=40, max_length=12)
    out = Engine(adapter, [FixedLength(gen_length=4, max_gen_length=64), ExpandFirstMask(steps=8)]).generate(PROMPTS)
    assert (
        out.canvas.max_length.tolist() == [12, 12]
        and max(len(p) + n for p, n in zip(PROMPTS, out.lengths, strict=True)) <= 12
    )


def test_forward_pass_limit_is_enforced_by_the_engine(adapter):
    engine = Engine(adapter, [PublishLimits(Limits(max_forward_passes=3)), FixedLength(gen_length=8), FillLeftmost()])
    out = engine.generate(PROMPTS)
    assert out.stats.stopped_by == "max_forward_passes" and out.stats.steps == 3
    assert out.stats.forward_passes == 4 and out.stats.final_fill == 10 and _no_masks(out, adapter)


def test_deadline_is_enforced_by_the_engine(adapter):
    engine = Engine(adapter, [PublishLimits(Limits(deadline_s=1e-9)), FixedLength(gen_length=8), FillLeftmost()])
    out = engine.generate(PROMPTS)
    assert out.stats.stopped_by == "deadline_s" and out.stats.steps == 0 and _no_masks(out, adapter)


# -- who decided, short reprs -----------------------------------------------------------------------------


def test_the_step_trace_names_who_answered_each_decision_hook(adapter):
    engine = Engine(adapter, [FixedLength(gen_length=4, max_gen_length=8), ExpandFirstMask(steps=1)])
    out = engine.generate(PROMPTS, record=True)
    assert out.trace.of_kind("canvas-initialized")[0]["policy"] == "FixedLength(gen_length=4, max_gen_length=8)"
    first, second = out.trace.of_kind("step-finished")[:2]
    assert first["decided_by"]["select_expand"] == "ExpandFirstMask(steps=1)"
    assert first["decided_by"]["select_unmask"].startswith("SemiAutoregressive(")
    assert first["decided_by"]["select_window"].startswith("SemiAutoregressive(")
    assert "select_expand" not in second["decided_by"] and "select_remask" not in first["decided_by"]


def test_hook_tracing_shows_the_decision_hooks_and_who_answered(adapter, monkeypatch, capsys):
    monkeypatch.setenv("DAEDAL_TRACE_HOOKS", "1")
    Engine(adapter, [FixedLength(gen_length=4)]).generate([[5, 6, 7]])
    out = capsys.readouterr().out
    for hook in ("initial_canvas", "select_window", "select_unmask", "select_expand", "select_remask", "predict"):
        assert hook in out, hook
    assert "answered by FixedLength(gen_length=4" in out
    assert "tensor(" not in out  # short reprs: no raw tensor dumps
    assert len(out) < 20_000


def test_canvas_state_and_prediction_have_short_reprs(adapter):
    seen = {}

    @attrs.frozen
    class Spy:
        @hookimpl
        def select_unmask(self, state, prediction):
            seen["state"], seen["prediction"] = repr(state), repr(prediction)
            return None

    out = Engine(adapter, [Spy(), FixedLength(gen_length=4), SemiAutoregressive()]).generate(PROMPTS)
    assert repr(out.canvas) == "Canvas(batch=2, width=9, length=[7, 9], masks=0)"
    assert seen["prediction"] == "Prediction(batch=2, width=9, vocab=40)"
    assert seen["state"].startswith("State(step=3, canvas=Canvas(batch=2") and len(seen["state"]) < 200
