"""Per-row random streams: a row's numbers depend on its seed and position in the row, never on its batch."""

from __future__ import annotations

import pytest
import torch

from daedal.core import ConfigError, Engine, FixedLength, GumbelTemperature, SemiAutoregressive
from daedal.core.streams import RowStreams, row_seeds
from daedal.core.testing import FakeAdapter


def _streams(seed, batch):
    return RowStreams(torch.tensor(row_seeds(seed, batch), dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_uniforms_lie_strictly_inside_the_unit_interval_and_look_uniform(dtype):
    u = _streams(7, 4).uniform((4, 64, 300), dtype=dtype)
    assert u.dtype == dtype and u.shape == (4, 64, 300)
    assert bool((u > 0).all()) and bool((u < 1).all())
    assert abs(float(u.mean()) - 0.5) < 0.01 and abs(float(u.var()) - 1 / 12) < 0.005
    # Neighbouring elements and rows are not correlated.
    flat = u.flatten().double()
    assert abs(float(torch.corrcoef(torch.stack([flat[:-1], flat[1:]]))[0, 1])) < 0.02
    assert abs(float(torch.corrcoef(torch.stack([u[0].flatten(), u[1].flatten()]).double())[0, 1])) < 0.02


def test_a_row_draws_the_same_numbers_whatever_the_width_and_the_other_rows():
    alone = RowStreams(torch.tensor(row_seeds([11], 1)))
    batch = RowStreams(torch.tensor(row_seeds([5, 11, 9], 3)))
    for width in (6, 6, 9):  # successive draws; the batched canvas is wider
        a = alone.uniform((1, 6, 10))
        b = batch.uniform((3, width, 10))
        assert torch.equal(a[0], b[1, :6])


def test_successive_draws_and_seeds_differ():
    s = _streams(0, 2)
    first, second = s.uniform((2, 50)), s.uniform((2, 50))
    assert not torch.equal(first, second) and not torch.equal(first[0], first[1])
    assert not torch.equal(_streams(0, 1).uniform((1, 50)), _streams(1, 1).uniform((1, 50)))


def test_an_int_seed_derives_row_b_from_seed_and_b():
    assert row_seeds(3, 4)[:2] == row_seeds(3, 2)
    assert len(set(row_seeds(3, 4))) == 4


@pytest.mark.parametrize(
    ("seed", "needle"),
    [([1, 2], "2 seeds for 3 prompts"), ([1, -2, 3], r"seed\[1\]"), ("7", "sequence of ints"), (-1, "seed")],
)
def test_bad_seeds_are_refused(seed, needle):
    with pytest.raises(ConfigError, match=needle):
        row_seeds(seed, 3)


def _prompts(n):
    return [[4 + (i * 7) % 30, 5 + i % 11, 6 + (3 * i) % 17][: 1 + i % 3] for i in range(n)]


@pytest.mark.parametrize("streams", ["rows"])
def test_sampling_and_random_remasking_with_row_streams_do_not_depend_on_the_batch(streams):
    adapter = FakeAdapter(vocab_size=48, seed=3)
    engine = Engine(
        adapter,
        [
            FixedLength(gen_length=16),
            SemiAutoregressive(block_length=8, steps=16, remasking="random", streams=streams),
            GumbelTemperature(temperature=0.8, streams=streams),
        ],
    )
    prompts = _prompts(8)
    alone = [engine.generate([p], seed=[100 + i]).tokens[0] for i, p in enumerate(prompts)]
    for order in ([0, 1], [3, 2, 1, 0], [7, 0, 5, 2, 6, 1, 4, 3]):
        out = engine.generate([prompts[i] for i in order], seed=[100 + i for i in order])
        assert out.tokens == [alone[i] for i in order]
    # An int seed gives row b the stream of (seed, b): the first rows agree across batch sizes.
    two = engine.generate(prompts[:2], seed=5).tokens
    assert engine.generate(prompts[:6], seed=5).tokens[:2] == two


def test_per_row_seeds_override_the_batch_stream_of_reference_policies():
    adapter = FakeAdapter(vocab_size=48, seed=3)
    # Defaults of these classes draw over the batch tensor (the reference's draws) ...
    engine = Engine(
        adapter,
        [
            FixedLength(gen_length=8),
            SemiAutoregressive(block_length=8, steps=8, remasking="random"),
            GumbelTemperature(temperature=1.0),
        ],
    )
    prompts = _prompts(4)
    alone = [engine.generate([p], seed=[i]).tokens[0] for i, p in enumerate(prompts)]
    # ... so with one int seed a row depends on its batch ...
    batched = engine.generate(prompts, seed=0).tokens
    assert batched != [engine.generate([p], seed=0).tokens[0] for p in prompts]
    # ... but a run with one seed per row has no batch stream: every draw is per row.
    assert engine.generate(prompts[::-1], seed=[3, 2, 1, 0]).tokens == alone[::-1]


def test_sampling_still_depends_on_the_seed():
    adapter = FakeAdapter(vocab_size=48, seed=3)
    engine = Engine(adapter, [FixedLength(gen_length=16), GumbelTemperature(temperature=1.5, streams="rows")])
    runs = {tuple(engine.generate([[5, 6]], seed=s).tokens[0]) for s in range(5)}
    assert len(runs) >= 4


def _reference_bits(key: int, draw: int, index: int) -> int:
    """The stream's hash in plain Python integers (no fixed width, so no overflow to hide)."""
    from daedal.core import streams as st

    def mix(x: int) -> int:
        x ^= x >> 16
        x = (x * st._M1) & st._MASK32
        x ^= x >> 15
        x = (x * st._M2) & st._MASK32
        return x ^ (x >> 16)

    k = mix((key ^ st._mix_int(draw, 3)) & st._MASK32)
    return mix((((index * st._WEYL) & st._MASK32) + k) & st._MASK32)


def test_the_tensor_hash_equals_the_same_hash_in_python_integers():
    # int64 tensor arithmetic that matches unbounded integers has no overflow: the bits are
    # the same on any device that computes int64 exactly.
    keys = row_seeds([0, 123456789, 2**40 + 7], 3)
    s = RowStreams(torch.tensor(keys))
    s.uniform((3, 4))  # draw 0
    u32 = s.uniform((3, 70_000))  # draw 1: indices past 2**16
    u64 = s.uniform((3, 5), dtype=torch.float64)  # draw 2
    for b, key in enumerate(keys):
        for i in (0, 1, 65_535, 65_536, 69_999):
            assert float(u32[b, i]) == ((_reference_bits(key, 1, i) >> 9) + 0.5) * 2.0**-23
        for i in range(5):
            assert float(u64[b, i]) == (_reference_bits(key, 2, i) + 0.5) * 2.0**-32


def test_the_extreme_bits_stay_inside_the_unit_interval():
    # The largest and smallest hash values, through the same float arithmetic as `uniform`.
    bits = torch.tensor([2**32 - 1, 0])
    u32 = ((bits >> 9).float() + 0.5) * 2.0**-23
    u64 = (bits.double() + 0.5) * 2.0**-32
    assert u32.tolist() == [1 - 2.0**-24, 2.0**-24] and bool((u64 < 1).all()) and bool((u64 > 0).all())


def test_only_float32_and_float64_uniforms():
    with pytest.raises(ConfigError, match="float32 or float64"):
        _streams(0, 1).uniform((1, 3), dtype=torch.bfloat16)
