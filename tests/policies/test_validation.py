"""Bad input: clear ConfigErrors naming the argument, the value and the fix."""

from __future__ import annotations

import pytest

from daedal.core import ConfigError, Engine, PolicyNotFoundError, registry
from daedal.core.testing import FakeAdapter
from daedal.policies import Daedal, EosConfidenceLength, LowConfidenceExpand, ThresholdUnmask

THRESHOLDS = [
    "high_conf_threshold",
    "low_conf_threshold",
    "eos_confidence_threshold",
    "expand_eos_confidence_threshold",
]


@pytest.mark.parametrize("name", THRESHOLDS)
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "0.9", True])
def test_thresholds_outside_the_unit_interval(name, value):
    with pytest.raises(ConfigError, match=name):
        Daedal(**{name: value})


@pytest.mark.parametrize("value", [1, 0, -3, 2.0])
def test_expansion_factor_below_two(value):
    with pytest.raises(ConfigError, match="expansion_factor"):
        Daedal(expansion_factor=value)
    with pytest.raises(ConfigError, match="expansion_factor"):
        LowConfidenceExpand(expansion_factor=value)


def test_lengths_that_do_not_fit():
    with pytest.raises(ConfigError, match="initial_gen_length"):
        Daedal(initial_gen_length=128, max_gen_length=64)
    with pytest.raises(ConfigError, match="initial_gen_length"):
        EosConfidenceLength(initial_gen_length=0)
    with pytest.raises(ConfigError, match="eos_check_tokens"):
        Daedal(eos_check_tokens=0)
    adapter = FakeAdapter(max_length=100)
    engine = Engine(adapter, policies=[Daedal(initial_gen_length=8, max_gen_length=96)])
    with pytest.raises(ConfigError, match="max_gen_length.*at most 94"):
        engine.generate([[5, 6, 7, 8, 9, 10]])


def test_reference_compat_guidance_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="Q9"):
        Daedal(cfg_scale=1.0, reference_compat=True)
    Daedal(cfg_scale=1.0, reference_compat=True, initial_gen_length=64, max_gen_length=64)  # the one case that works
    with pytest.raises(ConfigError, match="reference_compat"):
        Daedal(reference_compat="yes")


def test_threshold_unmask_validates_its_threshold():
    with pytest.raises(ConfigError, match="threshold"):
        ThresholdUnmask(threshold=2)


def test_unknown_policy_names_list_the_available_ones():
    with pytest.raises(PolicyNotFoundError) as info:
        registry.create("policies", "daedel")
    message = str(info.value)
    for name in ("daedal", "llada", "dream", "fast-dllm", "budget", "refine", "threshold-unmask"):
        assert name in message


def test_every_advertised_name_loads_and_builds():
    names = registry.available("policies")
    for name in (
        "daedal",
        "daedal-stage1",
        "eos-confidence-length",
        "low-confidence-expand",
        "threshold-unmask",
        "llada",
        "dream",
        "fast-dllm",
        "temperature",
        "cfg",
        "top-p-top-k",
        "suppress-tokens",
        "budget",
        "refine",
    ):
        assert name in names
    assert registry.create("policies", "daedal", {"max_gen_length": 256}).max_gen_length == 256
    with pytest.raises(ConfigError, match="valid"):
        registry.create("policies", "daedal", {"max_length": 256})
