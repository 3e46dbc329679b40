"""KV caches: the engine's cached decoders against a per-row transcription of Fast-dLLM's cached loops."""

from __future__ import annotations

import random
import threading

import pytest
import torch

from daedal.core import Engine
from daedal.policies import Daedal, FastDllm, LLaDADecoding
from tests.policies.oracles.cache_oracle import cached_reference, cached_toy_adapter


def _prompts(rng: random.Random, batch: int) -> list[list[int]]:
    return [[rng.randint(3, 20) for _ in range(rng.randint(1, 7))] for _ in range(batch)]


@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("seed", range(4))
def test_llada_decoding_cache_matches_fast_dllm(mode, batch, seed):
    rng = random.Random(seed * 10 + batch)
    block = rng.choice([4, 8])
    steps = rng.choice([16 // block * 2, 16 // block * 4, 16])
    adapter = cached_toy_adapter(seed=seed, sharpness=1.0)
    prompts = _prompts(rng, batch)
    result = Engine(adapter, [LLaDADecoding(gen_length=16, steps=steps, block_length=block, cache=mode)]).generate(
        prompts
    )
    expected, passes = cached_reference(
        adapter.model, prompts, gen_length=16, block_length=block, mode=mode, steps=steps
    )
    assert result.tokens == expected
    assert result.stats.forward_passes == max(passes)


@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("threshold", [0.9, 0.3, 0.05])
def test_fast_dllm_cache_matches_fast_dllm(mode, batch, threshold):
    rng = random.Random(int(threshold * 100) + batch)
    adapter = cached_toy_adapter(seed=batch, sharpness=2.5)
    prompts = _prompts(rng, batch)
    result = Engine(adapter, [FastDllm(gen_length=16, block_length=4, threshold=threshold, cache=mode)]).generate(
        prompts
    )
    expected, passes = cached_reference(
        adapter.model, prompts, gen_length=16, block_length=4, mode=mode, threshold=threshold
    )
    assert result.tokens == expected
    assert result.stats.forward_passes == max(passes)


def test_one_step_blocks_cost_the_reference_idle_pass():
    # A very low threshold fills each block in its first (full) step; the reference still runs one cached pass.
    adapter = cached_toy_adapter(seed=1, sharpness=3.0)
    result = Engine(adapter, [FastDllm(gen_length=16, block_length=4, threshold=0.0, cache="dual")]).generate([[5, 6]])
    assert result.stats.forward_passes == 8  # 4 blocks x (full + idle cached pass)
    session = adapter.sessions[-1]
    assert session.passes == {"full": 4, "partial": 4}


def test_the_toy_cache_is_an_approximation():
    # The oracle tests could fail: with caches the toy's tokens differ from the uncached run somewhere.
    differs = 0
    for seed in range(6):
        adapter = cached_toy_adapter(seed=seed, sharpness=1.0)
        prompts = [[5, 6, 7], [8, 9]]
        plain = Engine(adapter, [LLaDADecoding(gen_length=16, steps=16, block_length=4)]).generate(prompts)
        for mode in ("prefix", "dual"):
            cached = Engine(adapter, [LLaDADecoding(gen_length=16, steps=16, block_length=4, cache=mode)]).generate(
                prompts
            )
            differs += cached.tokens != plain.tokens
    assert differs > 0


def test_cached_steps_feed_only_the_block():
    adapter = cached_toy_adapter(seed=0)
    Engine(adapter, [LLaDADecoding(gen_length=16, steps=16, block_length=4, cache="dual")]).generate([[5, 6, 7]])
    backend = adapter.sessions[-1].backend
    fed = {shape for kind, shape in backend.calls if kind == "partial"}
    assert fed == {(1, 4)}
    Engine(adapter, [LLaDADecoding(gen_length=16, steps=16, block_length=4, cache="prefix")]).generate([[5, 6, 7]])
    backend = adapter.sessions[-1].backend
    fed = sorted({shape[1] for kind, shape in backend.calls if kind == "partial"})
    assert fed == [4, 8, 12, 16]  # the block and everything after it


def test_a_session_never_outlives_its_run():
    adapter = cached_toy_adapter(seed=0)
    engine = Engine(adapter, [LLaDADecoding(gen_length=8, steps=8, block_length=4, cache="dual")])
    engine.generate([[5, 6]])
    engine.generate([[7]])
    first, second = adapter.sessions
    assert first is not second
    assert first.closed and second.closed
    assert first.hidden is None and first.store == []
    with pytest.raises(RuntimeError, match="closed"):
        first.forward(torch.tensor([[5, 6]]), torch.tensor([2]))


def test_a_session_is_closed_when_the_run_fails():
    from daedal.core import hookimpl

    class Boom:
        @hookimpl
        def on_event(self, event, state):  # type: ignore[no-untyped-def]
            if event.kind == "step-finished" and event.step == 2:
                raise RuntimeError("boom")

    adapter = cached_toy_adapter(seed=0)
    with pytest.raises(RuntimeError, match="boom"):
        Engine(adapter, [LLaDADecoding(gen_length=8, steps=8, block_length=4, cache="dual"), Boom()]).generate([[5]])
    (session,) = adapter.sessions
    assert session.closed and session.store == []


def test_cached_engines_side_by_side_and_in_threads_match_their_solo_runs():
    adapter = cached_toy_adapter(seed=3, sharpness=1.5)
    prompts = [[5, 6, 7], [8], [9, 10]]
    engines = {
        "dual": Engine(adapter, [LLaDADecoding(gen_length=16, steps=16, block_length=4, cache="dual")]),
        "prefix": Engine(adapter, [FastDllm(gen_length=16, block_length=4, threshold=0.5, cache="prefix")]),
        "daedal": Engine(
            adapter,
            [
                Daedal(
                    initial_gen_length=8,
                    max_gen_length=32,
                    block_length=4,
                    eos_check_tokens=8,
                    low_conf_threshold=0.3,
                    cache="dual",
                )
            ],
        ),
    }
    solo = {name: e.generate(prompts).tokens for name, e in engines.items()}
    interleaved = {name: e.generate(prompts).tokens for name, e in reversed(list(engines.items()))}
    assert interleaved == solo
    threaded: dict[str, list] = {}

    def run(name: str) -> None:
        for _ in range(2):
            threaded[name] = engines[name].generate(prompts).tokens

    threads = [threading.Thread(target=run, args=(name,)) for name in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert threaded == solo


def test_a_cache_needs_an_adapter_that_supports_it():
    from daedal.core import ConfigError
    from daedal.core.testing import FakeAdapter

    with pytest.raises(ConfigError, match="open_session"):
        Engine(FakeAdapter(), [LLaDADecoding(gen_length=8, steps=8, block_length=4, cache="dual")]).generate([[5]])
    with pytest.raises(ConfigError, match="cache"):
        LLaDADecoding(cache="full")


def test_guidance_is_one_batched_forward_that_composes_with_sparse_logits_and_caches():
    adapter = cached_toy_adapter(seed=2)
    policy = LLaDADecoding(gen_length=8, steps=8, block_length=4, cfg_scale=1.0, cache="dual")
    result = Engine(adapter, [policy]).generate([[5, 6], [7]])
    backend = adapter.sessions[-1].backend
    assert len(backend.calls) == result.stats.steps  # conditional and unconditional rows in one call
    assert {shape[0] for _, shape in backend.calls} == {4}  # 2 x the batch
    assert result.stats.forward_passes == 2 * result.stats.steps  # two canvases of compute, as the oracle counts
    assert all(k < result.canvas.width for _, k in backend.heads)  # and still no whole-canvas logits
    daedal = Daedal(
        initial_gen_length=8,
        max_gen_length=32,
        block_length=4,
        eos_check_tokens=4,
        low_conf_threshold=0.9,
        expand_eos_confidence_threshold=1.0,
        eos_confidence_threshold=0.0,
        cfg_scale=1.0,
        cache="dual",
    )
    grown = Engine(adapter, [daedal]).generate([[5, 6], [7]])
    assert grown.stats.expansions > 0 and all(adapter.mask_id not in row for row in grown.tokens)
