"""``PolicyContract``: the tests every policy should pass. Subclass it in your test suite.

Example::

    import pytest
    from daedal.core.testing.contract import PolicyContract
    from my_plugin import MarginUnmask

    class TestMarginUnmask(PolicyContract):
        @pytest.fixture
        def policy(self):
            return MarginUnmask(threshold=0.3)

The contract runs the policy inside an :class:`~daedal.core.Engine` on the seeded fake
model, beside *companions* for the decision hooks the policy leaves alone (see
:meth:`PolicyContract.companions`): a length policy whose canvas has room to grow, a
one-block window that follows the canvas, and a fill rule that re-plans at every step. So
an expansion policy has room to expand, a re-mask policy has committed tokens to re-mask,
and a fill rule sees a window narrower than the canvas.

What it checks, each with a message that says what went wrong:

* the policy is a frozen ``attrs`` value rebuilt from its fields (private fields by alias);
* a run finishes with legal decisions, no mask left and the prompt unchanged;
* every decision hook the policy implements answers at least once, and an expansion or
  re-mask policy selects at least one position (a no-op policy fails);
* unmask, expand and re-mask decisions stay in the step's window;
* the policy never writes into the canvas or window tensors it is handed;
* the same seed gives the same output, runs do not leak into each other, and the
  recorded trace replays to the result.

Every test runs the engine through :meth:`PolicyContract.run`; override it (or
:meth:`PolicyContract.engine`, :meth:`PolicyContract.companions`) to customise all
of them at once. Override the ``adapter`` or ``prompts`` fixtures for policies that need
a particular model or prompt shape.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs
import pytest
import torch

from daedal.core.config import EngineConfig
from daedal.core.defaults import FixedLength
from daedal.core.engine import Engine, _hook_names, flatten_policies
from daedal.core.hookspecs import PROJECT, hookimpl
from daedal.core.result import Result
from daedal.core.testing.fake import FakeAdapter
from daedal.core.testing.helpers import BlockWindow, ConfidentFill, Parts

#: Decision hooks: the first non-None answer wins, so each must be answered to matter.
DECISIONS = ("initial_canvas", "select_window", "predict", "select_unmask", "select_expand", "select_remask")
#: Decisions whose answer must also select a position at least once in the run.
POSITIONAL = ("select_expand", "select_remask")


class PolicyContract:
    """Base class of policy contract tests; define a ``policy`` fixture in the subclass.

    Class attributes a subclass may set:

    * ``optional_hooks``: hooks the policy may leave unanswered (or without effect) in the
      contract run, as ``"hook"`` or ``"PartClass.hook"``; e.g. a budget that decides only
      once it is spent.
    * ``window_bound``: the decisions that must stay in the step's window (drop
      ``"select_remask"`` for a refiner that re-masks the whole canvas by design).
    * ``max_steps``: the step cap of every contract run, so a policy that never
      finishes fails instead of hanging.
    * ``gen_length``, ``max_gen_length``: the companion length policy's canvas (generation
      slots at the start, and the most a row may grow to).
    """

    optional_hooks: ClassVar[frozenset[str]] = frozenset()
    gen_length: ClassVar[int] = 32
    max_gen_length: ClassVar[int] = 64
    window_bound: ClassVar[frozenset[str]] = frozenset({"select_unmask", "select_expand", "select_remask"})
    max_steps: ClassVar[int] = 1000

    # -- fixtures -------------------------------------------------------------------------

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

    # -- how every test runs the engine (override to customise all tests) -------------------

    def companions(self, policy: object) -> list[object]:
        """Policies listed after ``policy`` for the decision hooks it leaves alone.

        A length policy with room to grow (``gen_length`` slots, up to ``max_gen_length``), a one-block window
        (:class:`~daedal.core.testing.helpers.BlockWindow`) and a fill rule committing two
        slots per row and step (:class:`~daedal.core.testing.helpers.ConfidentFill`).
        None of them is listed for a hook the policy implements, so they never answer in
        its place; a policy with its own length policy and fill rule gets no window (the
        whole generation region).
        """
        hooks = {hook for part in flatten_policies([policy]) for hook in _hook_names(part)}
        out: list[object] = []
        if "initial_canvas" not in hooks:
            out.append(FixedLength(gen_length=self.gen_length, max_gen_length=self.max_gen_length))
        # A complete decoder (own length policy and fill rule) decodes the whole canvas when it
        # brings no window; only a partial policy is given the narrow one.
        if "select_window" not in hooks and not {"initial_canvas", "select_unmask"} <= hooks:
            out.append(BlockWindow(block_length=4))
        if "select_unmask" not in hooks:
            out.append(ConfidentFill(per_step=2))
        return out

    def engine(self, policy: object, adapter: Any, observers: Sequence[object] = ()) -> Engine:
        """The engine of every contract run: the policy first, then its companions and ``observers``."""
        return Engine(
            adapter,
            [policy, *self.companions(policy), *observers],
            config=EngineConfig(max_steps=self.max_steps),
        )

    def run(
        self,
        policy: object,
        adapter: Any,
        prompts: list[list[int]],
        seed: int = 0,
        *,
        engine: Engine | None = None,
        observers: Sequence[object] = (),
    ) -> Result:
        """One recorded run; every test of the contract goes through here."""
        if engine is None:
            engine = self.engine(policy, adapter, observers)
        return engine.generate(prompts, seed=seed, record=True)

    # -- the contract ---------------------------------------------------------------------

    def test_implements_hooks(self, policy: object) -> None:
        parts = flatten_policies([policy])
        assert parts, f"the policy (or bundle) {policy!r} has no parts"
        for part in parts:
            assert _hook_names(part), f"{part!r} implements no hook: mark its methods with @daedal.core.hookimpl"

    def test_is_an_immutable_value(self, policy: object) -> None:
        for part in flatten_policies([policy]):
            cls: Any = type(part)
            if not attrs.has(cls):
                continue
            fields = [f for f in attrs.fields(cls) if f.init]
            # attrs strips the underscore of private fields: `_limit` is passed as `limit`.
            kwargs = {f.alias or f.name: getattr(part, f.name) for f in fields}
            rebuilt = cls(**kwargs)
            assert rebuilt == part, (
                f"{cls.__name__}({', '.join(kwargs)}) rebuilt from the fields of {part!r} gives {rebuilt!r}: "
                "every field must be a constructor argument that round-trips"
            )
            if attrs.fields(cls):
                first = attrs.fields(cls)[0].name
                with pytest.raises(attrs.exceptions.FrozenInstanceError):
                    setattr(part, first, getattr(part, first))
                    pytest.fail(f"{cls.__name__}.{first} could be assigned: declare the policy with @attrs.frozen")

    def test_runs_to_completion_with_legal_decisions(
        self, policy: object, adapter: Any, prompts: list[list[int]]
    ) -> None:
        result = self.run(policy, adapter, prompts)
        assert len(result.tokens) == len(prompts), f"{len(result.tokens)} result rows for {len(prompts)} prompts"
        mask_id = adapter.mask_id
        for b, row in enumerate(result.tokens):
            assert mask_id not in row, f"row {b} ended with {row.count(mask_id)} masks left: {row}"
        final = result.canvas
        rows, plen = final.rows(), final.prompt_len.tolist()
        for b, p in enumerate(prompts):
            region = rows[b][: plen[b]]
            # A length policy may left-pad the prompt region; the prompt itself ends it.
            assert region[len(region) - len(p) :] == p, f"row {b}: the prompt {p} became {region}"
        assert result.stats.forward_passes >= 1, f"the run took {result.stats.forward_passes} forward passes"

    def test_answers_its_hooks(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        parts = flatten_policies([policy])
        log: Counter[tuple[int, str]] = Counter()
        effect: Counter[tuple[int, str]] = Counter()
        recorded = Parts(*(_recording(part, i, log, effect) for i, part in enumerate(parts)))
        self.run(recorded, adapter, prompts)
        problems = []
        for i, part in enumerate(parts):
            for hook, opts in _hook_names(part).items():
                if hook not in DECISIONS or opts.get("wrapper") or opts.get("hookwrapper"):
                    continue
                if hook in self.optional_hooks or f"{type(part).__name__}.{hook}" in self.optional_hooks:
                    continue
                if not log[i, hook]:
                    problems.append(
                        f"{part!r} implements `{hook}` but returned None at every call: the engine never used it"
                    )
                elif hook in POSITIONAL and not effect[i, hook]:
                    problems.append(
                        f"{part!r} answered `{hook}` {log[i, hook]} times but never selected a position, though the "
                        "canvas had room to grow and committed tokens"
                    )
        assert not problems, (
            "; ".join(problems) + ". If the policy acts only in conditions the contract does not create, "
            "list the hook in `optional_hooks` of the contract subclass"
        )

    def test_deterministic_for_a_seed(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        a = self.run(policy, adapter, prompts, seed=7)
        b = self.run(policy, adapter, prompts, seed=7)
        assert a.tokens == b.tokens, f"two runs with seed 7 differ:\n{a.tokens}\n{b.tokens}"
        assert a.stats.forward_passes == b.stats.forward_passes, (
            f"two runs with seed 7 took {a.stats.forward_passes} and {b.stats.forward_passes} forward passes"
        )

    def test_stateless_across_runs(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        engine = self.engine(policy, adapter)
        first = self.run(policy, adapter, prompts[:2], seed=1, engine=engine)
        self.run(policy, adapter, prompts[2:], seed=2, engine=engine)
        again = self.run(policy, adapter, prompts[:2], seed=1, engine=engine)
        assert first.tokens == again.tokens, (
            f"a run's output depends on an earlier run ({first.tokens} then {again.tokens}): "
            "keep per-run data in state.stash"
        )

    def test_trace_replays_to_the_result(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        result = self.run(policy, adapter, prompts)
        assert result.trace is not None, "the run was recorded but has no trace"
        frames = list(result.trace.frames())
        assert frames, "no canvas was recorded"
        assert frames[-1].rows == result.canvas.rows(), (
            f"the trace replays to {frames[-1].rows}, the result holds {result.canvas.rows()}"
        )

    def test_decisions_stay_in_the_window(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        spy = _Spy()
        self.run(policy, adapter, prompts, observers=[spy])
        assert spy.steps, "no step was run"
        for step, window, decisions in spy.steps:
            inside = window
            for hook, where in decisions.items():
                if hook not in self.window_bound or where is None:
                    continue
                outside = where & ~inside
                if bool(outside.any()):
                    b, c = (int(v) for v in outside.nonzero()[0])
                    raise AssertionError(
                        f"`{hook}` selected row {b}, column {c} at step {step}, outside the step's window "
                        f"({int(outside.sum())} positions outside in all): decide only inside state.window"
                    )

    def test_never_mutates_in_place(self, policy: object, adapter: Any, prompts: list[list[int]]) -> None:
        spy = _Spy()
        self.run(policy, adapter, prompts, observers=[spy])
        assert not spy.mutations, (
            "; ".join(spy.mutations) + ": policies must return decisions and leave the tensors they are handed alone "
            "(copy with .clone() before writing)"
        )


# -- instruments -------------------------------------------------------------------------------


class _Spy:
    """Records each step's window and decisions, and catches in-place writes to the step's tensors."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, torch.Tensor, dict[str, torch.Tensor | None]]] = []
        self.mutations: list[str] = []
        self._canvas: tuple[torch.Tensor, ...] | None = None
        self._window: tuple[torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def _tensors(canvas: Any) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(canvas, name).clone() for name in ("tokens", "prompt_len", "length", "max_length"))

    @hookimpl(tryfirst=True)
    def should_stop(self, state: Any) -> None:
        self._canvas = self._tensors(state.canvas) if state.canvas is not None else None
        self._window = None

    @hookimpl(wrapper=True, trylast=True)
    def predict(self, state: Any):  # type: ignore[no-untyped-def]
        if state.window is not None:
            self._window = (state.window.start.clone(), state.window.end.clone())
        return (yield)

    @hookimpl
    def on_event(self, event: Any, state: Any) -> None:
        if event.kind != "step-finished":
            return
        before = event.before
        if self._canvas is not None:
            for name, old in zip(("tokens", "prompt_len", "length", "max_length"), self._canvas, strict=True):
                new = getattr(before, name)
                if new.shape != old.shape or not torch.equal(new, old):
                    self.mutations.append(f"the canvas's `{name}` changed in place during step {event.step}")
        window = state.window
        if window is not None and self._window is not None:
            for name, old in zip(("start", "end"), self._window, strict=True):
                if not torch.equal(getattr(window, name), old):
                    self.mutations.append(f"the window's `{name}` changed in place during step {event.step}")
        if window is None:
            inside = before.generation
        else:
            inside = window.mask(before.width)
        self.steps.append(
            (
                event.step,
                inside,
                {
                    "select_unmask": event.unmask.where,
                    "select_expand": event.expand.where if event.expand is not None else None,
                    "select_remask": event.remask.where if event.remask is not None else None,
                },
            )
        )


