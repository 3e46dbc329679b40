"""Per-sample costs of a batched ``generate``: forward passes and canvas tokens of each row.

The engine's :class:`~daedal.core.Stats` are the batch's: a row that finished early still
rides along the passes the others need, so batch-level NFE would grow with the batch size
for identical outputs. :class:`RowCosts` observes the run and charges each row only the
denoising steps in which it still had masks (and, for those, its own length in canvas
tokens), which is what the row costs alone. Passes made before the loop (a length
policy's stage-1 probes) are the batch's and are charged to every row, their canvas
tokens shared equally. Model calls (``Stats.model_calls``: a guidance step's batched
conditional and unconditional pass is one call, two forward passes) are charged the same way.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from daedal.core import CanvasInitialized, StepFinished, hookimpl

__all__ = ["RowCosts"]


@attrs.define
class RowCosts:
    """An observer policy; after the run, ``forward_passes`` and ``canvas_tokens`` are per row."""

    _passes: torch.Tensor | None = None
    _tokens: torch.Tensor | None = None
    _last_passes: int = 0
    _calls: torch.Tensor | None = None
    _last_calls: int = 0

    @hookimpl
    def on_event(self, event: Any, state: Any) -> None:
        if isinstance(event, CanvasInitialized):
            batch = event.canvas.batch_size
            device = event.canvas.device
            self._last_passes = int(event.forward_passes)
            self._passes = torch.full((batch,), self._last_passes, dtype=torch.long, device=device)
            self._last_calls = int(state.counters.model_calls)
            self._calls = torch.full((batch,), self._last_calls, dtype=torch.long, device=device)
            self._tokens = torch.full(
                (batch,), int(state.counters.canvas_tokens) // batch, dtype=torch.long, device=device
            )
        elif isinstance(event, StepFinished) and self._passes is not None and self._tokens is not None:
            delta = int(event.forward_passes) - self._last_passes
            self._last_passes = int(event.forward_passes)
            active = event.before.masked.any(dim=-1).long()  # rows that still had work this step
            self._passes += active * delta
            self._tokens += active * delta * event.before.length
            if self._calls is not None:
                calls = int(state.counters.model_calls)
                self._calls += active * (calls - self._last_calls)
                self._last_calls = calls

    def per_row(self) -> tuple[list[int], list[int]] | None:
        """``(forward_passes, canvas_tokens)`` per row, or None when the run never started its loop."""
        if self._passes is None or self._tokens is None:
            return None
        return self._passes.tolist(), self._tokens.tolist()

    def model_calls(self) -> list[int] | None:
        """Model calls per row (see the module), or None when the run never started its loop."""
        return None if self._calls is None else self._calls.tolist()
