"""LLaDA's fixed-length, block semi-autoregressive decoding (``baselines.md`` a.1, a.2).

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
from daedal.policies._validate import boolean, int_at_least, non_negative, one_of
from daedal.policies.cache import BlockQuotaUnmask, CachedBlocks, KVCache, check_cache
from daedal.policies.padding import LeftPaddedFixedLength
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
        cache: None, ``"prefix"`` or ``"dual"``: Fast-dLLM's ``generate_with_prefix_cache`` /
            ``generate_with_dual_cache`` (each block runs until it holds no mask, with LLaDA's
            per-block transfer schedule; see :mod:`daedal.policies.cache`).
        streams: ``"batch"`` (the reference's draws over the batch tensor) or ``"rows"``
            (per-row streams: sampling and random remasking do not depend on the batch).
    """

    gen_length: int = attrs.field(default=128, validator=int_at_least(1))
    steps: int = attrs.field(default=128, validator=int_at_least(1))
    block_length: int = attrs.field(default=128, validator=int_at_least(1))
    temperature: float = attrs.field(default=0.0, validator=non_negative)
    cfg_scale: float = attrs.field(default=0.0, validator=non_negative)
    remasking: Literal["low_confidence", "random"] = attrs.field(
        default="low_confidence", validator=one_of("low_confidence", "random")
    )
    reference_compat: bool = attrs.field(default=False, validator=boolean)
    cache: str | None = attrs.field(default=None, validator=check_cache)
    streams: Literal["batch", "rows"] = attrs.field(default="batch", validator=one_of("batch", "rows"))

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
        blocks = self.gen_length // self.block_length
        return max(1, self.steps // blocks) * blocks if self.reference_compat else self.steps

    def parts(self) -> list[object]:
        """The policies this bundle stands for."""
        length: object = (
            LeftPaddedFixedLength(gen_length=self.gen_length)
            if self.reference_compat
            else FixedLength(gen_length=self.gen_length)
        )
        blocks = self.gen_length // self.block_length
        parts: list[object] = [length]
        if self.cache is None:
            parts.append(LLaDASchedule(
                    block_length=self.block_length, steps=self.total_steps, remasking=self.remasking, streams=self.streams
                ))
        else:
            parts += [
                CachedBlocks(block_length=self.block_length),
                BlockQuotaUnmask(steps_per_block=self.total_steps // blocks, remasking=self.remasking),
                KVCache(kind=self.cache),
            ]
        if self.temperature > 0:
            precision: Literal["float64", "float32"] = "float32" if self.reference_compat else "float64"
            parts.append(GumbelTemperature(temperature=self.temperature, precision=precision, streams=self.streams))
        if self.cfg_scale > 0:
            parts.append(ClassifierFreeGuidance(scale=self.cfg_scale))
        return parts
