"""A straightforward per-row transcription of DAEDAL (``shared/reference/daedal.md`` §2, §4-§8).

Written for clarity, not speed: Python loops over rows and positions, plain lists for
lengths and pointers, one full softmax per step. The vectorised policies must agree
with it token for token.

``model(x, lengths)`` returns ``[B, W, V]`` logits for the canvas ``x`` with keys at
columns ``>= lengths[b]`` masked (``daedal.md`` §7.1).

``clamp="truncate"`` is the reference (insert whenever ``L_i < L_max`` and cut the row at
``L_max``, Q6); ``clamp="skip"`` is the default mode's rule (insert only when all
``E - 1`` new slots fit). Ties go to the lowest column (stable sorts, first minimum).
"""

from __future__ import annotations

import torch


def eos_conf_row(logits_row: torch.Tensor, start: int, end: int, eos_id: int, window: int) -> float:
    """§4 for one row: scan from the end, keep the first ``window`` positions whose argmax is EOS."""
    probs = torch.softmax(logits_row.float(), dim=-1)
    kept = []
    for q in range(end - 1, start - 1, -1):
        if int(logits_row[q].argmax()) == eos_id:
            kept.append(float(probs[q, eos_id]))
            if len(kept) == window:
                break
    return sum(kept) / window


def daedal_reference(
    model,
    prompts: list[list[int]],
    *,
    mask_id: int,
    eos_id: int,
    initial_gen_length: int = 64,
    max_gen_length: int = 2048,
    block_length: int = 32,
    high_conf_threshold: float = 0.9,
    low_conf_threshold: float = 0.1,
    expansion_factor: int = 8,
    eos_confidence_threshold: float = 0.5,
    expand_eos_confidence_threshold: float = 0.9,
    eos_check_tokens: int = 32,
    temperature: float = 0.0,
    seed: int = 0,
    clamp: str = "truncate",
) -> tuple[list[list[int]], int]:
    """Run DAEDAL on a batch the way the reference does; return (generated rows, forward passes)."""
    generator = torch.Generator().manual_seed(seed)
    passes = 0

    def forward(x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        nonlocal passes
        passes += 1
        return model(x, torch.tensor(lengths, dtype=torch.long)).float()

    batch = len(prompts)
    P = max(len(p) for p in prompts)
    padded = [[eos_id] * (P - len(p)) + list(p) for p in prompts]  # §2: left padding with EOS
    L = [initial_gen_length] * batch
    x = torch.full((batch, P + initial_gen_length), mask_id, dtype=torch.long)
    for i in range(batch):
        x[i, :P] = torch.tensor(padded[i])

    # -- stage 1 (§5) --
    while True:
        T = [P + n for n in L]
        logits = forward(x, T)
        e = [eos_conf_row(logits[i], P, T[i], eos_id, eos_check_tokens) for i in range(batch)]
        grow = [e[i] < eos_confidence_threshold and L[i] < max_gen_length for i in range(batch)]
        if not any(grow):
            break
        new_L = [min(L[i] + expansion_factor, max_gen_length) if grow[i] else L[i] for i in range(batch)]
        if max(new_L) <= max(L):
            break
        new_x = torch.full((batch, P + max(new_L)), eos_id, dtype=torch.long)
        for i in range(batch):
            new_x[i, : T[i]] = x[i, : T[i]]
            if grow[i]:
                new_x[i, T[i] : P + new_L[i]] = mask_id
        x, L = new_x, new_L

    # -- EOS tail --
    tail_L = [min(n + eos_check_tokens // 2, max_gen_length) for n in L]
    x = torch.full((batch, P + max(tail_L)), eos_id, dtype=torch.long)
    for i in range(batch):
        x[i, :P] = torch.tensor(padded[i])
        x[i, P : P + L[i]] = mask_id
    L = tail_L

    # -- stage 2 (§6) --
    cur = [P] * batch
    while any(cur[i] < P + L[i] for i in range(batch)):
        T = [P + n for n in L]
        before = x.clone()
        logits = forward(x, T)
        if temperature > 0:
            u = torch.rand(logits.shape, generator=generator, dtype=torch.float32)
            a = (logits.exp() / (-torch.log(u)) ** temperature).argmax(-1)
        else:
            a = logits.argmax(-1)
        p = torch.softmax(logits, dim=-1)
        c = p.gather(-1, a.unsqueeze(-1)).squeeze(-1)
        e = [eos_conf_row(logits[i], P, T[i], eos_id, eos_check_tokens) for i in range(batch)]
        fills: list[dict[int, int]] = [{} for _ in range(batch)]
        points: list[int | None] = [None] * batch
        for i in range(batch):
            if cur[i] >= T[i]:
                continue
            block = range(cur[i], min(cur[i] + block_length, T[i]))
            masked = [q for q in block if int(x[i, q]) == mask_id]
            for q in masked:
                if int(a[i, q]) != mask_id and float(c[i, q]) > high_conf_threshold:
                    fills[i][q] = int(a[i, q])
            if not fills[i] and masked:
                ranked = sorted(masked, key=lambda q: -float(c[i, q]))  # stable: lowest column first on ties
                usable = [q for q in ranked if int(a[i, q]) != mask_id]
                if usable:
                    fills[i][usable[0]] = int(a[i, usable[0]])
                else:
                    best = None
                    for q in masked:
                        row = logits[i, q].clone()
                        row[mask_id] = float("-inf")
                        prob = torch.softmax(row, dim=-1)
                        top = float(prob.max())
                        if best is None or top > best[0]:
                            best = (top, q, int(prob.argmax()))
                    fills[i][best[1]] = best[2]
            room = L[i] < max_gen_length if clamp == "truncate" else L[i] + expansion_factor - 1 <= max_gen_length
            if e[i] < expand_eos_confidence_threshold and room:
                low = [q for q in masked if float(c[i, q]) < low_conf_threshold and q not in fills[i]]
                if low:
                    points[i] = min(low, key=lambda q: float(c[i, q]))  # first minimum
        for i in range(batch):
            for q, tok in fills[i].items():
                x[i, q] = tok
        if any(q is not None for q in points):
            new_L = [
                min(L[i] + expansion_factor - 1, max_gen_length) if points[i] is not None else L[i]
                for i in range(batch)
            ]
            width = P + max(new_L)
            new_x = torch.full((batch, width), eos_id, dtype=torch.long)
            for i in range(batch):
                if points[i] is None:
                    new_x[i, : T[i]] = x[i, : T[i]]
                    continue
                new_x[i, :P] = x[i, :P]
                w = P
                for q in range(P, T[i]):
                    if w >= width:
                        break
                    if q == points[i]:
                        n = min(expansion_factor, width - w)
                        new_x[i, w : w + n] = mask_id
                        w += n
                    else:
                        new_x[i, w] = x[i, q]
                        w += 1
                new_L[i] = w - P
            x, L = new_x, new_L
        for i in range(batch):
            while cur[i] < P + L[i]:
                seg = x[i, cur[i] : min(cur[i] + block_length, P + L[i])]
                if bool((seg == mask_id).any()):
                    break
                cur[i] += block_length
        if x.shape == before.shape and bool((x == before).all()):
            break
    return [x[i, P : P + L[i]].tolist() for i in range(batch)], passes


def daedal_default(model, prompts: list[list[int]], **kwargs) -> list[list[int]]:
    """The default mode's promise: each row decoded alone (no padding), insertions that do not fit skipped."""
    return [daedal_reference(model, [p], clamp="skip", **kwargs)[0][0] for p in prompts]
