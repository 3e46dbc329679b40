"""Events of a run, and the step trace built from them.

Events hold references to the run's tensors; converting them to plain data
(``to_dict``) happens only when an observer asks, so a run nobody observes pays
nothing for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

if TYPE_CHECKING:
    import torch

    from daedal.core.canvas import Canvas, Expand, Remask, Unmask
    from daedal.core.result import Stats


def _canvas_dict(canvas: Canvas) -> dict[str, Any]:
    return {
        "rows": canvas.rows(),
        "prompt_len": canvas.prompt_len.tolist(),
        "mask_id": canvas.mask_id,
        "pad_id": canvas.pad_id,
    }


@attrs.frozen(eq=False)
class Event:
    """Base of all events; ``kind`` names the event in traces."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def __repr__(self) -> str:
        # Short: events hold canvases and tensors; hook tracing prints them.
        step = getattr(self, "step", None)
        return f"{type(self).__name__}({'' if step is None else f'step={step}'})"


@attrs.frozen(eq=False, repr=False)
class RunStarted(Event):
    """A run begins."""

    kind: ClassVar[str] = "run-started"
    prompts: list[list[int]]
    policies: list[str]
    seed: int | list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "prompts": self.prompts, "policies": self.policies, "seed": self.seed}


@attrs.frozen(eq=False, repr=False)
class CanvasInitialized(Event):
    """The loop's starting canvas is ready."""

    kind: ClassVar[str] = "canvas-initialized"
    canvas: Canvas
    forward_passes: int
    #: The policy that answered ``initial_canvas``.
    policy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "forward_passes": self.forward_passes,
            "policy": self.policy,
            **_canvas_dict(self.canvas),
        }


@attrs.frozen(eq=False, repr=False)
class LengthChanged(Event):
    """A length policy replaced the canvas while sizing it (e.g. DAEDAL's stage 1)."""

    kind: ClassVar[str] = "length-changed"
    canvas: Canvas
    reason: str
    forward_passes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "forward_passes": self.forward_passes,
            **_canvas_dict(self.canvas),
        }


@attrs.frozen(eq=False, repr=False)
class StepFinished(Event):
    """One denoising step was applied.

    Positions of ``unmask`` and ``expand`` are in the coordinates of ``before``.
    ``decided_by`` names, for each decision hook a policy answered this step
    (``select_window``, ``select_unmask``, ``select_expand``, ``select_remask``), the policy
    that answered; the engine's final fill appears as ``{"select_unmask": "engine (final fill)"}``.
    """

    kind: ClassVar[str] = "step-finished"
    step: int
    before: Canvas
    after: Canvas
    unmask: Unmask
    expand: Expand | None
    confidence: torch.Tensor
    forward_passes: int
    remask: Remask | None = None
    decided_by: dict[str, str] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        where = self.unmask.where
        filled_rows: list[list[list[Any]]] = [[] for _ in range(where.shape[0])]
        idx = where.nonzero().tolist()
        toks = self.unmask.tokens[where].tolist()
        confs = self.confidence[where].float().tolist()
        for (b, c), t, p in zip(idx, toks, confs, strict=True):
            filled_rows[b].append([c, t, round(p, 6)])
        expanded_rows: list[list[int]] = [[] for _ in range(where.shape[0])]
        if self.expand is not None:
            for b, c in self.expand.where.nonzero().tolist():
                expanded_rows[b].append(c)
        remasked_rows: list[list[int]] = [[] for _ in range(where.shape[0])]
        if self.remask is not None:
            for b, c in self.remask.where.nonzero().tolist():
                remasked_rows[b].append(c)
        return {
            "kind": self.kind,
            "step": self.step,
            "remasked": remasked_rows,
            "forward_passes": self.forward_passes,
            "factor": self.expand.factor if self.expand is not None else None,
            "truncate": bool(self.expand.truncate) if self.expand is not None else False,
            "filled": filled_rows,
            "expanded": expanded_rows,
            "length": self.after.length.tolist(),
            "decided_by": dict(self.decided_by),
        }


