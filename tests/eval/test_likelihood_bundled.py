"""The ELBO on the bundled tiny model: exactness, convergence, ranking of answers, greedy check.

Nothing here depends on the exact numbers of today's checkpoint: only on it having learnt
its tasks (it ranks correct answers first, and reproduces what it generates).
"""

from __future__ import annotations

import pytest
import torch

from daedal.eval.likelihood import greedy_matches, is_greedy, log_likelihood, log_likelihoods
from daedal.eval.likelihood.choice import choice_docs, corruptions

from .test_likelihood import brute_force_elbo


@pytest.fixture(scope="module")
def tiny():
    from daedal.models import bundled

    return bundled.load()


def _pair(adapter, prompt: str, answer: str):
    return adapter.encode([prompt])[0], adapter.encode([answer], chat_template=False)[0]


def test_exact_equals_brute_force_on_the_bundled_model(tiny):
    prompt, answer = _pair(tiny, "sort: q c k", "c k q")
    got = log_likelihood(tiny, prompt, answer, exact=True)
    assert float(got) == pytest.approx(brute_force_elbo(tiny, prompt, answer), rel=1e-5, abs=1e-5)
    guided = log_likelihood(tiny, prompt, answer, exact=True, cfg_scale=0.5)
    assert float(guided) == pytest.approx(brute_force_elbo(tiny, prompt, answer, cfg_scale=0.5), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize(("mc_num", "batch_size"), [(32, 16), (128, 32)])
def test_monte_carlo_converges_to_exact_on_the_bundled_model(tiny, mc_num, batch_size):
    for prompt, answer in [("reverse: a b c d", "d c b a"), ("repeat: x y", "x x y y"), ("sort: q c k", "c q k")]:
        p, a = _pair(tiny, prompt, answer)
        exact = float(log_likelihood(tiny, p, a, exact=True))
        for seed in range(2):
            mc = log_likelihood(tiny, p, a, mc_num=mc_num, batch_size=batch_size, seed=seed)
            assert abs(float(mc) - exact) <= 4 * mc.stderr, (prompt, answer, seed, float(mc), exact, mc.stderr)


def test_correct_answers_score_higher_than_corrupted_ones(tiny):
    docs = choice_docs(16, seed=7, max_answer_tokens=12)
    assert {d["family"] for d in docs} == {"reverse", "sort", "repeat", "add"}
    pairs = []
    for doc in docs:
        prompt = tiny.encode([doc["prompt"]])[0]
        for choice in doc["choices"]:
            pairs.append((prompt, tiny.encode([choice], chat_template=False)[0]))
    values = log_likelihoods(tiny, pairs, mc_num=32, batch_size=32, seed=0)
    wins = total = at = 0
    for doc in docs:
        scores = [float(v) for v in values[at : at + len(doc["choices"])]]
        at += len(doc["choices"])
        gold = scores[doc["gold"]]
        for c, s in enumerate(scores):
            if c != doc["gold"]:
                total += 1
                wins += gold > s
    assert total >= 60
    assert wins / total >= 0.9, (wins, total)


def test_is_greedy_holds_for_what_the_model_generates_greedily(tiny):
    from daedal.core import Engine, FixedLength, SemiAutoregressive

    prompts = ["reverse: a b c d", "sort: k e q", "repeat: m n", "add: 1 2"]
    engine = Engine(tiny, [FixedLength(gen_length=12), SemiAutoregressive(block_length=12, steps=12)])
    ids = tiny.encode(prompts)
    generated = [list(row) for row in engine.generate(ids).tokens]
    assert greedy_matches(tiny, list(zip(ids, generated, strict=True))) == [True] * len(prompts)
    for p, g in zip(ids, generated, strict=True):
        wrong = list(g)
        wrong[0] = g[1] if g[1] != g[0] else g[2]
        assert not is_greedy(tiny, p, wrong)


def test_corruptions_keep_the_length_and_differ():
    import random

    from daedal.models.bundled import tasks

    rng = random.Random(0)
    for family in tasks.FAMILIES:
        prompt, answer = tasks.make_example(family, rng, size=4)
        wrong = corruptions(prompt, answer, rng, 3)
        assert len(wrong) == 3 and answer not in wrong and len(set(wrong)) == 3
        assert all(len(tasks.normalize(w)) == len(tasks.normalize(answer)) for w in wrong)


def test_choice_docs_are_seeded_and_hold_the_answer():
    a, b = choice_docs(3, seed=5), choice_docs(3, seed=5)
    assert a == b and len(a) >= 8
    for doc in a:
        assert doc["choices"][doc["gold"]] == doc["answer"] and len(doc["choices"]) == 4


def test_guidance_changes_the_estimate_but_not_its_determinism(tiny):
    p, a = _pair(tiny, "reverse: a b c d", "d c b a")
    plain = log_likelihood(tiny, p, a, mc_num=32, batch_size=32)
    guided = log_likelihood(tiny, p, a, mc_num=32, batch_size=32, cfg_scale=1.0)
    assert float(plain) != float(guided)
    assert float(guided) == float(log_likelihood(tiny, p, a, mc_num=32, batch_size=32, cfg_scale=1.0))
    assert torch.isfinite(torch.tensor(float(guided)))
