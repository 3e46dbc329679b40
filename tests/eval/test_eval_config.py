"""Run configs of ``daedal eval run/sweep/paper``: ``--config`` files, ``--print-config``, manifests that rerun."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from daedal.eval.cli import main
from daedal.eval.runner import IDENTITY_KEYS, read_records
from tests.docs.conftest import DOCS, blocks

QUIET = ["--no-progress"]
#: A sampled run on the fake model, so that the seed and the model's weights show in the samples.
FLAGS = [
    "--suite",
    "synthetic",
    "--limit",
    "3",
    "--model",
    "fake",
    "--adapter-arg",
    "eos_bias=2.0",
    "--adapter-arg",
    "seed=3",
    "--policy",
    "llada-decoding:gen_length=8,block_length=8,temperature=1.0",
    "--seed",
    "5",
]
YAML = """\
# the run of FLAGS
command: run
suite: synthetic
limit: 3
model: fake
adapter_args: {eos_bias: 2.0, seed: 3}
policies:
  - llada-decoding: {gen_length: 8, block_length: 8, temperature: 1.0}
seed: 5
"""
JSON = {
    "suite": "synthetic",
    "limit": 3,
    "model": "fake",
    "adapter_args": {"eos_bias": 2.0, "seed": 3},
    "policies": [{"name": "llada-decoding", "params": {"gen_length": 8, "block_length": 8, "temperature": 1.0}}],
    "seed": 5,
}


def _samples(out: Path) -> list[tuple]:
    records = read_records(out / "samples.jsonl")
    return sorted((r["index"], r["text"], r["seed"]) for r in records)


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _run(*argv: str) -> None:
    assert main([*argv, *QUIET]) == 0


def _same_run(a: Path, b: Path) -> None:
    """Same samples, same identity (what resuming checks) and the same config but for the directory."""
    assert _samples(a) == _samples(b) and len(_samples(a)) >= 2
    ma, mb = _manifest(a), _manifest(b)
    assert {k: ma[k] for k in IDENTITY_KEYS} == {k: mb[k] for k in IDENTITY_KEYS}
    assert {**ma["config"], "output": None} == {**mb["config"], "output": None}


def test_yaml_and_json_configs_give_the_run_of_the_flags(tmp_path: Path) -> None:
    _run("run", *FLAGS, "--output", str(tmp_path / "flags"))
    (tmp_path / "run.yaml").write_text(YAML)
    (tmp_path / "run.json").write_text(json.dumps(JSON, indent=2))
    _run("run", "--config", str(tmp_path / "run.yaml"), "--output", str(tmp_path / "yaml"))
    _run("run", "--config", str(tmp_path / "run.json"), "--output", str(tmp_path / "json"))
    _same_run(tmp_path / "flags", tmp_path / "yaml")
    _same_run(tmp_path / "flags", tmp_path / "json")
    config = _manifest(tmp_path / "yaml")["config"]
    assert config["policies"] == ["llada-decoding:gen_length=8,block_length=8,temperature=1.0"]
    assert config["adapter_args"] == {"eos_bias": 2.0, "seed": 3} and config["seed"] == 5


def test_flags_override_the_file(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(YAML)
    _run("run", "--config", str(tmp_path / "run.yaml"), "--output", str(tmp_path / "file"))
    _run(
        "run",
        "--config",
        str(tmp_path / "run.yaml"),
        "--seed",
        "6",
        "--adapter-arg",
        "seed=4",
        "--output",
        str(tmp_path / "flags"),
    )
    file, flags = _manifest(tmp_path / "file"), _manifest(tmp_path / "flags")
    assert (file["seed"], flags["seed"]) == (5, 6)
    # KEY=VALUE flags go over the file's mapping key by key
    assert flags["model"]["params"] == flags["config"]["adapter_args"] == {"eos_bias": 2.0, "seed": 4}
    assert _samples(tmp_path / "file") != _samples(tmp_path / "flags")
    # --policy replaces the file's list
    _run("run", "--config", str(tmp_path / "run.yaml"), "--policy", "llada-decoding:gen_length=4,block_length=4",
         "--output", str(tmp_path / "policy"))  # fmt: skip
    assert _manifest(tmp_path / "policy")["config"]["policies"] == ["llada-decoding:gen_length=4,block_length=4"]
    assert {r["gen_length"] for r in read_records(tmp_path / "policy" / "samples.jsonl")} == {4}


def test_print_config_round_trips_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "printed-run"
    assert main(["run", "--print-config", *FLAGS, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert not out.exists()
    config = json.loads(printed)
    assert config["command"] == "run" and config["seed"] == 5 and config["output"] == str(out)
    for name in ("printed.json", "printed.yaml"):  # JSON is YAML too
        (tmp_path / name).write_text(printed)
        assert main(["run", "--config", str(tmp_path / name), "--print-config"]) == 0
        assert capsys.readouterr().out == printed
    # and the printed config is the run of the command line
    _run("run", *FLAGS, "--output", str(tmp_path / "flags"))
    _run("run", "--config", str(tmp_path / "printed.json"))
    _same_run(tmp_path / "flags", out)


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "--suite", "synthetic", "--model", "fake", "--lengths", "8,16", "--reference-compat",
         "--daedal", "daedal:initial_gen_length=8", "--block-length", "8", "--output", "s"],
        ["paper", "--suite", "synthetic", "--suite", "gsm8k", "--data", "gsm8k=gsm8k.jsonl", "--model", "fake",
         "--daedal-arg", "initial_gen_length=16", "--temperature", "0.5", "--limit", "2", "--output", "p"],
    ],
    ids=["sweep", "paper"],
)  # fmt: skip
def test_print_config_round_trips_for_grids(argv: list[str], tmp_path: Path, capsys) -> None:
    assert main([argv[0], "--print-config", *argv[1:]]) == 0
    printed = capsys.readouterr().out
    config = json.loads(printed)
    assert config["command"] == argv[0] and config["output"] == argv[-1]
    (tmp_path / "grid.yaml").write_text(printed)
    assert main([argv[0], "--config", str(tmp_path / "grid.yaml"), "--print-config"]) == 0
    assert capsys.readouterr().out == printed
    if argv[0] == "sweep":
        assert config["lengths"] == [8, 16] and config["daedal"] == "daedal:reference_compat=true,initial_gen_length=8"
        # the mapping form of the one spec
        text = "command: sweep\nsuite: synthetic\nmodel: fake\nlengths: [8, 16]\nreference_compat: true\n"
        text += "daedal: {daedal: {initial_gen_length: 8}}\nblock_length: 8\noutput: s\n"
        (tmp_path / "mapping.yaml").write_text(text)
        assert main(["sweep", "--config", str(tmp_path / "mapping.yaml"), "--print-config"]) == 0
        assert capsys.readouterr().out == printed
    else:
        assert config["suites"] == ["synthetic", "gsm8k"] and config["data"] == {"gsm8k": "gsm8k.jsonl"}
        assert config["daedal_args"] == {"initial_gen_length": 16} and config["temperature"] == 0.5


def test_print_config_completes_daedal_from_the_checkpoint(tmp_path: Path, capsys, monkeypatch) -> None:
    from daedal.eval import build
    from daedal.models import bundled

    assert main(["run", "--print-config", "--suite", "synthetic", "--model", "bundled", "--output", "o"]) == 0
    printed = capsys.readouterr().out
    (spec,) = json.loads(printed)["policies"]
    name, _, params = spec.partition(":")
    settings = bundled.daedal_settings()
    assert name == "daedal" and settings and all(f"{k}=" in params for k in settings)
    # the printed config keeps those settings when the checkpoint's change
    (tmp_path / "printed.json").write_text(printed)
    changed = {k: (v * 2 if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in settings.items()}
    monkeypatch.setattr(build, "model_daedal_defaults", lambda model: dict(changed))
    assert main(["run", "--config", str(tmp_path / "printed.json"), "--print-config"]) == 0
    assert capsys.readouterr().out == printed
    assert main(["run", "--print-config", "--suite", "synthetic", "--model", "bundled", "--output", "o"]) == 0
    assert capsys.readouterr().out != printed  # while a bare command line follows the checkpoint


def test_a_manifest_reruns_its_run(tmp_path: Path, capsys) -> None:
    first = tmp_path / "first"
    _run("run", "--suite", "synthetic", "--model", "bundled", "--limit", "4", "--output", str(first))
    capsys.readouterr()
    _run("run", "--config", str(first / "manifest.json"), "--output", str(tmp_path / "again"))
    _same_run(first, tmp_path / "again")
    assert _manifest(tmp_path / "again")["config"]["output"] == str(tmp_path / "again")
    # the run directory itself is a config too: it reruns into itself (even moved), which has every sample
    moved = tmp_path / "moved"
    first.rename(moved)
    lines = (moved / "samples.jsonl").read_text()
    _run("run", "--config", str(moved))
    assert "synthetic: n=4" in capsys.readouterr().out and (moved / "samples.jsonl").read_text() == lines
    assert not first.exists()


def test_the_cells_of_a_sweep_and_a_grid_rerun_alone(tmp_path: Path) -> None:
    model = ["--model", "fake", "--adapter-arg", "eos_bias=2.0", "--limit", "2", "--suite", "synthetic"]
    _run("sweep", *model, "--lengths", "8", "--block-length", "4", "--daedal", "llada-decoding:gen_length=12,block_length=4,temperature=1.0",
         "--output", str(tmp_path / "sweep"))  # fmt: skip
    for cell in ("fixed-8", "daedal"):
        _run("run", "--config", str(tmp_path / "sweep" / cell), "--output", str(tmp_path / f"sweep-{cell}"))
        _same_run(tmp_path / "sweep" / cell, tmp_path / f"sweep-{cell}")
    assert _manifest(tmp_path / "sweep" / "fixed-8")["config"]["policies"] == [
        "llada-decoding:gen_length=8,steps=8,block_length=4"
    ]
    # the sweep directory holds the sweep's config: the whole sweep reruns from it
    _run("sweep", "--config", str(tmp_path / "sweep"), "--output", str(tmp_path / "sweep2"))
    for cell in ("fixed-8", "daedal"):
        _same_run(tmp_path / "sweep" / cell, tmp_path / "sweep2" / cell)
    small = ["--daedal-arg", "initial_gen_length=8", "--daedal-arg", "max_gen_length=16"]
    _run("paper", *model, "--lengths", "8", *small, "--temperature", "1.0", "--output", str(tmp_path / "paper"))
    cell = tmp_path / "paper" / "synthetic" / "daedal"
    _run("run", "--config", str(cell / "manifest.json"), "--output", str(tmp_path / "paper-daedal"))
    _same_run(cell, tmp_path / "paper-daedal")
    # paper.json holds the grid's config: the whole grid reruns from it
    _run("paper", "--config", str(tmp_path / "paper" / "paper.json"), "--output", str(tmp_path / "paper2"))
    for method in ("fixed-8", "daedal"):
        _same_run(tmp_path / "paper" / "synthetic" / method, tmp_path / "paper2" / "synthetic" / method)


@pytest.mark.parametrize(
    ("command", "name", "text", "needle"),
    [
        ("run", "bad.yaml", "suite: synthetic\nmodel: fake\nsed: 3\n", "bad.yaml:3: unknown key 'sed'; known keys: command, suite"),
        ("run", "bad.json", '{\n  "suite": "synthetic",\n  "seeds": 3\n}\n', "bad.json:3: unknown key 'seeds'"),
        ("sweep", "grid.yaml", "model: fake\nlenghts: [8]\n", "grid.yaml:2: unknown key 'lenghts'"),
        ("paper", "paper.yaml", "suite: gsm8k\n", "paper.yaml:1: unknown key 'suite'; known keys: command, suites"),
        ("run", "type.yaml", "limit: three\n", "type.yaml:1: key 'limit' is 'three'; it must be a positive integer"),
        ("run", "item.yaml", "policies:\n  - daedal\n  - 7\n", "item.yaml:3: policies[1] is 7"),
        ("run", "other.yaml", "command: sweep\nlengths: [8]\n", "other.yaml:1: this is a config of 'daedal eval sweep'"),
        ("sweep", "spec.yaml", "daedal: 'daedal:initial_gen_length'\n", "spec.yaml:1:"),
        ("run", "safety.yaml", "model: fake\noverwrite: true\n", "safety.yaml:2: unknown key 'overwrite'"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key_and_the_line(command, name, text, needle, tmp_path: Path, capsys) -> None:
    (tmp_path / name).write_text(text)
    code = main([command, "--config", str(tmp_path / name), "--output", str(tmp_path / "out"), *QUIET])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert needle in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()


def test_a_misspelt_key_in_a_manifest_names_its_line(tmp_path: Path, capsys) -> None:
    _run("run", *FLAGS, "--output", str(tmp_path / "run"))
    path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"] = {"sed" if k == "seed" else k: v for k, v in manifest["config"].items()}
    path.write_text(json.dumps(manifest, indent=2))
    line = next(n for n, row in enumerate(path.read_text().splitlines(), 1) if '"sed":' in row)
    capsys.readouterr()
    assert main(["run", "--config", str(path)]) == 2
    assert f"manifest.json:{line}: unknown key 'sed'" in capsys.readouterr().err


def test_a_manifest_without_a_config_says_so(tmp_path: Path, capsys) -> None:
    _run("run", *FLAGS, "--output", str(tmp_path / "run"))
    path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["config"]
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["run", "--config", str(tmp_path / "run")]) == 2
    assert "is a run manifest without a 'config' key" in capsys.readouterr().err


def test_required_values_come_from_the_flags_or_the_file(tmp_path: Path, capsys) -> None:
    assert main(["run", "--suite", "synthetic", "--output", str(tmp_path)]) == 2
    assert "--model is missing: pass --model MODEL or put 'model' in the --config file" in capsys.readouterr().err


def _documented_example() -> tuple[str, list[str]]:
    """The example config of docs/reference/cli.md and the command line the page says it equals."""
    page = DOCS / "reference" / "cli.md"
    found = blocks(page)
    i = next(i for i, b in enumerate(found) if b.title == "eval.yaml")
    command = next(b for b in found[i + 1 :] if b.lang == "bash").code.strip()
    argv = shlex.split(command)
    assert argv[:3] == ["daedal", "eval", "run"], command
    return found[i].code, argv[3:]


def test_the_documented_example_config_is_the_documented_command_line(tmp_path: Path) -> None:
    text, argv = _documented_example()
    (tmp_path / "eval.yaml").write_text(text)
    _run("run", "--config", str(tmp_path / "eval.yaml"), "--output", str(tmp_path / "file"))
    _run("run", *argv, "--output", str(tmp_path / "flags"))
    _same_run(tmp_path / "file", tmp_path / "flags")


def test_the_documented_config_error_is_the_real_one(tmp_path: Path, capsys) -> None:
    text, _ = _documented_example()
    (tmp_path / "eval.yaml").write_text(text.replace("limit:", "limt:"))
    assert main(["run", "--config", str(tmp_path / "eval.yaml")]) == 2
    error = capsys.readouterr().err.replace(str(tmp_path) + "/", "")
    head = error[: error.index("data, ") + len("data, ")]
    assert head == "daedal eval: error: eval.yaml:4: unknown key 'limt'; known keys: command, suite, data, "
    page = " ".join((DOCS / "reference" / "cli.md").read_text().split())
    assert f"`{head}...`" in page


def test_ppl_takes_configs_too(tmp_path: Path, capsys) -> None:
    text = tmp_path / "docs.txt"
    text.write_text("reverse: a b c\n\nsort: c a b\n")
    argv = ["--data", str(text), "--model", "fake", "--mc-num", "8", "--batch-size", "4", "--seed", "2"]
    assert main(["ppl", "--print-config", *argv, "--output", str(tmp_path / "flags")]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed)["mc_num"] == 8 and json.loads(printed)["chat_template"] is True
    (tmp_path / "ppl.yaml").write_text(printed)
    assert main(["ppl", "--config", str(tmp_path / "ppl.yaml"), "--print-config"]) == 0
    assert capsys.readouterr().out == printed
    _run("ppl", "--config", str(tmp_path / "ppl.yaml"))  # into tmp/flags, from the printed config

    def scores(out: Path) -> list[tuple]:
        return [(r["index"], r["tokens"], r["log_likelihood"]) for r in read_records(out / "samples.jsonl")]

    assert _manifest(tmp_path / "flags")["config"] == json.loads(printed)
    _run("ppl", "--config", str(tmp_path / "flags"), "--output", str(tmp_path / "again"))
    assert scores(tmp_path / "again") == scores(tmp_path / "flags") and len(scores(tmp_path / "flags")) == 2
    _run("ppl", "--config", str(tmp_path / "flags"), "--seed", "3", "--output", str(tmp_path / "seed3"))
    assert scores(tmp_path / "seed3") != scores(tmp_path / "flags")  # the flag over the manifest
    (tmp_path / "bad.yaml").write_text("data: x.txt\nmc_nmu: 8\n")
    assert main(["ppl", "--config", str(tmp_path / "bad.yaml"), "--model", "fake", "--output", "o"]) == 2
    assert "bad.yaml:2: unknown key 'mc_nmu'" in capsys.readouterr().err
