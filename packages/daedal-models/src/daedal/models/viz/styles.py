"""Colours and legend of the live view, importable without torch (the start-up preview uses them)."""

from __future__ import annotations

from typing import Any

__all__ = ["LEGEND", "MASK_GLYPH", "STYLES", "confidence_style", "legend"]

STYLES: dict[str, str] = {
    "mask": "grey50",
    "new": "bold black on #7ee787",
    "inserted": "bold white on #a371f7",
    "eos": "grey39",
}

LEGEND: dict[str, str] = {
    "mask": "mask",
    "new": "filled this step",
    "old": "filled earlier (shade = confidence)",
    "inserted": "inserted mask block",
    "eos": "end of text",
}
"""The cell kinds a frame draws, with their legend labels (the HTML page uses the same)."""

MASK_GLYPH = "\u2591"
"""How a mask (or an inserted mask) is drawn."""


def confidence_style(confidence: float | None) -> str:
    """Earlier tokens: pale (low confidence) to deep blue (high confidence)."""
    p = 1.0 if confidence is None else min(1.0, max(0.0, confidence))
    lo, hi = (190, 200, 215), (31, 111, 235)
    r, g, b = (round(a + (z - a) * p) for a, z in zip(lo, hi, strict=False))
    return f"bold #{r:02x}{g:02x}{b:02x}"


def legend() -> Any:
    """The legend line (a rich Text)."""
    from rich.text import Text

    line = Text("legend: ", style="dim")
    for kind, label in LEGEND.items():
        sample = MASK_GLYPH if kind in ("mask", "inserted") else "ab"
        style = confidence_style(0.6) if kind == "old" else STYLES[kind]
        line.append(sample, style=style)
        line.append(f" {label}   ", style="dim")
    return line
