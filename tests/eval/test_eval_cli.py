"""``daedal eval`` / ``python -m daedal.eval``: commands, exit codes, error messages."""

from __future__ import annotations

import argparse
import json
from importlib import metadata

import pytest

from daedal.eval.cli import build_parser, main, register

FAKE = ["--model", "fake", "--adapter-arg", "eos_bias=2.0", "--no-progress"]


def _run_args(gsm8k_path, out, *extra):
    return [
        "run",
        "--suite",
        "gsm8k",
        "--data",
        str(gsm8k_path),
        "--limit",
        "3",
        *FAKE,
        "--policy",
        "llada-decoding:gen_length=16",
        "--output",
        str(out),
        *extra,
    ]


def test_run_then_rescore(tmp_path, gsm8k_path, capsys):
    assert main(_run_args(gsm8k_path, tmp_path)) == 0
    printed = capsys.readouterr().out
    assert "gsm8k: n=3 accuracy=0.00%" in printed and "N_token=16.0" in printed
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 3
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["model"]["model"] == "fake" and manifest["model"]["params"] == {"eos_bias": 2.0}
    assert main(["rescore", str(tmp_path)]) == 0
    assert "n=3" in capsys.readouterr().out


def test_sweep_and_report(tmp_path, gsm8k_path, capsys):
    args = [
        "sweep",
        "--suite",
        "gsm8k",
        "--data",
        str(gsm8k_path),
        "--limit",
        "2",
        *FAKE,
        "--lengths",
        "8,16",
        "--block-length",
        "8",
        "--daedal",
        "llada-decoding:gen_length=24",
        "--output",
        str(tmp_path),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| L=8 |" in out and "| L=16 |" in out and "| DAEDAL |" in out
    assert (tmp_path / "sweep.png").is_file() and (tmp_path / "table.md").is_file()
    (tmp_path / "table.md").unlink()
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "table.md").is_file()


def test_errors_are_one_line_with_exit_code_2(tmp_path, gsm8k_path, capsys):
    assert main(["run", "--suite", "nope", *FAKE, "--output", str(tmp_path)]) == 2
    assert "no suites named 'nope'" in capsys.readouterr().err
    assert main(_run_args(gsm8k_path, tmp_path, "--policy", "no-such-policy")) == 2
    assert "no policy named 'no-such-policy'" in capsys.readouterr().err
    assert main(["rescore", str(tmp_path / "missing")]) == 2
    assert "manifest.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sweep", "--suite", "gsm8k", "--model", "fake", "--output", "x", "--lengths", "a,b"])


def test_suites_lists_the_installed_suites(capsys):
    assert main(["suites"]) == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert {"gsm8k", "math500", "humaneval", "mbpp", "synthetic"} <= set(names)


def test_register_adds_eval_to_a_host_parser(tmp_path, gsm8k_path):
    host = argparse.ArgumentParser(prog="daedal")
    register(host.add_subparsers(dest="command"))
    args = host.parse_args(["eval", *_run_args(gsm8k_path, tmp_path)])
    assert args.func(args) == 0
    assert (tmp_path / "summary.json").is_file()


def test_eval_is_advertised_in_the_commands_group():
    found = {ep.name: ep.value for ep in metadata.entry_points(group="daedal.commands")}
    assert found.get("eval") == "daedal.eval.cli:register"


def test_the_daedal_script_runs_eval(capsys):
    cli = pytest.importorskip("daedal.models.cli")
    assert cli.main(["eval", "suites"]) == 0
    assert "gsm8k" in capsys.readouterr().out
