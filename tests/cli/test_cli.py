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
from daedal.models.runconfig import PolicySpec, format_policy_spec, parse_policy_spec


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
    assert report["model"] == bundled.NAME
    # no --policy: the checkpoint's recommended settings, nothing filled in, nothing to warn about
    assert report["policies"] == [format_policy_spec(PolicySpec("daedal", bundled.daedal_settings()))]
    assert report["filled_in"] == [] and report["warnings"] == []
    for prompt, row in zip(prompts, report["results"], strict=False):
        assert row["prompt"] == prompt
        assert row["text"] == tasks.expected_answer(prompt)
        assert row["length"] == len(row["tokens"]) >= len(row["text"].split()) + 1
        assert "<|endoftext|>" in row["raw"]  # the raw generation keeps its EOS tail
        assert row["hit_max_length"] is False and row["unknown"] == []
    stats = report["stats"]
    assert stats["forward_passes"] >= stats["steps"] >= 1
    assert stats["model_calls"] == stats["forward_passes"]  # no guidance: one call per pass
    assert 0 < stats["effective_ratio"] < 1


def test_policy_and_parameters_from_the_command_line(cli) -> None:
    code, out, err = cli(
        "generate", "--json", "--policy", "fixed-length", "--set", "gen_length=16", "repeat: a b c d e f g h i j k"
    )
    assert code == 0, err
    report = json.loads(out)
    row = report["results"][0]
    assert row["length"] == 16  # a fixed canvas: the 22-token answer cannot fit
    assert not tasks.score("repeat", row["prompt"], row["text"])
    assert report["policies"][0] == "fixed-length:gen_length=16"  # --set went to the last --policy
    code, out, _ = cli(
        "generate", "--json", "--set", "initial_gen_length=16", "--set", "max_gen_length=48", "reverse: a b"
    )
    assert code == 0
    (spec,) = json.loads(out)["policies"]  # no --policy: --set adjusts the recommended policy
    assert parse_policy_spec(spec).params == {
        **bundled.daedal_settings(),
        "initial_gen_length": 16,
        "max_gen_length": 48,
    }


def test_policies_run_in_the_order_given_with_their_own_parameters(cli) -> None:
    first = ["--policy", "fixed-length:gen_length=20", "--policy", "daedal:initial_gen_length=8,max_gen_length=64"]
    code, out, err = cli("generate", "--json", *first, "reverse: a b c")
    assert code == 0, err
    report = json.loads(out)
    assert report["policies"][0] == "fixed-length:gen_length=20"
    # a recommended policy named on the command line starts from the recommended parameters
    assert parse_policy_spec(report["policies"][1]) == PolicySpec(
        "daedal", {**bundled.daedal_settings(), "initial_gen_length": 8, "max_gen_length": 64}
    )
    assert report["results"][0]["length"] == 20  # fixed-length answers initial_canvas first
    assert report["results"][0]["text"] == "c b a"
    swapped = [first[2], first[3], first[0], first[1]]
    code, out, err = cli("generate", "--json", *swapped, "reverse: a b c")
    assert code == 0, err
    assert json.loads(out)["results"][0]["length"] != 20  # now DAEDAL's stage 1 sizes the canvas


def test_missing_roles_are_filled_in_from_the_recommended_settings(cli) -> None:
    settings = bundled.daedal_settings()
    code, out, err = cli("generate", "--json", "--policy", "fixed-length:gen_length=16", "reverse: a b c")
    assert code == 0, err
    report = json.loads(out)
    filled = [parse_policy_spec(s) for s in report["filled_in"]]
    assert [s.name for s in filled] == ["block-pointer", "threshold-unmask"]  # the decoder, not the length
    assert filled[0].params == {"block_length": settings["block_length"]}
    assert filled[1].params == {"threshold": settings["high_conf_threshold"]}
    assert report["policies"][1:] == report["filled_in"] and report["results"][0]["length"] == 16
    # an expansion policy alone gets a length policy and a decoder, not a 128-slot canvas
    code, out, err = cli("generate", "--json", "--policy", "low-confidence-expand", "reverse: a b c")
    assert code == 0, err
    report = json.loads(out)
    names = [parse_policy_spec(s).name for s in report["filled_in"]]
    assert names[0] in ("daedal-stage1", "eos-confidence-length") and names[1:] == ["block-pointer", "threshold-unmask"]
    assert parse_policy_spec(report["filled_in"][0]).params["initial_gen_length"] == settings["initial_gen_length"]
    assert report["results"][0]["text"] == "c b a" and report["results"][0]["length"] < 128
    _, _, err = cli("generate", "--policy", "fixed-length:gen_length=16", "reverse: a b c")
    assert "note: fixed-length:gen_length=16 leaves roles open" in err and "block-pointer, threshold-unmask" in err


