"""Per-sample model calls in eval records: a guided step is one call and two forward passes."""

from __future__ import annotations

from daedal.core import Engine
from daedal.core.testing import FakeAdapter
from daedal.eval.runner import generate_rows
from daedal.policies import Daedal


def test_records_carry_model_calls_per_row_and_per_batch():
    adapter = FakeAdapter(eos_bias=2.0)
    daedal = Daedal(initial_gen_length=8, max_gen_length=64, block_length=8, cfg_scale=1.0)
    rows = generate_rows(Engine(adapter, [daedal]), [[5, 6, 7], [8, 9], [10]], 0)
    measured = [m for _, _, m in rows]
    for m in measured:
        assert m["batch_model_calls"] == adapter.calls  # the batch's calls, probes included
        assert m["model_calls"] <= m["batch_model_calls"]
        # every call but the probes is guided: two forward passes each
        assert m["model_calls"] < m["forward_passes"] < 2 * m["model_calls"]
    # a row that finished early is not charged the calls the others still needed
    assert len({m["model_calls"] for m in measured}) > 1
    # calls = probes + guided steps, passes = probes + 2 x guided steps; the probes are the batch's, alike for all
    probes = {2 * m["model_calls"] - m["forward_passes"] for m in measured}
    assert len(probes) == 1 and probes.pop() >= 1
