"""The Dream adapter: Dream-v0-Instruct-7B behind daedal's model-adapter protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from daedal.core.errors import AdapterError
from daedal.models import _templates
from daedal.models._adapter import HFAdapter
from daedal.models.dream import modeling

__all__ = ["Dream"]


class Dream(HFAdapter):
    """Dream adapter (mask 151666, EOS/pad 151643, end of turn ``<|im_end|>`` 151645 for the released model).

    Dream's own logit row ``q`` predicts token ``q + 1``; the adapter shifts it back so
    that ``logits[:, i]`` predicts slot ``i`` (slot 0 keeps the model's row 0).
    Right-padded rows use positions ``0..N-1``, which right padding leaves exact.
    """

    family = "Dream"
    shifted = True
    end_of_turn_token = "<|im_end|>"
    mask_token = "<|mask|>"
    remote_mask_style = "4d"

    @classmethod
    def _check_family(cls, raw: dict[str, Any], directory: Path) -> None:
        if raw.get("auto_map"):
            if str(raw.get("model_type", "")).lower() != modeling.MODEL_TYPE.lower():
                raise AdapterError(
                    f"path_or_hub_id={str(directory)!r} is not a Dream checkpoint: its config.json has "
                    f"model_type={raw.get('model_type')!r} (expected 'Dream').",
                    code="checkpoint",
                )
            return
        modeling.check_config(raw, path=directory)

    @classmethod
    def _load_native(cls, directory: Path, *, dtype: Any, device: torch.device) -> torch.nn.Module:
        return modeling.load_pretrained(directory, dtype=dtype, device=device)

    @classmethod
    def _is_native(cls, model: torch.nn.Module) -> bool:
        return isinstance(model, modeling.DreamModel)

    @classmethod
    def _fallback_tokenizer_class(cls) -> Any:
        # The released checkpoint names a custom DreamTokenizer (remote code); it is a Qwen2 BPE.
        from transformers import Qwen2Tokenizer

        return Qwen2Tokenizer

    def _max_length(self, config: Any) -> int:
        return int(getattr(config, "max_position_embeddings", None) or 2048)

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """Qwen2.5 template with the default system turn and the assistant generation prompt."""
        return _templates.render_dream(messages, add_generation_prompt=True)
