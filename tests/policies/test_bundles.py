"""Bundles are built from their parts' fields: one default and one validator, on the part."""

from __future__ import annotations

import attrs
import pytest

from daedal.core import ConfigError, FixedLength, GumbelTemperature, SemiAutoregressive
from daedal.policies import (
    ClassifierFreeGuidance,
    Daedal,
    DreamDecoding,
    DreamUnmask,
    EosConfidenceLength,
    FastDllm,
    LLaDADecoding,
    LowConfidenceExpand,
    ParallelUnmask,
)
from daedal.policies._bundle import routes
from daedal.policies.unmask import BlockPointer, ThresholdUnmask

BUNDLES = [Daedal, LLaDADecoding, FastDllm, DreamDecoding]
#: Bundle fields whose default is the reference function's own, not the part's.
OWN_DEFAULTS = {
    ("LLaDADecoding", "steps"),
    ("LLaDADecoding", "block_length"),
    ("FastDllm", "gen_length"),
    ("DreamDecoding", "max_new_tokens"),
}
#: Bundle fields that belong to no single part.
OWN_FIELDS = {("LLaDADecoding", "reference_compat")}


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda c: c.__name__)
def test_every_field_comes_from_a_part(bundle: type) -> None:
    routed = routes(bundle)
    own = {f.name for f in attrs.fields(bundle)} - set(routed)
    assert own == {name for cls, name in OWN_FIELDS if cls == bundle.__name__}, (
        f"{bundle.__name__} re-declares {sorted(own)} instead of taking them from a part (from_part)"
    )
    for name, (part, part_name) in routed.items():
        mine, theirs = attrs.fields_dict(bundle)[name], attrs.fields_dict(part)[part_name]
        if (bundle.__name__, name) not in OWN_DEFAULTS:
            assert mine.default == theirs.default, (
                f"{bundle.__name__}.{name} defaults to {mine.default!r}, {part.__name__}.{part_name} to {theirs.default!r}"
            )


def test_daedal_at_its_defaults_is_its_parts_at_theirs() -> None:
    assert Daedal().parts() == [EosConfidenceLength(), BlockPointer(), ThresholdUnmask(), LowConfidenceExpand()]


def test_daedal_passes_every_field_to_its_parts() -> None:
    bundle = Daedal(
        initial_gen_length=16, max_gen_length=64, block_length=16, high_conf_threshold=0.8, low_conf_threshold=0.2,
        expansion_factor=4, eos_confidence_threshold=0.4, expand_eos_confidence_threshold=0.7, eos_check_tokens=16,
        temperature=0.5, cfg_scale=1.0, reference_compat=False,
    )  # fmt: skip
    stage1, pointer, fill, expand, gumbel, cfg = bundle.parts()
    assert stage1 == EosConfidenceLength(
        initial_gen_length=16, max_gen_length=64, expansion_factor=4, eos_confidence_threshold=0.4, eos_check_tokens=16
    )
    assert pointer == BlockPointer(block_length=16) and fill == ThresholdUnmask(threshold=0.8)
    assert expand == LowConfidenceExpand(
        low_conf_threshold=0.2, expansion_factor=4, expand_eos_confidence_threshold=0.7, eos_check_tokens=16
    )
    assert gumbel == GumbelTemperature(temperature=0.5, precision="float32", streams="rows")
    assert cfg == ClassifierFreeGuidance(scale=1.0)


def test_the_other_bundles_pass_their_fields() -> None:
    llada = LLaDADecoding(gen_length=32, steps=16, block_length=8, remasking="random", temperature=0.3, cfg_scale=0.5)
    length, schedule, gumbel, cfg = llada.parts()
    assert length == FixedLength(gen_length=32) and cfg == ClassifierFreeGuidance(scale=0.5)
    assert (schedule.block_length, schedule.steps, schedule.remasking) == (8, 16, "random")
    assert isinstance(schedule, SemiAutoregressive) and gumbel.temperature == 0.3
    fast = FastDllm(gen_length=64, block_length=16, threshold=None, factor=1.0)
    assert fast.parts() == [
        FixedLength(gen_length=64),
        BlockPointer(block_length=16),
        ParallelUnmask(threshold=None, factor=1.0),
    ]
    dream = DreamDecoding(max_new_tokens=24, steps=6, alg="entropy", top_k=5)
    assert dream.parts() == [FixedLength(gen_length=24), DreamUnmask(steps=6, alg="entropy", top_k=5)]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Daedal(high_conf_threshold=1.5), "high_conf_threshold"),
        (lambda: Daedal(block_length=0), "block_length"),
        (lambda: Daedal(temperature=-1.0), "temperature"),
        (lambda: LLaDADecoding(remasking="sideways"), "remasking"),
        (lambda: LLaDADecoding(steps=None), "steps"),
        (lambda: DreamDecoding(alg="nope"), "alg"),
        (lambda: FastDllm(block_length=-3), "block_length"),
    ],
)
def test_the_part_validator_names_the_bundle_field(build, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=f"`{field}`"):
        build()
