"""Rule-level tests of DAEDAL with designed logits (daedal.md §4-§6)."""

from __future__ import annotations

import pytest
import torch

from daedal.core import Engine, Unmask, Window
from daedal.core.testing import FakeAdapter
from daedal.policies import (
    BlockPointer,
    Daedal,
    EosConfidenceLength,
    LowConfidenceExpand,
    ThresholdUnmask,
    eos_confidence,
)
from tests.policies._helpers import canvas_of, peaked, prediction_from_probs, state_for
from tests.policies.oracles.models import toy_adapter

V = 8
MASK = V - 1
EOS = 1


# -- §4 EOS confidence ------------------------------------------------------------------


def test_eos_confidence_keeps_the_rightmost_eos_argmax_positions_with_a_fixed_denominator():
    # prompt [0, 2); generation [2, 10); padding [10, 12) is never scanned.
    spec = {
        (0, 0): (EOS, 0.9),  # prompt: excluded
        (0, 3): (EOS, 0.5),
        (0, 5): (EOS, 0.6),
        (0, 6): (3, 0.9),  # argmax not EOS: skipped, does not count
        (0, 8): (EOS, 0.7),
        (0, 9): (EOS, 0.8),
        (0, 10): (EOS, 0.99),  # past the length: excluded
    }
    probs = peaked(1, 12, V, spec)
    probs[0, 6, EOS] = 0.05  # some EOS mass at a non-EOS-argmax slot must not count
    logits = torch.log(probs / probs.sum(-1, keepdim=True))
    start, end = torch.tensor([2]), torch.tensor([10])
    # Window 3: the three right-most EOS-argmax slots 9, 8, 5.
    got = eos_confidence(logits, eos_id=EOS, start=start, end=end, window=3)
    assert got.item() == pytest.approx((0.8 + 0.7 + 0.6) / 3, abs=1e-6)
    # Window 8: only four qualify, the denominator stays 8.
    got = eos_confidence(logits, eos_id=EOS, start=start, end=end, window=8)
    assert got.item() == pytest.approx((0.8 + 0.7 + 0.6 + 0.5) / 8, abs=1e-6)


def test_eos_confidence_is_per_row():
    probs = peaked(2, 6, V, {(0, 5): (EOS, 0.6), (1, 2): (EOS, 0.9), (1, 4): (EOS, 0.9)})
    logits = torch.log(probs)
    got = eos_confidence(logits, eos_id=EOS, start=torch.tensor([1, 2]), end=torch.tensor([6, 4]), window=2)
    # Row 1 ends at 4: slot 4 is not scanned.
    assert got.tolist() == pytest.approx([0.3, 0.45], abs=1e-6)


# -- §6 step 6: fill and fallbacks ----------------------------------------------------------


def _block_canvas():
    # prompt 2 tokens, 6 masks.
    return canvas_of([[5, 6] + [MASK] * 6], [2], mask_id=MASK)


def test_fill_commits_every_mask_above_the_threshold():
    canvas = _block_canvas()
    probs = peaked(1, 8, V, {(0, 2): (3, 0.95), (0, 3): (4, 0.5), (0, 5): (6, 0.91), (0, 6): (MASK, 0.99)})
    unmask = ThresholdUnmask(threshold=0.9).select_unmask(state_for(canvas), prediction_from_probs(probs))
    # Slot 3 (0.5) is below, slot 6 proposes the mask id; slots 4 and 7 (filler 0.97) qualify.
    assert unmask.where[0].nonzero().flatten().tolist() == [2, 4, 5, 7]
    assert unmask.tokens[0, 2].item() == 3 and unmask.tokens[0, 5].item() == 6


def test_fill_falls_back_to_the_most_confident_non_mask_proposal():
    canvas = _block_canvas()
    spec = {(0, c): (3, 0.3) for c in range(2, 8)}
    spec[(0, 4)] = (MASK, 0.8)  # most confident, but proposes the mask id
    spec[(0, 6)] = (5, 0.6)
    spec[(0, 7)] = (5, 0.6)  # tie with slot 6: the lower column wins
    probs = peaked(1, 8, V, spec)
    unmask = ThresholdUnmask(threshold=0.9).select_unmask(state_for(canvas), prediction_from_probs(probs))
    assert unmask.where[0].nonzero().flatten().tolist() == [6]
    assert unmask.tokens[0, 6].item() == 5


