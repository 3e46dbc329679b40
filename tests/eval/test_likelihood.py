"""The ELBO estimator: exact enumeration, Monte-Carlo convergence, seeding, batching, errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from daedal.core.errors import ConfigError
from daedal.core.testing import FakeAdapter
from daedal.eval.likelihood import (
    EXACT_MAX_TOKENS,
    Estimate,
    log_likelihood,
    log_likelihoods,
    masking_counts,
)

PROMPT = [5, 9, 14, 3]
ANSWER = [7, 21, 30, 12, 40]


@pytest.fixture(scope="module")
def fake() -> FakeAdapter:
    return FakeAdapter(vocab_size=48, seed=3)


def brute_force_elbo(adapter, prompt, answer, cfg_scale=0.0):
    """The ELBO written out: every subset, one forward pass each, plain Python sums.

    ELBO = -(1/L) sum_l (L/l) mean_{|S|=l} sum_{i in S} CE_i(S).
    """
    L = len(answer)
    total = 0.0
    for size in range(1, L + 1):
        subsets = list(itertools.combinations(range(L), size))
        acc = 0.0
        for subset in subsets:
            row = list(prompt) + [adapter.mask_id if i in subset else a for i, a in enumerate(answer)]
            tokens = torch.tensor([row])
            length = torch.tensor([len(row)])
            logits = adapter.logits(tokens, length)[0].double()
            if cfg_scale:
                uncond_row = [adapter.mask_id] * len(prompt) + row[len(prompt) :]
                un = adapter.logits(torch.tensor([uncond_row]), length)[0].double()
                both_out = torch.isinf(logits) & torch.isinf(un)  # ruled out either way: stays out
                logits = torch.where(both_out, logits, un + (cfg_scale + 1) * (logits - un))
            for i in subset:
                slot = logits[len(prompt) + i].tolist()
                top = max(slot)
                lse = top + math.log(sum(math.exp(v - top) for v in slot if v != -math.inf))
                acc += lse - slot[answer[i]]
        total += (L / size) * acc / len(subsets)
    return -total / L


# -- exact ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg_scale", [0.0, 1.5])
def test_exact_equals_an_independent_brute_force_enumeration(fake, cfg_scale):
    got = log_likelihood(fake, PROMPT, ANSWER, exact=True, cfg_scale=cfg_scale)
    want = brute_force_elbo(fake, PROMPT, ANSWER, cfg_scale=cfg_scale)
    assert isinstance(got, Estimate) and got.exact and got.stderr == 0.0
    assert got.samples == 2 ** len(ANSWER) - 1 and got.n_tokens == len(ANSWER)
    assert float(got) == pytest.approx(want, rel=1e-6, abs=1e-6)
    assert got < 0


def test_exact_of_a_single_token_is_its_masked_log_probability(fake):
    row = torch.tensor([PROMPT + [fake.mask_id]])
    logp = torch.log_softmax(fake.logits(row, torch.tensor([row.shape[1]]))[0, -1].double(), -1)
    assert float(log_likelihood(fake, PROMPT, [17], exact=True)) == pytest.approx(float(logp[17]), abs=1e-6)


def test_exact_with_an_empty_prompt(fake):
    got = log_likelihood(fake, [], ANSWER[:3], exact=True)
    assert float(got) == pytest.approx(brute_force_elbo(fake, [], ANSWER[:3]), rel=1e-6)


# -- Monte-Carlo ----------------------------------------------------------------------------


@pytest.mark.parametrize(("mc_num", "batch_size"), [(32, 8), (128, 32), (512, 16), (64, 1)])
def test_monte_carlo_converges_to_exact_within_four_standard_errors(fake, mc_num, batch_size):
    exact = float(log_likelihood(fake, PROMPT, ANSWER, exact=True))
    for seed in range(3):
        mc = log_likelihood(fake, PROMPT, ANSWER, mc_num=mc_num, batch_size=batch_size, seed=seed)
        assert not mc.exact and mc.samples == mc_num and mc.stderr > 0
        assert abs(float(mc) - exact) <= 4 * mc.stderr, (seed, float(mc), exact, mc.stderr)


def test_standard_error_shrinks_like_one_over_root_mc_num(fake):
    small = log_likelihood(fake, PROMPT, ANSWER, mc_num=64, batch_size=8, seed=1).stderr
    large = log_likelihood(fake, PROMPT, ANSWER, mc_num=1024, batch_size=8, seed=1).stderr
    assert 2.0 < small / large < 8.0  # sqrt(16) = 4, with the noise of estimating a spread


def test_same_seed_same_estimate_other_seed_other_estimate(fake):
    a = log_likelihood(fake, PROMPT, ANSWER, mc_num=32, batch_size=8, seed=7)
    b = log_likelihood(fake, PROMPT, ANSWER, mc_num=32, batch_size=8, seed=7)
    c = log_likelihood(fake, PROMPT, ANSWER, mc_num=32, batch_size=8, seed=8)
    assert float(a) == float(b) and a.stderr == b.stderr
    assert float(a) != float(c)


@pytest.mark.parametrize("answer_len", [1, 2, 3, 5, 7, 12, 33])
@pytest.mark.parametrize("batch_size", [1, 2, 4, 16, 32])
def test_every_row_masking_count_is_uniform_whatever_the_batch_size(answer_len, batch_size):
    # k is uniform on 1..L; enumerate it: every row must then see each count exactly once,
    # so the estimator's expectation is the ELBO for any batch size.
    k = torch.arange(1, answer_len + 1)
    counts = masking_counts(k, answer_len, batch_size)
    assert counts.shape == (answer_len, batch_size)
    for row in range(batch_size):
        assert sorted(counts[:, row].tolist()) == list(range(1, answer_len + 1))
    # ...and one mini-batch spreads its counts evenly (the stratification).
    first = counts[0].tolist()
    assert first[0] == 1
    if batch_size <= answer_len:
        assert len(set(first)) == batch_size


@pytest.mark.parametrize(("L", "b"), [(12, 4), (10, 3), (7, 3), (33, 32), (5, 8)])
def test_masking_counts_follow_the_reference_spread_where_it_has_no_ties(L, b):
    # LLaDA spreads the counts as round(k + i * L / b), wrapped into 1..L; away from
    # halves (where it rounds a float half-to-even) the counts are the same.
    for k in range(1, L + 1):
        got = masking_counts(torch.tensor([k]), L, b)[0].tolist()
        for i in range(b):
            frac = (i * L / b) % 1
            if abs(frac - 0.5) > 1e-9:
                assert got[i] == ((round(k + i * L / b) - 1) % L) + 1


def test_batch_size_does_not_change_the_expectation(fake):
    exact = float(log_likelihood(fake, PROMPT, ANSWER, exact=True))
    for batch_size in (1, 4, 32):
        est = [log_likelihood(fake, PROMPT, ANSWER, mc_num=256, batch_size=batch_size, seed=s) for s in range(4)]
        mean = sum(map(float, est)) / len(est)
        se = math.sqrt(sum(e.stderr**2 for e in est)) / len(est)
        assert abs(mean - exact) <= 4 * se, (batch_size, mean, exact, se)


def test_masks_are_uniform_over_positions(fake):
    from daedal.eval.likelihood.estimator import _monte_carlo_plan

    plan = _monte_carlo_plan(PROMPT, ANSWER, 4096, 32, seed=0)
    per_slot = plan.masks.float().mean(0)  # each slot is masked with probability E[l]/L = (L+1)/(2L)
    assert torch.allclose(per_slot, torch.full_like(per_slot, (len(ANSWER) + 1) / (2 * len(ANSWER))), atol=0.03)
    assert (plan.masks.sum(1) >= 1).all()


# -- batched form ---------------------------------------------------------------------------


class CountingAdapter(FakeAdapter):
    """The fake model, counting the rows its forward passes compute."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.rows = 0

    def logits(self, tokens, length, *, window=None):
        self.rows += tokens.shape[0]
        return super().logits(tokens, length, window=window)


