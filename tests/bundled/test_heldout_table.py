"""The model card's held-out accuracy is what the shipped checkpoint scores (recomputed; slow)."""

from __future__ import annotations

import re

import pytest

from daedal.models import bundled
from daedal.models.bundled import quality, tasks

CARD = bundled.path() / "README.md"


def _card_row(method: str) -> dict[str, float]:
    """The accuracy cells of one method's row in the card's quality table."""
    text = CARD.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| method |"))
    row = next(line for line in text.splitlines() if line.startswith(f"| {method} |"))
    names = [c.strip() for c in header.strip("|").split("|")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    return {n: float(c) for n, c in zip(names, cells, strict=False) if n in (*tasks.FAMILIES, "overall")}


def _card_sizes() -> dict[str, list[str]]:
    """The card's accuracy-by-size table: family -> its cells."""
    text = CARD.read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        m = re.match(r"\| (reverse|sort|repeat|add) \| (.*) \|$", line)
        if m and "%" in line:
            out[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return out


@pytest.mark.slow
def test_the_cards_daedal_row_and_size_table_are_recomputed() -> None:
    data = tasks.heldout_set(50, seed=1234)
    report = quality.evaluate(bundled.load(dtype="float32"), [quality.daedal_method()], data)
    got = report["methods"]["daedal"]["accuracy"]
    card = _card_row("daedal")
    assert {k: round(100 * v, 1) for k, v in got.items()} == card
    expected_sizes = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]]
        for line in quality.format_size_table(report).splitlines()[2:]
    }
    assert expected_sizes == _card_sizes()


def test_the_card_table_is_readable() -> None:
    """Cheap guard for the slow test: the card has both tables, one cell per family and size range."""
    assert set(_card_row("daedal")) == {*tasks.FAMILIES, "overall"}
    sizes = _card_sizes()
    assert set(sizes) == set(tasks.FAMILIES) and all(len(cells) == 4 for cells in sizes.values())
