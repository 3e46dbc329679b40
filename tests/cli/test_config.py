"""Run configs: ``daedal generate --config FILE`` (YAML or JSON), ``--print-config``, schema errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daedal.core.errors import ConfigError
from daedal.models import bundled
from daedal.models.runconfig import (
    PolicySpec,
    format_policy_spec,
    load_config,
    parse_policy_spec,
    policy_specs_from_config,
)

FLAGS = ["--policy", "fixed-length:gen_length=24", "--policy", "threshold-unmask:threshold=0.9", "--seed", "4"]
PROMPTS = ["reverse: a b c", "add: 1 2 3"]

YAML = """\
# the same run as FLAGS
model: tiny
policies:
  - fixed-length:gen_length=24
  - threshold-unmask: {threshold: 0.9}
seed: 4
prompts:
  - "reverse: a b c"
  - "add: 1 2 3"
"""


def _run(cli, *argv: str) -> dict:
    code, out, err = cli("generate", "--json", *argv)
    assert code == 0, err
    report = json.loads(out)
    return {
        "policies": report["policies"],
        "seed": report["seed"],
        "results": [(r["prompt"], r["tokens"]) for r in report["results"]],
    }


def test_yaml_and_json_configs_give_the_run_of_the_flags(cli, tmp_path: Path) -> None:
    flags = _run(cli, "--model", "tiny", *FLAGS, *PROMPTS)
    (tmp_path / "run.yaml").write_text(YAML)
    (tmp_path / "run.json").write_text(
        json.dumps(
            {
                "model": "tiny",
                "policies": [{"name": "fixed-length", "params": {"gen_length": 24}}, "threshold-unmask:threshold=0.9"],
                "seed": 4,
                "prompts": PROMPTS,
            }
        )
    )
    assert _run(cli, "--config", str(tmp_path / "run.yaml")) == flags
    assert _run(cli, "--config", str(tmp_path / "run.json")) == flags
    assert flags["policies"][:2] == ["fixed-length:gen_length=24", "threshold-unmask:threshold=0.9"]


def test_flags_override_the_file(cli, tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(YAML)
    got = _run(cli, "--config", str(tmp_path / "run.yaml"), "--seed", "9", "--policy", "daedal", "sort: c a b")
    assert got["seed"] == 9  # --policy replaces the file's list; daedal starts from the recommended settings
    assert got["policies"] == [format_policy_spec(PolicySpec("daedal", bundled.daedal_settings()))]
    assert [p for p, _ in got["results"]] == ["sort: c a b"]


def test_print_config_round_trips(cli, tmp_path: Path) -> None:
    code, printed, err = cli(
        "generate", "--print-config", "--policy", "fixed-length:gen_length=16", "--dtype", "float32", "reverse: a b"
    )
    assert code == 0, err
    config = json.loads(printed)
    # what the command line amounts to, the filled-in decoder included
    assert config["policies"][0] == "fixed-length:gen_length=16" and len(config["policies"]) == 3
    assert config["dtype"] == "float32" and config["prompts"] == ["reverse: a b"]
    (tmp_path / "printed.json").write_text(printed)
    code, again, _ = cli("generate", "--config", str(tmp_path / "printed.json"), "--print-config")
    assert code == 0 and again == printed
    (tmp_path / "printed.yaml").write_text(printed)  # JSON is YAML too
    assert cli("generate", "--config", str(tmp_path / "printed.yaml"), "--print-config")[1] == printed


def test_a_json_result_reruns_to_the_same_samples(cli, tmp_path: Path) -> None:
    code, out, _ = cli(
        "generate", "--json", "--seed", "2", "--policy", "daedal:initial_gen_length=16", "repeat: x y", "sort: q e w"
    )
    first = json.loads(out)
    (tmp_path / "again.json").write_text(json.dumps(first["config"]))
    code, out, _ = cli("generate", "--json", "--config", str(tmp_path / "again.json"))
    second = json.loads(out)
    assert code == 0 and [r["tokens"] for r in second["results"]] == [r["tokens"] for r in first["results"]]


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.yaml", "model: tiny\nsed: 3\n", "bad.yaml:2: unknown key 'sed'; known keys: model, adapter, policies"),
        ("bad.json", '{\n  "model": "tiny",\n  "seeds": 3\n}\n', "bad.json:3: unknown key 'seeds'"),
        ("type.yaml", "seed: three\n", "type.yaml:1: key 'seed' is 'three'; it must be an integer"),
        ("item.yaml", "policies:\n  - daedal\n  - 7\n", "item.yaml:3: policies[1] is 7"),
        ("spec.yaml", "policies:\n  - 'fixed-length:gen_length'\n", "spec.yaml:2:"),
        ("list.yaml", "- a\n- b\n", "holds a mapping of keys"),
        ("broken.json", '{"model": "tiny",\n "seed": }\n', "broken.json:2: not valid JSON"),
        ("broken.yaml", "model: [tiny\nseed: 1\n", "not valid YAML"),
    ],
)
def test_schema_errors_name_the_key_and_the_line(cli, tmp_path: Path, name: str, text: str, needle: str) -> None:
    (tmp_path / name).write_text(text)
    code, out, err = cli("generate", "--config", str(tmp_path / name), "reverse: a")
    assert code == 2 and out == ""
    assert needle in err and "Traceback" not in err


def test_policy_specs_parse_and_format_back() -> None:
    spec = parse_policy_spec("fixed-length:gen_length=8,max_gen_length=48")
    assert spec == PolicySpec("fixed-length", {"gen_length": 8, "max_gen_length": 48})
    assert format_policy_spec(spec) == "fixed-length:gen_length=8,max_gen_length=48"
    odd = PolicySpec("suppress-tokens", {"token_ids": [1, 2], "label": "a,b", "on": True, "none": None})
    assert parse_policy_spec(format_policy_spec(odd)) == odd
    assert parse_policy_spec("daedal") == PolicySpec("daedal")
    assert parse_policy_spec("x:max-gen-length=3").params == {"max_gen_length": 3}
    with pytest.raises(ConfigError, match="given twice"):
        parse_policy_spec("x:a=1,a=2")


def test_the_loader_is_reusable_with_another_schema(tmp_path: Path) -> None:
    schema = {
        "suites": (lambda v: isinstance(v, list), "a list of suite names"),
        "policies": (lambda v: isinstance(v, list), "a list of policy specs"),
    }
    (tmp_path / "eval.yaml").write_text("suites: [synthetic]\npolicies:\n  - daedal:max_gen_length=64\n")
    config = load_config(tmp_path / "eval.yaml", schema)
    assert config.data["suites"] == ["synthetic"]
    assert policy_specs_from_config(config) == [PolicySpec("daedal", {"max_gen_length": 64})]
    (tmp_path / "eval.yaml").write_text("suites: synthetic\n")
    with pytest.raises(ConfigError, match=r"eval.yaml:1: key 'suites' is 'synthetic'; it must be a list of suite"):
        load_config(tmp_path / "eval.yaml", schema)


def test_assignments_read_like_set_values_and_name_the_option() -> None:
    from daedal.core.errors import ConfigError
    from daedal.models.runconfig import parse_assignments

    assert parse_assignments(["a=1", "b-c=x", "d=[1, 2]", "e=none"]) == {"a": 1, "b_c": "x", "d": [1, 2], "e": None}
    with pytest.raises(ConfigError, match=r"--suite-arg takes KEY=VALUE, got 'limit'.*--suite-arg n=5"):
        parse_assignments(["limit"], "--suite-arg", example="n=5")
    with pytest.raises(ConfigError, match="got '=3'"):
        parse_assignments(["=3"])
