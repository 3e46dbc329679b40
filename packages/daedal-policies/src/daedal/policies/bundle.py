"""``Daedal``: the whole of DAEDAL as one bundle of small policies."""

from __future__ import annotations

import attrs

from daedal.core import GumbelTemperature
from daedal.policies._bundle import from_part, part_kwargs
from daedal.policies._validate import initial_within_max
from daedal.policies.expand import LowConfidenceExpand
from daedal.policies.length import EosConfidenceLength
from daedal.policies.reference import check_reference_guidance
from daedal.policies.sampling import ClassifierFreeGuidance
from daedal.policies.unmask import BlockPointer, ThresholdUnmask


@attrs.frozen(kw_only=True)
class Daedal:
    """DAEDAL (training-free variable-length denoising) with the paper's parameters (reference semantics §1).

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
    instead of cutting the row, and guidance works after length changes. The reproduced
    quirks live in :mod:`daedal.policies.reference`; each field is its part's own (same
    default and validation).

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
    """

    # Each field is the part's own (default and validator): see daedal.policies._bundle.
    initial_gen_length: int = from_part(EosConfidenceLength, "initial_gen_length")
    max_gen_length: int = from_part(EosConfidenceLength, "max_gen_length")
    block_length: int = from_part(BlockPointer, "block_length")
    high_conf_threshold: float = from_part(ThresholdUnmask, "threshold")
    low_conf_threshold: float = from_part(LowConfidenceExpand, "low_conf_threshold")
    expansion_factor: int = from_part(EosConfidenceLength, "expansion_factor")
    eos_confidence_threshold: float = from_part(EosConfidenceLength, "eos_confidence_threshold")
    expand_eos_confidence_threshold: float = from_part(LowConfidenceExpand, "expand_eos_confidence_threshold")
    eos_check_tokens: int = from_part(EosConfidenceLength, "eos_check_tokens")
    temperature: float = from_part(GumbelTemperature, "temperature")
    cfg_scale: float = from_part(ClassifierFreeGuidance, "scale")
    reference_compat: bool = from_part(EosConfidenceLength, "reference_compat")

    def __attrs_post_init__(self) -> None:
        initial_within_max(self.initial_gen_length, self.max_gen_length)
        if self.reference_compat:
            check_reference_guidance(self.cfg_scale, self.initial_gen_length, self.max_gen_length)

    def parts(self) -> list[object]:
        """The policies this bundle stands for, in the order they answer."""
        shared = dict(
            expansion_factor="expansion_factor", eos_check_tokens="eos_check_tokens", reference_compat="reference_compat"
        )
        parts: list[object] = [
            EosConfidenceLength(**part_kwargs(self, EosConfidenceLength)),
            BlockPointer(**part_kwargs(self, BlockPointer)),
            ThresholdUnmask(**part_kwargs(self, ThresholdUnmask)),
            LowConfidenceExpand(**part_kwargs(self, LowConfidenceExpand, **shared)),
        ]
        if self.temperature > 0:
            # The reference draws its noise over the batch tensor; the default mode draws per row,
            # so a row samples the same tokens in any batch.
            streams = "batch" if self.reference_compat else "rows"
            gumbel = part_kwargs(self, GumbelTemperature)
            parts.append(GumbelTemperature(**gumbel, precision="float32", streams=streams))
        if self.cfg_scale > 0:
            parts.append(ClassifierFreeGuidance(**part_kwargs(self, ClassifierFreeGuidance)))
        return parts