def test_batched_form_equals_pair_by_pair_and_shares_rows():
    adapter = CountingAdapter(vocab_size=48, seed=3)
    pairs = [(PROMPT, ANSWER), (PROMPT, [7, 21, 31, 12, 40]), ([11, 12], [4, 5]), (PROMPT, [8])]
    singles = [log_likelihood(adapter, p, a, mc_num=64, batch_size=16, seed=2) for p, a in pairs]
    adapter.rows = 0
    batched = log_likelihoods(adapter, pairs, mc_num=64, batch_size=16, seed=2, rows_per_forward=48)
    for one, many in zip(singles, batched, strict=True):
        assert float(many) == pytest.approx(float(one), abs=1e-5)
        assert many.stderr == pytest.approx(one.stderr, abs=1e-5)
    # The two five-token answers share the prompt, hence the masks: their rows that mask
    # the one slot where they differ are identical and computed once.
    assert adapter.rows < 4 * 64


def test_single_token_choices_of_one_prompt_share_one_forward_row():
    adapter = CountingAdapter(vocab_size=48, seed=3)
    choices = [[20], [21], [22], [23]]
    got = log_likelihoods(adapter, [(PROMPT, c) for c in choices], exact=True)
    assert adapter.rows == 1  # the answer slot is masked in the only row: all four rows are equal
    row = torch.tensor([PROMPT + [adapter.mask_id]])
    logp = torch.log_softmax(adapter.logits(row, torch.tensor([5]))[0, -1].double(), -1)
    assert [float(g) for g in got] == pytest.approx([float(logp[c[0]]) for c in choices], abs=1e-6)


