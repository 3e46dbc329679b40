"""The live terminal view of a run (rich), drawn from the engine's events.

:class:`LiveView` is an observer policy (it implements only ``on_event``): add it to the
engine's policies and it redraws the canvas after every stage-1 resize and every
denoising step, with a step counter, the current length and the legend.
"""

from __future__ import annotations

import time
from typing import Any

from daedal.core import hookimpl
from daedal.models.viz.frames import LEGEND, FrameReplayer, cells, short

__all__ = ["LiveView", "STYLES", "confidence_style", "render_frame"]

STYLES: dict[str, str] = {
    "mask": "grey50",
    "new": "bold black on #7ee787",
    "inserted": "bold white on #a371f7",
    "eos": "grey39",
}


def confidence_style(confidence: float | None) -> str:
    """Earlier tokens: pale (low confidence) to deep blue (high confidence)."""
    p = 1.0 if confidence is None else min(1.0, max(0.0, confidence))
    lo, hi = (190, 200, 215), (31, 111, 235)
    r, g, b = (round(a + (z - a) * p) for a, z in zip(lo, hi, strict=False))
    return f"bold #{r:02x}{g:02x}{b:02x}"


def render_frame(
    frame: Any, strings: dict[int, str], *, mask_id: int, eos_ids: Any, header: str, prompts: Any = ()
) -> Any:
    """A rich renderable of one frame: header, one line of cells per row, legend."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [Text(header, style="bold")]
    for b in range(len(frame.rows)):
        if b < len(prompts):
            parts.append(Text(f"> {prompts[b]}", style="italic dim"))
        line = Text()
        for cell in cells(frame, b, strings, mask_id=mask_id, eos_ids=eos_ids):
            text = "\u2591" if cell.kind in ("mask", "inserted") else short(cell.text)
            style = confidence_style(cell.confidence) if cell.kind == "old" else STYLES[cell.kind]
            line.append(text, style=style)
            line.append(" ")
        parts.append(line)
    legend = Text("legend: ", style="dim")
    for kind, label in LEGEND.items():
        sample = "\u2591" if kind in ("mask", "inserted") else "ab"
        style = confidence_style(0.6) if kind == "old" else STYLES[kind]
        legend.append(sample, style=style)
        legend.append(f" {label}   ", style="dim")
    parts.append(legend)
    return Group(*parts)


class LiveView:
    """Observer policy drawing the canvas live in a terminal.

    Args:
        console: A :class:`rich.console.Console` (default: one on stdout).
        delay: Seconds to pause after each redraw, so fast models can be watched.
        prompts: Prompt texts shown above their rows.
    """

    def __init__(self, console: Any = None, delay: float = 0.0, prompts: Any = ()) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.delay = delay
        self.prompts = list(prompts)
        self._live: Any = None
        self._replayer = FrameReplayer()
        self._strings: dict[int, str] = {}
        self._stage = ""
        self.frames_drawn = 0

    def __repr__(self) -> str:
        return f"LiveView(delay={self.delay})"

    @hookimpl
    def on_event(self, event: Any, state: Any) -> None:
        kind = getattr(event, "kind", "")
        if kind == "run-started":
            self.close()
            from rich.live import Live

            self._replayer = FrameReplayer()
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.start()
            return
        if kind == "run-finished":
            self.close()
            return
        if self._live is None or kind not in ("canvas-initialized", "length-changed", "step-finished"):
            return
        data = event.to_dict()
        frame = self._replayer.push(data)
        if frame is None:
            return
        adapter = state.adapter
        missing = {t for r in frame.rows for t in r} - self._strings.keys()
        if missing:
            from daedal.models.viz.frames import token_strings

            self._strings.update(token_strings(adapter, missing))
        if kind == "length-changed":
            self._stage = f"sizing ({data.get('reason', '')})"
        elif kind == "canvas-initialized":
            self._stage = "canvas ready"
        else:
            self._stage = "denoising"
        gen = [len(r) - p for r, p in zip(frame.rows, frame.prompt_len, strict=False)]
        step = "-" if frame.step < 0 else str(frame.step + 1)
        header = (
            f"step {step} \u00b7 length {', '.join(map(str, gen))} \u00b7 forward passes "
            f"{data.get('forward_passes', '-')} \u00b7 {self._stage}"
        )
        eos_ids = sorted(getattr(adapter, "eos_ids", ()) or ())
        self._live.update(
            render_frame(
                frame, self._strings, mask_id=adapter.mask_id, eos_ids=eos_ids, header=header, prompts=self.prompts
            ),
            refresh=True,
        )
        self.frames_drawn += 1
        if self.delay > 0:
            time.sleep(self.delay)

    def close(self) -> None:
        """Stop drawing (idempotent); the last frame stays on screen."""
        if self._live is not None:
            self._live.stop()
            self._live = None
