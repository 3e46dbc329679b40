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
from daedal.core.canvas import Canvas, Unmask
from daedal.core.config import EngineConfig, step_cap
from daedal.core.defaults import default_policies
from daedal.core.errors import (
    AdapterError,
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
from daedal.core.prediction import Prediction, without_mask_proposals
from daedal.core.result import Result, Stats
from daedal.core.session import AppliedStep, ModelSession, open_session
from daedal.core.state import LIMITS, Limits, State, check_logits_shape
from daedal.core.streams import RowStreams, row_seeds
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
    name
    for name in dir(hookspecs)
    if callable(getattr(hookspecs, name)) and hasattr(getattr(hookspecs, name), "daedal_spec")
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
        _check_adapter(adapter)
        self.adapter = adapter
        self.config = config or EngineConfig()
        _refuse_two_decoders(policies)
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
                raise ConfigError(
                    f"policy {_describe(plugin)} is listed twice: list each policy once", code="duplicate-policy"
                ) from err
            except pluggy.PluginValidationError as err:
                raise PluginError(
                    f"policy {_describe(plugin)} cannot be registered: {err}", code="unknown-hook"
                ) from err
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as err:
            raise PluginError(
                f"{err}. Known hooks: {sorted(HOOK_NAMES)}; check the method name", code="unknown-hook"
            ) from err
        self._callers = {name: self._ordered_impls(name) for name in DECISION_HOOKS if name != "predict"}
        self._dense_reads = self._needs_dense_reads()
        # Called directly (not through pluggy) so that hook tracing shows a count, not a tensor.
        self._read_impls = [(i.function, tuple(i.argnames)) for i in self.pm.hook.prediction_reads.get_hookimpls()]
        for plugin in (*self.policies, *self.defaults):
            unknown = sorted(hookspecs.capabilities(plugin) - hookspecs.CAPABILITIES)
            if unknown:
                raise PluginError(
                    f"policy {_describe(plugin)} declares unknown capabilities {unknown}: known capabilities are "
                    f"{sorted(hookspecs.CAPABILITIES)} (see daedal.core.hookspecs)",
                    code="unknown-hook",
                )
        # Names for the step trace's decided_by, made once (reprs are not free on every step).
        self._names = {id(p): _describe(p) for p in (*self.policies, *self.defaults)}
        self._hooktrace: Any = None  # pluggy's TagTracerSub when DAEDAL_TRACE_HOOKS is set
        if os.environ.get("DAEDAL_TRACE_HOOKS"):
            self.pm.trace.root.setwriter(print)
            self.pm.enable_tracing()
            # The engine dispatches the decision hooks itself (first answer wins, in list
            # order); they are traced here in pluggy's format so the trace shows who answered.
            self._hooktrace = self.pm.trace.root.get("hook")

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
        for function, argnames in self._read_impls:
            answer = function(*(state for _ in argnames))
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
        trace = self._hooktrace
        if trace is not None:
            trace.root.indent += 1
            trace(name, kwargs)
        try:
            for function, argnames, plugin in self._callers[name]:
                result = function(*(kwargs[a] for a in argnames))
                if result is not None:
                    if trace is not None:
                        trace("finish", name, "-->", result, "answered by", _describe(plugin))
                    return result, plugin
            if trace is not None:
                trace("finish", name, "--> None (no policy answered)")
            return None, None
        finally:
            if trace is not None:
                trace.root.indent -= 1

    # -- running ---------------------------------------------------------------------

    def with_policies(self, policies: Sequence[object]) -> Engine:
        """A new engine over the same adapter and config with other policies."""
        return Engine(self.adapter, policies, config=self.config)

    def replace_policy(self, old: type, new: object) -> Engine:
        """A new engine where every policy of type ``old`` is replaced by ``new``."""
        if not any(isinstance(p, old) for p in self.policies):
            raise ConfigError(
                f"no policy of type {old.__name__} to replace; policies are {[type(p).__name__ for p in self.policies]}"
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
            if isinstance(p, (bytes, bytearray, memoryview)):
                raise ConfigError(
                    f"`prompts[{i}]` is {type(p).__name__} ({bytes(p)!r:.40}): pass text as str "
                    "(e.g. data.decode('utf-8')) or token ids as a list of ints"
                )
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
        seed: int | Sequence[int] | None = None,
        record: bool | None = None,
    ) -> Result:
        """Denoise one batch of prompts.

        Args:
            prompts: Text (wrapped in the adapter's chat template), conversations, or
                token-id lists (used as they are).
            seed: Overrides ``config.seed`` for this run: one int (row ``b``'s random stream
                is derived from ``(seed, b)``), or one int per prompt (row ``b``'s stream is
                derived from ``seed[b]`` alone, so a sample draws the same numbers in any
                batch; every policy then draws from the row streams). See
                :mod:`daedal.core.streams`.
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
        per_row = seed is not None and not isinstance(seed, int)
        if seed is not None or record is not None:
            config = attrs.evolve(
                config,
                seed=seed if isinstance(seed, int) else config.seed,
                record=config.record if record is None else record,
            )
        ids = self.encode(prompts)
        device = torch.device(self.adapter.device)
        keys = row_seeds(cast(Sequence[int], seed) if per_row else config.seed, len(ids))
        generator = torch.Generator(device=device).manual_seed(config.seed)
        streams = RowStreams(torch.tensor(keys, dtype=torch.long, device=device))
        events: list[dict[str, Any]] = []

        def emit(event: Event) -> None:
            if config.record:
                events.append(event.to_dict())
            self.pm.hook.on_event(event=event, state=state)

        state = State(
            adapter=self.adapter,
            config=config,
            prompts=ids,
            generator=generator,
            streams=streams,
            batch_stream=not per_row,
            emit=emit,
        )
        run_seed: int | list[int] = list(cast(Sequence[int], seed)) if per_row else config.seed
        cache, _ = self._first("select_cache", state=state)
        # One session per run: never shared with another run, engine or thread; `generate` closes it.
        session = open_session(self.adapter, cache=cache)
        sessions.append(session)
        state = attrs.evolve(state, session=session)
        emit(RunStarted([list(p) for p in ids], [_describe(p) for p in self.policies], run_seed))
        limits = state.stash.get(LIMITS) or Limits()
        canvas, policy = self._first("initial_canvas", state=state)
        if canvas is None:
            raise NoDecisionError("no policy answered `initial_canvas`; add a length policy such as FixedLength")
        self._check_initial(canvas, policy, len(ids))
        canvas = self._bounded(canvas, limits)
        state = attrs.evolve(state, canvas=canvas)
        emit(CanvasInitialized(canvas, state.counters.forward_passes, _describe(policy)))
        cap = config.max_steps if config.max_steps is not None else step_cap(int(canvas.max_length.max()))
        step = 0
        expanded = torch.zeros((), dtype=torch.long, device=canvas.device)
        decoder: object | None = None
        stopped_by = "done"
        while True:
            state = attrs.evolve(state, canvas=canvas, step=step, window=None)
            if any(self.pm.hook.should_stop(state=state)):
                stopped_by = "policy"
                break
            bound = _spent(state, limits)
            if bound is not None:
                stopped_by = bound
                state.report.setdefault("budget", bound)
                break
            if step >= cap:
                if config.max_steps is not None:
                    stopped_by = "max_steps"
                    break
                raise PolicyError(
                    f"the run reached the engine's step cap {cap} (1024 + 4 x the longest row) with masks left: "
                    f"the policies {[_describe(p) for p in self.policies]} keep changing the canvas without finishing "
                    "it (e.g. committing one slot and remasking another every step); fix the remask rule, or set "
                    "EngineConfig(max_steps=...) to end such runs with a final fill instead",
                    code="no-progress",
                )
            window, window_by = self._first("select_window", state=state)
            if window is None:
                window = Window.whole(canvas.prompt_len, canvas.length)
            state = attrs.evolve(state, window=window)
            state = attrs.evolve(state, reads=self._reads(state))
            prediction = self._predict(state)
            unmask, unmask_by = self._first("select_unmask", state=state, prediction=prediction)
            if unmask is None:
                raise NoDecisionError(
                    f"no policy answered `select_unmask` at step {step}; policies: {[_describe(p) for p in self.policies]}"
                )
            decoder = unmask_by
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
            progressed = unmask.where.any()
            if expand is not None:
                progressed = progressed | expand.where.any()
                expanded = expanded + expand.where.sum()  # stays on the device: no sync per step
            if remask is not None:
                progressed = progressed | remask.where.any()
            if expand is not None or remask is not None:
                state.counters.reshaping_steps += 1
            # Schedules with steps that may commit nothing (Dream's eps schedule, LLaDA's zero quotas)
            # declare IDLE_STEPS; their should_stop bounds the run.
            if hookspecs.IDLE_STEPS not in hookspecs.capabilities(unmask_by) and not bool(progressed):
                raise PolicyError(
                    f"step {step} changed nothing: `select_unmask` of {_describe(unmask_by)} committed no position "
                    "and nothing was expanded; a policy must commit at least one masked position per step",
                    code="no-progress",
                )
            session.applied(AppliedStep(canvas, new, unmask, expand, remask))
            decided_by = {
                hook: self._names.get(id(by)) or _describe(by)
                for hook, by in (
                    ("select_window", window_by),
                    ("select_unmask", unmask_by),
                    ("select_expand", expand_by),
                    ("select_remask", remask_by),
                )
                if by is not None
            }
            emit(
                StepFinished(
                    step,
                    canvas,
                    new,
                    unmask,
                    expand,
                    prediction.confidence,
                    state.counters.forward_passes,
                    remask,
                    decided_by,
                )
            )
            canvas = new
            step += 1
        state.counters.expansions += int(expanded)
        canvas, filled, left = self._finish(state, canvas, step, decoder, stopped_by)
        if stopped_by == "policy" and filled == 0 and left == 0:
            stopped_by = "done"
        if stopped_by == "done" and state.report.get("budget") in ("max_forward_passes", "deadline_s"):
            stopped_by = state.report["budget"]  # a budget policy finished the run in its last allowed step
        result = self._result(state, canvas, step, stopped_by, filled, left)
        emit(RunFinished(result.stats, result.tokens))
        if config.record:
            result = attrs.evolve(result, trace=Trace(events=tuple(events), mask_id=canvas.mask_id))
        return result

    def _bounded(self, canvas: Canvas, limits: Limits) -> Canvas:
        """The initial canvas with the vocabulary and every row's ceiling set: no Expand can pass them."""
        ceiling = canvas.max_length
        max_len = getattr(self.adapter, "max_length", None)
        if max_len is not None:
            ceiling = torch.clamp(ceiling, max=int(max_len))
        if limits.max_new_tokens is not None:
            ceiling = torch.minimum(ceiling, canvas.prompt_len + limits.max_new_tokens)
        # A row that already starts past a limit keeps its length (its length policy decided so).
        ceiling = torch.maximum(ceiling, canvas.length)
        return attrs.evolve(canvas, max_length=ceiling, vocab_size=getattr(self.adapter, "vocab_size", None))

    def _predict(self, state: State) -> Prediction:
        """The step's prediction, checked: aligned ``[B, T, V]`` logits, finite where the canvas is valid,
        and proposals that are never the mask id."""
        canvas = state.canvas
        assert canvas is not None
        prediction: Prediction | None = self.pm.hook.predict(state=state)
        if prediction is None:
            raise NoDecisionError("no policy answered `predict`")
        if not isinstance(prediction, Prediction):
            raise PolicyError(
                f"hook `predict` returned {type(prediction).__name__} at step {state.step}, not a Prediction",
                code="illegal-decision",
            )
        if prediction.is_dense:
            check_logits_shape(self.adapter, prediction.logits, canvas.tokens, f"at step {state.step}")
        elif (prediction.batch_size, prediction.width) != tuple(canvas.tokens.shape):
            raise AdapterError(
                f"the step's sparse prediction covers {(prediction.batch_size, prediction.width)} "
                f"[batch, width] at step {state.step}, but the canvas is {tuple(canvas.tokens.shape)}: "
                "a session's logit source must match the canvas it was run on"
            )
        peak = prediction.peak
        if peak is None:  # only the computed columns are checked in a sparse prediction
            peak = prediction.scatter(prediction.values.amax(-1), 0.0)
        # One reduction over the vocabulary (the argmax's own, for greedy predictions): a NaN
        # anywhere in a slot's logits, a +inf, or a slot whose logits are all -inf makes its
        # peak non-finite.
        broken = ~torch.isfinite(peak) & canvas.valid
        proposes_mask = (prediction.tokens == canvas.mask_id) & canvas.valid
        flags = torch.stack([broken.any(), proposes_mask.any()]).tolist()  # one sync for both checks
        if flags[0]:
            raise AdapterError(_broken_logits_message(self.adapter, broken, peak, state.step))
        if flags[1]:
            prediction = without_mask_proposals(prediction, canvas.mask_id)
        return prediction

    def _finish(
        self, state: State, canvas: Canvas, step: int, decoder: object | None, stopped_by: str
    ) -> tuple[Canvas, int, int]:
        """Commit the masks a run ended with (the final fill), unless a reference decoder keeps them."""
        masked = canvas.masked
        left = int(masked.sum())
        if left == 0:
            return canvas, 0, 0
        reference_run = stopped_by == "policy" and state.counters.reshaping_steps == 0
        if reference_run and hookspecs.KEEPS_MASK_PROPOSALS in hookspecs.capabilities(decoder):
            warnings.warn(
                f"{left} slots are still masked: the decoder {_describe(decoder)} reproduces a reference that "
                "leaves a slot masked when the model proposes the mask id there (result.stats.masks_left)",
                DaedalWarning,
                stacklevel=3,
            )
            return canvas, 0, left
        window = Window.whole(canvas.prompt_len, canvas.length)
        state = attrs.evolve(state, canvas=canvas, step=step, window=window)
        reads = self._reads(state)  # the fill reads every mask, and the wrappers what they read
        state = attrs.evolve(state, reads=None if reads is None else reads | masked)
        prediction = self._predict(state)
        unmask = Unmask(where=masked, tokens=prediction.tokens)
        new = canvas.apply(unmask)
        decided_by = {"select_unmask": "engine (final fill)"}
        state.emit(
            StepFinished(
                step, canvas, new, unmask, None, prediction.confidence, state.counters.forward_passes, None, decided_by
            )
        )
        return new, left, 0

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
        if max_len is not None and int(canvas.length.max()) > max_len:
            raise ConfigError(
                f"the initial canvas has {canvas.width} columns but the model accepts at most {max_len}: "
                "lower the generation length or shorten the prompts"
            )

    def _result(self, state: State, canvas: Canvas, steps: int, stopped_by: str, filled: int, left: int) -> Result:
        tokens = canvas.generated()
        special = set(getattr(self.adapter, "eos_ids", ())) | {canvas.pad_id, canvas.mask_id}
        generated = sum(len(t) for t in tokens)
        effective = sum(1 for row in tokens for t in row if t not in special)
        c = state.counters
        stats = Stats(
            forward_passes=c.forward_passes,
            model_calls=c.model_calls,
            steps=steps,
            canvas_tokens=c.canvas_tokens,
            generated_tokens=generated,
            effective_tokens=effective,
            expansions=c.expansions,
            wall_time=state.elapsed(),
            model_time=c.model_time,
            stopped_by=stopped_by,
            final_fill=filled,
            masks_left=left,
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


def _check_adapter(adapter: object) -> None:
    mask_id, eos_id = getattr(adapter, "mask_id", None), getattr(adapter, "eos_id", None)
    if mask_id is not None and mask_id == eos_id:
        raise AdapterError(
            f"adapter {type(adapter).__name__} has mask_id == eos_id == {mask_id}: the engine could not tell a masked "
            "slot from an end of text; give the adapter distinct mask and EOS ids"
        )
    vocab = getattr(adapter, "vocab_size", None)
    if vocab is not None and mask_id is not None and not 0 <= mask_id < vocab:
        raise AdapterError(
            f"adapter {type(adapter).__name__} has mask_id {mask_id} outside its vocabulary [0, {vocab}): "
            "fix mask_id or vocab_size"
        )


#: The hooks that make a policy (or a bundle of parts) a complete decoder on its own.
_DECODER_HOOKS = frozenset({"initial_canvas", "select_unmask"})


def _refuse_two_decoders(policies: Iterable[object]) -> None:
    """Two complete decoders in one list would silently run as a hybrid: refuse them."""
    decoders = []
    for policy in policies:
        hooks = {
            hook
            for part in flatten_policies([policy])
            for hook, opts in _hook_names(part).items()
            if not opts.get("wrapper") and not opts.get("hookwrapper")
        }
        if _DECODER_HOOKS <= hooks:
            decoders.append(policy)
    if len(decoders) > 1:
        names = [type(d).__name__ for d in decoders]
        raise ConfigError(
            f"`policies` holds {len(decoders)} complete decoders {names}: each answers both `initial_canvas` and "
            "`select_unmask`, so only the first would decide and the result would be a silent hybrid. List one "
            "decoder, and add single parts (a length policy, an unmask rule, Refine, Budget) to change it",
            code="conflicting-decoders",
        )


def _spent(state: State, limits: Limits) -> str | None:
    """The name of the engine-enforced limit the next step would pass, or None."""
    if limits.max_forward_passes is not None and state.counters.forward_passes >= limits.max_forward_passes:
        return "max_forward_passes"
    if limits.deadline_s is not None and state.elapsed() >= limits.deadline_s:
        return "deadline_s"
    return None


def _broken_logits_message(adapter: object, broken: torch.Tensor, peak: torch.Tensor, step: int) -> str:
    rows = sorted(set(torch.nonzero(broken)[:, 0].tolist()))
    bad = peak[broken]
    kinds = []
    if bool(torch.isnan(bad).any()):
        kinds.append("NaN")
    if bool((bad == float("inf")).any()):
        kinds.append("+inf")
    if bool((bad == float("-inf")).any()):
        kinds.append("all -inf")
    return (
        f"adapter {type(adapter).__name__} returned non-finite logits ({', '.join(kinds)}) at step {step} in rows "
        f"{rows[:16]}{'...' if len(rows) > 16 else ''} ({int(broken.sum())} slots): the model produced no usable "
        "prediction there (NaN weights, an overflow in low precision, a masked-out row); check the checkpoint and dtype"
    )
