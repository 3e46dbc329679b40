"""The reference implementations' accidents, quarantined: what ``reference_compat=True`` switches on.

The default classes (``EosConfidenceLength``, ``LowConfidenceExpand``, ``LLaDADecoding``,
``Daedal``) read as the algorithm; each takes ``reference_compat=True`` as its public
switch and dispatches here, in one place, for the behaviour of the official code that is
reproduced token for token but not recommended. Section and quirk numbers are those of the
"Reference semantics" page of the documentation (``docs/reference/semantics.md``).

* :class:`ReferenceStage1`: DAEDAL stage 1 as the official ``generate()`` runs it —
  prompts left-padded with EOS and attended (Q3), every row's growth decision re-taken at
  each iteration, and the batch-maximum stop test (Q2).
* :func:`reference_insertion_room`: stage-2 insertion whenever the row is below its
  maximum, cutting the row at the maximum afterwards (Q6).
* :func:`daedal_baseline_parts`: the fixed-length baseline of the DAEDAL repository
  (reference semantics a.2): left-padded attended prompts, ``steps // blocks`` steps per block, fp32
  Gumbel noise.
* :func:`check_reference_guidance`: guidance with a changing canvas, which the reference
  cannot run (Q9), is refused up front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from daedal.core import ConfigError, GumbelTemperature

if TYPE_CHECKING:
    from daedal.core import Canvas


class ReferenceStage1:
    """Stage-1 rules of the official ``generate()`` (reference semantics §5, Q2, Q3)."""

    #: Prompts are left-padded with the EOS id and the pads are attended (Q3).
    left_pad = True

    @staticmethod
    def grow(
        low: torch.Tensor, stopped: torch.Tensor, length: torch.Tensor, cap: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(wants, grow, stopped): every row decides again at each iteration; none stays stopped."""
        return low, low & (length < cap), stopped

    @staticmethod
    def stops(new: torch.Tensor, length: torch.Tensor) -> bool:
        """Q2: the loop ends when no growing row would pass the batch's longest row."""
        return int(new.max()) <= int(length.max())


def reference_insertion_room(canvas: Canvas, factor: int) -> tuple[torch.Tensor, bool]:
    """(room per row, truncate): insert whenever a row is below its maximum, then cut it there (Q6)."""
    return canvas.length < canvas.max_length, True


def baseline_steps(steps: int, blocks: int) -> int:
    """Steps of the DAEDAL repository's baseline: ``max(1, steps // blocks)`` per block (reference semantics a.2)."""
    return max(1, steps // blocks) * blocks


def daedal_baseline_parts(bundle: Any) -> list[object]:
    """``LLaDADecoding(reference_compat=True)``: the DAEDAL repository's fixed-length baseline (reference semantics a.2)."""
    from daedal.core import FixedLength, SemiAutoregressive
    from daedal.policies._bundle import part_kwargs
    from daedal.policies.llada import LLaDASchedule
    from daedal.policies.padding import LeftPaddedFixedLength
    from daedal.policies.sampling import ClassifierFreeGuidance

    blocks = bundle.gen_length // bundle.block_length
    schedule = {**part_kwargs(bundle, SemiAutoregressive), "steps": baseline_steps(bundle.steps, blocks)}
    parts: list[object] = [LeftPaddedFixedLength(**part_kwargs(bundle, FixedLength)), LLaDASchedule(**schedule)]
    if bundle.temperature > 0:
        gumbel = part_kwargs(bundle, GumbelTemperature)
        parts.append(GumbelTemperature(**gumbel, precision="float32", streams=bundle.streams))
    if bundle.cfg_scale > 0:
        parts.append(ClassifierFreeGuidance(**part_kwargs(bundle, ClassifierFreeGuidance)))
    return parts


def check_reference_guidance(cfg_scale: float, initial_gen_length: int, max_gen_length: int) -> None:
    """Refuse guidance where the reference crashes: as soon as the canvas length changes (Q9).

    Raises:
        ConfigError: With the way out (the default mode, or no guidance).
    """
    if cfg_scale > 0 and initial_gen_length != max_gen_length:
        raise ConfigError(
            f"`cfg_scale` {cfg_scale} with `reference_compat=True`: the reference implementation fails "
            "with an indexing error as soon as the canvas length changes (reference semantics Q9); use the "
            "default mode (reference_compat=False), where guidance follows the canvas, or cfg_scale=0"
        )
