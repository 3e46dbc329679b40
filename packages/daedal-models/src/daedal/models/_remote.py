"""Optional path: run the checkpoint's own modeling code (``trust_remote_code=True``).

The Hugging Face model is wrapped in :class:`RemoteModel`, which has the native models'
call signature (``model(input_ids, attention_mask=keep_mask) -> logits``), so the
adapters treat both paths the same way.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from daedal.core.errors import AdapterError, ConfigError
from daedal.models import _layers
from daedal.models._loading import read_config, resolve_dtype


class RemoteModel(torch.nn.Module):
    """A Hugging Face model (remote code) behind the native forward signature.

    Args:
        hf_model: The loaded model; its output is a tensor, a tuple whose first item is
            the logits, or an object with ``.logits``.
        mask_style: ``"2d"`` passes the ``[B, T]`` key mask as integers (LLaDA's remote
            code); ``"4d"`` passes a ``[B, 1, T, T]`` boolean mask (Dream's remote code).
    """

    hf_model: Any

    def __init__(self, hf_model: torch.nn.Module, *, mask_style: str = "2d") -> None:
        super().__init__()
        if mask_style not in ("2d", "4d"):
            raise ConfigError(f"mask_style={mask_style!r} must be '2d' or '4d'.")
        self.hf_model = hf_model
        self.mask_style = mask_style
        self.precision = "native"

    @property
    def config(self) -> Any:
        return self.hf_model.config

    def set_precision(self, precision: str) -> None:
        """``"reference"`` runs the remote code under real fp16 autocast (CPU or CUDA)."""
        if precision not in _layers.PRECISIONS:
            raise ConfigError(f"precision={precision!r} is not a precision mode; pass 'native' or 'reference'.")
        self.precision = precision

    def get_input_embeddings(self) -> Any:
        return self.hf_model.get_input_embeddings()

    @property
    def logits_width(self) -> int:
        out = self.hf_model.get_output_embeddings() if hasattr(self.hf_model, "get_output_embeddings") else None
        if out is not None:
            return int(out.weight.shape[0])
        return int(self.get_input_embeddings().weight.shape[0])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {}
        if attention_mask is not None:
            keep = attention_mask.to(torch.bool)
            if self.mask_style == "4d":
                t = keep.shape[-1]
                # Key padding only, so the query rows of pad slots stay finite.
                kwargs["attention_mask"] = keep[:, None, None, :].expand(-1, 1, t, t)
            else:
                kwargs["attention_mask"] = keep.to(torch.long)
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        ctx = (
            torch.autocast(device_type=input_ids.device.type, dtype=torch.float16)
            if self.precision == "reference"
            else contextlib.nullcontext()
        )
        with ctx:
            out = self.hf_model(input_ids=input_ids, **kwargs)
        if isinstance(out, torch.Tensor):
            return out
        if hasattr(out, "logits"):
            return out.logits
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            return out[0]
        raise AdapterError(
            f"the remote model returned {type(out).__name__}, which holds no logits; its forward must "
            "return a tensor, a tuple starting with the logits, or an object with .logits.",
            code="checkpoint",
        )


def load_remote(
    directory: str | os.PathLike[str],
    *,
    dtype: Any,
    device: torch.device,
    mask_style: str,
) -> RemoteModel:
    """Load a checkpoint through ``AutoModel`` with ``trust_remote_code=True``.

    Raises:
        AdapterError: When the checkpoint has no remote code or transformers cannot load it.
    """
    import transformers
    from transformers.utils import is_torch_available

    raw = read_config(directory, family="remote-code", argument="path_or_hub_id")
    if "AutoModel" not in (raw.get("auto_map") or {}):
        raise AdapterError(
            f"path_or_hub_id={str(directory)!r}: trust_remote_code=True needs a config.json whose auto_map "
            "names an AutoModel class (and the modeling file next to it); this checkpoint has none, so "
            "load it with trust_remote_code=False (the native implementation).",
            code="checkpoint",
        )
    if not is_torch_available():
        raise AdapterError(
            f"path_or_hub_id={str(directory)!r}: transformers {transformers.__version__} does not accept torch "
            f"{torch.__version__} (transformers 5 needs torch >= 2.6), so it cannot run remote code. Upgrade "
            "torch, install transformers<5, or use the native implementation (trust_remote_code=False).",
            code="checkpoint",
        )
    from transformers import AutoModel

    target = resolve_dtype(dtype, checkpoint_dtype=raw.get("torch_dtype") or raw.get("dtype"))
    # transformers 5 renamed ``torch_dtype`` to ``dtype``.
    major = int(transformers.__version__.split(".")[0])
    dtype_kw = {"dtype": target} if major >= 5 else {"torch_dtype": target}
    try:
        hf_model = AutoModel.from_pretrained(str(directory), trust_remote_code=True, **dtype_kw)
    except Exception as exc:
        raise AdapterError(
            f"path_or_hub_id={str(directory)!r}: transformers could not load the checkpoint's remote code "
            f"({type(exc).__name__}: {exc}). Use the native implementation (trust_remote_code=False) or "
            "fix the checkpoint's modeling files.",
            code="checkpoint",
        ) from exc
    hf_model.to(device)
    hf_model.eval()
    return RemoteModel(hf_model, mask_style=mask_style)
