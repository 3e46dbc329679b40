"""The shipped lm-eval tasks (daedal_gsm8k, ...): the paper's prompts and the suites' paper scoring."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

lm_eval = pytest.importorskip("lm_eval")

from daedal.eval.lm_eval_bridge import DaedalLM, main, tasks_dir  # noqa: E402
from daedal.eval.suites.gsm8k import GSM8K  # noqa: E402
from daedal.eval.suites.humaneval import HumanEval  # noqa: E402
from daedal.eval.suites.math500 import MATH500  # noqa: E402
from daedal.eval.suites.mbpp import MBPP  # noqa: E402
from tests.eval.eval_helpers import boxed_response, code_response  # noqa: E402

TASKS = ("daedal_gsm8k", "daedal_math500", "daedal_humaneval", "daedal_mbpp")


def _utils():
    spec = importlib.util.spec_from_file_location("daedal_task_utils", Path(tasks_dir()) / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_four_tasks_are_found_by_lm_evals_task_manager():
    from lm_eval.tasks import TaskManager

    assert set(TASKS) <= set(TaskManager(include_path=tasks_dir(), include_defaults=False).all_tasks)


def test_prompts_and_scores_are_the_suites_paper_protocol(gsm8k_docs, math500_docs, humaneval_docs, mbpp_path):
    utils = _utils()
    mbpp_docs = MBPP(path=mbpp_path).load()
    cases = [
        ("gsm8k", GSM8K(), gsm8k_docs[0], boxed_response("18"), boxed_response("19")),
        ("math500", MATH500(), math500_docs[0], boxed_response(math500_docs[0]["answer"]), boxed_response("nope")),
        (
            "humaneval",
            HumanEval(),
            humaneval_docs[0],
            code_response(humaneval_docs[0]["prompt"] + humaneval_docs[0]["canonical_solution"]),
            code_response("x = 1\n"),
        ),
        ("mbpp", MBPP(), mbpp_docs[0], code_response(mbpp_docs[0]["code"]), code_response("def f():\n    return 0\n")),
    ]
    assert GSM8K().target(gsm8k_docs[0]) == "18"
    for name, suite, doc, right, wrong in cases:
        assert getattr(utils, f"{name}_text")(doc) == suite.user_message(doc)
        assert getattr(utils, f"{name}_results")(doc, [right]) == {"acc": 1.0}, name
        assert getattr(utils, f"{name}_results")(doc, [wrong]) == {"acc": 0.0}, name
    assert all(s.protocol == "paper" for s in utils.SUITES.values())


def test_an_lm_eval_run_of_daedal_gsm8k_sends_the_paper_prompt(tmp_path, gsm8k_path):
    from lm_eval.tasks import TaskManager

    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(gsm8k_path.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    (tmp_path / "local.yaml").write_text(
        f"include: {Path(tasks_dir()) / 'daedal_gsm8k.yaml'}\ntask: daedal_gsm8k_local\ndataset_path: json\n"
        f"dataset_name: null\ndataset_kwargs:\n  data_files:\n    test: {data}\n",
        encoding="utf-8",
    )
    lm = DaedalLM(model="fake", policy="llada-decoding:gen_length=16;block_length=8")
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=["daedal_gsm8k_local"],
        task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
        log_samples=True,
    )
    assert out["results"]["daedal_gsm8k_local"]["acc,none"] == 0.0  # the fake model answers nonsense
    docs = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    prompts = [s["arguments"][0][0] for s in out["samples"]["daedal_gsm8k_local"]]
    assert sorted(prompts) == sorted(GSM8K().user_message(d) for d in docs)


def test_policy_daedal_uses_the_bundled_checkpoints_recommended_settings():
    from daedal.models import bundled

    recommended = bundled.daedal_settings()
    lm = DaedalLM(model="bundled", policy="daedal")
    lengths = [p for p in lm.engine.policies if hasattr(p, "max_gen_length")]
    assert lengths and all(p.max_gen_length == recommended["max_gen_length"] for p in lengths)
    assert any(getattr(p, "initial_gen_length", None) == recommended["initial_gen_length"] for p in lm.engine.policies)


def test_daedal_lm_eval_adds_the_tasks_unless_an_include_path_is_given(monkeypatch):
    seen = []
    monkeypatch.setattr("lm_eval.__main__.cli_evaluate", lambda: seen.append(list(sys.argv[1:])))
    main(["--model", "daedal", "--tasks", "daedal_gsm8k"])
    main(["--model", "daedal", "--include_path", "/somewhere"])
    assert seen[0][-2:] == ["--include_path", tasks_dir()]
    assert seen[1].count("--include_path") == 1 and "/somewhere" in seen[1]
