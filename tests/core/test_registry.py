"""Entry-point discovery: listing imports nothing; unknown names list what is available."""

from __future__ import annotations

import subprocess
import sys

import pytest

from daedal.core import ConfigError, PolicyNotFoundError, registry
from daedal.core.defaults import FixedLength


def test_core_registers_its_defaults():
    names = registry.available("policies")
    assert {"fixed-length", "semi-autoregressive", "gumbel-temperature"} <= set(names)
    assert names["fixed-length"].target == "daedal.core.defaults:FixedLength"
    assert names["fixed-length"].distribution == "daedal-core"


def test_create_builds_a_policy_by_name():
    assert registry.create("policies", "fixed-length", {"gen_length": 7}) == FixedLength(gen_length=7)


def test_unknown_name_lists_available():
    with pytest.raises(PolicyNotFoundError, match="available: .*fixed-length"):
        registry.load("policies", "no-such-policy")


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(
        ConfigError,
        match=r"policy 'fixed-length' has no parameter\(s\) \['gen_lenght'\]; valid: \['gen_length', 'max_gen_length'\]",
    ):
        registry.create("policies", "fixed-length", {"gen_lenght": 7})


def test_unknown_kind():
    with pytest.raises(ConfigError, match="kind"):
        registry.available("widgets")


def test_parse_assignments():
    assert registry.parse_assignments(["a=1", "b=0.5", "c=true", "d=x y", "e=[1,2]", "max-len=3"]) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": "x y",
        "e": [1, 2],
        "max_len": 3,
    }
    with pytest.raises(ConfigError, match="key=value"):
        registry.parse_assignments(["novalue"])


def test_listing_imports_no_plugin_module():
    code = (
        "import sys\nfrom daedal.core import registry\n"
        "for kind in ('policies', 'adapters', 'suites'): registry.available(kind)\n"
        "heavy = [m for m in sys.modules if m.startswith(('daedal.policies', 'daedal.models', 'daedal.eval', 'transformers'))]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_installed_distributions_are_scanned_once_per_sys_path(monkeypatch, tmp_path):
    from importlib import metadata

    scans: list[int] = []
    real = metadata.entry_points

    def counting(**kwargs):
        scans.append(1)
        return real(**kwargs)

    monkeypatch.setattr(registry.metadata, "entry_points", counting)
    monkeypatch.setattr(registry, "_SCAN", None)
    for _ in range(5):
        registry.available("policies")
        registry.load("policies", "fixed-length")
    assert len(scans) == 1, "listing and loading must reuse one scan"

    site = tmp_path / "site"
    info = site / "extra-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[daedal.policies]\nextra-policy = extra_mod:Extra\n")
    monkeypatch.syspath_prepend(str(site))
    assert "extra-policy" in registry.available("policies"), "a path added at run time is rescanned"
    assert len(scans) == 2