def test_fill_when_every_candidate_predicts_the_mask_renormalises_without_it():
    canvas = _block_canvas()
    probs = torch.full((1, 8, V), 0.01)
    probs[0, :, MASK] = 0.9
    probs[0, 3, 4] = 0.05  # after removing the mask id: 0.05 / 0.11 at slot 3
    probs[0, 5, 2] = 0.08  # 0.08 / 0.14: the largest renormalised maximum
    probs[0, 6, 3] = 0.08  # 0.08 / 0.14 as well: tie, slot 5 is first
    probs[0, 7, MASK] = 0.99
    unmask = ThresholdUnmask(threshold=0.9).select_unmask(state_for(canvas), prediction_from_probs(probs))
    assert unmask.where[0].nonzero().flatten().tolist() == [5]
    assert unmask.tokens[0, 5].item() == 2
    canvas.apply(unmask)  # legal: the mask id is never written


def test_fill_stays_inside_the_window():
    canvas = _block_canvas()
    probs = peaked(1, 8, V, {(0, c): (3, 0.99) for c in range(2, 8)})
    window = Window(start=torch.tensor([4]), end=torch.tensor([6]))
    unmask = ThresholdUnmask(threshold=0.9).select_unmask(
        state_for(canvas, window=window), prediction_from_probs(probs)
    )
    assert unmask.where[0].nonzero().flatten().tolist() == [4, 5]


# -- §6 step 7/8: insertion ---------------------------------------------------------------------


def _expand(canvas, probs, unmask=None, window=None, **kw):
    params = dict(low_conf_threshold=0.2, expansion_factor=4, expand_eos_confidence_threshold=0.9, eos_check_tokens=4)
    params.update(kw)
    policy = LowConfidenceExpand(**params)
    state = state_for(canvas, window=window)
    unmask = unmask if unmask is not None else Unmask.none_like(canvas)
    return policy.select_expand(state, prediction_from_probs(probs), unmask)


def test_insertion_point_is_the_least_confident_low_confidence_mask_and_grows_the_row():
    canvas = canvas_of([[5, 6, MASK, MASK, 9, MASK, MASK, EOS]], [2], mask_id=MASK, max_length=20)
    spec = {(0, 2): (3, 0.15), (0, 3): (MASK, 0.13), (0, 5): (3, 0.5), (0, 6): (4, 0.19)}
    expand = _expand(canvas, peaked(1, 8, V, spec))
    # Slot 3 proposes the mask id and is still a candidate (Q8).
    assert expand.where[0].nonzero().flatten().tolist() == [3]
    assert expand.factor == 4
    after = canvas.apply(None, expand)
    assert after.length.tolist() == [11]
    assert after.rows()[0] == [5, 6, MASK, MASK, MASK, MASK, MASK, 9, MASK, MASK, EOS]


def test_insertion_skips_slots_filled_this_step_and_high_eos_confidence_rows():
    canvas = canvas_of([[5, MASK, MASK, MASK]], [1], mask_id=MASK, max_length=20)
    spec = {(0, 1): (3, 0.12), (0, 2): (3, 0.15), (0, 3): (3, 0.5)}
    unmask = Unmask(where=torch.tensor([[False, True, False, False]]), tokens=canvas.tokens)
    expand = _expand(canvas, peaked(1, 4, V, spec), unmask=unmask)
    assert expand.where[0].nonzero().flatten().tolist() == [2]
    # EOS confidence 0.75 >= 0.7: no insertion.
    spec = {(0, 1): (3, 0.12), (0, 2): (EOS, 0.9), (0, 3): (EOS, 0.9), (0, 0): (EOS, 0.9)}
    assert _expand(canvas, peaked(1, 4, V, spec), expand_eos_confidence_threshold=0.4, eos_check_tokens=2) is None


