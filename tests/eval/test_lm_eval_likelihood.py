"""lm-eval's likelihood requests through the bridge: multiple choice and rolling perplexity."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from daedal.core.errors import ConfigError
from daedal.eval.likelihood import log_likelihood, log_likelihoods

lm_eval = pytest.importorskip("lm_eval")

#: Texts of the bundled model's vocabulary whose tokens are their words.
TEXTS = ["a b c d e f g h", "1 2 3 4 5 6 7 8 9 10 11 12", "reverse a b c"]


def _requests(kind, args_list):
    from lm_eval.api.instance import Instance

    return [Instance(request_type=kind, doc={}, arguments=args, idx=i) for i, args in enumerate(args_list)]


def test_loglikelihood_requests_go_through_the_estimator():
    from daedal.eval.lm_eval_bridge import DaedalLM

    lm = DaedalLM(model="fake", policy="llada-decoding:gen_length=8", mc_num=32, mc_batch_size=8, seed=3)
    out = lm.loglikelihood(_requests("loglikelihood", [("sort 9 8 7 ", "7 8 9"), ("sort 9 8 7", " 9 8 7")]))
    adapter = lm.engine.adapter
    prompt = adapter.encode(["sort 9 8 7"], chat_template=False)[0]
    want = log_likelihoods(adapter, [(prompt, [7, 8, 9]), (prompt, [9, 8, 7])], mc_num=32, batch_size=8, seed=3)
    assert [v for v, _ in out] == pytest.approx([float(w) for w in want])
    assert all(isinstance(g, bool) for _, g in out)
    exact = DaedalLM(model="fake", policy="llada-decoding:gen_length=8", exact=True)
    value, _ = exact.loglikelihood(_requests("loglikelihood", [("sort 9 8 7", " 7 8 9")]))[0]
    assert value == pytest.approx(float(log_likelihood(adapter, prompt, [7, 8, 9], exact=True)))


def test_single_token_choices_share_one_forward_row_through_the_bridge():
    from daedal.core import Engine
    from daedal.core.testing import FakeAdapter
    from daedal.eval.lm_eval_bridge import DaedalLM

    class Counting(FakeAdapter):
        rows = 0

        def logits(self, tokens, length, *, window=None):
            Counting.rows += tokens.shape[0]
            return super().logits(tokens, length, window=window)

    lm = DaedalLM(engine=Engine(Counting()), mc_num=1, check_greedy=False)
    out = lm.loglikelihood(_requests("loglikelihood", [("q 9 8 7 answer:", f" {c}") for c in (10, 11, 12, 13)]))
    assert Counting.rows == 1  # MMLU-style: the four answers differ only in the masked slot
    assert len({v for v, _ in out}) == 4


def test_bad_likelihood_model_args_are_refused():
    from daedal.eval.lm_eval_bridge import DaedalLM

    with pytest.raises(ConfigError, match="`mc_num`"):
        DaedalLM(model="fake", mc_num=100, mc_batch_size=32)
    with pytest.raises(ConfigError, match="`cfg_scale`"):
        DaedalLM(model="fake", cfg_scale="strong")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One lm-eval run of the bundled model on a local multiple-choice task and a perplexity task."""
    from lm_eval.tasks import TaskManager

    import daedal.eval.lm_eval_bridge  # noqa: F401  (registers "daedal")
    from daedal.eval.likelihood.choice import choice_docs, write_lm_eval_task

    root = tmp_path_factory.mktemp("lm_eval_likelihood")
    docs = choice_docs(8, seed=11, max_answer_tokens=10)
    write_lm_eval_task(root, docs)
    data = root / "ppl.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    (root / "daedal_ppl.yaml").write_text(
        textwrap.dedent(f"""\
        task: daedal_ppl
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        test_split: test
        output_type: loglikelihood_rolling
        doc_to_text: ""
        doc_to_target: "{{{{text}}}}"
        metric_list:
          - metric: word_perplexity
            aggregation: weighted_perplexity
            higher_is_better: false
        """),
        encoding="utf-8",
    )
    results = lm_eval.simple_evaluate(
        model="daedal",
        model_args="model=bundled,mc_num=32,mc_batch_size=32,window=6",
        tasks=["daedal_synthetic_mc", "daedal_ppl"],
        apply_chat_template=True,
        log_samples=True,
        device="cpu",
        task_manager=TaskManager(include_path=str(root), include_defaults=False),
    )
    return results, docs, root


def test_the_bridge_answers_a_local_multiple_choice_task_with_the_bundled_model(evaluated):
    from daedal.models import bundled

    results, docs, _ = evaluated
    samples = results["samples"]["daedal_synthetic_mc"]
    assert len(samples) == len(docs) >= 8
    adapter = bundled.load()
    # The responses are the estimator's values for the templated prompt and each choice.
    sample = samples[0]
    prompt = adapter.encode([sample["doc"]["prompt"]])[0]
    choices = adapter.encode(sample["doc"]["choices"], chat_template=False)
    want = log_likelihoods(adapter, [(prompt, c) for c in choices], mc_num=32, batch_size=32)
    assert [r[0][0] for r in sample["resps"]] == pytest.approx([float(w) for w in want], abs=1e-4)
    acc = results["results"]["daedal_synthetic_mc"]["acc,none"]
    assert acc >= 0.7
    from daedal.eval.likelihood.choice import score_choices

    assert score_choices(adapter, docs, mc_num=32, batch_size=32)["accuracy"] == pytest.approx(acc)


def test_lm_eval_rolling_perplexity_matches_daedal_eval_ppl(evaluated, tmp_path):
    from daedal.eval.cli import main

    results, _, root = evaluated
    word_ppl = results["results"]["daedal_ppl"]["word_perplexity,none"]
    assert math.isfinite(word_ppl) and word_ppl > 1.0
    code = main(
        [
            "ppl",
            "--data",
            str(root / "ppl.jsonl"),
            "--model",
            "bundled",
            "--mc-num",
            "32",
            "--batch-size",
            "32",
            "--window",
            "6",
            "--output",
            str(tmp_path / "ppl"),
            "--no-progress",
        ]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "ppl" / "summary.json").read_text())["metrics"]
    assert metrics["tokens"] == sum(len(t.split()) for t in TEXTS)  # one token per word here
    assert word_ppl == pytest.approx(metrics["ppl"], rel=1e-6)
