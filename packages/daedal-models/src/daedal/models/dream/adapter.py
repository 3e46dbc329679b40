"""The Dream adapter: Dream-v0-Instruct-7B behind daedal's model-adapter protocol."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar

import torch

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
    model_types = (modeling.MODEL_TYPE,)
    shifted = True
    end_of_turn_token = "<|im_end|>"
    mask_token = "<|mask|>"
    native_modeling: ClassVar[ModuleType] = modeling
    native_class: ClassVar[type[torch.nn.Module]] = modeling.DreamModel
    remote_mask_style = "4d"

    @classmethod
    def _fallback_tokenizer_class(cls) -> Any:
        # The released checkpoint names a custom DreamTokenizer (remote code); it is a Qwen2 BPE.
        from transformers import Qwen2Tokenizer

        return Qwen2Tokenizer

    def max_length_of(self, config: Any) -> int:
        return int(getattr(config, "max_position_embeddings", None) or 2048)

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """Qwen2.5 template with the default system turn and the assistant generation prompt."""
        return _templates.render_dream(messages, add_generation_prompt=True)
