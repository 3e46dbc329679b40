"""A transcription of Fast-dLLM's ``generate`` with threshold or factor decoding, batch 1 (baselines.md c.1)."""

from __future__ import annotations

import torch


def fast_dllm_reference(
    model,
    prompt: list[int],
    *,
    mask_id: int,
    gen_length: int,
    block_length: int,
    threshold=None,
    factor=None,
    temperature: float = 0.0,
    seed: int = 0,
) -> tuple[list[int], int]:
    generator = torch.Generator().manual_seed(seed)
    P = len(prompt)
    x = torch.full((1, P + gen_length), mask_id, dtype=torch.long)
    x[0, :P] = torch.tensor(prompt)
    length = torch.tensor([P + gen_length])
    passes = 0
    for b in range(gen_length // block_length):
        end = P + (b + 1) * block_length
        while bool((x[0, end - block_length : end] == mask_id).any()):
            logits = model(x, length).float()
            passes += 1
            if temperature > 0:
                l = logits.double()
                u = torch.rand(l.shape, generator=generator, dtype=torch.float64)
                x0 = (l.exp() / (-torch.log(u)) ** temperature).argmax(-1)[0]
            else:
                x0 = logits.argmax(-1)[0]
            p = torch.softmax(logits[0].double(), -1)
            conf = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            masked = [q for q in range(P, end) if int(x[0, q]) == mask_id]
            ranked = sorted(masked, key=lambda q: -float(conf[q]))  # stable: lowest column on ties
            if threshold is not None:
                chosen = [ranked[0]] + [q for q in ranked[1:] if float(conf[q]) >= threshold]
            else:
                m = len(ranked)
                top_i = 0
                for top_i in range(m):
                    bar = -1.0 if top_i == 0 else 1 - factor / (top_i + 2)
                    if float(conf[ranked[top_i]]) < bar:
                        break
                if top_i == 0 or top_i == m - 1:
                    top_i += 1
                chosen = ranked[:top_i]
            for q in chosen:
                x[0, q] = x0[q]
    return x[0, P:].tolist(), passes
