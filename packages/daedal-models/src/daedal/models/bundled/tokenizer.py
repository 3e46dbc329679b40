"""Word-level tokenizer of the bundled tiny model, with LLaDA's special tokens.

The special tokens are spelled exactly as in LLaDA-8B-Instruct's tokenizer, so the LLaDA
adapter's chat template, EOS/EOT handling and mask token work unchanged; only their ids
differ (they are read from ``config.json`` like for the 8B model). Ordinary words are
split on whitespace and punctuation (``reverse: a`` -> ``reverse`` ``:`` ``a``); decoding
joins tokens with single spaces.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from daedal.models.bundled.tasks import words

__all__ = ["SPECIAL_TOKENS", "EOS", "EOT", "MASK", "BOS", "UNK", "build_tokenizer", "save_tokenizer", "vocabulary"]

EOS = "<|endoftext|>"
BOS = "<|startoftext|>"
EOT = "<|eot_id|>"
MASK = "<|mdm_mask|>"
UNK = "<|unk|>"
SPECIAL_TOKENS: tuple[str, ...] = (EOS, BOS, "<|start_header_id|>", "<|end_header_id|>", EOT, MASK, UNK)
"""Special tokens, ids 0.. in this order (EOS first: it is also the padding id)."""

# LLaDA-8B-Instruct's chat template (a single user turn renders as the adapter's template).
CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def vocabulary() -> dict[str, int]:
    """Token -> id: the special tokens, then :func:`daedal.models.bundled.tasks.words`."""
    tokens = list(SPECIAL_TOKENS) + words()
    return {tok: i for i, tok in enumerate(tokens)}


def build_tokenizer():
    """A :class:`tokenizers.Tokenizer` (WordLevel model, whitespace/punctuation split)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab=vocabulary(), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # WordPiece's decoder with an unused prefix joins tokens with spaces and keeps them
    # verbatim; cleanup=False keeps " ," instead of gluing punctuation to the word before.
    tok.decoder = decoders.WordPiece(prefix="\u0000##", cleanup=False)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def save_tokenizer(directory: str | os.PathLike[str]) -> Path:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json.

    The directory then loads with ``transformers.AutoTokenizer.from_pretrained``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save(str(out / "tokenizer.json"))
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": UNK, "mask_token": MASK}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 512,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
        "additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in special.values()],
        **special,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    return out