def test_truncation_is_warned_and_reported_in_json(cli) -> None:
    argv = ["--policy", "fixed-length:gen_length=8", "repeat: a b c d e f g h"]
    code, out, err = cli("generate", *argv)
    assert code == 0
    assert "warning: prompt 1 filled all 8 generation slots without an end-of-text token" in err
    code, out, err = cli("generate", "--json", *argv, "reverse: a b")
    report = json.loads(out)
    assert [r["hit_max_length"] for r in report["results"]] == [True, False]
    assert len(report["warnings"]) == 1 and "prompt 1 filled all 8" in report["warnings"][0]


def test_unknown_words_and_off_task_prompts_are_reported(cli) -> None:
    code, out, err = cli("generate", "--json", "reverse: a b foo")
    assert code == 0
    report = json.loads(out)
    assert report["results"][0]["unknown"] == ["foo"]
    assert any("does not know" in w and "'foo'" in w for w in report["warnings"])
    _, _, err = cli("generate", "sort: 3 1 2")
    assert "not one of the bundled model's tasks (sort takes distinct letters a-z)" in err


def test_seed_dtype_and_device_flags(cli) -> None:
    code, out, err = cli(
        "generate", "--json", "--seed", "3", "--dtype", "bfloat16", "--device", "cpu", "reverse: a b c"
    )
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
    assert steps == list(range(len(steps))) and len(steps) >= 2
    assert trace.of_kind("length-changed")  # DAEDAL sized the canvas before denoising

    code, out, err = cli("trace", "render", str(trace_path), "--html", str(page))
    assert code == 0, err
    inserted = sum(len(r) for e in trace.of_kind("step-finished") for r in e["expanded"])
    assert out == f"wrote {page} ({len(steps)} steps, {inserted} stage-2 insertion{'' if inserted == 1 else 's'})\n"
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script src" not in html and "<link" not in html
    data = json.loads(
        re.search(r'<script id="frames" type="application/json">(.*?)</script>', html, re.S)
        .group(1)
        .replace("<\\/", "</")
    )
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
    assert code == 0 and set(listing["adapters"]) == {"llada", "dream"}  # exactly what --adapter accepts
    assert {"tiny", "fake"} <= set(listing["python_only"])
    assert listing["bundled"] == {"tiny": str(bundled.path())}
    for name in listing["python_only"]:
        code, _, err = cli("generate", "--adapter", name, "reverse: a")
        assert code == 2 and "not an installed adapter" in err


def test_policy_parameters_are_listed_with_types_and_defaults(cli) -> None:
    code, out, _ = cli("policies", "fixed-length")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "fixed-length  (daedal.core.defaults:FixedLength)"
    assert "  gen_length: int = 128" in lines and "  max_gen_length: int | None = None" in lines
    code, out, _ = cli("policies", "--verbose", "--json")
    described = {d["name"]: d for d in json.loads(out)}
    assert set(described) == set(json.loads(cli("policies", "--json")[1]))
    daedal = {p["name"]: p for p in described["daedal"]["parameters"]}
    assert daedal["initial_gen_length"]["default"] == 64 and daedal["initial_gen_length"]["type"] == "int"
    assert daedal["high_conf_threshold"]["description"]
    code, _, err = cli("policies", "nope")
    assert code == 2 and "'nope': not an installed policy" in err


