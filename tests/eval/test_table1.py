"""`daedal eval paper`: the paper's grid on the bundled model and Table 1 (markdown, CSV, 300 dpi PNG)."""

from __future__ import annotations

import csv
import io
import json
import struct

import pytest

from daedal.eval.cli import main
from daedal.eval.report import table1_markdown
from daedal.eval.runner import load_manifest, read_records

GRID = ["--suite", "synthetic", "--model", "bundled", "--limit", "4", "--lengths", "16,32", "--no-progress"]
METHODS = ("fixed-16", "fixed-32", "daedal")


def _png_dpi(path) -> float:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at = data.index(b"pHYs")
    x, _y, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
    assert unit == 1  # pixels per metre
    return x * 0.0254


@pytest.fixture(scope="module")
def paper_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "table1"
    assert main(["paper", *GRID, "--output", str(out)]) == 0
    return out


def test_one_command_writes_table1_as_markdown_csv_and_a_300_dpi_figure(paper_dir):
    md = (paper_dir / "table1.md").read_text()
    head = md.splitlines()[0]
    assert head.startswith("| Method | synthetic Acc (%) | synthetic E_ratio (%) | Avg Acc (%) | Avg E_ratio (%)")
    assert "NFE / sample" in head and "wall s / sample" in head and "tokens / s" in head
    labels = [line.split("|")[1].strip() for line in md.splitlines()[2:5]]
    assert labels == ["Fixed L=16", "Fixed L=32", "DAEDAL"]
    assert "bundled; default mode (both methods); synthetic n=4" in md
    rows = list(csv.DictReader(io.StringIO((paper_dir / "table1.csv").read_text())))
    assert [r["method"] for r in rows] == list(METHODS)
    for row in rows:
        records = read_records(paper_dir / "synthetic" / row["method"] / "samples.jsonl")
        assert int(row["n"]) == len(records) == 4
        assert float(row["accuracy"]) == pytest.approx(100.0 * sum(r["correct"] for r in records) / 4)
        assert float(row["nfe_per_sample"]) == pytest.approx(sum(r["forward_passes"] for r in records) / 4)
        assert row["complete"] == "True"
    assert rows[0]["nfe_per_sample"] == "16.0" and rows[1]["nfe_per_sample"] == "32.0"  # steps = length
    assert _png_dpi(paper_dir / "table1.png") == pytest.approx(300, abs=0.5)


def test_both_methods_run_in_one_mode(paper_dir):
    for method in METHODS:
        manifest = load_manifest(paper_dir / "synthetic" / method)
        assert manifest["randomness"]["batch_dependent"] is False
        assert all(p["params"].get("reference_compat") in (None, False) for p in manifest["policies"])
    grid = json.loads((paper_dir / "paper.json").read_text())
    assert grid["reference_compat"] is False and grid["lengths"] == [16, 32]


def test_daedal_uses_the_checkpoints_recommended_settings(paper_dir):
    from daedal.models import bundled

    recommended = bundled.daedal_settings()
    params = {
        k: v for p in load_manifest(paper_dir / "synthetic" / "daedal")["policies"] for k, v in p["params"].items()
    }
    assert params["max_gen_length"] == recommended["max_gen_length"]
    assert params["initial_gen_length"] == recommended["initial_gen_length"]


def test_report_renders_table1_again_from_the_samples(paper_dir, capsys):
    before = (paper_dir / "table1.md").read_text()
    for name in ("table1.md", "table1.csv", "table1.png"):
        (paper_dir / name).unlink()
    assert main(["report", str(paper_dir)]) == 0
    assert (paper_dir / "table1.md").read_text() == before
    assert (paper_dir / "table1.png").is_file() and (paper_dir / "table1.csv").is_file()
    assert "Fixed L=32" in capsys.readouterr().out


def test_running_again_resumes_without_generating_and_a_mixed_grid_is_refused(paper_dir, capsys):
    samples = {m: (paper_dir / "synthetic" / m / "samples.jsonl").read_bytes() for m in METHODS}
    assert main(["paper", *GRID, "--output", str(paper_dir)]) == 0
    assert {m: (paper_dir / "synthetic" / m / "samples.jsonl").read_bytes() for m in METHODS} == samples
    capsys.readouterr()
    assert main(["paper", *GRID, "--reference-compat", "--output", str(paper_dir)]) == 2
    assert "describes another grid (reference_compat: false vs true)" in capsys.readouterr().err


def test_rescoring_a_cell_in_the_paper_protocol(paper_dir):
    assert main(["rescore", str(paper_dir / "synthetic" / "daedal")]) == 0
    assert main(["report", str(paper_dir)]) == 0


def test_the_average_column_is_the_mean_over_benchmarks_and_best_is_bold():
    def cell(acc, ratio, n=10):
        return {
            "accuracy": acc,
            "e_ratio": ratio,
            "n": n,
            "n_token": 50.0,
            "e_token": 25.0,
            "forward_passes": 20.0,
            "total_wall_time": 2.0,
            "tokens_per_s": 250.0,
            "complete": True,
        }

    paper = {
        "grid": {"model": {"model": "m"}, "reference_compat": True, "seed": 0, "batch_size": 8},
        "suites": ["gsm8k", "math500"],
        "methods": ["fixed-64", "daedal"],
        "cells": {
            ("fixed-64", "gsm8k"): cell(80.0, 30.0),
            ("fixed-64", "math500"): cell(30.0, 50.0),
            ("daedal", "gsm8k"): cell(85.0, 70.0),
            ("daedal", "math500"): {**cell(40.0, 60.0), "complete": False},
        },
    }
    lines = table1_markdown(paper).splitlines()
    fixed, daedal = (line.split(" | ") for line in lines[2:4])
    assert fixed[1:3] == ["80.0", "30.0"] and fixed[5:7] == ["55.00", "40.0"]
    assert daedal[1] == "**85.0**" and daedal[3] == "**40.0***" and daedal[5] == "62.50*"
    assert "reference_compat (both methods)" in lines[-1]