@attrs.frozen(eq=False, repr=False)
class RunFinished(Event):
    """A run ended."""

    kind: ClassVar[str] = "run-finished"
    stats: Stats
    tokens: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "stats": attrs.asdict(self.stats), "tokens": self.tokens}


@attrs.frozen
class Frame:
    """The canvas of one row as replayed from a trace.

    Attributes:
        step: Step index after which this frame holds (-1 for canvases before step 0).
        rows: Tokens of each row (up to its length).
        prompt_len: Prompt length of each row.
        filled: Per row, the ``(column, token, confidence)`` committed in this step (new coordinates).
        inserted: Per row, the columns of masks inserted in this step (new coordinates).
        confidence: Per row, the confidence each committed column was filled with so far.
    """

    step: int
    rows: list[list[int]]
    prompt_len: list[int]
    filled: list[list[tuple[int, int, float]]]
    inserted: list[list[int]]
    confidence: list[dict[int, float]]
    label: str = ""


@attrs.frozen
class Trace:
    """The recorded events of a run, as plain data.

    Round-trips through JSONL: ``Trace.from_jsonl(path)`` reads what ``to_jsonl`` wrote.
    """

    events: tuple[dict[str, Any], ...]
    mask_id: int | None = None

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The events whose ``kind`` equals ``kind``, in order."""
        return [e for e in self.events if e["kind"] == kind]

    def to_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", encoding="utf-8") as fh:
            for event in self.events:
                fh.write(json.dumps(event) + "\n")
        return path

    @classmethod
    def from_jsonl(cls, path: str | Path) -> Trace:
        events = []
        with Path(path).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    events.append(json.loads(line))
        return cls(events=tuple(events))

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> Trace:
        return cls(events=tuple(e.to_dict() for e in events))

    def frames(self) -> Iterator[Frame]:
        """Replay the trace: the canvas after every recorded change.

        Yields one frame for each ``canvas-initialized`` / ``length-changed`` event and one
        per ``step-finished`` event, reconstructed only from the fills and insertions.
        """
        rows: list[list[int]] = []
        plen: list[int] = []
        mask_id = 0
        conf: list[dict[int, float]] = []
        for e in self.events:
            kind = e["kind"]
            if kind in ("canvas-initialized", "length-changed"):
                rows = [list(r) for r in e["rows"]]
                plen = list(e["prompt_len"])
                mask_id = e["mask_id"]
                conf = [{} for _ in rows]
                yield Frame(
                    -1,
                    [list(r) for r in rows],
                    plen,
                    [[] for _ in rows],
                    [[] for _ in rows],
                    [dict(c) for c in conf],
                    label=e.get("reason", kind),
                )
            elif kind == "step-finished":
                factor = e["factor"] or 1
                new_rows, fills, inserted, new_conf = [], [], [], []
                for b, row in enumerate(rows):
                    filled = {c: (t, p) for c, t, p in e["filled"][b]}
                    expanded = set(e["expanded"][b])
                    remasked = set(e.get("remasked", [[]] * len(rows))[b])
                    out: list[int] = []
                    f_out: list[tuple[int, int, float]] = []
                    i_out: list[int] = []
                    c_out: dict[int, float] = {}
                    for c, tok in enumerate(row):
                        if c in expanded:
                            i_out.extend(range(len(out), len(out) + factor))
                            out.extend([mask_id] * factor)
                            continue
                        if c in remasked:
                            out.append(mask_id)
                            continue
                        if c in conf[b]:
                            c_out[len(out)] = conf[b][c]
                        if c in filled:
                            tok, p = filled[c]
                            f_out.append((len(out), tok, p))
                            c_out[len(out)] = p
                        out.append(tok)
                    out = out[: e["length"][b]]
                    new_rows.append(out)
                    fills.append(f_out)
                    inserted.append([c for c in i_out if c < len(out)])
                    new_conf.append({c: p for c, p in c_out.items() if c < len(out)})
                rows, conf = new_rows, new_conf
                yield Frame(
                    e["step"],
                    [list(r) for r in rows],
                    plen,
                    fills,
                    inserted,
                    [dict(c) for c in conf],
                    label=f"step {e['step']}",
                )
