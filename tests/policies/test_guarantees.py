"""The engine's guarantees with the project's policies: conflicting decoders refused, no mask left
after Refine or a third-party expansion, budgets that cap every expansion, batch-invariant sampling."""

from __future__ import annotations

import random

import attrs
import pytest

from daedal.core import ConfigError, Engine, Expand, FixedLength, SemiAutoregressive, hookimpl
from daedal.policies import Budget, Daedal, DreamDecoding, FastDllm, LLaDADecoding, Refine
from tests.policies.oracles.models import toy_adapter


@pytest.mark.parametrize(
    "policies",
    [
        [DreamDecoding(max_new_tokens=8, steps=8), LLaDADecoding(gen_length=8, steps=8, block_length=8)],
        [LLaDADecoding(gen_length=8, steps=8, block_length=8), Daedal(initial_gen_length=8, max_gen_length=16)],
        [FastDllm(gen_length=8, block_length=8), Budget(max_new_tokens=8), Daedal()],
    ],
    ids=["dream+llada", "llada+daedal", "fast-dllm+budget+daedal"],
)
def test_two_complete_decoders_are_refused_at_construction(policies):
    with pytest.raises(ConfigError, match="complete decoders") as info:
        Engine(toy_adapter(seed=1), policies)
    assert info.value.code == "conflicting-decoders"


def test_a_decoder_with_single_parts_is_fine():
    adapter = toy_adapter(seed=1)
    Engine(adapter, [Daedal(initial_gen_length=8, max_gen_length=16), Refine(), Budget(max_forward_passes=40)])


@attrs.frozen
class GrowEveryStep:
    """A third-party expansion policy that respects the canvas's ceiling."""

    @hookimpl
    def select_expand(self, state, prediction, unmask):
        canvas = state.canvas
        free = canvas.masked & ~unmask.where
        room = canvas.length + 3 <= canvas.max_length
        first = free & (free.cumsum(1) == 1) & room[:, None]
        return Expand(where=first, factor=4)


def _masks(result, adapter):
    return sum(row.count(adapter.mask_id) for row in result.tokens)


def test_defaults_with_refine_finish_every_mask():
    adapter = toy_adapter(seed=2)
    out = Engine(adapter, [Refine(iterations=2, tokens=4)]).generate([[4, 5], [6, 7, 8]], record=True)
    remasked = sum(len(r) for e in out.trace.of_kind("step-finished") for r in e["remasked"])
    assert remasked == 2 * 2 * 4
    assert _masks(out, adapter) == 0 and out.stats.masks_left == 0 and out.stats.final_fill == 0


def test_llada_decoding_with_refine_re_plans_after_its_steps():
    adapter = toy_adapter(seed=2)
    out = Engine(adapter, [LLaDADecoding(gen_length=16, steps=16, block_length=8), Refine(tokens=3)]).generate([[4, 5]])
    assert _masks(out, adapter) == 0 and out.stats.steps == 16 + 3


def test_budget_max_new_tokens_caps_a_third_party_expansion_policy():
    adapter = toy_adapter(seed=3)
    free = Engine(adapter, [LLaDADecoding(gen_length=8, steps=8, block_length=8), GrowEveryStep()])
    # Without a budget the canvas ceiling is the length policy's (here gen_length): nothing grows.
    assert free.generate([[4, 5]]).lengths == [8]
    roomy = [
        FixedLength(gen_length=8, max_gen_length=64),
        SemiAutoregressive(mask_proposals="next-best"),
        GrowEveryStep(),
    ]
    assert max(Engine(adapter, roomy).generate([[4, 5], [6]]).lengths) > 12
    capped = Engine(adapter, [*roomy, Budget(max_new_tokens=12)]).generate([[4, 5], [6]])
    assert max(capped.lengths) <= 12 and _masks(capped, adapter) == 0


def test_budget_forward_passes_cap_a_third_party_expansion_run_without_masks():
    adapter = toy_adapter(seed=3)
    roomy = [
        FixedLength(gen_length=8, max_gen_length=64),
        SemiAutoregressive(mask_proposals="next-best"),
        GrowEveryStep(),
    ]
    out = Engine(adapter, [*roomy, Budget(max_forward_passes=5)]).generate([[4, 5], [6]])
    assert out.stats.forward_passes == 5 and _masks(out, adapter) == 0
    assert out.stats.stopped_by == "max_forward_passes" and out.info["budget"] == "max_forward_passes"


