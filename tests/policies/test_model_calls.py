"""``Stats.model_calls``: batched model invocations, beside the reference's ``forward_passes`` count.

Classifier-free guidance runs its conditional and unconditional canvases as one batched
call, which the references count as two forward passes (and ``forward_passes`` keeps that
count); ``model_calls`` counts the call once.
"""

from __future__ import annotations

import pytest

from daedal.core import Engine
from daedal.core.testing import FakeAdapter
from daedal.policies import Daedal, LLaDADecoding
from tests.policies.oracles.cache_oracle import cached_toy_adapter
from tests.policies.oracles.models import toy_adapter


@pytest.mark.parametrize("cfg_scale", [0.0, 1.5])
def test_a_guided_step_is_one_model_call_and_two_forward_passes(cfg_scale):
    adapter = FakeAdapter(seed=3)
    result = Engine(adapter, [LLaDADecoding(gen_length=8, steps=8, block_length=4, cfg_scale=cfg_scale)]).generate(
        [[5, 6, 7], [8, 9]]
    )
    assert result.stats.model_calls == adapter.calls == 8  # what the model actually ran
    assert result.stats.forward_passes == (16 if cfg_scale else 8)


def test_length_probes_are_calls_of_their_own():
    # DAEDAL's stage-1 probes are unguided single passes; the guided denoising steps count two passes each.
    adapter = toy_adapter(seed=2)
    daedal = Daedal(
        initial_gen_length=8,
        max_gen_length=48,
        block_length=8,
        eos_check_tokens=8,
        expansion_factor=4,
        low_conf_threshold=0.3,
        cfg_scale=1.0,
    )
    result = Engine(adapter, [daedal]).generate([[4, 5], [6, 7, 8, 9]])
    probes = result.stats.model_calls - result.stats.steps - (result.stats.final_fill > 0)
    assert probes >= 1
    assert result.stats.model_calls == adapter.calls
    assert result.stats.forward_passes == probes + 2 * (result.stats.model_calls - probes)


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_guidance_with_a_cache_counts_each_session_pass_once(cache):
    adapter = cached_toy_adapter(seed=1, sharpness=1.5)
    policy = LLaDADecoding(gen_length=16, steps=16, block_length=4, cfg_scale=1.0, cache=cache)
    result = Engine(adapter, [policy]).generate([[5, 6, 7], [8]])
    (session,) = adapter.sessions
    assert result.stats.model_calls == session.passes["full"] + session.passes["partial"] == 16
    assert session.passes["full"] == 4  # one block-start pass per block, guided rows included
    assert result.stats.forward_passes == 2 * result.stats.model_calls
