"""A tokenizer straight from ``tokenizer.json`` through the ``tokenizers`` library.

``transformers.AutoTokenizer`` costs about two seconds of imports before the first token;
for the bundled checkpoints (plain ``tokenizer.json``, no custom code, no clean-up of
spaces) :class:`LightTokenizer` gives the same ids and texts through ``tokenizers`` alone.
It offers the part of the Hugging Face tokenizer API the adapters, the CLI and the eval
metrics use: calling it on a batch, ``encode``, ``decode``, ``get_vocab``,
``convert_tokens_to_ids``, ``convert_ids_to_tokens``, ``len()`` and the special tokens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LightTokenizer"]


class LightTokenizer:
    """The subset of ``PreTrainedTokenizerFast`` the adapters use, over a ``tokenizers.Tokenizer``."""

    def __init__(self, tokenizer: Any, config: dict[str, Any]) -> None:
        self._tok = tokenizer
        self._vocab: dict[str, int] = tokenizer.get_vocab(with_added_tokens=True)
        self.chat_template = config.get("chat_template")
        for name in ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token"):
            setattr(self, name, config.get(name))
        self.unk_token_id = self._vocab.get(self.unk_token) if self.unk_token else None
        self.pad_token_id = self._vocab.get(self.pad_token) if self.pad_token else None
        self.eos_token_id = self._vocab.get(self.eos_token) if self.eos_token else None

    @classmethod
    def from_directory(cls, directory: str | Path) -> LightTokenizer:
        """Load ``tokenizer.json`` and ``tokenizer_config.json`` of a checkpoint directory."""
        from tokenizers import Tokenizer

        directory = Path(directory)
        config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
        return cls(Tokenizer.from_file(str(directory / "tokenizer.json")), config)

    @staticmethod
    def handles(directory: str | Path) -> bool:
        """Whether a directory's tokenizer is one this class reproduces exactly.

        That is a ``PreTrainedTokenizerFast`` saved as ``tokenizer.json``, without custom
        code (``auto_map``), without ``clean_up_tokenization_spaces`` (which
        transformers applies on top of ``tokenizers``' decoding) and without an
        ``added_tokens_decoder`` (whose flags transformers would apply over the file's).
        Released checkpoints such as LLaDA-8B-Instruct carry one and keep going through
        transformers.
        """
        directory = Path(directory)
        cfg_path = directory / "tokenizer_config.json"
        if not ((directory / "tokenizer.json").is_file() and cfg_path.is_file()):
            return False
        try:
            config = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return (
            isinstance(config, dict)
            and config.get("tokenizer_class") == "PreTrainedTokenizerFast"
            and not config.get("auto_map")
            and config.get("clean_up_tokenization_spaces") is False
            and "added_tokens_decoder" not in config
        )

    def __len__(self) -> int:
        return len(self._vocab)

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool = True) -> dict[str, Any]:
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        ids = [e.ids for e in self._tok.encode_batch(batch, add_special_tokens=add_special_tokens)]
        return {"input_ids": ids[0] if single else ids}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def words_unknown(self, text: str) -> list[str]:
        """The pieces of ``text`` that encode to the unknown token (empty without one)."""
        if self.unk_token_id is None:
            return []
        enc = self._tok.encode(text, add_special_tokens=False)
        return [text[a:b] for i, (a, b) in zip(enc.ids, enc.offsets, strict=False) if i == self.unk_token_id]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> Any:
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_token_id)
        return [self._vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> Any:
        if isinstance(ids, int):
            return self._tok.id_to_token(ids)
        return [self._tok.id_to_token(int(i)) for i in ids]

    def __repr__(self) -> str:
        return f"LightTokenizer(vocab_size={len(self)})"
