"""A straightforward transcription of LLaDA's ``generate`` (reference/baselines.md a.1).

Kept deliberately naive — per-row Python loops, one position at a time — so it can serve
as an independent oracle for the vectorised engine. Rows are right-padded and attended
up to their own length, so each row decodes as if it were alone; ties in confidence go
to the lowest column.
"""

from __future__ import annotations

import torch


def llada_generate(
    adapter,
    prompts: list[list[int]],
    *,
    gen_length: int = 128,
    steps: int = 128,
    block_length: int = 128,
    temperature: float = 0.0,
    remasking: str = "low_confidence",
    seed: int = 0,
) -> list[list[int]]:
    mask = adapter.mask_id
    generator = torch.Generator().manual_seed(seed)
    rows = [list(p) + [mask] * gen_length for p in prompts]
    width = max(len(r) for r in rows)
    x = torch.full((len(rows), width), adapter.pad_id, dtype=torch.long)
    for j, r in enumerate(rows):
        x[j, : len(r)] = torch.tensor(r)
    length = torch.tensor([len(r) for r in rows])
    starts = [len(p) for p in prompts]
    assert gen_length % block_length == 0
    blocks = gen_length // block_length
    assert steps % blocks == 0
    per_block = steps // blocks
    for b in range(blocks):
        masks_in_block = []
        for j, p in enumerate(starts):
            block = x[j, p + b * block_length : p + (b + 1) * block_length].tolist()
            masks_in_block.append(sum(1 for t in block if t == mask))
        for s in range(per_block):
            logits = adapter.logits(x, length).float()
            if temperature > 0:
                l64 = logits.double()
                u = torch.rand(l64.shape, generator=generator, dtype=torch.float64)
                x0 = (l64.exp() / (-torch.log(u)) ** temperature).argmax(-1)
            else:
                x0 = logits.argmax(-1)
            probs = torch.softmax(logits, -1)
            if remasking == "random":
                scores = torch.rand(x.shape, generator=generator)
            for j, p in enumerate(starts):
                m = masks_in_block[j]
                quota = m // per_block + (1 if s < m % per_block else 0)
                candidates = []
                for c in range(p, p + (b + 1) * block_length):
                    if int(x[j, c]) != mask:
                        continue
                    if remasking == "random":
                        conf = float(scores[j, c])
                    else:
                        conf = float(probs[j, c, int(x0[j, c])])
                    candidates.append((-conf, c))
                candidates.sort()
                for _, c in candidates[:quota]:
                    if int(x0[j, c]) != mask:
                        x[j, c] = x0[j, c]
    return [x[j, p : p + gen_length].tolist() for j, p in enumerate(starts)]
