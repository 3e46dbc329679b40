"""``HFAdapter``: the public base of Hugging Face style model families (LLaDA, Dream, yours).

A family subclass supplies data, not code paths: its native modeling module, the
``model_type`` values it loads, the chat template, the names of its special tokens and
whether its logits are shifted. Import it as ``daedal.models.HFAdapter``; the how-to
"Write a model adapter" builds a third family on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import torch

from daedal.core.errors import AdapterError, ConfigError
from daedal.models import _layers, _templates
from daedal.models._config import check_model_type
from daedal.models._loading import read_config, resolve_device, resolve_dtype

#: Files fetched from the hub for the native path (the remote path adds ``*.py``).
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"]


def resolve_checkpoint(path_or_hub_id: Any, *, family: str, trust_remote_code: bool) -> Path:
    """A local checkpoint directory: the path itself, or a hub snapshot when given a hub id.

    Raises:
        AdapterError: When the path does not exist and cannot be fetched from the hub.
    """
    if not isinstance(path_or_hub_id, (str, os.PathLike)):
        raise ConfigError(
            f"path_or_hub_id={path_or_hub_id!r} must be a directory path or a hub id such as "
            f"'GSAI-ML/LLaDA-8B-Instruct', got {type(path_or_hub_id).__name__}."
        )
    path = Path(path_or_hub_id).expanduser()
    if path.exists():
        return path
    text = str(path_or_hub_id)
    looks_like_hub_id = (
        text.count("/") == 1 and not text.startswith((".", "/", "~")) and "\\" not in text and not text.endswith("/")
    )
    if not looks_like_hub_id:
        raise AdapterError(
            f"path_or_hub_id={text!r} does not exist; pass the directory of a {family} checkpoint "
            "(config.json, *.safetensors, tokenizer files) or a hub id like 'org/name'.",
            code="checkpoint",
        )
    try:
        from huggingface_hub import snapshot_download

        patterns = _HUB_PATTERNS + (["*.py"] if trust_remote_code else [])
        return Path(snapshot_download(repo_id=text, allow_patterns=patterns))
    except Exception as exc:  # network, auth, missing repo: all end the same way for the user
        raise AdapterError(
            f"path_or_hub_id={text!r} is not a local directory and could not be fetched from the "
            f"Hugging Face hub ({type(exc).__name__}: {exc}). Download the checkpoint on a machine "
            "with internet and pass its local directory instead.",
            code="checkpoint",
        ) from exc


class HFAdapter:
    """Base of the Hugging Face style adapters (implements :class:`daedal.core.adapter.ModelAdapter`).

    Subclass it to add a family; set these class attributes:

    * ``family``: display name for messages (``"LLaDA"``).
    * ``model_types``: the ``config.json`` ``model_type`` values this adapter loads
      (compared without case). The command line and the eval runner find the adapter of a
      checkpoint through this attribute of the ``daedal.adapters`` entry points.
    * ``shifted``: True when the model's logit row ``q`` predicts slot ``q + 1`` (Dream);
      :meth:`logits` then shifts it back so that row ``i`` predicts slot ``i``.
    * ``end_of_turn_token``, ``mask_token``: token strings; their ids are looked up in the
      tokenizer (the end of turn joins ``eos_ids``; the mask must agree with the config).
    * ``native_modeling``: a module with ``MODEL_TYPE``, ``check_config(raw, path=...)`` and
      ``load_pretrained(directory, dtype=..., device=...)``; ``native_class``: its model class.
    * ``remote_mask_style``: ``"2d"`` or ``"4d"`` attention masks for remote-code models.

    and override :meth:`max_length_of` and :meth:`render_chat`. The model is called as
    ``model(tokens, attention_mask=mask)`` and returns ``[B, T, V]`` logits; its ``config``
    needs ``mask_token_id`` and ``eos_token_id`` (``pad_token_id`` defaults to EOS).

    Attributes:
        mask_id: Mask token id (from the checkpoint config).
        eos_id: End-of-sequence id (config ``eos_token_id``).
        eos_ids: EOS and end-of-turn ids.
        pad_id: Pad id (config ``pad_token_id``).
        vocab_size: Width of the logits (embedding rows, which may exceed the tokenizer).
        max_length: Longest row the model accepts.
        device: Device of the model.
        dtype: Dtype of the logits ``logits`` returns (the weights' dtype, or float16 in
            reference precision).
        precision: ``"native"`` or ``"reference"``.
        model: The underlying ``torch.nn.Module``.
        tokenizer: The Hugging Face tokenizer.
    """

    family: ClassVar[str] = ""
    #: The ``model_type`` values of config.json this adapter loads.
    model_types: ClassVar[tuple[str, ...]] = ()
    #: True when the model's logit row q predicts slot q + 1 (Dream).
    shifted: ClassVar[bool] = False
    end_of_turn_token: ClassVar[str] = ""
    mask_token: ClassVar[str] = ""
    #: How padded batches are passed to remote-code models: "2d" key mask or "4d" boolean.
    remote_mask_style: ClassVar[str] = "2d"
    #: The family's native modeling module (``MODEL_TYPE``, ``check_config``, ``load_pretrained``).
    native_modeling: ClassVar[ModuleType]
    #: The family's native model class.
    native_class: ClassVar[type[torch.nn.Module]] = torch.nn.Module

    model: Any
    tokenizer: Any

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, precision: str = "native") -> None:
        if precision not in _layers.PRECISIONS:
            raise ConfigError(
                f"precision={precision!r} is not a precision mode; pass 'native' (compute in the weights' "
                "dtype) or 'reference' (fp16 autocast over bf16 weights with an fp32 residual, as the "
                "official DAEDAL run)."
            )
        self.model = model
        self.tokenizer = tokenizer
        self.precision = precision
        config = model.config
        self.mask_id = int(_cfg(config, "mask_token_id", self.family))
        self.eos_id = int(_cfg(config, "eos_token_id", self.family))
        pad = getattr(config, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else self.eos_id
        self.vocab_size = self._logits_width()
        self.max_length = int(self.max_length_of(config))
        eot = _token_id(tokenizer, self.end_of_turn_token)
        self.eos_ids = frozenset({self.eos_id} | ({eot} if eot is not None else set()))
        self._check_vocabulary()
        if hasattr(self.model, "set_precision"):
            self.model.set_precision(precision)
        self.model.eval()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike[str],
        *,
        dtype: Any = "auto",
        device: Any = None,
        precision: str = "native",
        trust_remote_code: bool = False,
    ) -> HFAdapter:
        """Load a checkpoint (HF-style directory or hub id) and its tokenizer.

        Args:
            path_or_hub_id: Checkpoint directory, or a hub id when the machine has internet.
            dtype: ``"auto"`` (checkpoint dtype; bfloat16 for the released models),
                ``torch.float32`` / ``bfloat16`` / ``float16`` or their names.
            device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"``, a ``torch.device``.
            precision: ``"native"`` or ``"reference"`` (emulate the official DAEDAL run:
                fp16 matmuls over bf16 weights with an fp32 residual stream).
            trust_remote_code: Use the checkpoint's own modeling code instead of the native
                implementation.

        Raises:
            AdapterError: Not a checkpoint of this family, key or vocabulary mismatch.
            ConfigError: Bad dtype, device or precision.
        """
        if precision not in _layers.PRECISIONS:
            raise ConfigError(f"precision={precision!r} is not a precision mode; pass 'native' or 'reference'.")
        directory = resolve_checkpoint(path_or_hub_id, family=cls.family, trust_remote_code=trust_remote_code)
        raw = read_config(directory, family=cls.family, argument="path_or_hub_id")
        cls._check_family(raw, directory)
        target_device = resolve_device(device)
        resolve_dtype(dtype, checkpoint_dtype=raw.get("torch_dtype") or raw.get("dtype"))  # validate early
        if trust_remote_code:
            from daedal.models._remote import load_remote

            model: torch.nn.Module = load_remote(
                directory, dtype=dtype, device=target_device, mask_style=cls.remote_mask_style
            )
        else:
            model = cls._load_native(directory, dtype=dtype, device=target_device)
        tokenizer = cls._load_tokenizer(directory, trust_remote_code=trust_remote_code)
        return cls(model, tokenizer, precision=precision)

    @classmethod
    def from_model(cls, model: torch.nn.Module, tokenizer: Any, *, precision: str = "native") -> HFAdapter:
        """Wrap an already loaded model and tokenizer.

        ``model`` is a native model of this family or a Hugging Face (remote-code) model
        whose output has ``.logits``; the latter is wrapped so it is called uniformly.
        """
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"model={type(model).__name__} must be a torch.nn.Module of the {cls.family} family.")
        if not cls._is_native(model):
            from daedal.models._remote import RemoteModel

            if not isinstance(model, RemoteModel):
                model = RemoteModel(model, mask_style=cls.remote_mask_style)
        if tokenizer is None or not callable(getattr(tokenizer, "decode", None)):
            raise ConfigError(
                f"tokenizer={tokenizer!r} is not a tokenizer; pass the Hugging Face tokenizer of the checkpoint."
            )
        return cls(model, tokenizer, precision=precision)

    # ------------------------------------------------------------------ family hooks
    @classmethod
    def _check_family(cls, raw: dict[str, Any], directory: Path) -> None:
        if raw.get("auto_map"):
            # Remote-code checkpoints may carry fields the native config rejects; check the type only.
            check_model_type(
                raw,
                family=cls.family,
                model_type=cls.native_modeling.MODEL_TYPE,
                path=directory,
                argument="path_or_hub_id",
            )
            return
        cls.native_modeling.check_config(raw, path=directory)

    @classmethod
    def _load_native(cls, directory: Path, *, dtype: Any, device: torch.device) -> torch.nn.Module:
        model: torch.nn.Module = cls.native_modeling.load_pretrained(directory, dtype=dtype, device=device)
        return model

    @classmethod
    def _is_native(cls, model: torch.nn.Module) -> bool:
        return isinstance(model, cls.native_class)

    @classmethod
    def _fallback_tokenizer_class(cls) -> Any:
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast

    def max_length_of(self, config: Any) -> int:
        """The longest row the model accepts, read from its config (e.g. ``max_position_embeddings``)."""
        raise NotImplementedError(f"{type(self).__name__} must define max_length_of(config)")

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """The chat template applied to a conversation, with the assistant prompt appended."""
        raise NotImplementedError(f"{type(self).__name__} must define render_chat(messages)")

    # ------------------------------------------------------------------ tokenizer
    @classmethod
    def _load_tokenizer(cls, directory: Path, *, trust_remote_code: bool) -> Any:
        """AutoTokenizer, or the family's tokenizer class when the config asks for custom code.

        A plain ``tokenizer.json`` that :class:`LightTokenizer` reproduces exactly (the
        bundled checkpoints) loads through ``tokenizers`` alone, skipping transformers'
        import time.
        """
        from daedal.models._light_tokenizer import LightTokenizer

        if LightTokenizer.handles(directory):
            return LightTokenizer.from_directory(directory)
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        # AutoTokenizer peeks at config.json and warns about the unknown model type; that is noise here.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            return cls._load_tokenizer_quietly(directory, trust_remote_code=trust_remote_code, auto=AutoTokenizer)
        finally:
            hf_logging.set_verbosity(verbosity)

    @classmethod
    def _load_tokenizer_quietly(cls, directory: Path, *, trust_remote_code: bool, auto: Any) -> Any:
        tok_cfg_path = directory / "tokenizer_config.json"
        custom = False
        if tok_cfg_path.is_file():
            try:
                custom = "AutoTokenizer" in (json.loads(tok_cfg_path.read_text(encoding="utf-8")).get("auto_map") or {})
            except (OSError, ValueError, AttributeError):
                custom = False
        errors: list[str] = []
        if trust_remote_code or not custom:
            try:
                return auto.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
            except Exception as exc:  # fall back to the family's known tokenizer class below
                errors.append(f"AutoTokenizer: {type(exc).__name__}: {exc}")
        fallback = cls._fallback_tokenizer_class()
        try:
            return fallback.from_pretrained(str(directory))
        except Exception as exc:
            errors.append(f"{fallback.__name__}: {type(exc).__name__}: {exc}")
        raise AdapterError(
            f"path_or_hub_id={str(directory)!r}: no tokenizer could be loaded ({'; '.join(errors)}). "
            f"A {cls.family} checkpoint directory must hold its tokenizer files (tokenizer.json, or "
            "vocab.json and merges.txt, with tokenizer_config.json).",
            code="checkpoint",
        )

    def _logits_width(self) -> int:
        # Native models and RemoteModel expose it; a bare module falls back to its config.
        width = getattr(self.model, "logits_width", None)
        if width is None:
            width = _cfg(self.model.config, "vocab_size", self.family)
        return int(width)

    def _check_vocabulary(self) -> None:
        """The tokenizer, the special ids and the logits must agree.

        Raises:
            AdapterError: Naming the mismatching numbers.
        """
        n_tok = len(self.tokenizer)
        if n_tok > self.vocab_size:
            raise AdapterError(
                f"the tokenizer has {n_tok} tokens but the {self.family} model has only {self.vocab_size} "
                "embedding rows; the tokenizer files belong to a different model. Use the tokenizer "
                "shipped with this checkpoint.",
                code="checkpoint",
            )
        for name, value in (
            ("mask_token_id", self.mask_id),
            ("eos_token_id", self.eos_id),
            ("pad_token_id", self.pad_id),
        ):
            if not 0 <= value < self.vocab_size:
                raise AdapterError(
                    f"config {name}={value} is outside the model's vocabulary of {self.vocab_size}; "
                    "fix config.json so the special ids match the tokenizer.",
                    code="checkpoint",
                )
        tok_mask = _token_id(self.tokenizer, self.mask_token)
        if tok_mask is not None and tok_mask != self.mask_id:
            raise AdapterError(
                f"config mask_token_id={self.mask_id} but the tokenizer maps {self.mask_token!r} to {tok_mask}; "
                "the tokenizer and config.json disagree: use the files shipped with the checkpoint.",
                code="checkpoint",
            )

    # ------------------------------------------------------------------ protocol
    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        if self.precision == "reference":
            return torch.float16
        p = next(self.model.parameters(), None)
        return p.dtype if p is not None else torch.float32

    def encode(self, prompts: Sequence[Any], *, chat_template: bool = True) -> list[list[int]]:
        """Token ids of each prompt (str = one user turn, or a list of messages).

        Args:
            prompts: The prompts; a single string is rejected to avoid encoding characters.
            chat_template: Wrap each prompt in the model's chat template (which brings its
                own BOS). Without it, prompts must be plain strings and are tokenised as is.
        """
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
            raise ConfigError(
                f"prompts={prompts!r} must be a list of prompts; wrap a single prompt in a list: [prompt]."
            )
        texts = []
        for i, p in enumerate(prompts):
            if chat_template:
                texts.append(self.render_chat(_templates.normalise_messages(p, argument=f"prompts[{i}]")))
            elif isinstance(p, str):
                texts.append(p)
            else:
                raise ConfigError(
                    f"prompts[{i}] is a conversation but chat_template=False; pass plain strings, or set "
                    "chat_template=True to render messages."
                )
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Texts of each id row, special tokens kept."""
        rows = [r.tolist() if isinstance(r, torch.Tensor) else list(r) for r in ids]
        return [self.tokenizer.decode(r, skip_special_tokens=False) for r in rows]

    def checked_inputs(
        self, tokens: torch.Tensor, length: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``tokens`` and ``length`` on the model's device, after the shape and length checks."""
        if tokens.dim() != 2:
            raise ConfigError(f"tokens must be [B, T] token ids, got shape {tuple(tokens.shape)}.")
        dev = self.device
        tokens = tokens.to(dev)
        t = tokens.shape[1]
        if t > self.max_length:
            raise ConfigError(
                f"tokens has {t} columns but the {self.family} model accepts at most max_length="
                f"{self.max_length}; lower the engine's max_length."
            )
        return tokens, None if length is None else length.to(dev)

    @staticmethod
    def key_mask(tokens: torch.Tensor, length: torch.Tensor | None) -> torch.Tensor | None:
        """``[B, T]`` keep-mask of the keys ``c < length[b]``, or None when no row is padded."""
        t = tokens.shape[1]
        if length is None or not bool((length < t).any()):
            return None
        return torch.arange(t, device=tokens.device)[None, :] < length[:, None]

    def logits(self, tokens: torch.Tensor, length: torch.Tensor, *, window: Any = None) -> torch.Tensor:
        """``[B, T, V]`` logits; row ``i`` predicts slot ``i`` (Dream's shift absorbed).

        Keys at ``c >= length[b]`` are masked; a mask is built only when some row is padded.
        """
        tokens, length = self.checked_inputs(tokens, length)
        mask = self.key_mask(tokens, length)
        with torch.inference_mode():
            out = self.model(tokens, attention_mask=mask)
        if self.shifted:
            out = torch.cat((out[:, :1], out[:, :-1]), dim=1)
        return out

    @property
    def supports_sessions(self) -> bool:
        """Whether the model exposes hidden states and a head (the native models do; remote code does not)."""
        return all(callable(getattr(self.model, name, None)) for name in ("hidden", "head", "key_angles"))

    def open_session(self, *, cache: str | None = None) -> Any:
        """A per-run model session: logits only where read, and the KV ``cache`` (None, "prefix", "dual").

        Raises:
            ConfigError: A cache was asked of a model loaded with ``trust_remote_code``.
        """
        from daedal.core.session import CachedSession, DenseSession
        from daedal.models._session import NativeBackend

        if not self.supports_sessions:
            if cache is not None:
                raise ConfigError(
                    f"cache={cache!r} needs the native {self.family} implementation; this adapter wraps "
                    "remote code: load it without trust_remote_code, or use cache=None."
                )
            return DenseSession(self)
        return CachedSession(NativeBackend(self), cache)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, mask_id={self.mask_id}, eos_ids="
            f"{sorted(self.eos_ids)}, dtype={self.dtype}, device={self.device}, precision={self.precision!r})"
        )


def _cfg(config: Any, name: str, family: str) -> Any:
    value = config.get(name) if isinstance(config, dict) else getattr(config, name, None)
    if value is None:
        raise AdapterError(
            f"the {family} config has no {name}; add it to config.json (it is required to denoise).",
            code="checkpoint",
        )
    return value


def _token_id(tokenizer: Any, token: str) -> int | None:
    """Id of ``token`` if the tokenizer knows it as a single token, else None."""
    if not token:
        return None
    vocab = tokenizer.get_vocab()
    return vocab.get(token)
