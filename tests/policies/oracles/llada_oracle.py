"""A straightforward transcription of LLaDA's ``generate`` (``shared/reference/baselines.md`` a.1, a.2).

``variant="daedal"`` is the DAEDAL repository's baseline (a.2): prompts left-padded with
EOS and attended, ``max(1, steps // blocks)`` steps per block, fp32 Gumbel noise.
``variant="llada"`` is a.1 with each row as its own prompt (right padding, keys past a
row's length masked) and fp64 Gumbel noise. Per-row top-k in Python, ties to the lowest
column. Random numbers are drawn in the reference's order: Gumbel noise ``[B, W, V]``, then
the random-remasking scores ``[B, W]``.
"""

from __future__ import annotations

import torch


def llada_reference(
    model,
    prompts: list[list[int]],
    *,
    mask_id: int,
    eos_id: int,
    pad_id: int = 0,
    gen_length: int = 128,
    steps: int = 128,
    block_length: int = 128,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    seed: int = 0,
    variant: str = "llada",
) -> tuple[list[list[int]], int]:
    generator = torch.Generator().manual_seed(seed)
    passes = 0
    batch = len(prompts)
    if variant == "daedal":
        P = max(len(p) for p in prompts)
        plen = [P] * batch
        rows = [[eos_id] * (P - len(p)) + list(p) for p in prompts]
        dtype = torch.float32
    else:
        plen = [len(p) for p in prompts]
        rows = [list(p) for p in prompts]
        dtype = torch.float64
    lengths = [n + gen_length for n in plen]
    width = max(lengths)
    x = torch.full((batch, width), pad_id if variant == "llada" else eos_id, dtype=torch.long)
    for i in range(batch):
        x[i, : plen[i]] = torch.tensor(rows[i])
        x[i, plen[i] : lengths[i]] = mask_id
    length_t = torch.tensor(lengths)

    def forward(tokens):
        nonlocal passes
        passes += 1
        return model(tokens, length_t).float()

    blocks = gen_length // block_length
    per_block = max(1, steps // blocks) if variant == "daedal" else steps // blocks
    for b in range(blocks):
        starts = [plen[i] + b * block_length for i in range(batch)]
        ends = [s + block_length for s in starts]
        m = [int((x[i, starts[i] : ends[i]] == mask_id).sum()) for i in range(batch)]
        quota = [
            [m[i] // per_block + (1 if s < m[i] % per_block else 0) for s in range(per_block)] for i in range(batch)
        ]
        for s in range(per_block):
            logits = forward(x)
            if cfg_scale > 0:
                un = x.clone()
                for i in range(batch):
                    un[i, : plen[i]] = mask_id
                un_logits = forward(un)
                guided = un_logits + (cfg_scale + 1) * (logits - un_logits)
                # Real models have finite logits; the toy's -inf mask logit must stay -inf, not NaN.
                finite = torch.isfinite(logits) & torch.isfinite(un_logits)
                logits = torch.where(finite, guided, torch.minimum(logits, un_logits))
            if temperature > 0:
                l = logits.to(dtype)
                u = torch.rand(l.shape, generator=generator, dtype=dtype)
                x0 = (l.exp() / (-torch.log(u)) ** temperature).argmax(-1)
            else:
                x0 = logits.argmax(-1)
            if remasking == "low_confidence":
                conf = torch.softmax(logits, -1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            else:
                conf = torch.rand(x0.shape, generator=generator)
            for i in range(batch):
                candidates = [q for q in range(plen[i], ends[i]) if int(x[i, q]) == mask_id]
                ranked = sorted(candidates, key=lambda q: -float(conf[i, q]))  # stable: lowest column on ties
                for q in ranked[: quota[i][s]]:
                    x[i, q] = x0[i, q]
    return [x[i, plen[i] : lengths[i]].tolist() for i in range(batch)], passes
