"""The reference implementations' accidents live in daedal.policies.reference, behind reference_compat."""

from __future__ import annotations

import inspect

import torch

from daedal.core.testing import make_state
from daedal.policies import Daedal, EosConfidenceLength, LLaDADecoding, LowConfidenceExpand, expand, length, llada
from daedal.policies.padding import LeftPaddedFixedLength
from daedal.policies.reference import ReferenceStage1, baseline_steps, reference_insertion_room


def test_reference_compat_switches_to_the_quarantined_rules() -> None:
    assert EosConfidenceLength(reference_compat=True)._rules is ReferenceStage1
    assert EosConfidenceLength()._rules is length._Stage1
    assert isinstance(
        LLaDADecoding(reference_compat=True, gen_length=32, block_length=8).parts()[0], LeftPaddedFixedLength
    )
    assert not isinstance(LLaDADecoding(gen_length=32, block_length=8).parts()[0], LeftPaddedFixedLength)


def test_a_stopped_row_stays_stopped_only_in_the_default_mode() -> None:
    low = torch.tensor([True, True, False])
    stopped = torch.tensor([True, False, False])
    size = torch.tensor([8, 8, 8])
    _, grow, now = length._Stage1.grow(low, stopped, size, cap=64)
    assert grow.tolist() == [False, True, False] and now.tolist() == [True, False, True]
    _, grow, _ = ReferenceStage1.grow(low, stopped, size, cap=64)
    assert grow.tolist() == [True, True, False], "the reference re-takes every row's decision (Q2)"


def test_the_batch_maximum_stop_test_is_the_reference_s_only() -> None:
    before, after = torch.tensor([16, 8]), torch.tensor([16, 16])  # the short row grows, the batch maximum does not
    assert ReferenceStage1.stops(after, before) and not length._Stage1.stops(after, before)


def test_insertion_room_and_truncation() -> None:
    state = make_state([[5, 6]], gen_length=6, max_gen_length=8)
    room, truncate = reference_insertion_room(state.canvas, factor=4)
    assert room.tolist() == [True] and truncate, "the reference inserts below the maximum and cuts (Q6)"
    assert LowConfidenceExpand(reference_compat=True).reference_compat
    assert baseline_steps(10, 4) == 8 and baseline_steps(2, 4) == 4


def test_the_default_classes_hold_one_switch_each() -> None:
    for module, most in ((length, 2), (expand, 2), (llada, 3)):
        source = inspect.getsource(module)
        branches = source.count("if self.reference_compat") + source.count("if not self.reference_compat")
        assert branches <= most, f"{module.__name__} branches on reference_compat {branches} times"
    assert "daedal.md" not in inspect.getsource(Daedal)
