"""Helpers for policy tests: states and predictions built by hand."""

from __future__ import annotations

import torch

from daedal.core import Canvas, EngineConfig, Prediction, State, Window
from daedal.core.testing import FakeAdapter


def state_for(canvas: Canvas, adapter: FakeAdapter | None = None, window: Window | None = None, step: int = 0) -> State:
    """A state as the engine would hand it to a step hook."""
    return State(
        adapter=adapter or FakeAdapter(vocab_size=canvas_vocab(canvas)),
        config=EngineConfig(),
        prompts=[row[: int(p)] for row, p in zip(canvas.rows(), canvas.prompt_len.tolist(), strict=False)],
        canvas=canvas,
        window=window if window is not None else Window.whole(canvas.prompt_len, canvas.length),
        step=step,
        generator=torch.Generator().manual_seed(0),
    )


def canvas_vocab(canvas: Canvas) -> int:
    return canvas.mask_id + 1


def canvas_of(
    rows: list[list[int]], prompt_len: list[int], *, mask_id: int, pad_id: int = 0, max_length=None
) -> Canvas:
    """A canvas from explicit rows (each up to its length)."""
    width = max(len(r) for r in rows)
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
    length = torch.tensor([len(r) for r in rows])
    mx = (
        length.clone()
        if max_length is None
        else torch.as_tensor(max_length, dtype=torch.long).expand(len(rows)).clone()
    )
    return Canvas(
        tokens=tokens, prompt_len=torch.tensor(prompt_len), length=length, max_length=mx, mask_id=mask_id, pad_id=pad_id
    )


def prediction_from_probs(probs: torch.Tensor) -> Prediction:
    """A greedy prediction whose softmax is ``probs`` (rows normalised; zeros become -inf logits)."""
    probs = probs / probs.sum(-1, keepdim=True)
    return Prediction.greedy(torch.log(probs))


def peaked(
    batch: int, width: int, vocab: int, spec: dict[tuple[int, int], tuple[int, float]], filler: int = 4
) -> torch.Tensor:
    """``[B, T, V]`` probabilities: at (row, col) in ``spec`` token ``t`` has probability ``p``
    and the rest is spread evenly; elsewhere ``filler`` has probability 0.97."""
    probs = torch.full((batch, width, vocab), 0.03 / (vocab - 1))
    probs[..., filler] = 0.97
    for (b, c), (t, p) in spec.items():
        probs[b, c] = (1 - p) / (vocab - 1)
        probs[b, c, t] = p
    return probs