def test_version(cli) -> None:
    from importlib.metadata import version

    code, out, _ = cli("--version")
    assert code == 0 and out.startswith(f"daedal {version('daedal-models')} (daedal-core {version('daedal-core')}")


BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'transformers') or name.startswith('daedal.policies'):\n"
    "            raise ImportError(f'blocked import of {name}')\n"
    "sys.meta_path.insert(0, Block())\n"
    "from daedal.models.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "heavy = [m for m in sys.modules if m.startswith(('torch', 'transformers', 'daedal.core', 'daedal.eval'))]\n"
    "print('HEAVY', heavy, file=sys.stderr)\n"
    "raise SystemExit(code)\n"
)


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["policies"], ["policies", "--json"], ["models"], ["generate", "--help"]]
)
def test_help_and_listings_run_with_torch_blocked(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr and proc.stdout.strip()


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["generate", "--policy", "nope", "x"], 2, "'nope' is not an installed policy"),
        (["generate", "--set", "bogus=1", "reverse: a"], 2, "bogus"),
        (["generate", "--set", "initial_gen_length=-1", "reverse: a"], 2, "initial_gen_length"),
        (
            ["generate", "--set", "initial_gen_length", "reverse: a"],
            2,
            "--set takes KEY=VALUE, got 'initial_gen_length'",
        ),
        (["generate", "--model", "{tmp}/missing", "x"], 3, "no checkpoint directory"),
        (["generate", "--model", "{tmp}", "x"], 3, "without config.json"),
        (["generate", "--adapter", "nope", "x"], 2, "'nope' is not an installed adapter"),
        (["generate", "--dtype", "float9", "reverse: a"], 2, "dtype='float9'"),
        (["generate", "--device", "tpu", "reverse: a"], 2, "device='tpu'"),
        (["trace", "render", "{tmp}/none.jsonl", "--html", "{tmp}/o.html"], 2, "does not exist"),
        (["trace", "render", "{tmp}/garbage.jsonl", "--html", "{tmp}/o.html"], 2, "not a JSONL trace"),
        (["generate", ""], 2, "prompt 1 is empty"),
        (["generate", "reverse: a", "  "], 2, "prompt 2 is empty"),
        (["generate", "--trace", "{tmp}/no/such/dir/run.jsonl", "reverse: a"], 2, "does not exist; create it first"),
        (["trace", "render", "{tmp}/garbage.jsonl", "--html", "{tmp}/no/o.html"], 2, "does not exist; create it"),
        (["generate", "--policy", "fixed-length:gen_length", "x"], 2, "is not key=value"),
        (["generate", "--policy", ":gen_length=3", "x"], 2, "start with a policy name"),
        (["generate", "--config", "{tmp}/none.yaml", "x"], 2, "no such file"),
    ],
)
def test_errors_have_an_exit_code_and_no_traceback(cli, tmp_path: Path, argv, code, needle) -> None:
    (tmp_path / "garbage.jsonl").write_text("{not json\n")
    got, out, err = cli(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert got == code
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("daedal: error: ")
    assert needle in lines[0] and "Traceback" not in err
    assert not (tmp_path / "no").exists()  # nothing created on the way


def test_multi_line_errors_are_printed_whole(cli, monkeypatch) -> None:
    from daedal.core.errors import AdapterError
    from daedal.models.llada import LLaDA

    def offline(*args, **kwargs):
        raise AdapterError("cannot reach the hub for 'org/name'.\nSet HF_HUB_OFFLINE=0 or pass a local directory.")

    monkeypatch.setattr(LLaDA, "from_pretrained", classmethod(lambda cls, *a, **k: offline()))
    code, out, err = cli("generate", "--model", "org/name", "hello")
    assert code == 3 and out == ""
    first, second = err.splitlines()[-2:]
    assert first == "daedal: error: cannot reach the hub for 'org/name'."
    assert second.startswith("Set HF_HUB_OFFLINE=0 or pass a local directory.")  # the advice is not cut


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
    from daedal.models import cli as cli_module

    loaded: list[str] = []

    def register(subparsers: argparse._SubParsersAction) -> None:
        p = subparsers.add_parser("hello", help="say hello")
        p.add_argument("--name", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.name}") or 7)

    real_available, real_load = cli_module._available, cli_module._load_command

    def available(kind: str):
        found = dict(real_available(kind))
        if kind == "commands":
            found["hello"] = ("tests:register", "tests")
        return found

    def load(name: str):
        if name == "hello":
            loaded.append(name)
            return register
        return real_load(name)

    monkeypatch.setattr(cli_module, "_available", available)
    monkeypatch.setattr(cli_module, "_load_command", load)
    code, out, _ = cli("policies")
    assert code == 0 and loaded == []  # listing does not import plugin commands
    code, out, _ = cli("--help")
    assert code == 0 and "hello" in out and loaded == []  # the help names plugins without importing them
    code, out, _ = cli("hello", "--name", "daedal")
    assert (code, out) == (7, "hello daedal\n") and loaded == ["hello"]


def _in_a_terminal(argv: list[str]) -> str:
    """Run ``argv`` with a pseudo-terminal as stdout; its output without escape sequences."""
    import os
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.execvpe(argv[0], argv, {**os.environ, "COLUMNS": "200"})
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode("utf-8", "replace"))


