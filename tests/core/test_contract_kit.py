"""The contract kit bites: each deliberately broken policy fails the test that names its fault.

The broken policies are run through the real ``PolicyContract`` test methods (and once
through pytest itself), so a kit that passes them silently fails here.
"""

from __future__ import annotations

import textwrap

import attrs
import pytest
import torch
from hypothesis import given, settings

from daedal.core import Expand, FixedLength, Prediction, Remask, Unmask, hookimpl, registry
from daedal.core.errors import ConfigError
from daedal.core.testing import FakeAdapter, Parts, make_state
from daedal.core.testing import strategies as dst
from daedal.core.testing.contract import PolicyContract
from daedal.core.testing.helpers import BlockWindow, ConfidentFill

pytest_plugins = ["pytester"]

PROMPTS = [[5, 6, 7, 8], [9, 10], [11, 12, 13, 14, 15, 16], [20]]


def _adapter() -> FakeAdapter:
    return FakeAdapter(vocab_size=40, seed=3, eos_bias=1.0)


# -- policies under test -------------------------------------------------------------------


@attrs.frozen
class NoOpExpand:
    """Answers select_expand with an expansion of nothing."""

    factor: int = 2

    @hookimpl
    def select_expand(self, state, prediction, unmask):  # type: ignore[no-untyped-def]
        return Expand(where=torch.zeros_like(unmask.where), factor=self.factor)


@attrs.frozen
class NeverExpand:
    """Implements select_expand but always defers."""

    @hookimpl
    def select_expand(self, state, prediction, unmask):  # type: ignore[no-untyped-def]
        return None


@attrs.frozen
class LowConfidenceSplit:
    """A working expansion: per row and step, the least confident masked slot in the window becomes two masks."""

    threshold: float = 0.9

    @hookimpl
    def select_expand(self, state, prediction, unmask):  # type: ignore[no-untyped-def]
        canvas = state.canvas
        room = (canvas.max_length - canvas.length) > 0
        candidates = canvas.masked & state.window.mask(canvas.width) & ~unmask.where & room[:, None]
        score = prediction.confidence.masked_fill(~candidates, float("inf"))
        lowest = score.argmin(1, keepdim=True)
        where = torch.zeros_like(candidates).scatter_(1, lowest, True) & candidates
        return Expand(where=where & (score < self.threshold), factor=2)


@attrs.frozen
class WindowBlindFill:
    """Commits the most confident mask of the whole row, wherever the window is."""

    @hookimpl
    def select_unmask(self, state, prediction):  # type: ignore[no-untyped-def]
        canvas = state.canvas
        score = prediction.confidence.masked_fill(~canvas.masked, float("-inf"))
        best = score.argmax(1, keepdim=True)
        where = torch.zeros_like(canvas.masked).scatter_(1, best, True) & canvas.masked
        return Unmask(where=where, tokens=prediction.tokens)


@attrs.frozen
class InPlaceFill:
    """Writes its commits straight into the canvas it is handed, then reports them as a decision."""

    @hookimpl
    def select_unmask(self, state, prediction):  # type: ignore[no-untyped-def]
        canvas = state.canvas
        where = canvas.masked & state.window.mask(canvas.width)
        first = where & (where.long().cumsum(1) == 1)
        canvas.tokens[first] = prediction.tokens[first]  # the bug: that tensor is shared with the engine
        return Unmask(where=first, tokens=prediction.tokens)


@attrs.frozen
class PrivateFieldFill:
    """A correct fill rule with a private attrs field (constructed as ``limit=``)."""

    _limit: int = attrs.field(default=1, alias="limit")

    @hookimpl
    def select_unmask(self, state, prediction):  # type: ignore[no-untyped-def]
        canvas = state.canvas
        where = canvas.masked & state.window.mask(canvas.width)
        return Unmask(where=where & (where.long().cumsum(1) <= self._limit), tokens=prediction.tokens)


@attrs.frozen
class OnceRemask:
    """Re-masks the first committed generation token inside the window, once per run."""

    @hookimpl
    def select_remask(self, state, prediction, unmask):  # type: ignore[no-untyped-def]
        if state.step != 3:
            return None
        canvas = state.canvas
        committed = canvas.generation & ~canvas.masked & state.window.mask(canvas.width) & ~unmask.where
        return Remask(where=committed & (committed.long().cumsum(1) == 1))


def _contract(policy: object, **overrides: object) -> PolicyContract:
    cls = type("Contract", (PolicyContract,), dict(overrides))
    contract = cls()
    contract._policy = policy  # type: ignore[attr-defined]
    return contract


def _check(contract: PolicyContract, test: str, policy: object) -> None:
    method = getattr(contract, test)
    if test in ("test_implements_hooks", "test_is_an_immutable_value"):
        method(policy)
    else:
        method(policy, _adapter(), [list(p) for p in PROMPTS])


ALL_TESTS = [name for name in dir(PolicyContract) if name.startswith("test_")]


# -- the kit catches each broken policy -----------------------------------------------------


def test_a_no_op_expansion_fails() -> None:
    for broken in (NoOpExpand(), NeverExpand()):
        with pytest.raises(AssertionError, match="select_expand"):
            _check(_contract(broken), "test_answers_its_hooks", broken)


def test_a_working_expansion_passes_every_test_and_had_room() -> None:
    policy = LowConfidenceSplit()
    contract = _contract(policy)
    for test in ALL_TESTS:
        _check(contract, test, policy)
    result = contract.run(policy, _adapter(), PROMPTS)
    assert result.stats.expansions > 0, "the companions gave the expansion no room"


