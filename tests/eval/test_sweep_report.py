"""Sweeps: one resumable run per configuration, the markdown table and the PNG plot."""

from __future__ import annotations

import json

import pytest

from daedal.core import Engine, FixedLength
from daedal.core.errors import ConfigError
from daedal.core.testing import FakeAdapter
from daedal.eval.report import markdown_table, plot_sweep
from daedal.eval.suites.gsm8k import GSM8K
from daedal.eval.sweep import collect, sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows():
    def m(acc, n_token, e_ratio):
        return {
            "n": 4,
            "accuracy": acc,
            "n_token": n_token,
            "e_token": n_token * e_ratio / 100,
            "e_ratio": e_ratio,
            "forward_passes": n_token,
            "expansions": 0.0,
        }

    return [
        {"length": 64, "metrics": m(20.0, 64.0, 50.0)},
        {"length": 128, "metrics": m(40.0, 128.0, 30.0)},
        {"length": None, "metrics": m(45.0, 90.0, 80.0)},
    ]


def test_markdown_table_has_one_line_per_configuration_and_bolds_the_best():
    table = markdown_table(_rows(), suite="gsm8k")
    lines = table.strip().splitlines()
    assert lines[0].startswith("| gsm8k | Acc (%) | N_token | E_token | E_ratio (%)")
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| L=64 | 20.0 | 64.0 | 32.0 | 50.0 |")
    assert lines[4].startswith("| DAEDAL | **45.0** | 90.0 | 72.0 | 80.0 |")


def test_plot_is_a_png(tmp_path):
    path = plot_sweep(_rows(), tmp_path / "plots" / "sweep.png", title="gsm8k")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_sweep_runs_each_length_and_daedal_then_reports(tmp_path, gsm8k_path):
    engine = Engine(FakeAdapter(eos_bias=2.0))
    suite = GSM8K(path=gsm8k_path, limit=3)
    variable = [FixedLength(gen_length=20)]  # stands in for DAEDAL: any policy list works
    rows = sweep(
        engine,
        suite,
        tmp_path,
        lengths=[8, 16],
        daedal=variable,
        fixed_policies=lambda n: [FixedLength(gen_length=n)],
        progress=False,
    )
    assert [r["length"] for r in rows] == [8, 16, None]
    assert [r["metrics"]["n_token"] for r in rows] == [8.0, 16.0, 20.0]
    for name in ("fixed-8", "fixed-16", "daedal"):
        assert (tmp_path / name / "samples.jsonl").is_file()
    table = (tmp_path / "table.md").read_text()
    assert "| L=8 |" in table and "| L=16 |" in table and "| DAEDAL |" in table
    assert (tmp_path / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    assert json.loads((tmp_path / "sweep.json").read_text())[0]["length"] == 8
    # The report can be rebuilt from the directory alone.
    assert [r["length"] for r in collect(tmp_path)] == [8, 16, None]


def test_sweep_default_baseline_uses_llada_block_decoding(tmp_path, gsm8k_path):
    engine = Engine(FakeAdapter(eos_bias=2.0))
    rows = sweep(
        engine, GSM8K(path=gsm8k_path, limit=2), tmp_path, lengths=[64], block_length=32, daedal=None, progress=False
    )
    assert rows[0]["metrics"]["forward_passes"] == 64.0  # steps = length
    manifest = json.loads((tmp_path / "fixed-64" / "manifest.json").read_text())
    params = {k: v for p in manifest["policies"] for k, v in p["params"].items()}
    assert params["gen_length"] == 64 and params["block_length"] == 32 and params["steps"] == 64


def test_sweep_arguments_are_checked(tmp_path, gsm8k_path):
    engine = Engine(FakeAdapter())
    with pytest.raises(ConfigError, match="lengths"):
        sweep(engine, GSM8K(path=gsm8k_path, limit=1), tmp_path, lengths=[0], daedal=None, progress=False)
    with pytest.raises(ConfigError, match="nothing to sweep"):
        sweep(engine, GSM8K(path=gsm8k_path, limit=1), tmp_path, lengths=[], daedal=None, progress=False)
    with pytest.raises(ConfigError, match="no fixed"):
        collect(tmp_path / "empty")


def test_the_sweep_baseline_runs_in_reference_compat_mode_and_the_spec_spelling_works(tmp_path, gsm8k_path):
    from daedal.eval.build import build_policies

    engine = Engine(FakeAdapter(eos_bias=2.0))
    with pytest.warns(RuntimeWarning, match="reference_compat results depend on the scale-out"):
        sweep(
            engine,
            GSM8K(path=gsm8k_path, limit=2),
            tmp_path,
            lengths=[16],
            daedal=None,
            fixed_params={"reference_compat": True},
            progress=False,
        )
    manifest = json.loads((tmp_path / "fixed-16" / "manifest.json").read_text())
    assert [p["type"].rsplit(".", 1)[-1] for p in manifest["policies"]][0] == "LeftPaddedFixedLength"
    assert manifest["randomness"]["batch_dependent"] is True
    built = build_policies(["llada-decoding:gen_length=16,reference_compat=true"])
    assert built[0].reference_compat is True and built[0].gen_length == 16


def test_report_works_on_a_sweep_killed_before_its_summaries(tmp_path, gsm8k_path, capsys):
    from daedal.eval.cli import main

    engine = Engine(FakeAdapter(eos_bias=2.0))
    sweep(
        engine,
        GSM8K(path=gsm8k_path, limit=2),
        tmp_path,
        lengths=[8, 16],
        daedal=None,
        fixed_policies=lambda n: [FixedLength(gen_length=n)],
        progress=False,
    )
    (tmp_path / "fixed-16" / "summary.json").unlink()  # as if killed before it was written
    assert main(["report", str(tmp_path)]) == 0
    assert "| L=16 |" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "fixed-8")]) == 0
    assert "gsm8k: n=2" in capsys.readouterr().out