def _recording(part: object, index: int, log: Counter, effect: Counter) -> object:
    """A stand-in for ``part`` with the same hooks, counting its non-None answers per hook."""
    namespace: dict[str, Any] = {}
    for attr in dir(type(part)):
        original = getattr(type(part), attr, None)
        opts = getattr(original, f"{PROJECT}_impl", None)
        if opts is None:
            continue
        hook = opts.get("specname") or attr
        namespace[attr] = hookimpl(**opts)(_forward(original, hook, index, log, effect, opts))
    return type(f"Recorded{type(part).__name__}", (_Recorded,), namespace)(part)


def _forward(original: Callable[..., Any], hook: str, index: int, log: Counter, effect: Counter, opts: dict) -> Any:
    if opts.get("wrapper") or opts.get("hookwrapper"):

        def call(self: _Recorded, *args: Any) -> Any:
            return (yield from original(self._inner, *args))

    else:

        def call(self: _Recorded, *args: Any) -> Any:
            answer = original(self._inner, *args)
            if answer is not None:
                log[index, hook] += 1
                where = getattr(answer, "where", None)
                if isinstance(where, torch.Tensor) and bool(where.any()):
                    effect[index, hook] += 1
            return answer

    # pluggy reads the argument names through __wrapped__ (or the signature) and passes them in that order.
    call.__wrapped__ = original  # type: ignore[attr-defined]
    call.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    call.__name__ = original.__name__
    call.__qualname__ = f"_Recorded.{original.__name__}"
    return call


class _Recorded:
    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:  # class-level flags such as allows_idle_steps
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return repr(self._inner)