def test_rows_per_forward_does_not_change_the_estimate(fake):
    pairs = [(PROMPT, ANSWER), ([6], [9, 10, 11])]
    a = log_likelihoods(fake, pairs, mc_num=32, batch_size=8, rows_per_forward=3)
    b = log_likelihoods(fake, pairs, mc_num=32, batch_size=8, rows_per_forward=64)
    assert [float(x) for x in a] == pytest.approx([float(x) for x in b], abs=1e-5)


def test_estimate_is_a_float_and_pickles(fake):
    import pickle

    est = log_likelihood(fake, PROMPT, ANSWER[:2], mc_num=8, batch_size=4)
    back = pickle.loads(pickle.dumps(est))
    assert isinstance(back, Estimate) and float(back) == float(est) and back.stderr == est.stderr
    assert est.value == float(est) and "stderr" in repr(est)


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"answer_ids": []}, "`answer_ids`"),
        ({"answer_ids": list(range(4, 14))}, "`answer_ids`"),  # longer than max_length=8
        ({"prompt_ids": [4, 5, 6, 7, 8], "answer_ids": [9, 10, 11, 12]}, "`prompt_ids`"),
        ({"mc_num": 30, "batch_size": 8}, "`mc_num`"),
        ({"mc_num": 0}, "`mc_num`"),
        ({"mc_num": 8, "batch_size": 0}, "`batch_size`"),
        ({"answer_ids": [4, 47]}, "mask id"),
        ({"answer_ids": [4, 99]}, "vocabulary"),
        ({"cfg_scale": -1.0}, "`cfg_scale`"),
        ({"seed": -3}, "`seed`"),
        ({"answer_ids": "abc"}, "`answer_ids`"),
    ],
)
def test_bad_input_is_a_clear_error_naming_the_argument(kwargs, names):
    adapter = FakeAdapter(vocab_size=48, max_length=8)
    args = {"prompt_ids": [4, 5], "answer_ids": [6, 7], "mc_num": 8, "batch_size": 4, **kwargs}
    with pytest.raises(ConfigError, match=names.replace("`", "`?")):
        log_likelihood(adapter, args.pop("prompt_ids"), args.pop("answer_ids"), **args)


def test_exact_on_a_long_answer_is_refused(fake):
    answer = list(range(4, 5 + EXACT_MAX_TOKENS))
    with pytest.raises(ConfigError, match="`exact=True`.*13"):
        log_likelihood(fake, PROMPT, answer, exact=True)
    assert log_likelihood(fake, PROMPT, answer[:EXACT_MAX_TOKENS], exact=True).samples == 2**EXACT_MAX_TOKENS - 1


def test_one_sample_of_a_single_token_answer_is_exact(fake):
    exact = log_likelihood(fake, PROMPT, [17], exact=True)
    one = log_likelihood(fake, PROMPT, [17], mc_num=1, batch_size=1, seed=5)
    assert float(one) == pytest.approx(float(exact), abs=1e-9) and math.isnan(one.stderr)
    assert log_likelihood(fake, PROMPT, [17], mc_num=8, batch_size=4).stderr == 0.0  # every row is the same


def test_the_reference_float_spread_is_not_uniform_at_halves():
    # What the integer spread avoids: LLaDA's round(linspace(...)) rounds half-to-even, so
    # with L=2 and 4 rows, row 1 (offset 0.5) never masks 1 slot of 2.
    L, b = 2, 4
    seen = set()
    for k in range(1, L + 1):
        x = torch.round(torch.linspace(float(k), k + (b - 1) * (L / b), steps=b)).long()
        seen.add(int(((x - 1) % L + 1)[1]))
    assert seen == {2}
    assert sorted(masking_counts(torch.arange(1, L + 1), L, b)[:, 1].tolist()) == [1, 2]


def test_the_progress_bar_does_not_change_the_values(fake):
    pairs = [(PROMPT, ANSWER), ([6], [9, 10])]
    quiet = log_likelihoods(fake, pairs, mc_num=16, batch_size=8, progress=False)
    shown = log_likelihoods(fake, pairs, mc_num=16, batch_size=8, progress=True)
    assert [float(v) for v in quiet] == [float(v) for v in shown]


def test_the_elbo_is_the_mean_log_likelihood_over_unmasking_orders(fake):
    # Any-order autoregression: unmask the answer one token at a time in order sigma; the
    # ELBO is the mean over all orders of the sum of each step's log-probability.
    answer = ANSWER[:4]
    total = 0.0
    orders = list(itertools.permutations(range(len(answer))))
    for order in orders:
        row = PROMPT + [fake.mask_id] * len(answer)
        for slot in order:
            logits = fake.logits(torch.tensor([row]), torch.tensor([len(row)]))[0, len(PROMPT) + slot]
            total += float(torch.log_softmax(logits.double(), -1)[answer[slot]])
            row[len(PROMPT) + slot] = answer[slot]
    exact = log_likelihood(fake, PROMPT, answer, exact=True)
    assert float(exact) == pytest.approx(total / len(orders), rel=1e-6)
