"""The training script: the LLaDA SFT batch and a reproducible tiny run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "packages" / "daedal-models" / "training" / "train_tiny.py"


def _module():
    spec = importlib.util.spec_from_file_location("train_tiny", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_tiny"] = module
    spec.loader.exec_module(module)
    return module


def test_batch_never_masks_the_prompt_and_weights_by_one_over_t() -> None:
    tt = _module()
    enc = tt.Encoder()
    args = tt.parse_args([])
    examples = [("reverse", "reverse: a b c", "c b a", 10, None), ("add", "add: 1 2", "1 + 2 = 3", 6, None)]
    gen = torch.Generator().manual_seed(0)
    tokens, valid, noisy, weight, uniform_weight = tt.make_batch(enc, examples, args, gen)
    assert not uniform_weight.any()  # no short canvas, no 'no room' slot
    p0 = len(enc.prompt("reverse: a b c"))
    # prompt intact, answer then <|eot_id|> then EOS padding to the drawn length
    assert torch.equal(noisy[0, :p0], tokens[0, :p0])
    assert tokens[0, p0 : p0 + 4].tolist() == enc.answer("c b a") + [enc.eot]
    assert tokens[0, p0 + 4 : p0 + 10].tolist() == [enc.eos] * 6
    assert valid[0].sum() == p0 + 10 and valid[1].sum() == len(enc.prompt("add: 1 2")) + 6
    masked = noisy == enc.mask
    assert not (masked & ~valid).any()
    assert torch.equal(weight > 0, masked)
    # the weight of a masked slot is 1 / (t * gen_len): the same value within a row
    for b, g in ((0, 10), (1, 6)):
        w = weight[b][masked[b]]
        if len(w):
            t = 1 / (w[0] * g)
            assert 0 < t <= 1 and torch.allclose(w, w[0])


def test_short_canvas_sample_has_a_no_room_slot_before_a_given_eos_tail() -> None:
    tt = _module()
    enc = tt.Encoder()
    args = tt.parse_args(["--short-canvas-frac", "1"])
    # "1 + 2 = 3" + EOT needs 6 slots; this canvas has room for 4, then 3 real EOS.
    examples = [("add", "add: 1 2", "1 + 2 = 3", 7, 4), ("reverse", "reverse: a b", "b a", 5, None)]
    for seed in range(20):
        tokens, valid, noisy, weight, uniform_weight = tt.make_batch(
            enc, examples, args, torch.Generator().manual_seed(seed)
        )
        p = len(enc.prompt("add: 1 2"))
        assert valid[0].sum() == p + 7
        assert tokens[0, p : p + 3].tolist() == enc.answer("1 + 2 = 3")[:3]  # the answer's first slots
        assert noisy[0, p + 3] == enc.mask and uniform_weight[0, p + 3] == 1 / 7  # always masked, uniform target
        assert uniform_weight[0].sum() == 1 / 7 and weight[0, p + 3] == 0
        assert noisy[0, p + 4 : p + 7].tolist() == [enc.eos] * 3  # the EOS tail is given, never masked
        assert not weight[0, p + 4 :].any()
        assert not uniform_weight[1].any()


def test_short_canvas_frac_zero_keeps_the_stream_draw_for_draw() -> None:
    import random

    tt = _module()
    enc = tt.Encoder()
    small = ["--batch-size", "4", "--bucket", "2"]

    def first(argv):
        args = tt.parse_args(argv)
        rng = random.Random(0)
        stream = tt.batches(enc, tt.curriculum(rng, args), rng, args, torch.Generator().manual_seed(0))
        return [next(stream) for _ in range(3)]

    plain, zero = first(small), first([*small, "--short-canvas-frac", "0"])
    assert all(torch.equal(x, y) for a, b in zip(plain, zero, strict=True) for x, y in zip(a, b, strict=True))
    short = first([*small, "--short-canvas-frac", "1"])
    assert all(b[4].sum() > 0 for b in short)  # every sample (answers need >= 2 slots) is short


def test_short_near_frac_draws_canvases_one_insertion_short(monkeypatch) -> None:
    import random

    tt = _module()
    enc = tt.Encoder()
    seen = []
    monkeypatch.setattr(tt, "make_batch", lambda enc, examples, args, gen: seen.extend(examples))
    for near, bound in (("1", lambda d: 1 <= d <= 7), ("0", lambda d: d >= 1)):
        seen.clear()
        args = tt.parse_args(
            ["--batch-size", "16", "--bucket", "4", "--short-canvas-frac", "1", "--short-near-frac", near]
        )
        rng = random.Random(0)
        stream = tt.batches(enc, tt.curriculum(rng, args), rng, args, torch.Generator().manual_seed(0))
        for _ in range(4):
            next(stream)
        deficits = [len(enc.answer(answer)) + 1 - room for _, _, answer, _, room in seen]
        assert len(deficits) == 64 and all(bound(d) for d in deficits)
    assert max(deficits) > 7  # without it, long answers miss more than one insertion's worth


def test_grown_model_computes_what_the_checkpoint_did() -> None:
    tt = _module()
    enc = tt.Encoder()
    base = ["--d-model", "32", "--n-heads", "2", "--mlp", "64"]
    torch.manual_seed(0)
    small = tt.build_model(tt.parse_args([*base, "--n-layers", "2"]), enc).eval()
    deep = tt.build_model(tt.parse_args([*base, "--n-layers", "5"]), enc).eval()
    assert tt.load_grown(deep, small.state_dict()) == 3
    x = torch.tensor([enc.prompt("sort: c a b") + [enc.mask] * 6])
    with torch.no_grad():
        assert torch.allclose(small(x), deep(x), atol=1e-6)
    # the checkpoint's blocks sit first and last; a new block's output projections are zero
    sd = deep.state_dict()
    old = small.state_dict()
    blocks = "model.transformer.blocks."
    assert torch.equal(sd[f"{blocks}0.q_proj.weight"], old[f"{blocks}0.q_proj.weight"])
    assert torch.equal(sd[f"{blocks}4.q_proj.weight"], old[f"{blocks}1.q_proj.weight"])
    assert not sd[f"{blocks}2.attn_out.weight"].any() and not sd[f"{blocks}2.ff_out.weight"].any()
    with __import__("pytest").raises(SystemExit, match="n-layers=2"):
        tt.load_grown(small, deep.state_dict())


def test_tiny_run_is_reproducible_and_loads_with_the_llada_adapter(tmp_path: Path) -> None:
    tt = _module()
    argv = [
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--d-model",
        "32",
        "--n-layers",
        "1",
        "--n-heads",
        "2",
        "--mlp",
        "64",
        "--eval-every",
        "1000",
        "--save-every",
        "1000",
        "--threads",
        "1",
        "--bucket",
        "1",
    ]
    for run in ("a", "b"):
        assert tt.main([*argv, "--out", str(tmp_path / run), "--work", str(tmp_path / f"work-{run}")]) == 0
    from safetensors.torch import load_file

    a, b = (load_file(tmp_path / r / "model.safetensors") for r in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "model.transformer.blocks.0.q_proj.weight" in a
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert record["steps"] == 3 and record["args"]["seed"] == 0

    from daedal.models.llada import LLaDA

    adapter = LLaDA.from_pretrained(str(tmp_path / "a"))
    vocab = tt.vocabulary()
    assert adapter.mask_id == vocab["<|mdm_mask|>"] and adapter.eos_id == vocab["<|endoftext|>"]
    assert adapter.eos_ids == {vocab["<|endoftext|>"], vocab["<|eot_id|>"]}
    enc = tt.Encoder()
    assert adapter.encode(["reverse: a b"])[0] == enc.prompt("reverse: a b")


def test_curriculum_weights_families_sizes_and_ordered_prompts() -> None:
    import random

    from daedal.models.bundled import tasks

    tt = _module()
    args = tt.parse_args(["--family-weights", "sort=1,add=0", "--large-frac", "1", "--ordered-frac", "1"])
    stream = tt.curriculum(random.Random(0), args)
    draws = [next(stream) for _ in range(200)]
    assert {f for f, _, _ in draws} == {"sort"}  # reverse, repeat and add weigh 0
    sizes = [len(p.split()) - 1 for _, p, _ in draws]
    assert min(sizes) >= 13  # the upper half of 1-24
    ordered = 0
    for _, prompt, answer in draws:
        letters = prompt.split()[1:]
        ordered += letters in (sorted(letters), sorted(letters, reverse=True))
        assert answer == tasks.expected_answer(prompt) and not tasks.is_heldout(prompt)
    assert ordered >= 150  # ordered sequences, except where one is held out (then a random draw)
    # without curriculum flags the stream is the original recipe's, draw for draw
    default, original = tt.curriculum(random.Random(0), tt.parse_args([])), tasks.iter_examples(random.Random(0))
    assert [next(default) for _ in range(8)] == [next(original) for _ in range(8)]


def test_init_from_starts_at_a_checkpoint_and_records_the_device(tmp_path: Path) -> None:
    tt = _module()
    small = [
        "--batch-size",
        "4",
        "--d-model",
        "32",
        "--n-layers",
        "1",
        "--n-heads",
        "2",
        "--mlp",
        "64",
        "--eval-every",
        "1000",
        "--save-every",
        "1000",
        "--threads",
        "1",
        "--bucket",
        "1",
    ]
    assert tt.main(["--steps", "2", *small, "--out", str(tmp_path / "a"), "--work", str(tmp_path / "wa")]) == 0
    assert (
        tt.main(
            [
                "--steps",
                "0",
                *small,
                "--init-from",
                str(tmp_path / "a"),
                "--out",
                str(tmp_path / "b"),
                "--work",
                str(tmp_path / "wb"),
            ]
        )
        == 0
    )
    from safetensors.torch import load_file

    a, b = (load_file(tmp_path / r / "model.safetensors") for r in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)  # zero steps from the init: the same weights
    record = json.loads((tmp_path / "b" / "training.json").read_text())
    assert record["args"]["init_from"] == str(tmp_path / "a") and record["device"].startswith("cpu: ")
