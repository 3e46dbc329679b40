"""The quality command on a small subset: DAEDAL's lengths track the answers; short fixed canvases truncate."""

from __future__ import annotations

import json

import pytest

from daedal.models import bundled
from daedal.models.bundled import quality, tasks


@pytest.fixture(scope="module")
def report() -> dict:
    data = tasks.heldout_set(6, seed=1234)
    methods = [quality.daedal_method(), quality.fixed_method(16)]
    return quality.evaluate(bundled.load(), methods, data, batch_size=6)


def test_daedal_final_lengths_track_answer_lengths(report: dict) -> None:
    examples = report["methods"]["daedal"]["examples"]
    assert len(examples) == 6 * len(tasks.FAMILIES)
    for e in examples:
        assert e["length"] >= e["answer_tokens"] + 1 or not e["correct"]
    for family in tasks.FAMILIES:
        rows = sorted((e for e in examples if e["family"] == family), key=lambda e: e["size"])
        # the largest answers get much longer canvases than the smallest ones
        assert rows[-1]["length"] - rows[0]["length"] >= (rows[-1]["answer_tokens"] - rows[0]["answer_tokens"]) // 2
        # and nobody got a canvas far beyond the answer (DAEDAL grows only as needed)
        assert all(e["length"] <= e["answer_tokens"] + 40 for e in rows)
    assert report["methods"]["daedal"]["accuracy"]["overall"] >= 0.6


def test_too_short_fixed_canvas_truncates(report: dict) -> None:
    examples = report["methods"]["fixed-16"]["examples"]
    long = [e for e in examples if e["answer_tokens"] >= 16]
    assert len(long) >= 8
    assert all(e["length"] == 16 and not e["correct"] for e in long)
    daedal = report["methods"]["daedal"]["examples"]
    long_ok = [d["correct"] for d, e in zip(daedal, examples, strict=False) if e["answer_tokens"] >= 16]
    assert sum(long_ok) >= len(long_ok) // 2  # where a 16-slot canvas must fail, DAEDAL mostly succeeds


def test_daedal_uses_fewer_forward_passes_than_a_fitting_fixed_canvas(report: dict) -> None:
    # a fixed canvas that fits every answer needs >= 64 passes (one token per step) per prompt
    assert report["methods"]["daedal"]["forward_passes"] < 48


def test_quality_command_prints_the_table_and_json(capsys) -> None:
    assert quality.main(["--per-family", "1", "--fixed", "16", "--families", "reverse,add"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for column in ("method", "reverse", "add", "overall", "NFE / prompt", "eff. ratio", "wall s"):
        assert column in header
    assert "| daedal |" in out and "| fixed-16 |" in out
    assert quality.main(["--per-family", "1", "--fixed", "", "--families", "sort", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["methods"]) == ["daedal"] and data["n"] == 1
    assert data["settings"] == bundled.daedal_settings()


def test_variant_rows_and_their_errors(capsys) -> None:
    argv = ["--per-family", "1", "--fixed", "", "--families", "repeat", "--json"]
    assert quality.main([*argv, "--variant", "capped:initial_gen_length=4,max_gen_length=6"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["methods"]) == ["daedal", "capped"]
    assert all("insertions" in m for m in data["methods"].values())
    assert [e["length"] for e in data["methods"]["capped"]["examples"]] == [6]  # the overrides applied
    assert data["methods"]["daedal"]["examples"][0]["length"] > 6
    with pytest.raises(SystemExit, match="NAME:KEY=VALUE"):
        quality.main([*argv, "--variant", "initial_gen_length=16"])
    with pytest.raises(ValueError, match="initial_gen_length"):  # validated before any run
        quality.main([*argv, "--variant", "bad:initial_gen_length=-1"])
