"""The model adapter protocol: the one thing the engine calls for predictions.

An adapter wraps a masked diffusion model and its tokenizer. Exactly one adapter
serves an engine (it is called, never broadcast to), so it is a
:class:`typing.Protocol` rather than a hook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from daedal.core.window import Window

#: A chat conversation: a list of ``{"role": ..., "content": ...}`` messages.
Messages = Sequence[Mapping[str, str]]
#: What ``encode`` accepts for one prompt: plain text (one user turn) or a conversation.
PromptText = str | Messages


@runtime_checkable
class ModelAdapter(Protocol):
    """What the engine needs from a model.

    Attributes:
        mask_id: Token id of the mask token.
        eos_id: The primary end-of-sequence id (the one DAEDAL listens to).
        eos_ids: Every id that ends an answer (EOS, end of turn); used for statistics.
        pad_id: Id written past each row's length in a canvas.
        vocab_size: Width of the logits' last dimension.
        max_length: Longest canvas row (prompt + generation) the model accepts.
        device: Where ``logits`` expects its inputs.
        dtype: The model's compute dtype.
    """

    mask_id: int
    eos_id: int
    eos_ids: frozenset[int]
    pad_id: int
    vocab_size: int
    max_length: int
    device: torch.device
    dtype: torch.dtype

    def encode(self, prompts: Sequence[PromptText], *, chat_template: bool = True) -> list[list[int]]:
        """Turn prompts into token ids, wrapping each in the model's chat template by default."""
        ...

    def logits(
        self,
        tokens: torch.Tensor,
        length: torch.Tensor,
        *,
        window: Window | None = None,
    ) -> torch.Tensor:
        """Run one forward pass.

        Args:
            tokens: ``[B, T]`` token ids, right-padded.
            length: ``[B]`` valid length of each row; keys at ``c >= length[b]`` must not be
                attended (key-padding mask). Rows are otherwise attended bidirectionally.
            window: The positions the engine will decide on this step. A cached adapter may
                recompute only what this window needs; others ignore it.

        Returns:
            ``[B, T, V]`` logits, aligned so that ``logits[b, i]`` predicts the token of slot
            ``i`` (adapters of shifted models, such as Dream, absorb the shift).
        """
        ...

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Turn generated ids back into text, special tokens kept."""
        ...
