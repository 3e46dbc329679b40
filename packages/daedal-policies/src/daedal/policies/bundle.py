"""``Daedal``: the whole of DAEDAL as one bundle of small policies."""

from __future__ import annotations

import attrs

from daedal.core import ConfigError, GumbelTemperature
from daedal.policies._validate import (
    boolean,
    initial_within_max,
    int_at_least,
    non_negative,
    unit_interval,
)
from daedal.policies.cache import KVCache, check_cache
from daedal.policies.expand import LowConfidenceExpand
from daedal.policies.length import EosConfidenceLength
from daedal.policies.sampling import ClassifierFreeGuidance
from daedal.policies.unmask import BlockPointer, ThresholdUnmask


@attrs.frozen(kw_only=True)
class Daedal:
    """DAEDAL (training-free variable-length denoising) with the paper's parameters (``daedal.md`` §1).

    A bundle: the engine replaces it by :meth:`parts`, each usable alone:
    ``EosConfidenceLength`` (stage 1 and the EOS tail), ``BlockPointer`` (the block
    window), ``ThresholdUnmask`` (the fill rule with its fallbacks), ``LowConfidenceExpand``
    (mask insertion), plus ``GumbelTemperature`` (fp32) and ``ClassifierFreeGuidance`` when
    asked for.

    ``reference_compat=True`` reproduces the official ``generate()`` token for token,
    quirks included (prompts left-padded with EOS and attended, batch-maximum stage-1
    stop test, truncation when an insertion passes ``max_gen_length``); ties, which the
    reference leaves to GPU kernels, go to the lowest column in both modes. The default
    mode keeps the algorithm and drops the accidents: each row's decisions and output are
    independent of the rest of the batch, an insertion that does not fit is skipped
    instead of cutting the row, and guidance works after length changes.

    Attributes:
        initial_gen_length: ``L_init``.
        max_gen_length: ``L_max`` (generation slots, EOS tail included).
        block_length: Stage-2 block size.
        high_conf_threshold: Fill threshold ``τ_high`` (strict ``>``).
        low_conf_threshold: Insertion-candidate threshold ``τ_low`` (strict ``<``).
        expansion_factor: Stage-1 growth and stage-2 insertion size (>= 2).
        eos_confidence_threshold: Stage-1 stop threshold ``τ_eos``.
        expand_eos_confidence_threshold: No insertion once EOS confidence reaches ``τ_expand``.
        eos_check_tokens: EOS-confidence window ``W_eos`` (the EOS tail is half of it).
        temperature: Gumbel-max temperature (0: greedy).
        cfg_scale: Classifier-free guidance scale (0: off).
        reference_compat: Reproduce the reference implementation exactly.
        cache: None, ``"prefix"`` or ``"dual"``: a KV cache for stage 2 (insertions fall inside the
            current block, so the cached prefix stays valid and the dual cache's suffix shifts with
            them; see :mod:`daedal.policies.cache`).
    """

    initial_gen_length: int = attrs.field(default=64, validator=int_at_least(1))
    max_gen_length: int = attrs.field(default=2048, validator=int_at_least(1))
    block_length: int = attrs.field(default=32, validator=int_at_least(1))
    high_conf_threshold: float = attrs.field(default=0.9, validator=unit_interval)
    low_conf_threshold: float = attrs.field(default=0.1, validator=unit_interval)
    expansion_factor: int = attrs.field(default=8, validator=int_at_least(2))
    eos_confidence_threshold: float = attrs.field(default=0.5, validator=unit_interval)
    expand_eos_confidence_threshold: float = attrs.field(default=0.9, validator=unit_interval)
    eos_check_tokens: int = attrs.field(default=32, validator=int_at_least(1))
    temperature: float = attrs.field(default=0.0, validator=non_negative)
    cfg_scale: float = attrs.field(default=0.0, validator=non_negative)
    reference_compat: bool = attrs.field(default=False, validator=boolean)
    cache: str | None = attrs.field(default=None, validator=check_cache)

    def __attrs_post_init__(self) -> None:
        initial_within_max(self.initial_gen_length, self.max_gen_length)
        if self.reference_compat and self.cfg_scale > 0 and self.initial_gen_length != self.max_gen_length:
            raise ConfigError(
                f"`cfg_scale` {self.cfg_scale} with `reference_compat=True`: the reference implementation fails "
                "with an indexing error as soon as the canvas length changes (daedal.md Q9); use the default mode "
                "(reference_compat=False), where guidance follows the canvas, or cfg_scale=0"
            )

    def parts(self) -> list[object]:
        """The policies this bundle stands for, in the order they answer."""
        parts: list[object] = [
            EosConfidenceLength(
                initial_gen_length=self.initial_gen_length,
                max_gen_length=self.max_gen_length,
                expansion_factor=self.expansion_factor,
                eos_confidence_threshold=self.eos_confidence_threshold,
                eos_check_tokens=self.eos_check_tokens,
                reference_compat=self.reference_compat,
            ),
            BlockPointer(block_length=self.block_length),
            ThresholdUnmask(threshold=self.high_conf_threshold),
            LowConfidenceExpand(
                low_conf_threshold=self.low_conf_threshold,
                expansion_factor=self.expansion_factor,
                expand_eos_confidence_threshold=self.expand_eos_confidence_threshold,
                eos_check_tokens=self.eos_check_tokens,
                reference_compat=self.reference_compat,
            ),
        ]
        if self.temperature > 0:
            # The reference draws its noise over the batch tensor; the default mode draws per row,
            # so a row samples the same tokens in any batch.
            streams = "batch" if self.reference_compat else "rows"
            parts.append(GumbelTemperature(temperature=self.temperature, precision="float32", streams=streams))
        if self.cfg_scale > 0:
            parts.append(ClassifierFreeGuidance(scale=self.cfg_scale))
        if self.cache is not None:
            parts.append(KVCache(kind=self.cache))
        return parts
