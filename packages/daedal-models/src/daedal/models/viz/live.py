"""The live terminal view of a run (rich), drawn from the engine's events.

:class:`LiveView` is an observer policy (it implements only ``on_event``): add it to the
engine's policies and it redraws the canvas after every stage-1 resize and every
denoising step, with a step counter, the current length and the legend.
"""

from __future__ import annotations

import time
from typing import Any

from daedal.core import hookimpl
from daedal.models.viz.frames import FrameReplayer, cells, short
from daedal.models.viz.styles import MASK_GLYPH, STYLES, confidence_style, legend

__all__ = ["LiveView", "STYLES", "confidence_style", "render_frame"]


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
            text = MASK_GLYPH if cell.kind in ("mask", "inserted") else short(cell.text)
            style = confidence_style(cell.confidence) if cell.kind == "old" else STYLES[cell.kind]
            line.append(text, style=style)
            line.append(" ")
        parts.append(line)
    parts.append(legend())
    return Group(*parts)


class LiveView:
    """Observer policy drawing the canvas live in a terminal.

    Args:
        console: A :class:`rich.console.Console` (default: one on stdout).
        delay: Seconds to pause after each redraw, so fast models can be watched.
        prompts: Prompt texts shown above their rows.
        live: A started :class:`rich.live.Live` already on screen (the start-up preview of
            :mod:`daedal.models.viz.preview`); the first run draws into it.
    """

    def __init__(self, console: Any = None, delay: float = 0.0, prompts: Any = (), live: Any = None) -> None:
        from rich.console import Console

        self.console = console or (live.console if live is not None else Console())
        self.delay = delay
        self.prompts = list(prompts)
        self._live: Any = None
        self._preview: Any = live
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
            self._replayer = FrameReplayer()
            if self._preview is not None:  # keep drawing where the preview is
                self._live, self._preview = self._preview, None
                return
            self.close()
            from rich.live import Live

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
        for live in (self._live, self._preview):
            if live is not None:
                live.stop()
        self._live = self._preview = None
