"""The lm-eval bridge: stock lm-eval runs a local generate_until task through the engine."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

lm_eval = pytest.importorskip("lm_eval")

QUESTIONS = [
    {"question": "add 5 6", "answer": "11"},
    {"question": "sort 9 8 7", "answer": "7 8 9"},
    {"question": "reverse a b c d", "answer": "d c b a"},
]
MODEL_ARGS = "model=fake,policy=llada-decoding:gen_length=16;block_length=8,adapter_eos_bias=1.0"


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm_eval_task")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    (root / "daedal_tiny.yaml").write_text(
        textwrap.dedent(f"""\
        task: daedal_tiny
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        test_split: test
        output_type: generate_until
        doc_to_text: "{{{{question}}}}"
        doc_to_target: "{{{{answer}}}}"
        generation_kwargs:
          until: ["<eot>"]
          max_gen_toks: 16
        metric_list:
          - metric: exact_match
        """),
        encoding="utf-8",
    )
    return root


def _direct(question: str) -> str:
    """What the engine itself produces for a context, cut at the task's stop string."""
    from daedal.core import Engine
    from daedal.core.testing import FakeAdapter
    from daedal.eval.build import build_policies

    adapter = FakeAdapter(eos_bias=1.0)
    engine = Engine(adapter, build_policies(["llada-decoding:gen_length=16,block_length=8"]))
    text = engine.generate([adapter.encode([question], chat_template=False)[0]]).texts[0]
    return text.split("<eot>")[0]


def test_simple_evaluate_runs_the_task_through_the_engine(task_dir):
    from lm_eval.tasks import TaskManager

    import daedal.eval.lm_eval_bridge  # noqa: F401  (registers the "daedal" model type)

    results = lm_eval.simple_evaluate(
        model="daedal",
        model_args=MODEL_ARGS,
        tasks=["daedal_tiny"],
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
        log_samples=True,
        device="cpu",
    )
    samples = results["samples"]["daedal_tiny"]
    assert len(samples) == len(QUESTIONS)
    for sample in samples:
        response = sample["resps"][0][0]
        assert "<eot>" not in response
        assert response == _direct(sample["doc"]["question"])
    assert "exact_match,none" in results["results"]["daedal_tiny"]


def test_bridge_cuts_at_the_first_stop_string():
    from daedal.eval.lm_eval_bridge import DaedalLM

    assert DaedalLM._cut("abc<eot>def<x>", ["<x>", "<eot>"]) == "abc"
    assert DaedalLM._cut("abc", []) == "abc"
    assert DaedalLM._stops({"until": "END"}) == ["END"]
    lm = DaedalLM(model="fake", policy="llada-decoding:gen_length=8")
    assert lm.loglikelihood([]) == [] and lm.loglikelihood_rolling([]) == []


@pytest.mark.slow
def test_command_line_entry_registers_then_runs_lm_eval(task_dir, tmp_path, subprocess_env):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "daedal.eval.lm_eval_bridge",
            "--model",
            "daedal",
            "--model_args",
            MODEL_ARGS,
            "--tasks",
            "daedal_tiny",
            "--include_path",
            str(task_dir),
            "--device",
            "cpu",
            "--output_path",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "daedal_tiny" in out.stdout and "exact_match" in out.stdout
