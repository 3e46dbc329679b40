"""The hooks of the denoising loop. Each docstring here is the reference for its hook.

A policy is any object with methods named after these hooks and marked with
:data:`hookimpl`. An implementation may accept any subset of a hook's arguments.
One run calls the hooks in this order::

    canvas = initial_canvas(state)                        # 1, once
    on_event(CanvasInitialized)
    loop:
        if any(should_stop(state)): break                 # 2
        (stop at max_steps or a spent limit; raise at the derived step cap)
        window     = select_window(state)                 # 3
        prediction = predict(state)                       # 4  one forward pass; wrappers post-process;
                                                          #    the engine checks the logits and applies
                                                          #    the proposal rule (never the mask id)
        unmask     = select_unmask(state, prediction)     # 5
        expand     = select_expand(state, prediction, unmask)   # 6
        remask     = select_remask(state, prediction, unmask)   # 7
        canvas     = canvas.apply(unmask, expand, remask) # 8  the engine applies; policies never mutate
        on_event(StepFinished)
    if masks are left: predict, commit them all           # the final fill (see KEEPS_MASK_PROPOSALS)
    on_event(RunFinished)

For the firstresult hooks, the first policy listed in ``Engine(policies=[...])``
answers first; the built-in defaults answer last. The engine dispatches them itself
(hook tracing with ``DAEDAL_TRACE_HOOKS=1`` shows them and who answered) and records who
answered in each ``StepFinished.decided_by``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from daedal.core.canvas import Canvas, Expand, Remask, Unmask
    from daedal.core.events import Event
    from daedal.core.prediction import Prediction
    from daedal.core.state import State
    from daedal.core.window import Window

PROJECT = "daedal"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- Capabilities ----------------------------------------------------------------------
#
# A policy declares what the engine may expect of it in a ``daedal_capabilities`` attribute
# (a class attribute or a property): a frozenset of the names below. The engine reads the
# capabilities of the policy that answered ``select_unmask``; an unknown name is refused
# when the engine is built.

#: Some steps may commit nothing (LLaDA's zero quotas, Dream's eps schedule): the engine's
#: no-progress guard does not apply, and the policy's ``should_stop`` must bound the run.
IDLE_STEPS = "idle-steps"
#: The policy reproduces a reference that leaves a slot masked when the model proposes the
#: mask id there (LLaDA's ``generate``, Dream's ``diffusion_generate``). When such a decoder's
#: ``should_stop`` ends a run in which nothing was expanded or remasked (the reference's
#: own run), the engine leaves those slots masked, counts them in ``result.stats.masks_left``
#: and warns. Every other run ends with no mask (the engine's final fill).
KEEPS_MASK_PROPOSALS = "keeps-mask-proposals"
#: Every capability name the engine knows.
CAPABILITIES = frozenset({IDLE_STEPS, KEEPS_MASK_PROPOSALS})


def capabilities(policy: object) -> frozenset[str]:
    """The capabilities ``policy`` declares (its ``daedal_capabilities``, empty when it has none)."""
    declared = getattr(policy, "daedal_capabilities", None)
    if declared is None:
        return frozenset()
    if isinstance(declared, str):
        declared = {declared}
    return frozenset(declared)


# -- Set-up (once per run) ---------------------------------------------------------


@hookspec(firstresult=True)
def initial_canvas(state: State) -> Canvas | None:
    """Build the canvas the loop starts from.

    Called once, before the first step, with ``state.canvas`` set to None and
    ``state.prompts`` holding each row's prompt ids. A length policy may run forward
    passes here through ``state.forward`` (DAEDAL's stage 1 does); they are counted.
    Stops at the first non-None result.

    Args:
        state: The run's state; ``state.prompts`` and ``state.adapter`` are what a
            length policy needs.

    Returns:
        The starting :class:`~daedal.core.Canvas`, or None to defer to the next policy.

    Default:
        ``FixedLength(gen_length=128)``: each prompt followed by 128 masks.
    """


# -- Step decisions (called once per denoising step, in this order) -------------------


@hookspec
def should_stop(state: State) -> bool | None:
    """Say whether the run is over, before the step's forward pass.

    Every implementation is called; the run stops if any returns True.

    Args:
        state: The run's state, with the current canvas and step index.

    Returns:
        True to stop, False or None to let the run go on.

    Default:
        ``NoMasksLeft``: stop once no row holds a mask.
    """


@hookspec(firstresult=True)
def select_window(state: State) -> Window | None:
    """Choose, per row, the span of columns this step may decide on.

    Called at the start of each step; the chosen window is then visible as
    ``state.window`` to ``predict``, ``select_unmask`` and ``select_expand``, and is
    passed to the adapter so that a cached adapter may recompute only what it needs.
    Stops at the first non-None result.

    Args:
        state: The run's state (``state.window`` is None during this call).

    Returns:
        A :class:`~daedal.core.Window`, or None to defer.

    Default:
        ``SemiAutoregressive``: LLaDA's block schedule; the whole generation region
        when its block length equals the generation length.
    """


@hookspec(firstresult=True)
def predict(state: State) -> Prediction | None:
    """Produce this step's :class:`~daedal.core.Prediction` (one forward pass).

    Implementations with ``@hookimpl(wrapper=True)`` surround the call and may rewrite
    its result: temperature sampling, classifier-free guidance and token suppression
    are wrappers. Stops at the first non-None result.

    Args:
        state: The run's state; ``state.forward(tokens, length)`` runs the counted forward.

    Returns:
        A prediction aligned with ``state.canvas``, or None to defer.

    Default:
        The adapter's logits, with greedy (argmax) proposals.
    """


@hookspec(firstresult=True)
def select_unmask(state: State, prediction: Prediction) -> Unmask | None:
    """Choose which masked positions to commit this step, and to which ids.

    Stops at the first non-None result; if every implementation returns None the engine
    raises :class:`~daedal.core.NoDecisionError`. A step that changes nothing raises
    :class:`~daedal.core.PolicyError`, unless the answering policy declares the
    :data:`IDLE_STEPS` capability (a schedule whose steps may commit nothing, and whose
    ``should_stop`` bounds the run by its step count).

    ``prediction.tokens`` are never the mask id (the engine's proposal rule; the hook's own
    proposals are ``prediction.raw_tokens``). Committed ids must lie in the adapter's
    vocabulary ``[0, vocab_size)``.

    Args:
        state: The run's state with ``state.window`` set.
        prediction: This step's prediction.

    Returns:
        An :class:`~daedal.core.Unmask` whose positions are masked generation slots and
        whose ids are not the mask id; or None to defer.

    Default:
        ``SemiAutoregressive``: LLaDA's low-confidence remasking with its linear
        transfer schedule.
    """


@hookspec(firstresult=True)
def select_expand(state: State, prediction: Prediction, unmask: Unmask) -> Expand | None:
    """Choose masked positions to widen into blocks of new masks this step.

    Called after ``select_unmask`` with the same prediction. Positions in
    ``unmask.where`` are not eligible. Stops at the first non-None result.

    Args:
        state: The run's state.
        prediction: This step's prediction.
        unmask: The commit decision already taken for this step.

    Returns:
        An :class:`~daedal.core.Expand`, or None for no expansion.

    Default:
        No expansion.
    """


@hookspec(firstresult=True)
def select_remask(state: State, prediction: Prediction, unmask: Unmask) -> Remask | None:
    """Choose committed tokens to turn back into masks, so later steps predict them again.

    Called after ``select_expand``. Refinement policies use it to revise earlier choices
    (for example the least confident tokens once a block is full). Positions must hold
    committed generation tokens and be disjoint from ``unmask.where`` and the step's
    expansion. Stops at the first non-None result.

    Args:
        state: The run's state.
        prediction: This step's prediction.
        unmask: The commit decision already taken for this step.

    Returns:
        A :class:`~daedal.core.Remask`, or None for no remasking.

    Default:
        No remasking.
    """


# -- Observers ----------------------------------------------------------------------------


@hookspec
def on_event(event: Event, state: State) -> None:
    """Observe the run: start, initial canvas, each finished step, length changes, end.

    Every implementation is called; return values are ignored. Observers must not
    change decoding: they see values, never the means to change them.

    Args:
        event: The event (see :mod:`daedal.core.events`).
        state: The run's state when the event happened.
    """
