"""Train the bundled tiny LLaDA-architecture model (``daedal.models.bundled``'s ``tiny``).

Recipe: LLaDA's supervised fine-tuning objective, from scratch, on the synthetic
instruction tasks of :mod:`daedal.models.bundled.tasks`:

* Each sample is ``prompt | answer <|eot_id|> <|endoftext|> * pad``, the prompt rendered
  with LLaDA's chat template exactly as the LLaDA adapter encodes it. The generation
  length (answer + EOT + EOS padding) is drawn per sample: most samples get a short
  tail (0-24 EOS), 35 % a uniform total length up to ``--max-gen``, so the model sees
  canvases of every length and learns to put EOS on every slot past the answer, the
  signal DAEDAL's length adjustment listens to.
* The prompt is never masked. Every generation slot is masked independently with
  probability ``t ~ U(eps, 1)`` (one ``t`` per sample, stratified over the batch,
  ``eps = 0.1``); the loss is the cross-entropy on
  masked slots weighted by ``1/t``, summed per sample and divided by its generation
  length, then averaged over the batch (LLaDA's SFT loss).
* Attention is bidirectional; batch padding beyond a sample's length is key-masked.

Everything is seeded (``--seed``): data order, masking and initialisation are
reproducible on one machine and torch version (threads: ``--threads``). The final
checkpoint (config.json, model.safetensors, tokenizer files, training.json) is written
to ``--out``; periodic checkpoints go to ``--work`` so an interrupted run can resume
(``--resume``).

Usage (the shipped model)::

    python packages/daedal-models/training/train_tiny.py \\
        --out packages/daedal-models/src/daedal/models/bundled/tiny

See ``--help`` for the hyper-parameters; their defaults are the shipped model's.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from daedal.models.bundled import tasks
from daedal.models.bundled.tokenizer import EOS, EOT, MASK, build_tokenizer, save_tokenizer, vocabulary
from daedal.models.llada.modeling import LLaDAConfig, LLaDAModelLM, load_state_dict_from_dir, save_pretrained

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "daedal" / "models" / "bundled" / "tiny"

USER_TEMPLATE = (
    "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="final checkpoint directory")
    p.add_argument("--work", type=Path, default=Path("runs/train_tiny"), help="periodic checkpoints and log")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument(
        "--stop-at",
        type=int,
        default=None,
        help="stop after this many steps of the --steps schedule and write the final checkpoint",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decay floor, as a fraction of --lr")
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument(
        "--eps",
        type=float,
        default=0.1,
        help="t ~ U(eps, 1); 0.1 caps the 1/t weight at 10, which keeps small batches' gradients sane",
    )
    p.add_argument("--max-gen", type=int, default=72, help="largest generation length (answer + EOT + EOS) trained on")
    p.add_argument("--short-tail", type=int, default=24, help="EOS tail of the short-tail samples: 0..N")
    p.add_argument(
        "--long-frac",
        type=float,
        default=0.35,
        help="fraction of samples whose generation length is uniform up to --max-gen (the rest: short tail)",
    )
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--n-heads", type=int, default=4)
    p.add_argument("--mlp", type=int, default=384)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bf16 autocast for the matmuls (fp32 master weights, fp32 loss)",
    )
    p.add_argument("--bucket", type=int, default=8, help="draw this many batches at once and group them by length")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--resume", action="store_true", help="continue from --work/state.pt")
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from this checkpoint's weights (a directory with model.safetensors) instead of a "
        "random initialisation; the architecture flags must match it, except that --n-layers may be "
        "larger (the checkpoint's blocks are spread over the deeper stack and every new block starts "
        "as the identity: zero output projections, so the grown model computes the same function)",
    )
    p.add_argument(
        "--family-weights",
        default=None,
        metavar="FAMILY=W,...",
        help="sample families with these relative weights (default: round-robin, equal weights)",
    )
    p.add_argument(
        "--large-frac",
        type=float,
        default=0.0,
        help="fraction of samples whose size is drawn from the upper half of the family's range",
    )
    p.add_argument(
        "--ordered-frac",
        type=float,
        default=0.0,
        help="fraction of letter-family samples whose letters are an alphabetical run or already "
        "sorted / reverse-sorted (prompts unlike random draws, e.g. 'reverse: a b c d')",
    )
    p.add_argument(
        "--short-canvas-frac",
        type=float,
        default=0.0,
        help="fraction of samples on a canvas too short for the answer: the answer's first slots, then one "
        "slot trained towards the uniform distribution (the model's 'no room here' signal, which DAEDAL's "
        "stage-2 insertion listens to), then 0..16 real EOS tokens as stage 2's EOS tail",
    )
    p.add_argument(
        "--short-near-frac",
        type=float,
        default=0.0,
        help="fraction of the short canvases that miss at most 7 slots (one stage-2 insertion's worth; "
        "the rest miss a uniform 1..all)",
    )
    p.add_argument("--bench", type=int, default=0, help="time this many steps and exit")
    return p.parse_args(argv)


class Encoder:
    """Token ids exactly as the LLaDA adapter produces them (chat template, no extra specials)."""

    def __init__(self) -> None:
        self.tok = build_tokenizer()
        vocab = vocabulary()
        self.eos, self.eot, self.mask = vocab[EOS], vocab[EOT], vocab[MASK]
        self.vocab_size = len(vocab)

    def prompt(self, text: str) -> list[int]:
        return self.tok.encode(USER_TEMPLATE.format(text.strip()), add_special_tokens=False).ids

    def answer(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids


def make_batch(enc: Encoder, examples, args, gen: torch.Generator):
    """Tokens, key mask, noised tokens, loss weights and 'no room' slots of a batch.

    ``examples`` holds ``(family, prompt, answer, gen_len, room)``: ``room`` is None for an
    ordinary sample (``gen_len`` >= answer + EOT), else the number of answer slots of a
    too-short canvas: the first ``room - 1`` answer tokens, one slot whose target is the
    uniform distribution, then ``gen_len - room`` real EOS tokens that are never masked.
    """
    rows, prompt_lens, gen_lens, rooms = [], [], [], []
    for _, prompt, answer, g, room in examples:
        p = enc.prompt(prompt)
        a = enc.answer(answer) + [enc.eot]
        if room is None:
            rows.append(p + a + [enc.eos] * (g - len(a)))
        else:
            rows.append(p + a[: room - 1] + [enc.mask] + [enc.eos] * (g - room))
        prompt_lens.append(len(p))
        gen_lens.append(g)
        rooms.append(g if room is None else room)
    width = max(len(r) for r in rows)
    b = len(rows)
    tokens = torch.full((b, width), enc.eos, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r)] = torch.tensor(r)
    cols = torch.arange(width)[None, :]
    plen = torch.tensor(prompt_lens)[:, None]
    glen = torch.tensor(gen_lens)[:, None]
    room = torch.tensor(rooms)[:, None]
    short = torch.tensor([r[4] is not None for r in examples])[:, None]
    valid = cols < plen + glen
    in_gen = (cols >= plen) & valid
    # A short canvas's EOS tail is given (stage 2 adds it as real tokens); its last answer
    # slot is always masked and learns "no room" (uniform); the slots before it as usual.
    no_room = short & (cols == plen + room - 1)
    maskable = in_gen & (cols < plen + room) & ~no_room
    # t ~ U(eps, 1), stratified over the batch (one draw per 1/b-wide stratum, shuffled):
    # the same distribution with less variance between batches.
    strata = (torch.randperm(b, generator=gen) + torch.rand(b, generator=gen)) / b
    t = args.eps + (1 - args.eps) * strata
    masked = maskable & (torch.rand(b, width, generator=gen) < t[:, None])
    noisy = torch.where(masked | no_room, torch.full_like(tokens, enc.mask), tokens)
    # 1/t on masked slots, divided by the sample's generation length (LLaDA SFT).
    weight = masked.float() / t[:, None] / glen.float()
    uniform_weight = no_room.float() / glen.float()
    return tokens, valid, noisy, weight, uniform_weight


def batches(enc: Encoder, examples, rng: random.Random, args, gen: torch.Generator):
    """Endless batches; ``--bucket`` batches are drawn together and grouped by length.

    Grouping similar lengths cuts the padding a batch computes on; the group order is
    shuffled so families and lengths stay mixed over time.
    """
    while True:
        pool = []
        for _ in range(args.batch_size * args.bucket):
            family, prompt, answer = next(examples)
            need = len(enc.answer(answer)) + 1
            room = None
            if args.short_canvas_frac and need >= 2 and rng.random() < args.short_canvas_frac:
                if args.short_near_frac and rng.random() < args.short_near_frac:
                    room = need - rng.randint(1, min(7, need - 1))
                else:
                    room = rng.randint(1, need - 1)
                g = room + rng.randint(0, 16)
            elif rng.random() >= args.long_frac:
                g = need + rng.randint(0, args.short_tail)
            else:
                g = rng.randint(need, max(need, args.max_gen))
            pool.append((len(enc.prompt(prompt)) + g, family, prompt, answer, g, room))
        pool.sort(key=lambda e: e[0])
        groups = [pool[i : i + args.batch_size] for i in range(0, len(pool), args.batch_size)]
        rng.shuffle(groups)
        for group in groups:
            yield make_batch(enc, [e[1:] for e in group], args, gen)


def _weights(spec: str | None) -> dict[str, float]:
    if not spec:
        return {f: 1.0 for f in tasks.FAMILIES}
    out = {f: 0.0 for f in tasks.FAMILIES}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in out:
            raise SystemExit(f"--family-weights: {name.strip()!r} is not a family; use {list(tasks.FAMILIES)}")
        out[name.strip()] = float(value)
    return out


def _ordered_letters(rng: random.Random, size: int) -> list[str]:
    """An alphabetical run, or random distinct letters sorted ascending or descending."""
    kind = rng.randrange(3)
    if kind == 0:
        start = rng.randint(0, len(tasks.LETTERS) - size)
        items = list(tasks.LETTERS[start : start + size])
    else:
        items = sorted(rng.sample(tasks.LETTERS, size))
    if rng.random() < 0.5:
        items.reverse()
    return items


def curriculum(rng: random.Random, args):
    """Endless ``(family, prompt, answer)`` training triples (held-out prompts never drawn).

    Families by ``--family-weights``; with probability ``--large-frac`` the size comes from
    the upper half of the family's range (long answers are the hard ones); with
    probability ``--ordered-frac`` a letter family gets an ordered letter sequence.
    """
    weights = _weights(args.family_weights)
    fams = [f for f in tasks.FAMILIES if weights[f] > 0]
    if not args.family_weights and not args.large_frac and not args.ordered_frac:
        yield from tasks.iter_examples(rng, split="train")  # the original recipe, draw for draw
        return
    while True:
        family = rng.choices(fams, weights=[weights[f] for f in fams])[0]
        lo, hi = tasks.SIZES[family]
        size = rng.randint((lo + hi + 1) // 2, hi) if rng.random() < args.large_frac else rng.randint(lo, hi)
        if family != "add" and rng.random() < args.ordered_frac:
            prompt = f"{family}: " + " ".join(_ordered_letters(rng, size))
            if not tasks.is_heldout(prompt) or size < 3:
                yield family, prompt, tasks.expected_answer(prompt, family)
                continue
        prompt, answer = tasks.make_example(family, rng, size, split="train")
        yield family, prompt, answer


def build_model(args, enc: Encoder) -> LLaDAModelLM:
    config = LLaDAConfig.from_dict(
        {
            "d_model": args.d_model,
            "n_layers": args.n_layers,
            "n_heads": args.n_heads,
            "n_kv_heads": args.n_heads,
            "mlp_hidden_size": args.mlp,
            "mlp_ratio": 4,
            "vocab_size": enc.vocab_size,
            "embedding_size": enc.vocab_size,
            "max_sequence_length": 256,
            "rope_theta": 10000.0,
            "mask_token_id": enc.mask,
            "eos_token_id": enc.eos,
            "pad_token_id": enc.eos,
            "precision": "fp32",
            "torch_dtype": "float32",
        }
    )
    return LLaDAModelLM(config)


def load_grown(model: LLaDAModelLM, state: dict[str, torch.Tensor]) -> int:
    """Load a checkpoint with the same or fewer blocks; returns how many blocks were added.

    The checkpoint's blocks keep their order, spread evenly over the deeper stack; a new
    block keeps its random input projections but starts with zero output projections
    (``attn_out``, ``ff_out``), so its residual branches add nothing and the grown model
    computes exactly what the checkpoint did.
    """
    prefix = "model.transformer.blocks."
    old = 1 + max(int(k[len(prefix) :].split(".")[0]) for k in state if k.startswith(prefix))
    new = len(model.model.transformer.blocks)
    if old > new:
        raise SystemExit(f"--init-from has {old} blocks; --n-layers={new} cannot hold them (use >= {old}).")
    if old == new:
        model.load_state_dict(state)
        return 0
    slots = [round(i * (new - 1) / max(1, old - 1)) for i in range(old)] if old > 1 else [0]
    target = model.state_dict()
    for key, value in state.items():
        if key.startswith(prefix):
            index, rest = key[len(prefix) :].split(".", 1)
            key = f"{prefix}{slots[int(index)]}.{rest}"
        target[key] = value
    for i in sorted(set(range(new)) - set(slots)):
        target[f"{prefix}{i}.attn_out.weight"].zero_()
        target[f"{prefix}{i}.ff_out.weight"].zero_()
    model.load_state_dict(target)
    return new - old


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    floor = args.min_lr_ratio
    return args.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def probe(model: LLaDAModelLM, enc: Encoder, n_per_family: int = 16) -> dict[str, float]:
    """Exact match with an oracle length (answer + EOT + 4 EOS), one token per step.

    A cheap training-time signal only; the quality command measures the real thing.
    """
    model.eval()
    data = tasks.heldout_set(n_per_family, seed=99)
    out: dict[str, float] = {}
    for family in tasks.FAMILIES:
        rows = [d for d in data if d["family"] == family]
        ps = [enc.prompt(d["prompt"]) for d in rows]
        gs = [len(enc.answer(d["answer"])) + 5 for d in rows]
        width = max(len(p) + g for p, g in zip(ps, gs, strict=False))
        x = torch.full((len(rows), width), enc.eos, dtype=torch.long)
        for i, (p, g) in enumerate(zip(ps, gs, strict=False)):
            x[i, : len(p)] = torch.tensor(p)
            x[i, len(p) : len(p) + g] = enc.mask
        valid = torch.zeros_like(x, dtype=torch.bool)
        for i, (p, g) in enumerate(zip(ps, gs, strict=False)):
            valid[i, : len(p) + g] = True
        for _ in range(max(gs)):
            masked = x == enc.mask
            if not masked.any():
                break
            logits = model(x, attention_mask=valid).float()
            logits[..., enc.mask] = -math.inf
            conf, tok = logits.softmax(-1).max(-1)
            conf = torch.where(masked, conf, torch.full_like(conf, -1.0))
            best = conf.argmax(-1)
            has = masked.any(-1)
            r = torch.arange(len(rows))[has]
            x[r, best[has]] = tok[r, best[has]]
        ok = 0
        for i, d in enumerate(rows):
            text = enc.tok.decode(x[i, len(ps[i]) : len(ps[i]) + gs[i]].tolist(), skip_special_tokens=False)
            ok += tasks.score(family, d["prompt"], text)
        out[family] = ok / len(rows)
    model.train()
    return out


def _device() -> str:
    """The CPU the run used, as the model card reports it."""
    import os
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            name = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), name)
    except OSError:
        pass
    return f"cpu: {name}, {os.cpu_count()} cores visible"


def _rel(path: Path) -> str:
    """A path relative to the working directory when it lies below it (portable records)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    enc = Encoder()
    model = build_model(args, enc)
    if args.init_from is not None:
        grown = load_grown(model, load_state_dict_from_dir(args.init_from, dtype="float32"))
        print(f"initialised from {args.init_from}" + (f" (+{grown} identity blocks)" if grown else ""), flush=True)
    n_params = model.num_parameters()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-8,
    )
    args.work.mkdir(parents=True, exist_ok=True)
    state_path = args.work / "state.pt"
    step, elapsed, history = 0, 0.0, []
    if args.resume and state_path.exists():
        st = torch.load(state_path, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        rng.setstate(st["rng"])
        gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])
        step, elapsed, history = st["step"], st["elapsed"], st["history"]
        print(f"resumed at step {step} ({elapsed:.0f}s)", flush=True)
    print(f"params={n_params} ({n_params * 4 / 2**20:.1f} MiB fp32) args={vars(args)}", flush=True)
    # The stream is rebuilt from the (restored) rng state; resuming replays from there.
    stream = batches(enc, curriculum(rng, args), rng, args, gen)
    model.train()
    t_start = time.perf_counter() - elapsed
    running = None
    last = args.steps if args.stop_at is None else min(args.steps, args.stop_at)
    while step < last:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        tokens, valid, noisy, weight, uniform_weight = next(stream)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(noisy, attention_mask=valid)
        ce = F.cross_entropy(logits.float().transpose(1, 2), tokens, reduction="none")
        loss = (ce * weight).sum() / tokens.shape[0]
        if args.short_canvas_frac:
            # Cross-entropy against the uniform distribution on the 'no room' slots.
            uniform_ce = -logits.float().log_softmax(-1).mean(-1)
            loss = loss + (uniform_ce * uniform_weight).sum() / tokens.shape[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if args.bench and step >= args.bench:
            dt = time.perf_counter() - t_start
            print(f"bench: {step} steps in {dt:.1f}s = {dt / step:.3f}s/step, params={n_params}")
            return 0
        if step % 50 == 0:
            print(
                f"step {step} loss {running:.4f} lr {lr_at(step, args):.2e} t {time.perf_counter() - t_start:.0f}s",
                flush=True,
            )
        if step % args.eval_every == 0 or step == last:
            acc = probe(model, enc)
            history.append({"step": step, "loss": running, "time_s": time.perf_counter() - t_start, "probe": acc})
            print(f"probe step {step}: {acc}", flush=True)
        if step % args.save_every == 0 or step == last:
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "rng": rng.getstate(),
                    "gen": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "step": step,
                    "elapsed": time.perf_counter() - t_start,
                    "history": history,
                },
                state_path,
            )
            save_pretrained(model, args.work / "latest")
            save_tokenizer(args.work / "latest")
    total = time.perf_counter() - t_start
    model.eval()
    save_pretrained(model, args.out)
    save_tokenizer(args.out)
    record = {
        "command": "python packages/daedal-models/training/train_tiny.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "args": {k: _rel(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "parameters": n_params,
        "steps": step,
        "train_time_s": round(total, 1),
        "torch": torch.__version__,
        "threads": args.threads,
        "device": _device(),
        "history": history,
    }
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"done: {step} steps in {total:.0f}s -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
