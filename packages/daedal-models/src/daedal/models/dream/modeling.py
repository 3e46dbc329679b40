"""Native torch implementation of Dream (Dream-org/Dream-v0-Instruct-7B).

State-dict compatible with the released checkpoint (Qwen2 layout: ``model.embed_tokens``,
``model.layers.{i}.self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``, ``model.norm``,
``lm_head``), with grouped-query attention and **no causal mask**.

The model's own output is *shifted*: its logit row ``q`` predicts token ``q + 1`` (Dream
is initialised from an autoregressive model). :class:`DreamModel` returns those raw
logits; :func:`shift_logits` (used by the adapter) realigns them so that row ``i``
predicts slot ``i``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from daedal.core.errors import ConfigError
from daedal.models import _layers
from daedal.models._config import CheckpointConfig
from daedal.models._loading import load_model, read_config, save_model

__all__ = ["DreamConfig", "DreamModel", "load_pretrained", "save_pretrained", "shift_logits"]

MODEL_TYPE = "Dream"


@dataclasses.dataclass
class DreamConfig(CheckpointConfig):
    """Dream's config.json, field for field (defaults are Dream-v0-Instruct-7B's).

    Unknown keys are kept in ``extra`` and written back by :meth:`to_dict`
    (``model_type`` "Dream", ``architectures`` ["DreamModel"]).
    """

    FAMILY = "Dream"
    MODEL_TYPE = MODEL_TYPE
    ARCHITECTURES = ("DreamModel",)
    OMIT_IF_NONE = ("head_dim",)

    vocab_size: int = 152064
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int | None = 4
    head_dim: int | None = None
    hidden_act: str = "silu"
    max_position_embeddings: int = 131072
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = False
    tie_word_embeddings: bool = False
    rope_theta: float = 1000000.0
    rope_scaling: dict[str, Any] | None = None
    use_sliding_window: bool = False
    sliding_window: int | None = None
    max_window_layers: int | None = 28
    attention_dropout: float = 0.0
    mask_token_id: int = 151666
    pad_token_id: int = 151643
    bos_token_id: int = 151643
    eos_token_id: int = 151643
    torch_dtype: str | None = "bfloat16"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_kv_heads(self) -> int:
        return self.num_attention_heads if self.num_key_value_heads is None else self.num_key_value_heads

    @property
    def attn_head_dim(self) -> int:
        """``head_dim`` if given, else ``hidden_size // num_attention_heads``."""
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_attention_heads

    def validate(self) -> None:
        """Reject configurations this implementation does not compute exactly.

        Raises:
            ConfigError: Naming the field, its value and the supported value.
        """
        if self.hidden_act != "silu":
            raise ConfigError(
                f"Dream config field hidden_act={self.hidden_act!r} is not supported (only 'silu'); "
                "load this checkpoint with trust_remote_code=True instead."
            )
        if self.rope_scaling not in (None, {}) and (self.rope_scaling or {}).get("rope_type", "default") != "default":
            raise ConfigError(
                f"Dream config field rope_scaling={self.rope_scaling!r} is not supported (only default RoPE); "
                "load this checkpoint with trust_remote_code=True instead."
            )
        if self.use_sliding_window:
            raise ConfigError(
                "Dream config field use_sliding_window=True is not supported (bidirectional attention is "
                "always full); set it to false or use trust_remote_code=True."
            )
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"Dream config field {name}={value!r} must be a positive integer.")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"Dream config: hidden_size={self.hidden_size} must be divisible by "
                f"num_attention_heads={self.num_attention_heads} (or set head_dim)."
            )
        if self.attn_head_dim % 2:
            raise ConfigError(f"Dream config: head_dim={self.attn_head_dim} must be even for RoPE.")
        if self.num_attention_heads % self.num_kv_heads:
            raise ConfigError(
                f"Dream config: num_attention_heads={self.num_attention_heads} must be a multiple of "
                f"num_key_value_heads={self.num_kv_heads}."
            )


class DreamAttention(nn.Module):
    """Bidirectional GQA attention with q/k/v biases and no output bias."""

    def __init__(self, config: DreamConfig) -> None:
        super().__init__()
        hd = config.attn_head_dim
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = config.num_kv_heads
        self.head_dim = hd
        self.q_proj = nn.Linear(config.hidden_size, self.n_heads * hd, bias=True)
        self.k_proj = nn.Linear(config.hidden_size, self.n_kv_heads * hd, bias=True)
        self.v_proj = nn.Linear(config.hidden_size, self.n_kv_heads * hd, bias=True)
        self.o_proj = nn.Linear(self.n_heads * hd, config.hidden_size, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        compute_dtype: torch.dtype | None,
    ) -> torch.Tensor:
        # Dream rotates in the activation dtype, with cos/sin already cast to it (as its released code does).
        o = _layers.self_attention(self, x, cos, sin, mask, compute_dtype, rope_fp32=False)
        return _layers.linear(o, self.o_proj, compute_dtype)


