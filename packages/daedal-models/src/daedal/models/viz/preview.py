"""The first live frame, drawn before torch is imported.

Importing torch takes about two seconds on a small CPU, longer than the bundled model
needs for a whole answer. So ``daedal generate --live`` draws the run's starting point
first: each prompt over its initial canvas of masks, whose size it reads from the policy
specs (torch-free), then hands the same terminal region to the live view, whose first
frame from the engine replaces it. When the specs do not say the initial size (a policy
left at its defaults), there is no preview and the ``loading ...`` line stands alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daedal.models.runconfig import PolicySpec
from daedal.models.viz.styles import MASK_GLYPH, STYLES, legend

__all__ = ["LENGTH_KEYS", "initial_length", "render_preview", "start_preview"]

LENGTH_KEYS = ("initial_gen_length", "gen_length")
"""Parameters that set the initial canvas (DAEDAL's ``L_init``, a fixed length's ``N``)."""


def initial_length(specs: Sequence[PolicySpec], recommended: Sequence[PolicySpec]) -> int | None:
    """The initial generation length the specs ask for, or None when they leave it to a default.

    Reads the specs as :func:`daedal.models.compose.build_policies` does: no spec means
    the recommended ones; a spec naming a recommended policy starts from its recommended
    parameters.
    """
    rec = {s.name: dict(s.params) for s in recommended}
    chosen = [{**rec.get(s.name, {}), **s.params} for s in specs] or [dict(s.params) for s in recommended]
    for params in chosen:
        for key in LENGTH_KEYS:
            value = params.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def render_preview(prompts: Sequence[str], length: int, note: str) -> Any:
    """Header, each prompt over ``length`` masks, legend: the live view's layout at step 0."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [Text(f"step - \u00b7 length {length} \u00b7 forward passes 0 \u00b7 {note}", style="bold")]
    for prompt in prompts:
        parts.append(Text(f"> {prompt}", style="italic dim"))
        parts.append(Text(" ".join([MASK_GLYPH] * length), style=STYLES["mask"]))
    parts.append(legend())
    return Group(*parts)


def start_preview(console: Any, prompts: Sequence[str], length: int, note: str = "loading the model") -> Any:
    """Draw the preview in a started :class:`rich.live.Live` (the live view takes it over)."""
    from rich.live import Live

    live = Live(render_preview(prompts, length, note), console=console, auto_refresh=False, transient=False)
    live.start(refresh=True)
    return live
