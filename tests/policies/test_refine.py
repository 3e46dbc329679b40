"""Remasking refinement: extra iterations re-predict the least confident committed tokens."""

from __future__ import annotations

import pytest
import torch

from daedal.core import ConfigError, Engine, Unmask, Window
from daedal.policies import Daedal, FastDllm
from daedal.policies.refine import Refine
from tests.policies._helpers import canvas_of, peaked, prediction_from_probs, state_for
from tests.policies.oracles.models import toy_adapter

V = 8
MASK = V - 1


def test_remasks_the_least_likely_committed_tokens_when_the_last_mask_is_filled():
    # prompt [5, 6]; committed 3, 3, 4, 4; one mask at column 6, filled this step.
    canvas = canvas_of([[5, 6, 3, 3, 4, 4, MASK]], [2], mask_id=MASK)
    spec = {(0, 0): (5, 0.01), (0, 2): (3, 0.9), (0, 3): (3, 0.3), (0, 4): (4, 0.2), (0, 5): (4, 0.8)}
    prediction = prediction_from_probs(peaked(1, 7, V, spec))
    unmask = Unmask(where=torch.tensor([[False] * 6 + [True]]), tokens=canvas.tokens.masked_fill(canvas.masked, 3))
    remask = Refine(iterations=1, tokens=2).select_remask(state_for(canvas), prediction, unmask)
    # Columns 4 (0.2) and 3 (0.3); the prompt (0.01) is never touched.
    assert remask.where[0].nonzero().flatten().tolist() == [3, 4]
    canvas.apply(unmask, None, remask)


def test_nothing_happens_while_masks_remain():
    canvas = canvas_of([[5, 3, MASK, MASK]], [1], mask_id=MASK)
    unmask = Unmask(where=torch.tensor([[False, False, True, False]]), tokens=canvas.tokens)
    prediction = prediction_from_probs(peaked(1, 4, V, {}))
    assert Refine().select_remask(state_for(canvas), prediction, unmask) is None


def test_block_scope_refines_inside_the_window():
    canvas = canvas_of([[5, 3, 3, MASK, 4, 4, MASK, MASK]], [1], mask_id=MASK)
    window = Window(start=torch.tensor([1]), end=torch.tensor([4]))
    unmask = Unmask(where=torch.tensor([[False, False, False, True, False, False, False, False]]), tokens=canvas.tokens)
    spec = {(0, 1): (3, 0.5), (0, 2): (3, 0.9), (0, 4): (4, 0.1)}
    prediction = prediction_from_probs(peaked(1, 8, V, spec))
    remask = Refine(tokens=1, scope="block").select_remask(state_for(canvas, window=window), prediction, unmask)
    assert remask.where[0].nonzero().flatten().tolist() == [1]  # column 4 is outside the block


@pytest.mark.parametrize("scope", ["canvas", "block"])
def test_refinement_spends_extra_iterations_and_ends_without_masks(scope):
    adapter = toy_adapter(seed=1)
    daedal = Daedal(initial_gen_length=8, max_gen_length=48, block_length=8, eos_check_tokens=8)
    base = Engine(adapter, policies=[daedal]).generate([[4, 5], [6, 7, 8]])
    result = Engine(adapter, policies=[daedal, Refine(iterations=2, tokens=3, scope=scope)]).generate(
        [[4, 5], [6, 7, 8]], record=True
    )
    rounds = [sum(len(r) for r in e["remasked"]) for e in result.trace.of_kind("step-finished")]
    rounds = [n for n in rounds if n]
    if scope == "canvas":
        assert rounds == [3, 3, 3, 3]  # two rounds for each of the two rows
    else:
        assert len(rounds) >= 4 and all(n % 3 == 0 for n in rounds)
    assert result.stats.forward_passes > base.stats.forward_passes
    assert all(adapter.mask_id not in row for row in result.tokens)


def test_refinement_with_parallel_decoding():
    adapter = toy_adapter(seed=3, sharpness=2.0)
    result = Engine(
        adapter, policies=[FastDllm(gen_length=16, block_length=8), Refine(iterations=3, tokens=2)]
    ).generate([[4, 5]], record=True)
    assert sum(1 for e in result.trace.of_kind("step-finished") if any(e["remasked"][0])) == 3
    assert adapter.mask_id not in result.tokens[0]


@pytest.mark.parametrize("params", [dict(iterations=0), dict(tokens=0), dict(scope="row")])
def test_bad_parameters_are_config_errors(params):
    with pytest.raises(ConfigError):
        Refine(**params)
