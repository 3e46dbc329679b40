"""Every policy of daedal-policies passes the core's PolicyContract (legal decisions, determinism, statelessness)."""

from __future__ import annotations

import pytest

from daedal.core.testing import Parts
from daedal.core.testing.contract import PolicyContract
from daedal.policies import (
    BlockPointer,
    Budget,
    ClassifierFreeGuidance,
    Daedal,
    DreamDecoding,
    EosConfidenceLength,
    FastDllm,
    LLaDADecoding,
    SuppressTokens,
    Temperature,
    ThresholdUnmask,
    TopPTopK,
)
from daedal.policies.refine import Refine

# Stage 1 stops well below max_gen_length on the contract's fake model (eos_confidence_threshold), and
# low_conf_threshold lets stage 2 insert: the contract requires LowConfidenceExpand to act.
SMALL = dict(
    initial_gen_length=8,
    max_gen_length=48,
    block_length=8,
    eos_check_tokens=8,
    expansion_factor=4,
    high_conf_threshold=0.9,
    low_conf_threshold=0.7,
    expand_eos_confidence_threshold=0.8,
    eos_confidence_threshold=0.05,
)


class TestDaedal(PolicyContract):
    @pytest.fixture
    def policy(self):
        return Daedal(**SMALL)


class TestDaedalReferenceCompat(PolicyContract):
    @pytest.fixture
    def policy(self):
        return Daedal(**SMALL, reference_compat=True, temperature=0.5)


class TestDaedalWithGuidance(PolicyContract):
    @pytest.fixture
    def policy(self):
        return Daedal(**SMALL, cfg_scale=1.0)


class TestStage1WithThresholdFill(PolicyContract):
    @pytest.fixture
    def policy(self):
        return Parts(
            EosConfidenceLength(initial_gen_length=8, max_gen_length=32, eos_check_tokens=8),
            BlockPointer(block_length=8),
            ThresholdUnmask(threshold=0.8),
        )


class TestLLaDA(PolicyContract):
    @pytest.fixture
    def policy(self):
        return LLaDADecoding(gen_length=16, steps=8, block_length=8, temperature=0.7, remasking="random")


class TestLLaDAReferenceCompat(PolicyContract):
    @pytest.fixture
    def policy(self):
        return LLaDADecoding(gen_length=16, steps=16, block_length=4, cfg_scale=0.5, reference_compat=True)


@pytest.mark.parametrize("alg", ["origin", "entropy"])
class TestDream(PolicyContract):
    @pytest.fixture
    def policy(self, alg):
        return DreamDecoding(max_new_tokens=12, steps=6, alg=alg, temperature=0.5, top_p=0.9, alg_temp=0.3)


class TestFastDllm(PolicyContract):
    @pytest.fixture
    def policy(self):
        return FastDllm(gen_length=16, block_length=8, threshold=None, factor=1.0)


class TestSamplingWrappers(PolicyContract):
    @pytest.fixture
    def policy(self):
        return Parts(
            LLaDADecoding(gen_length=16, steps=16, block_length=8),
            ClassifierFreeGuidance(scale=0.5),
            SuppressTokens(ids=[5, 6, 7]),
            TopPTopK(top_p=0.9, top_k=8),
            Temperature(temperature=0.8),
        )


class TestBudget(PolicyContract):
    # At its last pass the budget answers every decision hook so that nothing else expands or
    # re-masks: those answers select no position by design.
    optional_hooks = frozenset({"Budget.select_expand", "Budget.select_remask"})

    @pytest.fixture
    def policy(self):
        # 14 passes: stage 1 and some stage-2 steps (with insertions) run before the budget binds.
        return Parts(Budget(max_forward_passes=14, max_new_tokens=40), Daedal(**SMALL))


class TestRefine(PolicyContract):
    @pytest.fixture
    def policy(self):
        return Parts(Daedal(**SMALL), Refine(iterations=2, tokens=2, scope="block"))
