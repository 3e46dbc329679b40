"""Canvas construction shared by the length policies.

Two batching conventions exist:

* **right padding** (the default): each row is its own prompt, then its generation
  slots, then pad ids; rows do not see each other's padding, so a row's output does not
  depend on the batch;
* **left padding** (the reference implementations' harnesses, reference semantics §2): every
  prompt is left-padded with the EOS id to the batch's longest prompt ``P`` and the pads
  are ordinary, attended prompt tokens. The canvas's prompt is then the padded prompt
  (``prompt_len = P`` in every row) and its pad id is EOS.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from daedal.core import Canvas, ConfigError, State, hookimpl
from daedal.policies._validate import int_at_least


@attrs.frozen
class Prompts:
    """A batch of prompts laid out for a canvas.

    Attributes:
        grid: ``[B, P]`` prompt ids (padded to the longest prompt).
        prompt_len: ``[B]`` prompt length per row as the canvas sees it.
        pad_id: The canvas pad id.
    """

    grid: torch.Tensor
    prompt_len: torch.Tensor
    pad_id: int


def layout_prompts(
    prompts: Sequence[Sequence[int]], *, left_pad: bool, eos_id: int, pad_id: int, device: torch.device
) -> Prompts:
    """Lay prompts out right-padded (per-row prompt lengths) or left-padded with EOS (one ``P``)."""
    width = max(len(p) for p in prompts)
    fill = eos_id if left_pad else pad_id
    grid = torch.full((len(prompts), width), fill, dtype=torch.long)
    for i, p in enumerate(prompts):  # once per run, before the step loop
        if len(p):
            ids = torch.as_tensor(list(p), dtype=torch.long)
            if left_pad:
                grid[i, width - len(p) :] = ids
            else:
                grid[i, : len(p)] = ids
    if left_pad:
        plen = torch.full((len(prompts),), width, dtype=torch.long)
    else:
        plen = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    return Prompts(grid=grid.to(device), prompt_len=plen.to(device), pad_id=fill)


def build_canvas(
    prompts: Prompts,
    masks: torch.Tensor,
    *,
    tail: torch.Tensor | None = None,
    tail_id: int = 0,
    mask_id: int,
    max_gen_length: int | torch.Tensor,
) -> Canvas:
    """``[prompt | MASK x masks[b] | tail_id x tail[b] | pad]`` rows, vectorised.

    Args:
        prompts: The laid-out prompts.
        masks: ``[B]`` mask slots per row.
        tail: ``[B]`` committed ``tail_id`` slots after the masks (DAEDAL's EOS tail).
        tail_id: Id of the tail tokens.
        mask_id: Mask id.
        max_gen_length: Cap on each row's generation slots (sets ``Canvas.max_length``).
    """
    plen = prompts.prompt_len
    gen = masks if tail is None else masks + tail
    length = plen + gen
    width = max(int(length.max()), prompts.grid.shape[1])
    b = plen.shape[0]
    device = plen.device
    cols = torch.arange(width, device=device)
    grid = torch.full((b, width), prompts.pad_id, dtype=torch.long, device=device)
    grid[:, : prompts.grid.shape[1]] = prompts.grid
    tokens = torch.where(cols < plen[:, None], grid, torch.full_like(grid, prompts.pad_id))
    mask_end = plen + masks
    tokens = torch.where((cols >= plen[:, None]) & (cols < mask_end[:, None]), mask_id, tokens)
    if tail is not None:
        tokens = torch.where((cols >= mask_end[:, None]) & (cols < length[:, None]), tail_id, tokens)
    tokens = tokens[:, : int(length.max())].contiguous()
    return Canvas(
        tokens=tokens,
        prompt_len=plen,
        length=length,
        max_length=plen + max_gen_length,
        mask_id=mask_id,
        pad_id=prompts.pad_id,
    )


def check_fits(state: State, prompts: Prompts, gen_length: int, what: str) -> None:
    """Raise ConfigError when the longest row would not fit the model."""
    limit = getattr(state.adapter, "max_length", None)
    longest = int(prompts.prompt_len.max())
    if limit is not None and longest + gen_length > limit:
        raise ConfigError(
            f"`{what}` {gen_length} does not fit: the longest prompt has {longest} tokens and the model accepts "
            f"{limit} in all; lower `{what}` to at most {limit - longest} or shorten the prompt"
        )


@attrs.frozen(kw_only=True)
class LeftPaddedFixedLength:
    """Fixed-length start with the reference harnesses' batching: prompts left-padded with EOS.

    The pads are attended prompt tokens (reference semantics §2 and a.2), so a
    row's output depends on the longest prompt of its batch, as in the reference.

    Attributes:
        gen_length: Generation slots per row.
    """

    gen_length: int = attrs.field(default=128, validator=int_at_least(1))

    @hookimpl
    def initial_canvas(self, state: State) -> Canvas:
        a = state.adapter
        prompts = layout_prompts(
            state.prompts, left_pad=True, eos_id=a.eos_id, pad_id=a.pad_id, device=torch.device(a.device)
        )
        check_fits(state, prompts, self.gen_length, "gen_length")
        masks = torch.full_like(prompts.prompt_len, self.gen_length)
        return build_canvas(prompts, masks, mask_id=a.mask_id, max_gen_length=self.gen_length)
