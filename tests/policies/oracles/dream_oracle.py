"""A straightforward transcription of Dream's ``diffusion_generate`` (``shared/reference/baselines.md`` (b)).

Rows are right-padded with per-row prompts (equivalent to Dream's left padding with an
attention mask and shifted positions). Per step, random numbers are drawn in the order
the policies draw them: the token-sampling race ``[B, W, V]`` (when ``temperature > 0``),
then the ``origin`` reveal draws or the ``alg_temp`` Gumbel draws ``[B, W]``. Categorical
sampling is ``argmax p / (-log u)`` and sampling without replacement is Gumbel-top-k;
ties go to the lowest column; a row reveals at most its own masks.
"""

from __future__ import annotations

import torch


def _sample_one(l: torch.Tensor, temperature: float, top_p, top_k, race, alg: str):
    if temperature > 0:
        l = l / temperature
    if top_p is not None and top_p < 1:
        order = torch.argsort(l, descending=True, stable=True)
        sorted_l = l[order]
        cumulative = torch.softmax(sorted_l, -1).cumsum(-1)
        l = l.clone()
        for j in range(1, len(order)):
            if cumulative[j - 1] > top_p:  # everything after the first token over the line goes
                l[order[j]] = torch.finfo(l.dtype).min
    if top_k is not None:
        kth = torch.sort(l, descending=True).values[min(top_k, len(l)) - 1]
        l = torch.where(l < kth, torch.finfo(l.dtype).min, l)
    p = torch.softmax(l, -1)
    if temperature > 0:
        token = int((p / -torch.log(race)).argmax())
        conf = float(p[token])
    else:
        conf, token = float(p.max()), int(p.argmax())
    if alg == "topk_margin":
        s = torch.sort(p, descending=True).values
        conf = float(s[0] - s[1])
    elif alg == "entropy":
        conf = float((p * torch.log(p + 1e-10)).sum())
    return conf, token


def dream_reference(
    model,
    prompts: list[list[int]],
    *,
    mask_id: int,
    pad_id: int = 0,
    max_new_tokens: int = 16,
    steps: int = 16,
    alg: str = "origin",
    alg_temp=None,
    temperature: float = 0.0,
    top_p=None,
    top_k=None,
    eps: float = 1e-3,
    seed: int = 0,
) -> tuple[list[list[int]], int]:
    generator = torch.Generator().manual_seed(seed)
    batch = len(prompts)
    plen = [len(p) for p in prompts]
    lengths = [n + max_new_tokens for n in plen]
    x = torch.full((batch, max(lengths)), pad_id, dtype=torch.long)
    for i, p in enumerate(prompts):
        x[i, : plen[i]] = torch.tensor(p)
        x[i, plen[i] : lengths[i]] = mask_id
    length_t = torch.tensor(lengths)
    levels = torch.linspace(1, eps, steps + 1)
    passes = 0
    for i in range(steps):
        masked = [[q for q in range(plen[b], lengths[b]) if int(x[b, q]) == mask_id] for b in range(batch)]
        if not any(masked):
            break
        logits = model(x, length_t).float()
        passes += 1
        race = torch.rand(logits.shape, generator=generator) if temperature > 0 else None
        conf, token = {}, {}
        for b in range(batch):
            for q in masked[b]:
                conf[b, q], token[b, q] = _sample_one(
                    logits[b, q], temperature, top_p, top_k, None if race is None else race[b, q], alg
                )
        t, s = levels[i], levels[i + 1]
        last = i == steps - 1
        chosen: list[list[int]] = [[] for _ in range(batch)]
        if alg == "origin":
            u = torch.rand(x.shape, generator=generator)
            p_reveal = 1.0 if last else 1 - s / t
            for b in range(batch):
                chosen[b] = [q for q in masked[b] if u[b, q] < p_reveal]
        else:
            average = torch.tensor(sum(len(m) for m in masked)) / batch
            k = int(average) if last else int(average * (1 - s / t))
            score = {key: value for key, value in conf.items()}
            if alg_temp:
                u = torch.rand(x.shape, generator=generator)
                for (b, q), c in conf.items():
                    score[b, q] = float(torch.tensor(c) / alg_temp - torch.log(-torch.log(u[b, q])))
            for b in range(batch):
                ranked = sorted(masked[b], key=lambda q: -score[b, q])  # stable: lowest column on ties
                chosen[b] = ranked[:k]
        for b in range(batch):
            for q in chosen[b]:
                if token[b, q] != mask_id:
                    x[b, q] = token[b, q]
    return [x[b, plen[b] : lengths[b]].tolist() for b in range(batch)], passes