def test_insertion_only_inside_the_window_and_ties_go_left():
    canvas = canvas_of([[5] + [MASK] * 6], [1], mask_id=MASK, max_length=30)
    spec = {(0, c): (3, 0.15) for c in range(1, 7)}
    window = Window(start=torch.tensor([3]), end=torch.tensor([6]))
    expand = _expand(canvas, peaked(1, 7, V, spec), window=window)
    assert expand.where[0].nonzero().flatten().tolist() == [3]


def test_clamp_truncates_in_reference_mode_and_skips_in_default_mode():
    # length 8 (gen 6), max 10: an insertion of 4 (+3) does not fit.
    rows = [[5, 6, MASK, 9, 9, 9, EOS, EOS]]
    canvas = canvas_of(rows, [2], mask_id=MASK, max_length=10)
    probs = peaked(1, 8, V, {(0, 2): (3, 0.1)})
    assert _expand(canvas, probs) is None
    expand = _expand(canvas, probs, reference_compat=True)
    assert expand.truncate
    after = canvas.apply(None, expand)
    # The row is cut at its maximum: the EOS tail is lost (Q6).
    assert after.rows()[0] == [5, 6, MASK, MASK, MASK, MASK, 9, 9, 9, EOS]
    # With room for exactly the whole block, the default mode inserts.
    roomy = canvas_of(rows, [2], mask_id=MASK, max_length=11)
    assert _expand(roomy, probs).where[0, 2]


# -- §6 step 9: the block pointer ------------------------------------------------------------------


def test_block_pointer_moves_to_the_first_block_with_a_mask_and_skips_the_tail():
    rows = [
        [7, 7, 7] + [3] * 4 + [3, MASK, 3, 3] + [EOS] * 2,  # block 0 done: block 1 (cols 7-10)
        [7] + [MASK] * 4 + [EOS] * 4,  # block 0 (cols 1-4)
        [7, 7] + [3] * 4 + [EOS] * 4,  # no mask: inactive
        [7] + [3] * 4 + [3] * 4 + [3, 3, MASK],  # block 2 is partial: ends at the length
    ]
    canvas = canvas_of(rows, [3, 1, 2, 1], mask_id=MASK)
    window = BlockPointer(block_length=4).select_window(state_for(canvas))
    assert window.start.tolist() == [7, 1, 10, 9]
    assert window.end.tolist() == [11, 5, 10, 12]


def test_block_pointer_does_not_move_on_insertion():
    canvas = canvas_of([[7, 3, 3, MASK, 3, 3, 3, 3]], [1], mask_id=MASK, max_length=20)
    before = BlockPointer(block_length=4).select_window(state_for(canvas))
    expand = _expand(canvas, peaked(1, 8, V, {(0, 3): (3, 0.1)}), window=before)
    after = canvas.apply(None, expand)
    again = BlockPointer(block_length=4).select_window(state_for(after))
    assert before.start.tolist() == again.start.tolist() == [1]


# -- §5 stage 1 --------------------------------------------------------------------------


def _eos_when_long(threshold_by_first_token: dict[int, int], padding_sensitive: set[int] = frozenset()):
    """Logits: EOS is the argmax (p≈1) on every generation slot once the row's generation
    length reaches the threshold of its first prompt token; rows in ``padding_sensitive``
    lose that confidence whenever the canvas holds padding (numerics changing with padding)."""

    def fn(tokens, length):
        b, t = tokens.shape
        logits = torch.zeros(b, t, V)
        logits[..., 4] = 5.0
        logits[..., MASK] = float("-inf")
        for i in range(b):
            first = int(tokens[i, 0])
            prompt = 1  # one-token prompts
            gen = int(length[i]) - prompt
            confident = gen >= threshold_by_first_token[first]
            if first in padding_sensitive and int(length[i]) < t:
                confident = False
            if confident:
                logits[i, prompt:, EOS] = 20.0
        return logits

    return FakeAdapter(vocab_size=V, logits_fn=fn)


