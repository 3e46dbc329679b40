"""The ``daedal`` command line: generate, trace render, listings, errors, plugin commands."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from daedal.core.events import Trace
from daedal.models import bundled
from daedal.models.bundled import tasks


def test_generate_works_with_nothing_else_given(console_script) -> None:
    """The README command: bundled model, DAEDAL, CPU; not a terminal, so only the result."""
    proc = console_script("generate", "reverse: q w e r t y u i o p")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "p o i u y t r e w q\n"
    assert "Traceback" not in proc.stderr


def test_generate_json(cli) -> None:
    prompts = ["sort: e a d b", "repeat: x y z"]
    code, out, err = cli("generate", "--json", *prompts)
    assert code == 0, err
    report = json.loads(out)
    assert report["model"] == bundled.NAME and report["policy"] == "daedal"
    assert report["params"] == bundled.daedal_settings()  # the checkpoint's recommended settings
    for prompt, row in zip(prompts, report["results"], strict=False):
        assert row["prompt"] == prompt
        assert row["text"] == tasks.expected_answer(prompt)
        assert row["length"] == len(row["tokens"]) >= len(row["text"].split()) + 1
        assert "<|endoftext|>" in row["raw"]  # the raw generation keeps its EOS tail
    stats = report["stats"]
    assert stats["forward_passes"] >= stats["steps"] >= 1
    assert 0 < stats["effective_ratio"] < 1


def test_policy_and_parameters_from_the_command_line(cli) -> None:
    code, out, err = cli("generate", "--json", "--policy", "fixed-length", "--set", "gen_length=16",
                         "repeat: a b c d e f g h i j k")
    assert code == 0, err
    row = json.loads(out)["results"][0]
    assert row["length"] == 16  # a fixed canvas: the 22-token answer cannot fit
    assert not tasks.score("repeat", row["prompt"], row["text"])
    code, out, _ = cli("generate", "--json", "--set", "initial_gen_length=16", "--set", "max_gen_length=48",
                       "reverse: a b")
    assert code == 0 and json.loads(out)["params"]["initial_gen_length"] == 16


def test_seed_dtype_and_device_flags(cli) -> None:
    code, out, err = cli("generate", "--json", "--seed", "3", "--dtype", "bfloat16", "--device", "cpu", "reverse: a b c")
    assert code == 0, err
    report = json.loads(out)
    assert report["seed"] == 3 and report["results"][0]["text"] == "c b a"


def test_raw_output_keeps_end_tokens(cli) -> None:
    code, out, _ = cli("generate", "--raw", "reverse: a b")
    assert code == 0
    assert out.startswith("b a <|eot_id|>") and "<|endoftext|>" in out


def test_trace_is_written_and_rendered_with_every_step(cli, tmp_path: Path) -> None:
    trace_path, page = tmp_path / "run.jsonl", tmp_path / "out.html"
    code, out, err = cli("generate", "--trace", str(trace_path), "add: 1 2 3 4", "reverse: a b c")
    assert code == 0, err
    assert out.splitlines() == [tasks.expected_answer("add: 1 2 3 4"), "c b a"]
    trace = Trace.from_jsonl(trace_path)
    header = trace.events[0]
    assert header["kind"] == "vocabulary" and header["prompts"] == ["add: 1 2 3 4", "reverse: a b c"]
    steps = [e["step"] for e in trace.of_kind("step-finished")]
    assert steps == list(range(len(steps))) and len(steps) > 3
    assert trace.of_kind("length-changed")  # DAEDAL sized the canvas before denoising

    code, out, err = cli("trace", "render", str(trace_path), "--html", str(page))
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script src" not in html and "<link" not in html
    data = json.loads(re.search(r'<script id="frames" type="application/json">(.*?)</script>', html, re.S)
                      .group(1).replace("<\\/", "</"))
    frames = data["frames"]
    assert [f["step"] for f in frames if f["step"] >= 0] == steps  # every step, in order
    assert len(frames) == len(steps) + len(trace.of_kind("length-changed")) + len(trace.of_kind("canvas-initialized"))
    assert [f["label"] for f in frames if f["step"] >= 0] == [f"step {s + 1}" for s in steps]
    last = frames[-1]["rows"]
    assert " ".join(t for t, kind, _ in last[1] if kind != "eos") == "c b a"
    assert not any(kind in ("mask", "inserted") for row in last for _, kind, _ in row)
    for label in ("mask", "filled this step", "filled earlier", "inserted mask block", "end of text"):
        assert label in html
    for control in ('id="play"', 'id="prev"', 'id="next"', 'id="slider"'):
        assert control in html


def test_listing_commands(cli) -> None:
    code, out, _ = cli("policies")
    assert code == 0
    names = {line.split()[0] for line in out.splitlines()}
    assert {"daedal", "fixed-length"} <= names
    code, out, _ = cli("models", "--json")
    listing = json.loads(out)
    assert code == 0 and {"llada", "dream", "tiny"} <= set(listing["adapters"])
    assert listing["bundled"] == {"tiny": str(bundled.path())}


def test_listing_imports_no_policy_or_model_code() -> None:
    code = (
        "import sys\n"
        "from daedal.models.cli import main\n"
        "assert main(['policies']) == 0 and main(['models']) == 0\n"
        "heavy = [m for m in sys.modules if m.startswith(('daedal.policies.', 'daedal.models.llada',"
        " 'daedal.models.dream', 'daedal.eval', 'transformers'))]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["generate", "--policy", "nope", "x"], 2, "'nope' is not an installed policy"),
        (["generate", "--set", "bogus=1", "reverse: a"], 2, "bogus"),
        (["generate", "--set", "initial_gen_length=-1", "reverse: a"], 2, "initial_gen_length"),
        (["generate", "--set", "initial_gen_length", "reverse: a"], 2, "initial_gen_length"),
        (["generate", "--model", "{tmp}/missing", "x"], 3, "no checkpoint directory"),
        (["generate", "--model", "{tmp}", "x"], 3, "without config.json"),
        (["generate", "--adapter", "nope", "x"], 2, "'nope' is not an installed adapter"),
        (["generate", "--dtype", "float9", "reverse: a"], 2, "dtype='float9'"),
        (["generate", "--device", "tpu", "reverse: a"], 2, "device='tpu'"),
        (["trace", "render", "{tmp}/none.jsonl", "--html", "{tmp}/o.html"], 2, "does not exist"),
        (["trace", "render", "{tmp}/garbage.jsonl", "--html", "{tmp}/o.html"], 2, "not a JSONL trace"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(cli, tmp_path: Path, argv, code, needle) -> None:
    (tmp_path / "garbage.jsonl").write_text("{not json\n")
    got, out, err = cli(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert got == code
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("daedal: error: ")
    assert needle in lines[0] and "Traceback" not in err


def test_usage_errors(cli) -> None:
    assert cli()[0] == 2
    code, _, err = cli("generate")
    assert code == 2 and "PROMPT" in err
    assert cli("--help")[0] == 0
    assert cli("trace")[0] == 2


def test_missing_bundled_checkpoint_is_a_checkpoint_error(cli, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundled, "__file__", str(tmp_path / "__init__.py"))
    code, _, err = cli("generate", "reverse: a")
    assert code == 3 and "bundled checkpoint 'tiny' is missing" in err


def test_plugin_commands_are_discovered_and_loaded_lazily(cli, monkeypatch) -> None:
    from daedal.core import registry

    loaded: list[str] = []

    def register(subparsers: argparse._SubParsersAction) -> None:
        p = subparsers.add_parser("hello", help="say hello")
        p.add_argument("--name", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.name}") or 7)

    real_available, real_load = registry.available, registry.load

    def available(kind: str):
        found = dict(real_available(kind))
        if kind == "commands":
            found["hello"] = registry.Available("hello", "tests:register", "tests")
        return found

    def load(kind: str, name: str):
        if kind == "commands" and name == "hello":
            loaded.append(name)
            return register
        return real_load(kind, name)

    monkeypatch.setattr(registry, "available", available)
    monkeypatch.setattr(registry, "load", load)
    code, out, _ = cli("policies")
    assert code == 0 and loaded == []  # listing does not import plugin commands
    code, out, _ = cli("hello", "--name", "daedal")
    assert (code, out) == (7, "hello daedal\n") and loaded == ["hello"]