# -- batch-invariant sampling ---------------------------------------------------------------------------


def _prompts(n: int) -> list[list[int]]:
    rng = random.Random(n)
    return [[rng.randint(3, 20) for _ in range(rng.randint(1, 9))] for _ in range(n)]


ORDERS = {2: [1, 0], 4: [2, 0, 3, 1], 8: [5, 1, 7, 0, 3, 6, 2, 4]}


def _assert_batch_invariant(engine, prompts, seed_of):
    alone = [engine.generate([p], seed=[seed_of(i)]).tokens[0] for i, p in enumerate(prompts)]
    for n, order in ORDERS.items():
        for rows in (order, sorted(order)):
            out = engine.generate([prompts[i] for i in rows], seed=[seed_of(i) for i in rows])
            assert out.tokens == [alone[i] for i in rows], (n, rows)
    return alone


def test_daedal_sampling_is_batch_invariant_in_the_default_mode():
    adapter = toy_adapter(seed=4, sharpness=1.0)
    daedal = Daedal(
        initial_gen_length=8,
        max_gen_length=48,
        block_length=8,
        eos_check_tokens=8,
        expansion_factor=4,
        low_conf_threshold=0.3,
        temperature=0.7,
    )
    engine = Engine(adapter, [daedal])
    prompts = _prompts(8)
    alone = _assert_batch_invariant(engine, prompts, lambda i: 1000 + i)
    assert len({tuple(t) for t in alone}) > 1
    assert len({tuple(engine.generate([prompts[0]], seed=[s]).tokens[0]) for s in range(4)}) > 1  # it samples
    # An int seed: row b draws from (seed, b) whatever the batch after it.
    assert engine.generate(prompts[:2], seed=9).tokens == engine.generate(prompts, seed=9).tokens[:2]


def test_daedal_reference_mode_keeps_the_reference_batch_draws():
    daedal = Daedal(
        initial_gen_length=8,
        max_gen_length=8,
        block_length=8,
        eos_check_tokens=8,
        temperature=1.5,
        reference_compat=True,
    )
    assert [p for p in daedal.parts() if type(p).__name__ == "GumbelTemperature"][0].streams == "batch"


def test_llada_random_remasking_and_sampling_are_batch_invariant_with_row_streams():
    adapter = toy_adapter(seed=5, sharpness=1.0)
    llada = LLaDADecoding(gen_length=16, steps=16, block_length=8, temperature=0.9, remasking="random", streams="rows")
    engine = Engine(adapter, [llada])
    prompts = _prompts(8)
    _assert_batch_invariant(engine, prompts, lambda i: 7 * i)
    assert engine.generate(prompts[:4], seed=2).tokens == engine.generate(prompts, seed=2).tokens[:4]


@pytest.mark.parametrize("alg", ["origin", "maskgit_plus"])
def test_dream_origin_and_sampling_are_batch_invariant_with_row_streams(alg):
    adapter = toy_adapter(seed=6, sharpness=1.0)
    dream = DreamDecoding(max_new_tokens=12, steps=12, alg=alg, alg_temp=0.5, temperature=0.7, streams="rows")
    engine = Engine(adapter, [dream])
    prompts = _prompts(8)
    _assert_batch_invariant(engine, prompts, lambda i: 50 + i)
    assert engine.generate(prompts[:3], seed=4).tokens == engine.generate(prompts, seed=4).tokens[:3]


def test_batch_streams_really_depend_on_the_batch():
    """Guard against a vacuous invariance test: the reference's batch draws do move rows."""
    adapter = toy_adapter(seed=6, sharpness=1.0)
    engine = Engine(adapter, [DreamDecoding(max_new_tokens=12, steps=12, alg="origin")])
    prompts = _prompts(8)
    batched = engine.generate(prompts, seed=4).tokens
    assert batched != [engine.generate([p], seed=4).tokens[0] for p in prompts]
