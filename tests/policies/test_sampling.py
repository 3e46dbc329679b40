"""Sampling transforms: top-p/top-k filters, token suppression, classifier-free guidance."""

from __future__ import annotations

import pytest
import torch

from daedal.core import ConfigError, Engine
from daedal.core.testing import FakeAdapter
from daedal.policies import ClassifierFreeGuidance, Daedal, LLaDADecoding, SuppressTokens, TopPTopK
from daedal.policies.sampling import top_k_filter, top_p_filter
from tests.policies.oracles.models import toy_adapter


def test_top_p_keeps_the_token_that_crosses_the_line():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = top_p_filter(logits, 0.6) > torch.finfo(torch.float32).min
    assert kept.tolist() == [[True, True, False, False]]
    kept = top_p_filter(logits, 0.4) > torch.finfo(torch.float32).min
    assert kept.tolist() == [[True, False, False, False]]  # the most likely token always stays


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 2.5]])
    kept = top_k_filter(logits, 2) > torch.finfo(torch.float32).min
    assert kept.tolist() == [[False, True, False, False, True]]


def test_suppressed_tokens_never_appear():
    adapter = toy_adapter(seed=0, sharpness=2.0)
    plain = Engine(adapter, policies=[LLaDADecoding(gen_length=16, steps=16, block_length=16)]).generate([[4, 5, 6]])
    banned = sorted(set(plain.tokens[0]))[:3]
    engine = Engine(
        adapter, policies=[LLaDADecoding(gen_length=16, steps=16, block_length=16), SuppressTokens(ids=banned)]
    )
    result = engine.generate([[4, 5, 6]])
    assert not set(result.tokens[0]) & set(banned)


def test_suppressing_the_mask_id_is_refused():
    adapter = toy_adapter(seed=0)
    engine = Engine(
        adapter, policies=[LLaDADecoding(gen_length=8, steps=8, block_length=8), SuppressTokens(ids=[adapter.mask_id])]
    )
    with pytest.raises(ConfigError, match="mask id"):
        engine.generate([[4]])


def _guided_model(vocab=8):
    """Conditional logits favour token 3, unconditional (prompt masked) favour token 4."""
    mask = vocab - 1

    def fn(tokens, length):
        logits = torch.zeros(tokens.shape[0], tokens.shape[1], vocab)
        conditional = (tokens[:, :1] != mask).float()[..., None]  # prompt visible?
        logits[..., 3] = 2.0 * conditional.squeeze(-1)
        logits[..., 4] = 1.0
        logits[..., mask] = float("-inf")
        return logits

    return FakeAdapter(vocab_size=vocab, logits_fn=fn)


def test_guidance_combines_conditional_and_unconditional_logits():
    adapter = _guided_model()
    seen = []
    from daedal.core import hookimpl

    class Spy:
        @hookimpl(wrapper=True, tryfirst=True)
        def predict(self, state):
            prediction = yield
            seen.append(prediction.logits[0, -1].clone())
            return prediction

    decoding = LLaDADecoding(gen_length=4, steps=4, block_length=4, cfg_scale=2.0)
    result = Engine(adapter, policies=[decoding, Spy()]).generate([[5, 6]])
    # ℓ_u + (s + 1)(ℓ_c − ℓ_u): token 3: 0 + 3 * 2 = 6; token 4: 1 + 3 * 0 = 1.
    assert seen[0][3].item() == pytest.approx(6.0) and seen[0][4].item() == pytest.approx(1.0)
    assert result.stats.forward_passes == 8  # one unconditional pass per step


def test_guidance_works_across_daedal_length_changes():
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
    result = Engine(adapter, policies=[daedal]).generate([[4, 5], [6, 7, 8, 9]])
    assert result.stats.expansions > 0 or len(set(result.lengths)) > 1 or result.lengths[0] != 8 + 4
    assert all(adapter.mask_id not in row for row in result.tokens)


def test_top_p_top_k_needs_a_setting():
    with pytest.raises(ConfigError):
        TopPTopK()
    with pytest.raises(ConfigError, match="top_p"):
        TopPTopK(top_p=1.5)


def test_guidance_scale_must_be_non_negative():
    with pytest.raises(ConfigError, match="scale"):
        ClassifierFreeGuidance(scale=-1.0)
