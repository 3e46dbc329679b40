"""Likelihoods of masked diffusion models: the ELBO, exact or Monte-Carlo, greedy checks, perplexity.

* :func:`log_likelihood` / :func:`log_likelihoods` — LLaDA's estimator of
  ``log p(answer | prompt)`` (or its exact value for short answers), with a standard error;
* :func:`is_greedy` / :func:`greedy_matches` — whether greedy unmasking reproduces an answer;
* :func:`rolling_log_likelihood` — whole documents in windows, for perplexity;
* :mod:`daedal.eval.likelihood.perplexity` — resumable perplexity runs (``daedal eval ppl``);
* :mod:`daedal.eval.likelihood.choice` — a multiple-choice task built from the bundled
  model's families, for lm-eval.

Example::

    from daedal.models import bundled
    from daedal.eval.likelihood import log_likelihood

    adapter = bundled.load()
    prompt = adapter.encode(["reverse: a b c"])[0]
    answer = adapter.encode(["c b a"], chat_template=False)[0]
    ll = log_likelihood(adapter, prompt, answer, mc_num=64)
    print(float(ll), ll.stderr)
"""

from daedal.eval.likelihood.estimator import (
    EXACT_MAX_TOKENS,
    Estimate,
    log_likelihood,
    log_likelihoods,
    masking_counts,
)
from daedal.eval.likelihood.greedy import greedy_matches, is_greedy
from daedal.eval.likelihood.rolling import rolling_log_likelihood, rolling_log_likelihoods

__all__ = [
    "EXACT_MAX_TOKENS",
    "Estimate",
    "greedy_matches",
    "is_greedy",
    "log_likelihood",
    "log_likelihoods",
    "masking_counts",
    "rolling_log_likelihood",
    "rolling_log_likelihoods",
]
