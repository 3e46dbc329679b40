"""Chat templates render exactly as reference/models.md §1.5 and §2.4 show; encode/decode."""

from __future__ import annotations

import pytest

from daedal.core.errors import ConfigError
from daedal.models._templates import render_dream, render_llada

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "  What is 2+2?\n"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3+3?"},
]


def test_llada_template_single_turn():
    assert render_llada([{"role": "user", "content": "Hi there"}]) == (
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llada_template_conversation_strips_content_and_has_one_bos():
    assert render_llada(CONVERSATION) == (
        "<|startoftext|>"
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_dream_template_adds_default_system_turn():
    assert render_dream([{"role": "user", "content": "Hi there"}]) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_dream_template_keeps_given_system_and_content_verbatim():
    assert render_dream(CONVERSATION) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\n  What is 2+2?\n<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
        "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_dream(CONVERSATION, add_generation_prompt=False).endswith("And 3+3?<|im_end|>\n")


def test_encode_applies_template_and_decode_round_trips(adapter):
    prompt = "Explain the quick brown fox."
    ids = adapter.encode([prompt, CONVERSATION])
    assert len(ids) == 2 and all(isinstance(i, int) for i in ids[0])
    texts = adapter.decode(ids)
    assert texts[0] == adapter.render_chat([{"role": "user", "content": prompt}])
    assert texts[1] == adapter.render_chat(CONVERSATION)
    # Special tokens are single ids, not spelled out character by character.
    eot = adapter.tokenizer.get_vocab()[adapter.end_of_turn_token]
    assert ids[0].count(eot) == (1 if adapter.family == "LLaDA" else 2)
    plain = adapter.encode([prompt], chat_template=False)[0]
    assert adapter.decode([plain]) == [prompt]
    assert len(plain) < len(ids[0])


def test_llada_encode_starts_with_bos_once(llada):
    ids = llada.encode(["hello"])[0]
    bos = llada.tokenizer.get_vocab()["<|startoftext|>"]
    assert ids[0] == bos and ids.count(bos) == 1


@pytest.mark.parametrize(
    ("prompts", "kwargs", "needle"),
    [
        ("just a string", {}, "wrap a single prompt in a list"),
        ([123], {}, "prompts[0]"),
        ([[{"role": "user"}]], {}, "'role' and 'content'"),
        ([[]], {}, "at least one message"),
        ([CONVERSATION], {"chat_template": False}, "chat_template=False"),
    ],
)
def test_encode_rejects_bad_prompts(llada, prompts, kwargs, needle):
    with pytest.raises(ConfigError, match=None) as err:
        llada.encode(prompts, **kwargs)
    assert needle in str(err.value)