def test_stage1_grows_until_the_eos_confidence_threshold_then_adds_the_tail():
    adapter = _eos_when_long({5: 24})
    policy = EosConfidenceLength(initial_gen_length=8, max_gen_length=64, expansion_factor=8, eos_check_tokens=8)
    result = Engine(adapter, policies=[policy, ThresholdUnmask(threshold=0.5)]).generate([[5]], record=True)
    assert result.info["stage1_gen_length"] == [24]
    grown = [e for e in result.trace.of_kind("length-changed")]
    assert [len(e["rows"][0]) - 1 for e in grown] == [16, 24, 28]  # 8 -> 16 -> 24, then the tail of 4
    assert grown[-1]["reason"] == "eos-tail"
    assert grown[-1]["rows"][0][25:] == [EOS] * 4
    # Three stage-1 probes (8, 16, 24), then stage 2.
    assert result.trace.of_kind("canvas-initialized")[0]["forward_passes"] == 3


def test_stage1_stops_at_the_maximum_length_and_then_has_no_tail():
    adapter = _eos_when_long({5: 10_000})
    policy = EosConfidenceLength(initial_gen_length=8, max_gen_length=20, expansion_factor=8, eos_check_tokens=8)
    result = Engine(adapter, policies=[policy, ThresholdUnmask(threshold=0.5)]).generate([[5]])
    assert result.info["stage1_gen_length"] == [20]  # 8 -> 16 -> 20 (clamped)
    assert result.lengths == [20]


def test_stage1_batch_maximum_test_in_reference_mode_and_per_row_stop_by_default():
    # Row 5 needs 24 slots; row 6 is confident at 8 slots but only without padding.
    adapter = _eos_when_long({5: 24, 6: 8}, padding_sensitive={6})
    common = dict(initial_gen_length=8, max_gen_length=64, expansion_factor=8, eos_check_tokens=8)

    def policies(ref):
        return [EosConfidenceLength(**common, reference_compat=ref), ThresholdUnmask(threshold=0.5)]

    ref = Engine(adapter, policies=policies(True)).generate([[5], [6]])
    # Reference: row 6 stops at 8, resumes once padding appears, and grows while row 5 grows;
    # once row 5 stops, row 6 (16) would grow to 24 <= the batch maximum 24: the loop ends (Q2).
    assert ref.info["stage1_gen_length"] == [24, 16]
    default = Engine(adapter, policies=policies(False)).generate([[5], [6]])
    assert default.info["stage1_gen_length"] == [24, 8]
    alone = Engine(adapter, policies=policies(False)).generate([[6]])
    assert alone.info["stage1_gen_length"] == [8]


def test_reference_mode_left_pads_prompts_with_eos_and_returns_only_the_generation():
    adapter = toy_adapter(seed=3)
    daedal = Daedal(initial_gen_length=8, max_gen_length=200, block_length=8, eos_check_tokens=8, reference_compat=True)
    result = Engine(adapter, policies=[daedal]).generate([[5], [6, 3, 3]], record=True)
    assert max(result.info["stage1_gen_length"]) < 200
    start = result.trace.of_kind("canvas-initialized")[0]
    eos = adapter.eos_id
    assert start["prompt_len"] == [3, 3]
    assert [row[:3] for row in start["rows"]] == [[eos, eos, 5], [6, 3, 3]]
    # After stage 1: masks, then the EOS tail of eos_check_tokens // 2.
    assert all(row[-4:] == [eos] * 4 for row in start["rows"])
    assert result.canvas.pad_id == eos
    assert result.tokens == [row[3:] for row in result.canvas.rows()]


def test_eos_argmax_follows_argmax_tie_order():
    from daedal.policies.eos import eos_argmax

    logits = torch.tensor([[[2.0, 2.0, 0.0], [0.0, 2.0, 2.0], [1.0, 0.0, 0.5]]])
    # Column 0: id 0 ties with EOS (1) and wins; column 1: EOS ties with id 2 and wins.
    assert eos_argmax(logits, 1).tolist() == [[False, True, False]]
    assert torch.equal(eos_argmax(logits, 1), logits.argmax(-1) == 1)
