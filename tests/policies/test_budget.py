"""Budgets: caps on forward passes, wall-clock time and new tokens; the run finishes in one step."""

from __future__ import annotations

import pytest

from daedal.core import ConfigError, Engine
from daedal.policies import Budget, Daedal, LLaDADecoding
from tests.policies.oracles.models import toy_adapter

DAEDAL = dict(
    initial_gen_length=8,
    max_gen_length=200,
    block_length=8,
    eos_check_tokens=8,
    expansion_factor=4,
    high_conf_threshold=0.9,
    low_conf_threshold=0.3,
)
PROMPTS = [[4, 5], [6, 7, 8, 9], [10]]


def _masks(result, adapter):
    return sum(row.count(adapter.mask_id) for row in result.tokens)


def test_forward_pass_budget_finishes_in_the_last_allowed_pass():
    adapter = toy_adapter(seed=1)
    free = Engine(adapter, policies=[Daedal(**DAEDAL)]).generate(PROMPTS)
    assert free.stats.forward_passes > 12
    capped = Engine(adapter, policies=[Daedal(**DAEDAL), Budget(max_forward_passes=12)]).generate(PROMPTS)
    assert capped.stats.forward_passes == 12
    assert capped.info["budget"] == "max_forward_passes"
    assert _masks(capped, adapter) == 0


def test_forward_pass_budget_also_stops_stage1():
    adapter = toy_adapter(seed=1, eos_gain=0.0)  # the model never gets confident: stage 1 would run to 200
    result = Engine(adapter, policies=[Budget(max_forward_passes=4), Daedal(**DAEDAL)]).generate(PROMPTS)
    assert result.stats.forward_passes == 4  # three stage-1 probes and the finishing step
    assert result.info["budget"] == "max_forward_passes"
    assert max(result.info["stage1_gen_length"]) == 8 + 2 * 4
    assert _masks(result, adapter) == 0


def test_deadline_finishes_right_away():
    adapter = toy_adapter(seed=1)
    result = Engine(adapter, policies=[Budget(deadline_s=1e-9), Daedal(**DAEDAL)]).generate(PROMPTS)
    assert result.info["budget"] == "deadline_s"
    assert result.stats.forward_passes == 2  # one stage-1 probe, one finishing step
    assert _masks(result, adapter) == 0


def test_new_token_cap_bounds_growth_and_insertion():
    adapter = toy_adapter(seed=1, eos_gain=1.0)
    free = Engine(adapter, policies=[Daedal(**DAEDAL)]).generate(PROMPTS)
    assert max(free.lengths) > 24
    capped = Engine(adapter, policies=[Budget(max_new_tokens=24), Daedal(**DAEDAL)]).generate(PROMPTS)
    assert max(capped.lengths) <= 24
    assert capped.info["budget"] == "max_new_tokens"


def test_budget_with_a_fixed_length_decoder():
    adapter = toy_adapter(seed=2)
    decoding = LLaDADecoding(gen_length=16, steps=16, block_length=4)
    result = Engine(adapter, policies=[decoding, Budget(max_forward_passes=3)]).generate(PROMPTS)
    assert result.stats.forward_passes == 3
    assert _masks(result, adapter) == 0
    with pytest.raises(ConfigError, match="max_new_tokens"):
        Engine(adapter, policies=[decoding, Budget(max_new_tokens=8)]).generate(PROMPTS)


def test_an_unbound_run_reports_no_budget():
    adapter = toy_adapter(seed=1)
    result = Engine(adapter, policies=[Budget(max_forward_passes=10_000), Daedal(**DAEDAL)]).generate(PROMPTS)
    assert "budget" not in result.info


@pytest.mark.parametrize(
    "params", [dict(), dict(max_forward_passes=0), dict(deadline_s=-1.0), dict(max_new_tokens=1.5)]
)
def test_bad_budgets_are_config_errors(params):
    with pytest.raises(ConfigError):
        Budget(**params)
