"""The LLaDA adapter: LLaDA-8B-Instruct / LLaDA-1.5 behind daedal's model-adapter protocol."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar

import torch

from daedal.models import _templates
from daedal.models._adapter import HFAdapter
from daedal.models.llada import modeling

__all__ = ["LLaDA"]


class LLaDA(HFAdapter):
    """LLaDA adapter (mask 126336, EOS/pad 126081, end of turn ``<|eot_id|>`` 126348 for the released models).

    Build it with :meth:`from_pretrained` (checkpoint directory or hub id) or
    :meth:`from_model` (an already loaded model and tokenizer)::

        adapter = LLaDA.from_pretrained("GSAI-ML/LLaDA-8B-Instruct", dtype="bfloat16", device="cuda")

    Logits are not shifted: row ``i`` predicts slot ``i``.
    """

    family = "LLaDA"
    model_types = (modeling.MODEL_TYPE,)
    shifted = False
    end_of_turn_token = "<|eot_id|>"
    mask_token = "<|mdm_mask|>"
    native_modeling: ClassVar[ModuleType] = modeling
    native_class: ClassVar[type[torch.nn.Module]] = modeling.LLaDAModelLM
    remote_mask_style = "2d"

    def max_length_of(self, config: Any) -> int:
        return int(getattr(config, "max_sequence_length", None) or 4096)

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """``<|startoftext|>`` + header/content/``<|eot_id|>`` per message + the assistant header."""
        return _templates.render_llada(messages)
