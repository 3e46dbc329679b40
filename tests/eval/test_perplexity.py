"""Perplexity runs (``daedal eval ppl``) and rolling windows."""

from __future__ import annotations

import json
import math

import pytest

from daedal.core.errors import ConfigError
from daedal.core.testing import FakeAdapter
from daedal.eval.likelihood import log_likelihood, rolling_log_likelihood
from daedal.eval.likelihood.perplexity import PerplexityData, aggregate, run_perplexity
from daedal.eval.likelihood.rolling import window_pairs

TEXTS = [
    "the cat sat on the mat and looked at the dog",
    "one two three four five six seven eight nine ten eleven twelve thirteen",
    "a b c",
]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("\n\n".join(TEXTS) + "\n", encoding="utf-8")
    return path


class CountingAdapter(FakeAdapter):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.rows = 0

    def logits(self, tokens, length, *, window=None):
        self.rows += tokens.shape[0]
        return super().logits(tokens, length, window=window)


# -- windows --------------------------------------------------------------------------------


def test_windows_cover_the_text_once_with_the_tokens_before_as_context():
    pairs = window_pairs([1, 2], list(range(10, 17)), window=3, context=4)
    assert [a for _, a in pairs] == [[10, 11, 12], [13, 14, 15], [16]]
    assert [p for p, _ in pairs] == [[1, 2], [2, 10, 11, 12], [12, 13, 14, 15]]
    assert window_pairs([], [5, 6], window=1, context=0) == [([], [5]), ([], [6])]


def test_rolling_log_likelihood_is_the_sum_of_its_windows_exactly():
    adapter = FakeAdapter(max_length=8)
    ids = list(range(4, 15))  # 11 tokens, windows of 4 with 4 tokens of context
    total = rolling_log_likelihood(adapter, ids, window=4, context=4, exact=True)
    parts = [log_likelihood(adapter, p, a, exact=True) for p, a in window_pairs([], ids, 4, 4)]
    assert float(total) == pytest.approx(sum(map(float, parts)), abs=1e-6)
    assert total.n_tokens == 11 and total.exact


def test_window_settings_are_checked():
    adapter = FakeAdapter(max_length=8)
    with pytest.raises(ConfigError, match="`window`"):
        rolling_log_likelihood(adapter, [4, 5], window=9)
    with pytest.raises(ConfigError, match="`context`"):
        rolling_log_likelihood(adapter, [4, 5], window=4, context=5)
    with pytest.raises(ConfigError, match="`documents"):
        rolling_log_likelihood(adapter, [])


# -- runs -----------------------------------------------------------------------------------


def test_text_file_perplexity_per_document_and_overall(text_file, tmp_path):
    adapter = FakeAdapter()
    summary = run_perplexity(
        adapter, PerplexityData(path=text_file), tmp_path / "run", mc_num=32, batch_size=8, window=6, progress=False
    )
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in records] == [len(t.split()) for t in TEXTS]
    for record, text in zip(records, TEXTS, strict=True):
        ids = adapter.encode([text], chat_template=False)[0]
        direct = rolling_log_likelihood(adapter, ids, window=6, mc_num=32, batch_size=8)
        assert record["log_likelihood"] == pytest.approx(float(direct), abs=1e-6)
        assert record["ppl"] == pytest.approx(math.exp(-record["log_likelihood"] / record["tokens"]))
        assert record["windows"] == math.ceil(record["tokens"] / 6)
    m = summary["metrics"]
    assert m["n"] == 3 and m["tokens"] == sum(r["tokens"] for r in records)
    assert m["ppl"] == pytest.approx(math.exp(-sum(r["log_likelihood"] for r in records) / m["tokens"]))
    assert 1.0 < m["ppl"] < math.inf and m["ppl_stderr"] > 0
    assert summary["complete"] and json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"] == m


def test_jsonl_conditional_documents_score_the_answer_given_the_prompt(tmp_path):
    adapter = FakeAdapter()
    data = tmp_path / "qa.jsonl"
    data.write_text(
        json.dumps({"prompt": "sort 9 8 7", "answer": "7 8 9"}) + "\n" + json.dumps({"text": "x y z"}) + "\n",
        encoding="utf-8",
    )
    run_perplexity(adapter, PerplexityData(path=data), tmp_path / "run", exact=True, progress=False)
    first, second = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    prompt = adapter.encode(["sort 9 8 7"])[0]
    answer = adapter.encode(["7 8 9"], chat_template=False)[0]
    assert first["log_likelihood"] == pytest.approx(float(log_likelihood(adapter, prompt, answer, exact=True)))
    assert first["prompt_tokens"] == len(prompt) and second["prompt_tokens"] == 0 and first["stderr"] == 0


def test_a_killed_run_resumes_where_it_stopped(text_file, tmp_path):
    out = tmp_path / "run"
    settings = {"mc_num": 16, "batch_size": 8, "progress": False, "model": {"model": "fake"}}
    full = run_perplexity(FakeAdapter(), PerplexityData(path=text_file), out, **settings)
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    (out / "samples.jsonl").write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # killed mid-write
    adapter = CountingAdapter()
    again = run_perplexity(adapter, PerplexityData(path=text_file), out, **settings)
    assert again["metrics"] == full["metrics"]
    assert 0 < adapter.rows <= 2 * 16  # only the two lost documents (one window each) ran
    with pytest.raises(ConfigError, match="different 'estimator'"):
        run_perplexity(FakeAdapter(), PerplexityData(path=text_file), out, **{**settings, "mc_num": 32})
    assert run_perplexity(
        FakeAdapter(), PerplexityData(path=text_file), out, **{**settings, "mc_num": 32}, overwrite=True
    )["complete"]


def test_bad_data_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="neither 'text'"):
        PerplexityData(path=bad).load()
    with pytest.raises(ConfigError, match="`path`"):
        PerplexityData(path=tmp_path / "missing.txt").load()


def test_aggregate_is_token_weighted():
    records = [
        {"tokens": 2, "log_likelihood": -2.0, "stderr": 0.3, "ppl": math.e},
        {"tokens": 8, "log_likelihood": -4.0, "stderr": 0.4, "ppl": math.exp(0.5)},
    ]
    m = aggregate(records)
    assert m["nll"] == pytest.approx(0.6) and m["ppl"] == pytest.approx(math.exp(0.6))
    assert m["stderr"] == pytest.approx(0.5) and m["nll_stderr"] == pytest.approx(0.05)


# -- the command line -----------------------------------------------------------------------


def test_daedal_eval_ppl_command(text_file, tmp_path, capsys):
    from daedal.eval.cli import main

    out = tmp_path / "cli"
    code = main(
        [
            "ppl",
            "--data",
            str(text_file),
            "--model",
            "fake",
            "--mc-num",
            "16",
            "--batch-size",
            "8",
            "--window",
            "6",
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert f"ppl={summary['metrics']['ppl']:.3f}" in printed
    assert (
        main(
            [
                "ppl",
                "--data",
                str(text_file),
                "--model",
                "fake",
                "--mc-num",
                "10",
                "--batch-size",
                "8",
                "--output",
                str(tmp_path / "bad"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "`mc_num` must be a positive multiple of `batch_size`" in capsys.readouterr().err