def test_first_live_frame_is_drawn_before_torch_is_imported() -> None:
    """The initial canvas comes from the specs alone: with torch import-blocked it is on screen, then the error."""
    out = _in_a_terminal([sys.executable, "-c", BLOCK_TORCH, "generate", "--live", "reverse: a b c"])
    lines = out.splitlines()
    assert lines[0] == "loading tiny (cpu) ..."
    initial = bundled.daedal_settings()["initial_gen_length"]
    assert lines[1] == f"step - \u00b7 length {initial} \u00b7 forward passes 0 \u00b7 loading the model"
    assert lines[2] == "> reverse: a b c" and lines[3].split() == ["\u2591"] * initial
    assert "blocked import of" in out  # the run itself needed torch and failed after the frame


@pytest.mark.parametrize(
    ("options", "length"),
    [([], None), (["--set", "initial_gen_length=16"], 16), (["--policy", "fixed-length:gen_length=12"], 12)],
)
def test_first_live_frame_has_the_size_of_the_engines_first_canvas(options, length) -> None:
    from tests.cli.conftest import daedal_command

    out = _in_a_terminal([*daedal_command(), "generate", "--live", "--delay", "0", *options, "sort: c a b"])
    headers = [line for line in out.splitlines() if line.startswith("step ")]
    preview, first = headers[0], next(h for h in headers if "forward passes 0" not in h)
    length = length or bundled.daedal_settings()["initial_gen_length"]
    assert preview.startswith(f"step - \u00b7 length {length} \u00b7 forward passes 0")
    assert f"length {length} " in first or "sizing" in first  # the engine starts from the same canvas
    assert "a b c" in [line.strip() for line in out.splitlines()]  # the answer, after the frames


def test_no_preview_when_the_specs_leave_the_length_to_a_default() -> None:
    from daedal.models.viz.preview import initial_length

    rec = [PolicySpec("daedal", {"initial_gen_length": 8, "max_gen_length": 96})]
    assert initial_length([], rec) == 8
    assert initial_length([PolicySpec("daedal")], rec) == 8  # a recommended policy keeps its settings
    assert initial_length([PolicySpec("daedal", {"initial_gen_length": 24})], rec) == 24
    assert initial_length([PolicySpec("fixed-length")], rec) is None  # its default lives in torch code
    assert initial_length([PolicySpec("fixed-length", {"gen_length": 40})], rec) == 40
    assert initial_length([], [PolicySpec("daedal")]) is None  # a checkpoint without daedal.json


def test_live_view_starts_with_a_loading_line(cli) -> None:
    code, out, err = cli("generate", "--live", "--delay", "0", "reverse: a b")
    assert code == 0, err
    assert out.splitlines()[0] == "loading tiny (cpu) ..."  # shown before torch is even imported
    assert "step " in out and out.rstrip().endswith("b a")  # then the frames, then the answer
