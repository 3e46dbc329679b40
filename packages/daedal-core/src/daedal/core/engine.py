"""The engine: one plugin manager, one loop."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import attrs
import pluggy
import torch

from daedal.core import hookspecs
from daedal.core.adapter import ModelAdapter, PromptText
from daedal.core.canvas import Canvas
from daedal.core.config import EngineConfig
from daedal.core.defaults import default_policies
from daedal.core.errors import (
    CanvasError,
    ConfigError,
    DaedalWarning,
    NoDecisionError,
    PluginError,
    PolicyError,
)
from daedal.core.events import (
    CanvasInitialized,
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    Trace,
)
from daedal.core.prediction import Prediction
from daedal.core.result import Result, Stats
from daedal.core.session import AppliedStep, ModelSession, open_session
from daedal.core.state import State
from daedal.core.window import Window

#: Hooks where the first non-None answer wins; a default steps aside when a user policy answers one of them.
DECISION_HOOKS = (
    "select_cache",
    "initial_canvas",
    "select_window",
    "select_unmask",
    "select_expand",
    "select_remask",
    "predict",
)
#: Hooks whose implementations read the step's prediction (so must say which columns, or see them all);
#: of ``predict`` only wrappers read one (a plain implementation makes it, honouring ``state.reads``).
PREDICTION_READERS = ("select_unmask", "select_expand", "select_remask")
HOOK_NAMES = frozenset(
    name for name in dir(hookspecs) if callable(getattr(hookspecs, name)) and hasattr(getattr(hookspecs, name), "daedal_spec")
)


def flatten_policies(policies: Iterable[object]) -> list[object]:
    """Expand bundles (objects with a ``parts()`` method) into their parts, recursively."""
    out: list[object] = []
    for policy in policies:
        parts = getattr(policy, "parts", None)
        if callable(parts) and not _hook_names(policy):
            out.extend(flatten_policies(parts()))
        else:
            out.append(policy)
    return out


def _hook_names(policy: object) -> dict[str, dict[str, Any]]:
    """The hooks a policy implements: method name -> hookimpl options."""
    found = {}
    for name in dir(type(policy)):
        fn = getattr(type(policy), name, None)
        opts = getattr(fn, f"{hookspecs.PROJECT}_impl", None)
        if opts is not None:
            found[opts.get("specname") or name] = opts
    return found


def _describe(policy: object) -> str:
    return repr(policy) if len(repr(policy)) < 200 else type(policy).__name__


class Engine:
    """Runs the denoising loop of one adapter with a list of policies.

    Args:
        adapter: The model (see :class:`~daedal.core.ModelAdapter`).
        policies: Policies and bundles. For decision hooks the first listed answers first;
            the built-in defaults (LLaDA's fixed-length low-confidence decoding) answer last
            and step aside for any decision hook a listed policy implements.
        config: Seed, recording and step cap.

    Raises:
        PluginError: A policy implements no hook or a hook that does not exist.
        ConfigError: The same policy is listed twice.
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        policies: Sequence[object] = (),
        *,
        config: EngineConfig | None = None,
    ) -> None:
        if isinstance(policies, (str, bytes)) or not isinstance(policies, Iterable):
            raise ConfigError(f"`policies` must be a list of policy objects, got {policies!r}")
        missing = [a for a in ("mask_id", "pad_id", "logits", "device") if not hasattr(adapter, a)]
        if missing:
            raise ConfigError(
                f"`adapter` {type(adapter).__name__} lacks {missing}: pass an object implementing "
                "daedal.core.ModelAdapter (e.g. daedal.models.LLaDA.from_pretrained(...))"
            )
        self.adapter = adapter
        self.config = config or EngineConfig()
        self.policies: tuple[object, ...] = tuple(flatten_policies(policies))
        self._check_policies(self.policies)
        self.defaults = tuple(self._active_defaults())
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        # pluggy calls the last registered first: register defaults, then users in reverse.
        for i, plugin in enumerate([*self.defaults, *reversed(self.policies)]):
            try:
                self.pm.register(plugin, name=f"{type(plugin).__name__}#{i}")
            except ValueError as err:  # duplicates pluggy itself detects
                raise ConfigError(f"policy {_describe(plugin)} is listed twice: list each policy once", code="duplicate-policy") from err
            except pluggy.PluginValidationError as err:
                raise PluginError(f"policy {_describe(plugin)} cannot be registered: {err}", code="unknown-hook") from err
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as err:
            raise PluginError(
                f"{err}. Known hooks: {sorted(HOOK_NAMES)}; check the method name", code="unknown-hook"
            ) from err
        self._callers = {name: self._ordered_impls(name) for name in DECISION_HOOKS if name != "predict"}
        self._dense_reads = self._needs_dense_reads()
        if os.environ.get("DAEDAL_TRACE_HOOKS"):
            self.pm.trace.root.setwriter(print)
            self.pm.enable_tracing()

    # -- construction helpers -------------------------------------------------------

    @staticmethod
    def _check_policies(policies: Sequence[object]) -> None:
        seen: list[object] = []
        for policy in policies:
            hooks = _hook_names(policy)
            if not hooks:
                raise PluginError(
                    f"policy {_describe(policy)} implements no hook: mark its methods with "
                    "@daedal.core.hookimpl and name them after a hook "
                    f"({', '.join(sorted(HOOK_NAMES))})",
                    code="unknown-hook",
                )
            unknown = sorted(set(hooks) - HOOK_NAMES)
            if unknown:
                raise PluginError(
                    f"policy {_describe(policy)} implements unknown hook(s) {unknown}: known hooks are "
                    f"{sorted(HOOK_NAMES)}; check the spelling",
                    code="unknown-hook",
                )
            for other in seen:
                if other is policy or (type(other) is type(policy) and _safe_eq(other, policy)):
                    raise ConfigError(
                        f"policy {_describe(policy)} is listed twice in `policies`: list each policy once",
                        code="duplicate-policy",
                    )
            seen.append(policy)
        # A second answer to the same firstresult hook would never be consulted unless the first defers.
        answered: dict[str, object] = {}
        for policy in policies:
            for hook, opts in _hook_names(policy).items():
                if hook in DECISION_HOOKS and not opts.get("wrapper") and not opts.get("hookwrapper"):
                    if hook in answered and type(answered[hook]) is type(policy):
                        warnings.warn(
                            f"policy {_describe(policy)} answers `{hook}` after {_describe(answered[hook])} of the "
                            "same type; it is consulted only when the first returns None",
                            DaedalWarning,
                            stacklevel=3,
                        )
                    answered.setdefault(hook, policy)

    def _active_defaults(self) -> list[object]:
        answered = {
            hook
            for policy in self.policies
            for hook, opts in _hook_names(policy).items()
            if hook in DECISION_HOOKS and not opts.get("wrapper") and not opts.get("hookwrapper")
        }
        active = []
        for default in default_policies():
            hooks = {h for h in _hook_names(default) if h in DECISION_HOOKS}
            if not hooks & answered:
                active.append(default)
        return active

    def _needs_dense_reads(self) -> bool:
        """Whether some policy reads predictions without declaring ``prediction_reads`` (then every step is dense)."""
        for plugin in [*self.policies, *self.defaults]:
            hooks = _hook_names(plugin)
            wraps = hooks.get("predict", {})
            reads = any(h in hooks for h in PREDICTION_READERS) or wraps.get("wrapper") or wraps.get("hookwrapper")
            if reads and "prediction_reads" not in hooks:
                return True
        return False

    def _reads(self, state: State) -> torch.Tensor | None:
        """The union of the policies' ``prediction_reads`` (None: the whole canvas)."""
        if self._dense_reads:
            return None
        canvas = state.canvas
        assert canvas is not None
        union = torch.zeros(canvas.tokens.shape, dtype=torch.bool, device=canvas.device)
        for answer in self.pm.hook.prediction_reads(state=state):
            if answer is None or answer is False:
                continue
            if answer is True:
                return None
            if not isinstance(answer, torch.Tensor) or answer.shape != union.shape or answer.dtype != torch.bool:
                raise PolicyError(
                    f"`prediction_reads` must return None, True or a bool tensor of shape {tuple(union.shape)}, "
                    f"got {answer!r:.80}",
                    code="illegal-decision",
                )
            union = union | answer
        return union

    def _ordered_impls(self, name: str) -> list[tuple[Callable[..., Any], tuple[str, ...], object]]:
        caller = getattr(self.pm.hook, name)
        impls = [i for i in caller.get_hookimpls() if not (i.wrapper or i.hookwrapper)]
        for i in caller.get_hookimpls():
            if i.wrapper or i.hookwrapper:
                raise PluginError(
                    f"policy {_describe(i.plugin)} wraps `{name}`: wrappers are supported on `predict` only; "
                    "return None from a plain implementation to defer instead",
                    code="unknown-hook",
                )
        # pluggy's call order: last registered first, trylast ones at the end.
        return [(i.function, tuple(i.argnames), i.plugin) for i in reversed(impls)]

    def _first(self, name: str, **kwargs: Any) -> tuple[Any, object | None]:
        for function, argnames, plugin in self._callers[name]:
            result = function(*(kwargs[a] for a in argnames))
            if result is not None:
                return result, plugin
        return None, None

    # -- running ---------------------------------------------------------------------

    def with_policies(self, policies: Sequence[object]) -> Engine:
        """A new engine over the same adapter and config with other policies."""
        return Engine(self.adapter, policies, config=self.config)

    def replace_policy(self, old: type, new: object) -> Engine:
        """A new engine where every policy of type ``old`` is replaced by ``new``."""
        if not any(isinstance(p, old) for p in self.policies):
            raise ConfigError(
                f"no policy of type {old.__name__} to replace; policies are "
                f"{[type(p).__name__ for p in self.policies]}"
            )
        return self.with_policies([new if isinstance(p, old) else p for p in self.policies])

    def encode(self, prompts: Sequence[PromptText | Sequence[int]]) -> list[list[int]]:
        """Validate prompts and turn strings/conversations into token ids."""
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
            raise ConfigError(f"`prompts` must be a list of prompts, got {type(prompts).__name__}: wrap it in a list")
        if len(prompts) == 0:
            raise ConfigError("`prompts` is empty: pass at least one prompt")
        out: list[list[int] | None] = [None] * len(prompts)
        texts = [(i, p) for i, p in enumerate(prompts) if isinstance(p, str) or _is_conversation(p)]
        if texts:
            if not hasattr(self.adapter, "encode"):
                raise ConfigError("`prompts` holds text but the adapter cannot encode: pass token ids")
            for (i, _), ids in zip(texts, self.adapter.encode([cast(PromptText, p) for _, p in texts]), strict=True):
                out[i] = list(ids)
        for i, p in enumerate(prompts):
            if out[i] is None:
                if isinstance(p, torch.Tensor):
                    p = p.tolist()
                if not all(isinstance(t, int) and not isinstance(t, bool) for t in p):
                    raise ConfigError(f"`prompts[{i}]` must be text or a list of token ids, got {p!r:.80}")
                out[i] = list(cast(Sequence[int], p))
        vocab = getattr(self.adapter, "vocab_size", None)
        max_len = getattr(self.adapter, "max_length", None)
        for i, row in enumerate(out):
            assert row is not None
            if len(row) == 0:
                raise ConfigError(f"`prompts[{i}]` is empty: every prompt needs at least one token")
            if max_len is not None and len(row) >= max_len:
                raise ConfigError(
                    f"`prompts[{i}]` has {len(row)} tokens, the model accepts at most {max_len} in all: "
                    "shorten the prompt"
                )
            if vocab is not None and (min(row) < 0 or max(row) >= vocab):
                raise ConfigError(f"`prompts[{i}]` holds ids outside the vocabulary [0, {vocab}): {row!r:.80}")
        return out  # type: ignore[return-value]

    def generate(
        self,
        prompts: Sequence[PromptText | Sequence[int]],
        *,
        seed: int | None = None,
        record: bool | None = None,
    ) -> Result:
        """Denoise one batch of prompts.

        Args:
            prompts: Text (wrapped in the adapter's chat template), conversations, or
                token-id lists (used as they are).
            seed: Overrides ``config.seed`` for this run.
            record: Overrides ``config.record`` for this run.

        Returns:
            A :class:`~daedal.core.Result`.
        """
        sessions: list[ModelSession] = []
        try:
            return self._generate(prompts, seed, record, sessions)
        finally:
            for session in sessions:  # the run's model session never outlives the run
                session.close()

    def _generate(
        self,
        prompts: Sequence[PromptText | Sequence[int]],
        seed: int | None,
        record: bool | None,
        sessions: list[ModelSession],
    ) -> Result:
        config = self.config
        if seed is not None or record is not None:
            config = attrs.evolve(
                config, seed=config.seed if seed is None else seed, record=config.record if record is None else record
            )
        ids = self.encode(prompts)
        device = torch.device(self.adapter.device)
        generator = torch.Generator(device=device).manual_seed(config.seed)
        events: list[dict[str, Any]] = []

        def emit(event: Event) -> None:
            if config.record:
                events.append(event.to_dict())
            self.pm.hook.on_event(event=event, state=state)

        state = State(adapter=self.adapter, config=config, prompts=ids, generator=generator, emit=emit)
        cache, _ = self._first("select_cache", state=state)
        # One session per run: never shared with another run, engine or thread; `generate` closes it.
        session = open_session(self.adapter, cache=cache)
        sessions.append(session)
        state = attrs.evolve(state, session=session)
        emit(RunStarted([list(p) for p in ids], [_describe(p) for p in self.policies], config.seed))
        canvas, policy = self._first("initial_canvas", state=state)
        if canvas is None:
            raise NoDecisionError("no policy answered `initial_canvas`; add a length policy such as FixedLength")
        self._check_initial(canvas, policy, len(ids))
        max_len = getattr(self.adapter, "max_length", None)
        state = attrs.evolve(state, canvas=canvas)
        emit(CanvasInitialized(canvas, state.counters.forward_passes))
        step = 0
        expanded = torch.zeros((), dtype=torch.long, device=canvas.device)
        while True:
            state = attrs.evolve(state, canvas=canvas, step=step, window=None)
            if any(self.pm.hook.should_stop(state=state)):
                break
            if config.max_steps is not None and step >= config.max_steps:
                raise PolicyError(
                    f"the run reached `max_steps` {config.max_steps} with masks left; raise max_steps or check the policies",
                    code="no-progress",
                )
            window, _ = self._first("select_window", state=state)
            if window is None:
                window = Window.whole(canvas.prompt_len, canvas.length)
            state = attrs.evolve(state, window=window)
            state = attrs.evolve(state, reads=self._reads(state))
            prediction: Prediction | None = self.pm.hook.predict(state=state)
            if prediction is None:
                raise NoDecisionError("no policy answered `predict`")
            unmask, unmask_by = self._first("select_unmask", state=state, prediction=prediction)
            if unmask is None:
                raise NoDecisionError(
                    f"no policy answered `select_unmask` at step {step}; policies: {[_describe(p) for p in self.policies]}"
                )
            expand, expand_by = self._first("select_expand", state=state, prediction=prediction, unmask=unmask)
            remask, remask_by = self._first("select_remask", state=state, prediction=prediction, unmask=unmask)
            try:
                new = canvas.apply(unmask, expand, remask)
            except CanvasError as err:
                if err.message.startswith("Expand"):
                    hook, by = "select_expand", expand_by
                elif err.message.startswith("Remask"):
                    hook, by = "select_remask", remask_by
                else:
                    hook, by = "select_unmask", unmask_by
                raise PolicyError(
                    f"hook `{hook}` of policy {_describe(by)} returned an illegal decision at step {step}: {err.message}",
                    code="illegal-decision",
                ) from err
            if max_len is not None and new.width > max_len:
                raise PolicyError(
                    f"policy {_describe(expand_by)} grew the canvas to {new.width} columns, past the model's "
                    f"maximum {max_len}: lower the policy's maximum length",
                    code="illegal-decision",
                )
            progressed = unmask.where.any()
            if expand is not None:
                progressed = progressed | expand.where.any()
                expanded = expanded + expand.where.sum()  # stays on the device: no sync per step
            if remask is not None:
                progressed = progressed | remask.where.any()
            # Schedules with steps that may commit nothing (Dream's eps schedule, LLaDA's zero quotas)
            # opt out of the guard with `allows_idle_steps`; their should_stop bounds the run.
            if not bool(progressed) and not getattr(unmask_by, "allows_idle_steps", False):
                raise PolicyError(
                    f"step {step} changed nothing: `select_unmask` of {_describe(unmask_by)} committed no position "
                    "and nothing was expanded; a policy must commit at least one masked position per step",
                    code="no-progress",
                )
            session.applied(AppliedStep(canvas, new, unmask, expand, remask))
            emit(StepFinished(step, canvas, new, unmask, expand, prediction.confidence, state.counters.forward_passes, remask))
            canvas = new
            step += 1
        state.counters.expansions += int(expanded)
        result = self._result(state, canvas, step, events if config.record else None)
        emit(RunFinished(result.stats, result.tokens))
        if config.record:
            result = attrs.evolve(result, trace=Trace(events=tuple(events), mask_id=canvas.mask_id))
        return result

    def _check_initial(self, canvas: object, policy: object, batch: int) -> None:
        if not isinstance(canvas, Canvas):
            raise PolicyError(
                f"hook `initial_canvas` of policy {_describe(policy)} returned {type(canvas).__name__}, not a Canvas",
                code="illegal-decision",
            )
        if canvas.batch_size != batch:
            raise PolicyError(
                f"hook `initial_canvas` of policy {_describe(policy)} returned {canvas.batch_size} rows for {batch} prompts",
                code="illegal-decision",
            )
        max_len = getattr(self.adapter, "max_length", None)
        if max_len is not None and canvas.width > max_len:
            raise ConfigError(
                f"the initial canvas has {canvas.width} columns but the model accepts at most {max_len}: "
                "lower the generation length or shorten the prompts"
            )

    def _result(self, state: State, canvas: Canvas, steps: int, events: list | None) -> Result:
        tokens = canvas.generated()
        special = set(getattr(self.adapter, "eos_ids", ())) | {canvas.pad_id, canvas.mask_id}
        generated = sum(len(t) for t in tokens)
        effective = sum(1 for row in tokens for t in row if t not in special)
        c = state.counters
        stats = Stats(
            forward_passes=c.forward_passes,
            steps=steps,
            canvas_tokens=c.canvas_tokens,
            generated_tokens=generated,
            effective_tokens=effective,
            expansions=c.expansions,
            wall_time=state.elapsed(),
            model_time=c.model_time,
        )
        texts = None
        decode = getattr(self.adapter, "decode", None)
        if callable(decode):
            texts = list(decode(tokens))
        return Result(
            tokens=tokens,
            texts=texts,
            lengths=[len(t) for t in tokens],
            stats=stats,
            canvas=canvas,
            info=dict(state.report),
        )


def _is_conversation(p: object) -> bool:
    return isinstance(p, Sequence) and len(p) > 0 and all(isinstance(m, dict) for m in p)


def _safe_eq(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors or other values without a plain truth value
        return False
