"""Native torch implementation of LLaDA (GSAI-ML/LLaDA-8B-Instruct, LLaDA-1.5).

State-dict compatible with the released checkpoints: parameter names and shapes are
those of the HF repos (``model.transformer.wte.weight``, ``...blocks.{i}.q_proj.weight``,
...), so ``load_pretrained`` reads them without ``trust_remote_code``.

Architecture ("Llama without a causal mask")::

    h = wte[ids]
    for block: h = h + attn_out(SDPA(RoPE(q), RoPE(k), v; key-padding mask only))
               h = h + ff_out(silu(ff_proj(b)) * up_proj(b)),  b = ff_norm(h)
    logits = ff_out(ln_f(h))      # logits at slot i predict slot i (no shift)

RoPE runs in fp32 (``rope_full_precision``) and is cast back to the activation dtype.
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

__all__ = [
    "LLaDAConfig",
    "LLaDAModelLM",
    "load_pretrained",
    "load_state_dict_from_dir",
    "save_pretrained",
]

MODEL_TYPE = "llada"


@dataclasses.dataclass
class LLaDAConfig(CheckpointConfig):
    """LLaDA's config.json, field for field (defaults are LLaDA-8B-Instruct's).

    Keys of config.json that are not fields here (``auto_map``, ``init_fn``, ...) are
    kept in ``extra`` and written back by :meth:`to_dict` (``model_type`` "llada",
    ``architectures`` ["LLaDAModelLM"]), so a round trip preserves them.
    """

    FAMILY = "LLaDA"
    MODEL_TYPE = MODEL_TYPE
    ARCHITECTURES = ("LLaDAModelLM",)

    d_model: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = 32
    multi_query_attention: bool | None = None
    mlp_hidden_size: int | None = 12288
    mlp_ratio: int = 4
    activation_type: str = "silu"
    block_type: str = "llama"
    vocab_size: int = 126464
    embedding_size: int | None = 126464
    max_sequence_length: int = 4096
    rope: bool = True
    rope_theta: float = 500000.0
    rope_full_precision: bool = True
    layer_norm_type: str = "rms"
    layer_norm_with_affine: bool = True
    rms_norm_eps: float = 1e-5
    bias_for_layer_norm: bool = False
    include_bias: bool = False
    include_qkv_bias: bool = False
    attention_layer_norm: bool = False
    attention_layer_norm_with_affine: bool = True
    input_emb_norm: bool = False
    scale_logits: bool = False
    weight_tying: bool = False
    alibi: bool = False
    alibi_bias_max: float = 8.0
    flash_attention: bool = False
    block_group_size: int = 1
    attention_dropout: float = 0.0
    residual_dropout: float = 0.0
    embedding_dropout: float = 0.0
    init_std: float = 0.02
    mask_token_id: int = 126336
    eos_token_id: int = 126081
    pad_token_id: int = 126081
    use_cache: bool = False
    precision: str | None = "amp_bf16"
    torch_dtype: str | None = "bfloat16"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    # ------------------------------------------------------------------ derived sizes
    @property
    def effective_n_kv_heads(self) -> int:
        """KV heads: 1 for multi-query attention, ``n_heads`` when unset."""
        if self.multi_query_attention:
            return 1
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def hidden_size(self) -> int:
        """MLP width: ``mlp_hidden_size`` if set, else ``mlp_ratio * d_model``."""
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else self.mlp_ratio * self.d_model

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the embedding / LM head (``embedding_size``, falling back to ``vocab_size``)."""
        return self.embedding_size if self.embedding_size is not None else self.vocab_size

    def validate(self) -> None:
        """Reject configurations this implementation does not compute exactly.

        Raises:
            ConfigError: Naming the field, its value and the supported value.
        """
        unsupported = {
            "block_type": (self.block_type, "llama"),
            "activation_type": (self.activation_type, "silu"),
            "layer_norm_type": (self.layer_norm_type, "rms"),
            "rope": (self.rope, True),
            "alibi": (self.alibi, False),
            "include_bias": (self.include_bias, False),
            "bias_for_layer_norm": (self.bias_for_layer_norm, False),
            "attention_layer_norm": (self.attention_layer_norm, False),
            "input_emb_norm": (self.input_emb_norm, False),
            "scale_logits": (self.scale_logits, False),
            "block_group_size": (self.block_group_size, 1),
        }
        for name, (value, want) in unsupported.items():
            if value != want:
                raise ConfigError(
                    f"LLaDA config field {name}={value!r} is not supported by the native implementation "
                    f"(it supports {name}={want!r}); load this checkpoint with trust_remote_code=True instead."
                )
        for name in ("d_model", "n_layers", "n_heads", "vocab_size", "max_sequence_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"LLaDA config field {name}={value!r} must be a positive integer.")
        if self.d_model % self.n_heads:
            raise ConfigError(f"LLaDA config: d_model={self.d_model} must be divisible by n_heads={self.n_heads}.")
        if self.head_dim % 2:
            raise ConfigError(f"LLaDA config: head dim d_model/n_heads={self.head_dim} must be even for RoPE.")
        if self.n_heads % self.effective_n_kv_heads:
            raise ConfigError(
                f"LLaDA config: n_heads={self.n_heads} must be a multiple of n_kv_heads={self.effective_n_kv_heads}."
            )
        if self.padded_vocab_size < self.vocab_size:
            raise ConfigError(
                f"LLaDA config: embedding_size={self.embedding_size} must be >= vocab_size={self.vocab_size}."
            )


class LLaDABlock(nn.Module):
    """One LLaDA "llama" block: pre-norm bidirectional attention and a SwiGLU MLP."""

    def __init__(self, config: LLaDAConfig) -> None:
        super().__init__()
        d, hd = config.d_model, config.head_dim
        kv = config.effective_n_kv_heads * hd
        qkv_bias = config.include_qkv_bias
        self.n_heads = config.n_heads
        self.n_kv_heads = config.effective_n_kv_heads
        self.head_dim = hd
        self.attn_norm = _layers.RMSNorm(d, config.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=qkv_bias)
        self.k_proj = nn.Linear(d, kv, bias=qkv_bias)
        self.v_proj = nn.Linear(d, kv, bias=qkv_bias)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = _layers.RMSNorm(d, config.rms_norm_eps)
        self.ff_proj = nn.Linear(d, config.hidden_size, bias=False)  # gate: SiLU applies here
        self.up_proj = nn.Linear(d, config.hidden_size, bias=False)
        self.ff_out = nn.Linear(config.hidden_size, d, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        compute_dtype: torch.dtype | None,
    ) -> torch.Tensor:
        # rope_full_precision: rotate in fp32, cast back to the activation dtype.
        o = _layers.self_attention(self, self.attn_norm(x), cos, sin, mask, compute_dtype, rope_fp32=True)
        x = x + _layers.linear(o, self.attn_out, compute_dtype)
        return x + _layers.swiglu(self.ff_norm(x), self.ff_proj, self.up_proj, self.ff_out, compute_dtype)


class LLaDATransformer(nn.Module):
    """``model.transformer``: token embedding ``wte``, ``blocks``, final norm ``ln_f`` and LM head ``ff_out``."""

    def __init__(self, config: LLaDAConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(config.padded_vocab_size, config.d_model)
        self.blocks = nn.ModuleList(LLaDABlock(config) for _ in range(config.n_layers))
        self.ln_f = _layers.RMSNorm(config.d_model, config.rms_norm_eps)
        # With weight tying the checkpoint has no ff_out; the head reuses wte.
        self.ff_out: nn.Linear | None = (
            None if config.weight_tying else nn.Linear(config.d_model, config.padded_vocab_size, bias=False)
        )


class LLaDAModel(nn.Module):
    """The ``model`` submodule, holding ``transformer``."""

    def __init__(self, config: LLaDAConfig) -> None:
        super().__init__()
        self.transformer = LLaDATransformer(config)


class LLaDAModelLM(_layers.NativeModel):
    """LLaDA masked diffusion LM with the released checkpoints' parameter names.

    Args:
        config: The model configuration.

    Attributes:
        precision: ``"native"`` (compute in the weights' dtype) or ``"reference"``
            (emulate the official DAEDAL run's fp16 autocast over bf16 weights; see
            :mod:`daedal.models._layers`).
    """

    def __init__(self, config: LLaDAConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.model = LLaDAModel(config)
        self.precision = "native"
        self.reset_parameters()

    # ------------------------------------------------------------------ parameters
    def reset_parameters(self) -> None:
        """Initialise for training from scratch: N(0, init_std) matrices, unit norm scales, zero biases."""
        _layers.init_weights(self, self.config.init_std)

    @property
    def transformer(self) -> LLaDATransformer:
        return self.model.transformer

    @property
    def logits_width(self) -> int:
        """Width of the logits: the embedding rows (``embedding_size``), which may exceed the tokenizer."""
        return self.config.padded_vocab_size

    def _token_embedding(self) -> nn.Embedding:
        return self.transformer.wte

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits for every slot.

        Args:
            input_ids: ``[B, T]`` token ids (masked slots hold ``mask_token_id``).
            attention_mask: ``[B, T]``, True/1 where the key may be attended; None attends
                everything. Only keys are masked (queries of pad slots still produce output).
            position_ids: ``[B, T]`` or ``[T]`` RoPE positions; defaults to ``0..T-1``.

        Returns:
            ``[B, T, embedding_size]`` logits; ``logits[b, i]`` predicts slot ``i``.
        """
        tr = self.transformer
        cos, sin, mask, compute_dtype = _layers.rope_and_mask(
            input_ids,
            attention_mask,
            position_ids,
            head_dim=self.config.head_dim,
            theta=self.config.rope_theta,
            precision=self.precision,
        )
        h = tr.wte(input_ids)
        for block in tr.blocks:
            h = block(h, cos, sin, mask, compute_dtype)
        h = tr.ln_f(h)
        if tr.ff_out is None:  # weight tying
            head = tr.wte.weight
            if compute_dtype is not None:
                return nn.functional.linear(h.to(compute_dtype), head.to(compute_dtype))
            return nn.functional.linear(h, head)
        return _layers.linear(h, tr.ff_out, compute_dtype)


# ---------------------------------------------------------------------------------------- I/O


def save_pretrained(
    model: LLaDAModelLM,
    directory: str | os.PathLike[str],
    *,
    max_shard_size: int | str | None = None,
) -> Path:
    """Write ``config.json`` and weights (single file, or shards plus index) to ``directory``.

    Args:
        model: The model to save.
        directory: Target directory (created if missing).
        max_shard_size: Bytes or ``"2GB"``; None writes one ``model.safetensors``.
    """
    return save_model(model, directory, max_shard_size=max_shard_size)


def check_config(data: dict[str, Any], *, path: str | os.PathLike[str]) -> LLaDAConfig:
    """Validate that a config.json mapping describes a LLaDA model and parse it.

    Raises:
        AdapterError: When ``model_type`` is not ``"llada"``.
    """
    return LLaDAConfig.from_checkpoint_dict(data, path=path)


def load_pretrained(
    directory: str | os.PathLike[str],
    *,
    dtype: Any = "auto",
    device: Any = None,
) -> LLaDAModelLM:
    """Load a LLaDA checkpoint directory into a :class:`LLaDAModelLM`, memory-frugally.

    The model is built on the meta device and each safetensors shard is assigned in the
    target dtype on the target device, so no fp32 copy of a bf16 checkpoint is made.

    Args:
        directory: An HF-style LLaDA checkpoint directory.
        dtype: ``"auto"`` (checkpoint dtype), a torch dtype or its name.
        device: Target device (default CPU).

    Raises:
        AdapterError: Not a LLaDA checkpoint, or missing / unexpected / mis-shaped keys.
        ConfigError: Bad ``dtype`` or ``device``.
    """
    config = check_config(read_config(directory, family="LLaDA"), path=directory)
    model = load_model(
        lambda: LLaDAModelLM(config),
        directory,
        config_dtype=config.torch_dtype,
        dtype=dtype,
        device=device,
        family="LLaDA",
    )
    model.eval()
    return model


def load_state_dict_from_dir(
    directory: str | os.PathLike[str],
    dtype: Any = "auto",
    device: Any = None,
) -> dict[str, torch.Tensor]:
    """The state dict of a LLaDA checkpoint directory (validated against its config)."""
    return load_pretrained(directory, dtype=dtype, device=device).state_dict()


def tiny_config(**overrides: Any) -> LLaDAConfig:
    """A small LLaDA config for tests and toy training (special ids as in the real model)."""
    base: dict[str, Any] = {
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "n_kv_heads": 4,
        "mlp_hidden_size": 128,
        "vocab_size": 126464,
        "embedding_size": 126464,
        "max_sequence_length": 512,
        "torch_dtype": "float32",
    }
    base.update(overrides)
    return LLaDAConfig.from_dict(base)
