"""The one return type of a run."""

from __future__ import annotations

from typing import Any

import attrs

from daedal.core.canvas import Canvas
from daedal.core.events import Trace


@attrs.frozen(kw_only=True)
class Stats:
    """What a run cost and produced, summed over the batch.

    Attributes:
        forward_passes: Model forward passes (each over the whole batch). A classifier-free
            guidance step counts 2 -- its conditional and unconditional canvases -- even though
            it runs as one batched call, so the figure equals the reference implementations'
            per-canvas count and stays comparable with unguided runs (NFE in the papers).
        model_calls: Batched model invocations (each over the whole batch): a guidance step is 1.
            Equal to ``forward_passes`` unless guidance (or another policy stacking canvases) ran.
        steps: Denoising steps of the loop (stage-1 probes of a length policy excluded).
        canvas_tokens: Tokens fed to the model, summed over forward passes (batch x width).
        generated_tokens: Generation slots in the final canvases (the paper's N_token, summed).
        effective_tokens: Generated tokens that are not EOS, end-of-turn, pad or mask.
        expansions: Masked positions widened into mask blocks during the loop.
        wall_time: Seconds for the whole run.
        model_time: Seconds inside the model's forward passes.
        stopped_by: Why the loop ended: ``"done"`` (no mask left), ``"policy"`` (a
            ``should_stop`` answered True, e.g. a schedule's last step), ``"max_steps"``
            (``EngineConfig.max_steps``), ``"max_forward_passes"`` or ``"deadline_s"`` (the
            run's :class:`~daedal.core.state.Limits`).
        final_fill: Slots the engine's final fill committed: when the loop ends with masks
            left, one more forward pass commits every remaining mask with its proposal
            (never the mask id), so the tokens hold no mask.
        masks_left: Slots still masked in the result; non-zero only when the decoder declares
            ``KEEPS_MASK_PROPOSALS`` (a reference that leaves mask proposals masked).
    """

    forward_passes: int
    steps: int
    canvas_tokens: int
    generated_tokens: int
    effective_tokens: int
    expansions: int
    wall_time: float
    model_time: float
    stopped_by: str = "done"
    final_fill: int = 0
    masks_left: int = 0
    model_calls: int = 0

    @property
    def effective_ratio(self) -> float:
        """``effective_tokens / generated_tokens`` (the paper's E_ratio); 0 when nothing was generated."""
        return self.effective_tokens / self.generated_tokens if self.generated_tokens else 0.0

    @property
    def overhead_time(self) -> float:
        """Seconds outside the model forward."""
        return self.wall_time - self.model_time


@attrs.frozen(kw_only=True)
class Result:
    """What ``Engine.generate`` returns.

    Attributes:
        tokens: Per row, the generated ids (prompt excluded), exactly the row's generation slots.
        texts: Per row, the decoded generation (special tokens kept), or None if the adapter cannot decode.
        lengths: Per row, the number of generation slots.
        stats: Batch statistics.
        canvas: The final canvas.
        trace: The step trace when recording was on.
        info: Facts policies reported (e.g. ``{"budget": "forward_passes"}``).
    """

    tokens: list[list[int]]
    texts: list[str] | None
    lengths: list[int]
    stats: Stats
    canvas: Canvas
    trace: Trace | None = None
    info: dict[str, Any] = attrs.field(factory=dict)
