"""Tiny, random, fully offline LLaDA and Dream checkpoints for tests.

:func:`tiny_checkpoint` writes an HF-style directory laid out like the released
checkpoint of the family: config.json in the model's own format, safetensors weights
(single file or shards with an index) and tokenizer files with the family's special
tokens. The tokenizer is a byte-level BPE trained in-process on a few sentences, so
encode/decode round-trip any text.

* LLaDA: ``tokenizer.json`` + ``tokenizer_config.json`` (``PreTrainedTokenizerFast``).
* Dream: ``vocab.json`` + ``merges.txt`` + ``tokenizer_config.json`` naming the custom
  ``DreamTokenizer`` through ``auto_map``, like the real repo, so the native path's
  Qwen2 fallback is exercised.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["DREAM_SPECIALS", "LLADA_SPECIALS", "build_tokenizer", "tiny_checkpoint", "tiny_model"]

LLADA_SPECIALS = (
    "<|startoftext|>",
    "<|endoftext|>",
    "[CLS]",
    "[gMASK]",
    "<role>",
    "</role>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|mdm_mask|>",
)
DREAM_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>")

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "You are a helpful assistant. Explain quantum entanglement simply.",
    "system user assistant reasoning answer question",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "def add(a, b):\n    return a + b\n",
    "0123456789 + - * / = ( ) [ ] { } < > , . ; : ! ?",
]


def _family(family: str) -> str:
    f = family.lower()
    if f not in ("llada", "dream"):
        raise ValueError(f"family={family!r} must be 'llada' or 'dream'.")
    return f


def build_tokenizer(family: str, directory: str | os.PathLike[str], *, vocab_size: int = 320) -> dict[str, int]:
    """Write a tiny byte-level BPE tokenizer with the family's special tokens.

    Returns:
        Special token -> id.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    fam = _family(family)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    specials = LLADA_SPECIALS if fam == "llada" else DREAM_SPECIALS
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_CORPUS, trainer)
    # Specials come after the regular vocabulary, as in the released tokenizers.
    tok.add_special_tokens(list(specials))
    ids: dict[str, int] = {s: tok.token_to_id(s) or 0 for s in specials}
    added = {
        str(i): {
            "content": s,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for s, i in ids.items()
    }
    if fam == "llada":
        tok.save(str(out / "tokenizer.json"))
        cfg: dict[str, Any] = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "add_bos_token": False,
            "add_eos_token": False,
            "added_tokens_decoder": added,
            "model_max_length": 4096,
        }
    else:
        tok.model.save(str(out))  # vocab.json + merges.txt
        cfg = {
            "tokenizer_class": "DreamTokenizer",
            "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
            "bos_token": "<|beginoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "mask_token": "<|mask|>",
            "added_tokens_decoder": added,
            "model_max_length": 131072,
        }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return ids


def _round_up(n: int, multiple: int = 64) -> int:
    return -(-n // multiple) * multiple


def tiny_model(family: str, specials: dict[str, int], n_tokens: int, *, seed: int = 0, **overrides: Any) -> Any:
    """A random tiny model of the family whose special ids match ``specials``."""
    fam = _family(family)
    torch.manual_seed(seed)
    if fam == "llada":
        from daedal.models.llada import modeling as llada

        lcfg = llada.tiny_config(
            vocab_size=n_tokens,
            embedding_size=_round_up(n_tokens),
            mask_token_id=specials["<|mdm_mask|>"],
            eos_token_id=specials["<|endoftext|>"],
            pad_token_id=specials["<|endoftext|>"],
            **overrides,
        )
        return llada.LLaDAModelLM(lcfg).eval()
    from daedal.models.dream import modeling as dream

    dcfg = dream.tiny_config(
        vocab_size=_round_up(n_tokens),
        mask_token_id=specials["<|mask|>"],
        eos_token_id=specials["<|endoftext|>"],
        pad_token_id=specials["<|endoftext|>"],
        bos_token_id=specials["<|endoftext|>"],
        **overrides,
    )
    return dream.DreamModel(dcfg).eval()


def tiny_checkpoint(
    family: str,
    directory: str | os.PathLike[str],
    *,
    max_shard_size: int | str | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    **overrides: Any,
) -> Path:
    """Write a complete tiny checkpoint directory of ``family`` ("llada" or "dream").

    Args:
        family: "llada" or "dream".
        directory: Where to write.
        max_shard_size: Shard the weights (e.g. ``20_000`` bytes) with an index.
        seed: Seed of the random initialisation.
        dtype: Dtype of the stored weights.
        **overrides: Config fields to change (e.g. ``n_layers=3``).
    """
    fam = _family(family)
    out = Path(directory)
    specials = build_tokenizer(fam, out)
    n_tokens = max(specials.values()) + 1
    model = tiny_model(fam, specials, n_tokens, seed=seed, **overrides).to(dtype)
    if fam == "llada":
        from daedal.models.llada import modeling as llada

        llada.save_pretrained(model, out, max_shard_size=max_shard_size)
    else:
        from daedal.models.dream import modeling as dream

        dream.save_pretrained(model, out, max_shard_size=max_shard_size)
    return out
