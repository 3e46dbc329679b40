"""End to end on real adapters: a tiny random LLaDA checkpoint, and the bundled model when shipped."""

from __future__ import annotations

import pytest

from daedal.core import Engine, FixedLength
from daedal.eval.runner import read_records, run_suite
from daedal.eval.suites.gsm8k import GSM8K
from tests.eval.test_suites import GSM8K_0_PROMPT

testing = pytest.importorskip("daedal.models.testing")


@pytest.fixture(scope="module")
def tiny_llada(tmp_path_factory):
    from daedal.models import LLaDA

    directory = testing.tiny_checkpoint("llada", tmp_path_factory.mktemp("tiny_llada"))
    return LLaDA.from_pretrained(str(directory))


def test_gsm8k_on_a_tiny_llada_records_the_papers_prompt_and_token_counts(tmp_path, tiny_llada, gsm8k_path):
    engine = Engine(tiny_llada, policies=[FixedLength(gen_length=16)])
    summary = run_suite(engine, GSM8K(path=gsm8k_path, limit=2), tmp_path, progress=False)
    records = read_records(tmp_path / "samples.jsonl")
    assert records[0]["prompt"] == GSM8K_0_PROMPT
    assert records[0]["prompt_tokens"] == len(tiny_llada.encode([GSM8K_0_PROMPT], chat_template=False)[0])
    for record in records:
        text = record["text"]
        assert record["tokens"] == len(tiny_llada.tokenizer.encode(text, add_special_tokens=False))
        assert record["pad"] == text.count("<|endoftext|>")
        assert record["gen_length"] == 16
    assert summary["manifest"]["model"]["adapter"].endswith("LLaDA")


def test_synthetic_suite_on_the_bundled_model_agrees_with_its_quality_tool(tmp_path):
    bundled = pytest.importorskip("daedal.models.bundled")
    quality = pytest.importorskip("daedal.models.bundled.quality")
    from daedal.core.errors import AdapterError

    try:
        bundled.path()
    except AdapterError:
        pytest.skip("the bundled checkpoint is not shipped in this checkout yet")
    from daedal.eval.cli import main

    assert (
        main(
            [
                "run",
                "--suite",
                "synthetic",
                "--suite-arg",
                "n_per_family=2",
                "--model",
                "bundled",
                "--policy",
                "daedal",
                "--output",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    records = read_records(tmp_path / "samples.jsonl")
    assert len(records) == 8
    # The same prompts through the model package's own evaluation must give the same outputs.
    data = bundled.tasks.heldout_set(2, 1234)
    report = quality.evaluate(bundled.load(), [quality.daedal_method()], data)["methods"]["daedal"]
    assert [r["correct"] for r in records] == [e["correct"] for e in report["examples"]]
    assert [r["gen_length"] for r in records] == [e["length"] for e in report["examples"]]
    assert [r["text"] for r in records] == [e["output"] for e in report["examples"]]