class DreamMLP(nn.Module):
    """SwiGLU: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, config: DreamConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, compute_dtype: torch.dtype | None) -> torch.Tensor:
        return _layers.swiglu(x, self.gate_proj, self.up_proj, self.down_proj, compute_dtype)


class DreamDecoderLayer(nn.Module):
    def __init__(self, config: DreamConfig) -> None:
        super().__init__()
        self.self_attn = DreamAttention(config)
        self.mlp = DreamMLP(config)
        self.input_layernorm = _layers.RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = _layers.RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        compute_dtype: torch.dtype | None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, compute_dtype)
        return x + self.mlp(self.post_attention_layernorm(x), compute_dtype)


class DreamBaseModel(nn.Module):
    """The ``model`` submodule: embeddings, decoder layers and the final norm."""

    def __init__(self, config: DreamConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DreamDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = _layers.RMSNorm(config.hidden_size, config.rms_norm_eps)


class DreamModel(_layers.NativeModel):
    """Dream masked diffusion LM with the released checkpoint's parameter names.

    Args:
        config: The model configuration.

    Attributes:
        precision: ``"native"`` or ``"reference"`` (fp16-autocast emulation, see
            :mod:`daedal.models._layers`).
    """

    def __init__(self, config: DreamConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.model = DreamBaseModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.precision = "native"
        self.reset_parameters()
        self.tie_weights()

    def reset_parameters(self) -> None:
        """Initialise for training: N(0, initializer_range) matrices, zero biases, unit norm scales."""
        _layers.init_weights(self, self.config.initializer_range)

    def tie_weights(self) -> None:
        """Share the LM head with the embedding when ``tie_word_embeddings`` is set."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def logits_width(self) -> int:
        """Width of the logits (``vocab_size``)."""
        return self.config.vocab_size

    def _token_embedding(self) -> nn.Embedding:
        return self.model.embed_tokens

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The model's raw (shifted) logits.

        Args:
            input_ids: ``[B, T]`` token ids.
            attention_mask: ``[B, T]``, True/1 where the key may be attended; None = all.
            position_ids: ``[B, T]`` or ``[T]`` RoPE positions; defaults to ``0..T-1``.

        Returns:
            ``[B, T, vocab_size]``; row ``q`` predicts token ``q + 1`` (see :func:`shift_logits`).
        """
        cos, sin, mask, compute_dtype = _layers.rope_and_mask(
            input_ids,
            attention_mask,
            position_ids,
            head_dim=self.config.attn_head_dim,
            theta=self.config.rope_theta,
            precision=self.precision,
        )
        h = self.model.embed_tokens(input_ids)
        # Dream casts cos/sin to the hidden states' dtype (the embedding output) before use.
        cos, sin = cos.to(h.dtype), sin.to(h.dtype)
        for layer in self.model.layers:
            h = layer(h, cos, sin, mask, compute_dtype)
        return _layers.linear(self.model.norm(h), self.lm_head, compute_dtype)


def shift_logits(logits: torch.Tensor) -> torch.Tensor:
    """Realign Dream's output: ``out[:, 0] = logits[:, 0]``, ``out[:, i] = logits[:, i - 1]``."""
    return torch.cat((logits[:, :1], logits[:, :-1]), dim=1)


# ---------------------------------------------------------------------------------------- I/O


def save_pretrained(
    model: DreamModel,
    directory: str | os.PathLike[str],
    *,
    max_shard_size: int | str | None = None,
) -> Path:
    """Write ``config.json`` and weights (single file, or shards plus index) to ``directory``."""
    omit = ("lm_head.weight",) if model.config.tie_word_embeddings else ()
    return save_model(model, directory, max_shard_size=max_shard_size, omit=omit)


def check_config(data: dict[str, Any], *, path: str | os.PathLike[str]) -> DreamConfig:
    """Validate that a config.json mapping describes a Dream model and parse it.

    Raises:
        AdapterError: When ``model_type`` is not ``"Dream"``.
    """
    return DreamConfig.from_checkpoint_dict(data, path=path)


def load_pretrained(
    directory: str | os.PathLike[str],
    *,
    dtype: Any = "auto",
    device: Any = None,
) -> DreamModel:
    """Load a Dream checkpoint directory into a :class:`DreamModel`, shard by shard, from meta.

    Raises:
        AdapterError: Not a Dream checkpoint, or missing / unexpected / mis-shaped keys.
        ConfigError: Bad ``dtype`` or ``device``.
    """
    config = check_config(read_config(directory, family="Dream"), path=directory)
    # A tied head is stored once, as the embedding; tolerate its absence and re-tie afterwards.
    optional = ("lm_head.weight",) if config.tie_word_embeddings else ()
    model = load_model(
        lambda: DreamModel(config),
        directory,
        config_dtype=config.torch_dtype,
        dtype=dtype,
        device=device,
        family="Dream",
        optional=optional,
    )
    model.tie_weights()
    model.eval()
    return model


def tiny_config(**overrides: Any) -> DreamConfig:
    """A small Dream config for tests (GQA 4:2, special ids as in the real model)."""
    base: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "torch_dtype": "float32",
    }
    base.update(overrides)
    return DreamConfig.from_dict(base)
