"""The LLaDA adapter: LLaDA-8B-Instruct / LLaDA-1.5 behind daedal's model-adapter protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from daedal.core.errors import AdapterError
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
    shifted = False
    end_of_turn_token = "<|eot_id|>"
    mask_token = "<|mdm_mask|>"
    remote_mask_style = "2d"

    @classmethod
    def _check_family(cls, raw: dict[str, Any], directory: Path) -> None:
        if raw.get("auto_map"):
            # Remote-code checkpoints may carry fields the native config rejects; check the type only.
            if str(raw.get("model_type", "")).lower() != modeling.MODEL_TYPE:
                raise AdapterError(
                    f"path_or_hub_id={str(directory)!r} is not a LLaDA checkpoint: its config.json has "
                    f"model_type={raw.get('model_type')!r} (expected 'llada').",
                    code="checkpoint",
                )
            return
        modeling.check_config(raw, path=directory)

    @classmethod
    def _load_native(cls, directory: Path, *, dtype: Any, device: torch.device) -> torch.nn.Module:
        return modeling.load_pretrained(directory, dtype=dtype, device=device)

    @classmethod
    def _is_native(cls, model: torch.nn.Module) -> bool:
        return isinstance(model, modeling.LLaDAModelLM)

    def _max_length(self, config: Any) -> int:
        return int(getattr(config, "max_sequence_length", None) or 4096)

    def render_chat(self, messages: Sequence[dict[str, str]]) -> str:
        """``<|startoftext|>`` + header/content/``<|eot_id|>`` per message + the assistant header."""
        return _templates.render_llada(messages)
