"""LLaDA's fixed-length, block semi-autoregressive decoding (reference semantics a.1, a.2).

:class:`LLaDADecoding` takes the reference ``generate()``'s parameter names and is a bundle
of the core's ``FixedLength``, ``SemiAutoregressive`` and ``GumbelTemperature``, plus
``ClassifierFreeGuidance`` when ``cfg_scale > 0``.

* default (a.1, the LLaDA repository): ``steps`` must be a multiple of the number of
  blocks, Gumbel noise in fp64, and each row is its own prompt (right padding), so a
  row's output does not depend on the batch.
* ``reference_compat=True`` (a.2, the fixed-length baseline of the DAEDAL repository,
  the one the paper compares with): prompts left-padded with EOS and attended (no
  attention mask), ``steps // blocks`` steps per block (at least one) instead of a
  divisibility check, Gumbel noise in fp32.
"""

from __future__ import annotations

from typing import Literal

import attrs

from daedal.core import ConfigError, FixedLength, GumbelTemperature, SemiAutoregressive
from daedal.policies._bundle import from_part, part_kwargs
from daedal.policies._validate import boolean, int_at_least
from daedal.policies.reference import baseline_steps, daedal_baseline_parts
from daedal.policies.sampling import ClassifierFreeGuidance


@attrs.frozen(kw_only=True)
class LLaDASchedule(SemiAutoregressive):
    """The core's ``SemiAutoregressive``, with steps whose quota is zero.

    With more steps per block than masks, LLaDA's transfer schedule gives some steps a
    quota of 0: they still run a forward pass and commit nothing, as in the reference
    (the core class declares the ``IDLE_STEPS`` capability for this).
    """


@attrs.frozen(kw_only=True)
class LLaDADecoding:
    """LLaDA's ``generate(gen_length, steps, block_length, temperature, cfg_scale, remasking)``.

    Mask and EOS ids come from the adapter.

    Attributes:
        gen_length: Generation slots per row.
        steps: Denoising steps over all blocks.
        block_length: Semi-autoregressive block size (must divide ``gen_length``).
        temperature: Gumbel-max temperature (0: greedy).
        cfg_scale: Classifier-free guidance scale (0: off; one extra forward pass per step).
        remasking: ``"low_confidence"`` or ``"random"``.
        reference_compat: The DAEDAL repository's baseline variant (see the module).
        streams: ``"batch"`` (the reference's draws over the batch tensor) or ``"rows"``
            (per-row streams: sampling and random remasking do not depend on the batch).
    """

    # Each field is the part's own (validator, and default where LLaDA's generate() has none
    # of its own): see daedal.policies._bundle.
    gen_length: int = from_part(FixedLength, "gen_length")
    steps: int = from_part(SemiAutoregressive, "steps", default=128, validator=int_at_least(1))
    block_length: int = from_part(SemiAutoregressive, "block_length", default=128, validator=int_at_least(1))
    temperature: float = from_part(GumbelTemperature, "temperature")
    cfg_scale: float = from_part(ClassifierFreeGuidance, "scale")
    remasking: Literal["low_confidence", "random"] = from_part(SemiAutoregressive, "remasking")
    reference_compat: bool = attrs.field(default=False, validator=boolean)
    streams: Literal["batch", "rows"] = from_part(SemiAutoregressive, "streams")

    def __attrs_post_init__(self) -> None:
        if self.gen_length % self.block_length:
            raise ConfigError(
                f"`block_length` {self.block_length} does not divide `gen_length` {self.gen_length}: "
                "choose a block length that divides the generation length"
            )
        blocks = self.gen_length // self.block_length
        if not self.reference_compat and self.steps % blocks:
            raise ConfigError(
                f"`steps` {self.steps} is not a multiple of the number of blocks {blocks} "
                f"(gen_length {self.gen_length} / block_length {self.block_length}): choose steps divisible by "
                f"{blocks}, or reference_compat=True for the DAEDAL baseline's steps // blocks per block"
            )

    @property
    def total_steps(self) -> int:
        """Steps the run takes: ``steps``, or ``max(1, steps // blocks) * blocks`` in reference mode."""
        if self.reference_compat:
            return baseline_steps(self.steps, self.gen_length // self.block_length)
        return self.steps

    def parts(self) -> list[object]:
        """The policies this bundle stands for."""
        if self.reference_compat:
            return daedal_baseline_parts(self)
        parts: list[object] = [
            FixedLength(**part_kwargs(self, FixedLength)),
            LLaDASchedule(**part_kwargs(self, SemiAutoregressive)),
        ]
        if self.temperature > 0:
            gumbel = part_kwargs(self, GumbelTemperature)
            parts.append(GumbelTemperature(**gumbel, precision="float64", streams=self.streams))
        if self.cfg_scale > 0:
            parts.append(ClassifierFreeGuidance(**part_kwargs(self, ClassifierFreeGuidance)))
        return parts
