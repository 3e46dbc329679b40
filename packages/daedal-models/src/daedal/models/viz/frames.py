"""From trace events to what a viewer draws: frames of the canvas, cell by cell.

:class:`FrameReplayer` consumes event dicts one at a time (as the engine emits them)
and yields the same frames as :meth:`daedal.core.events.Trace.frames` does for a whole
trace, so the live view and the HTML page agree. :func:`cells` classifies each slot of a
frame's generation region for drawing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daedal.core.events import Frame
from daedal.models.viz.styles import LEGEND

__all__ = ["Cell", "FrameReplayer", "KINDS", "LEGEND", "VOCAB_KIND", "cells", "short", "token_strings"]

VOCAB_KIND = "vocabulary"
"""Kind of the event the CLI writes first into a trace file: ``{"strings": {id: text}}``,
plus the model, policy and special ids, so a trace can be rendered without the model."""

KINDS = ("mask", "new", "old", "inserted", "eos")


@dataclass(frozen=True)
class Cell:
    """One generation slot as drawn: its text, its kind (see :data:`KINDS`), its confidence."""

    text: str
    kind: str
    confidence: float | None = None


class FrameReplayer:
    """Incremental replay of trace events into :class:`~daedal.core.events.Frame` objects.

    ``push(event)`` returns the frame the event produces (``canvas-initialized``,
    ``length-changed``, ``step-finished``) or None for other events.
    """

    def __init__(self) -> None:
        self.rows: list[list[int]] = []
        self.prompt_len: list[int] = []
        self.mask_id = 0
        self.conf: list[dict[int, float]] = []

    def push(self, e: Mapping[str, Any]) -> Frame | None:
        kind = e.get("kind")
        if kind in ("canvas-initialized", "length-changed"):
            self.rows = [list(r) for r in e["rows"]]
            self.prompt_len = list(e["prompt_len"])
            self.mask_id = e["mask_id"]
            self.conf = [{} for _ in self.rows]
            n = len(self.rows)
            return Frame(
                -1,
                [list(r) for r in self.rows],
                list(self.prompt_len),
                [[] for _ in range(n)],
                [[] for _ in range(n)],
                [{} for _ in range(n)],
                label=e.get("reason", kind),
            )
        if kind != "step-finished":
            return None
        factor = e.get("factor") or 1
        n = len(self.rows)
        remasked_all = e.get("remasked") or [[] for _ in range(n)]
        rows, fills, inserted, confs = [], [], [], []
        for b, row in enumerate(self.rows):
            filled = {c: (t, p) for c, t, p in e["filled"][b]}
            expanded, remasked = set(e["expanded"][b]), set(remasked_all[b])
            out: list[int] = []
            f_out: list[tuple[int, int, float]] = []
            i_out: list[int] = []
            c_out: dict[int, float] = {}
            for c, tok in enumerate(row):
                if c in expanded:  # one mask becomes `factor` masks; later slots shift right
                    i_out.extend(range(len(out), len(out) + factor))
                    out.extend([self.mask_id] * factor)
                    continue
                if c in remasked:
                    out.append(self.mask_id)
                    continue
                if c in self.conf[b]:
                    c_out[len(out)] = self.conf[b][c]
                if c in filled:
                    tok, p = filled[c]
                    f_out.append((len(out), tok, p))
                    c_out[len(out)] = p
                out.append(tok)
            length = e["length"][b]
            out = out[:length]
            rows.append(out)
            fills.append(f_out)
            inserted.append([c for c in i_out if c < len(out)])
            confs.append({c: p for c, p in c_out.items() if c < len(out)})
        self.rows, self.conf = rows, confs
        return Frame(
            e["step"],
            [list(r) for r in rows],
            list(self.prompt_len),
            fills,
            inserted,
            [dict(c) for c in confs],
            label=f"step {e['step']}",
        )


def short(text: str, *, mask_id_text: str | None = None) -> str:
    """Compact display text: special tokens such as ``<|endoftext|>`` become ``EOS``."""
    names = {"<|endoftext|>": "EOS", "<|eot_id|>": "EOT", "<|im_end|>": "EOT", "<|mdm_mask|>": "_", "<|mask|>": "_"}
    if text in names:
        return names[text]
    stripped = text.strip()
    return stripped if stripped else repr(text)[1:-1] or "\u2423"


def token_strings(adapter: Any, ids: Iterable[int]) -> dict[int, str]:
    """How each id reads on its own (``adapter.decode`` of a one-token row)."""
    ids = sorted({int(i) for i in ids})
    if not ids:
        return {}
    texts = adapter.decode([[i] for i in ids])
    return dict(zip(ids, texts, strict=False))


def cells(
    frame: Frame,
    row: int,
    strings: Mapping[int, str],
    *,
    mask_id: int,
    eos_ids: Sequence[int] = (),
) -> list[Cell]:
    """The generation slots of ``frame``'s row ``row``, classified for drawing."""
    tokens = frame.rows[row]
    start = frame.prompt_len[row]
    new = {c for c, _, _ in frame.filled[row]}
    inserted = set(frame.inserted[row])
    conf = frame.confidence[row]
    eos = set(eos_ids)
    out = []
    for c in range(start, len(tokens)):
        tok = tokens[c]
        text = strings.get(tok, f"#{tok}")
        if tok == mask_id:
            out.append(Cell(text, "inserted" if c in inserted else "mask"))
        elif c in new:
            out.append(Cell(text, "new", conf.get(c)))
        elif tok in eos:
            out.append(Cell(text, "eos", conf.get(c)))
        else:
            out.append(Cell(text, "old", conf.get(c)))
    return out