def test_a_window_blind_fill_fails() -> None:
    policy = WindowBlindFill()
    with pytest.raises(AssertionError, match=r"`select_unmask` selected row \d+, column \d+ at step \d+, outside"):
        _check(_contract(policy), "test_decisions_stay_in_the_window", policy)


def test_an_in_place_canvas_write_fails() -> None:
    policy = InPlaceFill()
    with pytest.raises(AssertionError, match="the canvas's `tokens` changed in place during step 0"):
        _check(_contract(policy), "test_never_mutates_in_place", policy)


def test_a_private_field_policy_passes_every_test() -> None:
    policy = PrivateFieldFill(limit=2)
    contract = _contract(policy)
    for test in ALL_TESTS:
        _check(contract, test, policy)


def test_a_remask_policy_gets_committed_tokens_and_passes() -> None:
    policy = OnceRemask()
    contract = _contract(policy)
    for test in ALL_TESTS:
        _check(contract, test, policy)
    remasked: list[int] = []

    @attrs.frozen
    class Count:
        @hookimpl
        def on_event(self, event, state):  # type: ignore[no-untyped-def]
            if event.kind == "step-finished" and event.remask is not None:
                remasked.append(int(event.remask.where.sum()))

    contract.run(policy, _adapter(), PROMPTS, observers=[Count()])
    assert sum(remasked) == len(PROMPTS), f"one re-mask per row expected, got {remasked}"


def test_a_policy_answering_only_when_told_may_list_the_hook_as_optional() -> None:
    policy = NeverExpand()
    _check(_contract(policy, optional_hooks=frozenset({"NeverExpand.select_expand"})), "test_answers_its_hooks", policy)


def test_overriding_run_reaches_every_test() -> None:
    calls: list[str] = []

    class Counting(PolicyContract):
        def run(self, policy, adapter, prompts, seed=0, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(current)
            return super().run(policy, adapter, prompts, seed, **kwargs)

    policy = PrivateFieldFill()
    for current in ALL_TESTS:
        _check(Counting(), current, policy)
    ran = set(calls)
    engine_tests = set(ALL_TESTS) - {"test_implements_hooks", "test_is_an_immutable_value"}
    assert ran == engine_tests, f"tests that bypass run(): {sorted(engine_tests - ran)}"


def test_the_contract_runs_under_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        textwrap.dedent(
            """
            import attrs, pytest, torch
            from daedal.core import Expand, hookimpl
            from daedal.core.testing.contract import PolicyContract

            @attrs.frozen
            class NoOpExpand:
                @hookimpl
                def select_expand(self, state, prediction, unmask):
                    return Expand(where=torch.zeros_like(unmask.where), factor=2)

            class TestNoOp(PolicyContract):
                @pytest.fixture
                def policy(self):
                    return NoOpExpand()
            """
        )
    )
    outcome = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=len(ALL_TESTS) - 1, failed=1)
    outcome.stdout.fnmatch_lines(["*test_answers_its_hooks*"])


# -- public helpers ---------------------------------------------------------------------------


def test_parts_is_a_bundle_the_engine_flattens() -> None:
    from daedal.core import Engine

    bundle = Parts(FixedLength(gen_length=4), BlockWindow(block_length=2), ConfidentFill(per_step=1))
    assert len(bundle.parts()) == 3 and "FixedLength" in repr(bundle)
    result = Engine(_adapter(), [bundle]).generate([[5, 6]])
    assert result.lengths == [4] and result.stats.steps == 4, "one slot per step over 4 slots"


def test_make_state_builds_a_state_hooks_accept() -> None:
    state = make_state([[5, 6, 7], [8]], gen_length=4, max_gen_length=6, step=2)
    canvas = state.canvas
    assert canvas.gen_length.tolist() == [4, 4] and (canvas.max_length - canvas.prompt_len).tolist() == [6, 6]
    assert state.step == 2 and state.window is None
    window = BlockWindow(block_length=2).select_window(state)
    assert window.start.tolist() == [3, 1] and window.end.tolist() == [5, 3]
    with pytest.raises(ValueError, match="mask_id"):
        make_state(canvas=canvas, adapter=FakeAdapter(vocab_size=20))


@settings(max_examples=30, deadline=None)
@given(state=dst.states())
def test_states_draw_windows_inside_the_generation(state) -> None:  # type: ignore[no-untyped-def]
    canvas, window = state.canvas, state.window
    inside = window.mask(canvas.width)
    assert not (inside & ~canvas.generation).any(), "a drawn window leaves the generation region"
    logits = state.forward(canvas.tokens, canvas.length)
    assert logits.shape == (*canvas.tokens.shape, canvas.mask_id + 1)
    unmask = ConfidentFill(per_step=1).select_unmask(state, Prediction.greedy(logits))
    assert not (unmask.where & ~inside).any(), "the companion fill left the window"
    assert not (unmask.where & ~canvas.masked).any()


# -- registry.create is alias-aware --------------------------------------------------------------


def test_registry_create_passes_private_fields_by_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "load", lambda kind, name: PrivateFieldFill)
    assert registry.create("policies", "private", {"limit": 3}) == PrivateFieldFill(limit=3)
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['_limit'\]; valid: \['limit'\]"):
        registry.create("policies", "private", {"_limit": 3})
