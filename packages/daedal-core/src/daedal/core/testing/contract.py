"""``PolicyContract``: the tests every policy should pass. Subclass it in your test suite.

Example::

    import pytest
    from daedal.core.testing.contract import PolicyContract
    from my_plugin import MarginUnmask

    class TestMarginUnmask(PolicyContract):
        @pytest.fixture
        def policy(self):
            return MarginUnmask(threshold=0.3)

The contract runs the policy inside an :class:`~daedal.core.Engine` (with the built-in
defaults for the hooks it leaves alone) on the seeded fake model. The engine checks
every decision against the canvas invariants, so a run that finishes proves the
decisions were legal. Override ``adapter`` or ``prompts`` for policies that need a
particular model or prompt shape.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import torch

from daedal.core.canvas import Canvas
from daedal.core.engine import Engine, _hook_names, flatten_policies
from daedal.core.testing.fake import FakeAdapter


class PolicyContract:
    """Base class of policy contract tests; define a ``policy`` fixture in the subclass."""

    @pytest.fixture
    def policy(self) -> object:  # pragma: no cover - subclasses override
        raise NotImplementedError("define a `policy` fixture returning the policy under test")

    @pytest.fixture
    def adapter(self) -> FakeAdapter:
        """The model the contract runs on; override for policies that need special logits."""
        return FakeAdapter(vocab_size=40, seed=3, eos_bias=1.0)

    @pytest.fixture
    def prompts(self) -> list[list[int]]:
        """A ragged batch of prompts."""
        return [[5, 6, 7, 8], [9, 10], [11, 12, 13, 14, 15, 16], [20]]

    def run(self, policy: object, adapter: Any, prompts: list[list[int]], seed: int = 0):  # type: ignore[no-untyped-def]
        return Engine(adapter, [policy]).generate(prompts, seed=seed, record=True)

    def test_implements_hooks(self, policy: object) -> None:
        parts = flatten_policies([policy])
        assert parts, "the policy (or bundle) has no parts"
        for part in parts:
            assert _hook_names(part), f"{part!r} implements no hook"

    def test_is_an_immutable_value(self, policy: object) -> None:
        for part in flatten_policies([policy]):
            cls: Any = type(part)
            if attrs.has(cls):
                rebuilt = cls(**{f.name: getattr(part, f.name) for f in attrs.fields(cls) if f.init})
                assert rebuilt == part, "rebuilding the policy from its fields gives a different value"
                fields = attrs.fields(cls)
                if fields:
                    with pytest.raises(attrs.exceptions.FrozenInstanceError):
                        setattr(part, fields[0].name, getattr(part, fields[0].name))

    def test_runs_to_completion_with_legal_decisions(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        result = self.run(policy, adapter, prompts)
        assert len(result.tokens) == len(prompts)
        mask_id = adapter.mask_id  # type: ignore[attr-defined]
        for row in result.tokens:
            assert mask_id not in row, "the run ended with masks left"
        final: Canvas = result.canvas
        for b, p in enumerate(prompts):
            assert final.rows()[b][: len(p)] == p or int(final.prompt_len[b]) >= len(p), "the prompt changed"
        assert result.stats.forward_passes >= 1

    def test_deterministic_for_a_seed(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        a = self.run(policy, adapter, prompts, seed=7)
        b = self.run(policy, adapter, prompts, seed=7)
        assert a.tokens == b.tokens
        assert a.stats.forward_passes == b.stats.forward_passes

    def test_stateless_across_runs(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        engine = Engine(adapter, [policy])
        first = engine.generate(prompts[:2], seed=1)
        engine.generate(prompts[2:], seed=2)
        again = engine.generate(prompts[:2], seed=1)
        assert first.tokens == again.tokens, "a run's output depends on an earlier run: keep per-run data in state.stash"

    def test_trace_replays_to_the_result(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        result = self.run(policy, adapter, prompts)
        frames = list(result.trace.frames())
        assert frames, "no canvas was recorded"
        assert frames[-1].rows == result.canvas.rows()

    def test_decisions_stay_in_the_window(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        windows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        from daedal.core.hookspecs import hookimpl

        @attrs.frozen
        class WindowSpy:
            @hookimpl
            def on_event(self, event, state):  # type: ignore[no-untyped-def]
                if event.kind == "step-finished" and state.window is not None:
                    windows.append((event.unmask.where, state.window.start, state.window.end))

        Engine(adapter, [policy, WindowSpy()]).generate(prompts, seed=0)
        for where, start, end in windows:
            cols = torch.arange(where.shape[1])
            inside = (cols >= start[:, None]) & (cols < end[:, None])
            assert not (where & ~inside).any(), "a position outside the step's window was committed"
