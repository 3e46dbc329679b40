"""The live view and the frame replay drawn by the CLI and the HTML page."""

from __future__ import annotations

from daedal.core import Engine, EngineConfig
from daedal.core.events import Trace
from daedal.models.viz.frames import FrameReplayer, cells
from daedal.models.viz.html import frames_data, render_html

M, E = 9, 1  # mask and EOS ids of the hand-made trace below

EVENTS = [
    {"kind": "run-started", "prompts": [[5, 6]], "policies": [], "seed": 0},
    {
        "kind": "length-changed",
        "reason": "grow",
        "forward_passes": 1,
        "rows": [[5, 6, M, M]],
        "prompt_len": [2],
        "mask_id": M,
        "pad_id": E,
    },
    {
        "kind": "canvas-initialized",
        "forward_passes": 1,
        "rows": [[5, 6, M, M, M, E]],
        "prompt_len": [2],
        "mask_id": M,
        "pad_id": E,
    },
    # step 0: fill column 2 with 7 (p=.95); widen the mask at column 3 into 3 masks
    {
        "kind": "step-finished",
        "step": 0,
        "forward_passes": 2,
        "factor": 3,
        "truncate": False,
        "filled": [[[2, 7, 0.95]]],
        "expanded": [[3]],
        "remasked": [[]],
        "length": [8],
    },
    # step 1: fill new columns 3 and 6
    {
        "kind": "step-finished",
        "step": 1,
        "forward_passes": 3,
        "factor": None,
        "truncate": False,
        "filled": [[[3, 8, 0.5], [6, E, 0.99]]],
        "expanded": [[]],
        "remasked": [[]],
        "length": [8],
    },
]


def test_replayer_matches_trace_frames() -> None:
    replayer = FrameReplayer()
    incremental = [f for f in map(replayer.push, EVENTS) if f is not None]
    assert incremental == list(Trace(events=tuple(EVENTS)).frames())


def test_cells_mark_new_earlier_inserted_mask_and_eos() -> None:
    frames = list(Trace(events=tuple(EVENTS)).frames())
    strings = {7: "x", 8: "y", E: "<|endoftext|>", M: "<|mdm_mask|>"}
    after0 = cells(frames[2], 0, strings, mask_id=M, eos_ids=[E])
    assert [c.kind for c in after0] == ["new", "inserted", "inserted", "inserted", "mask", "eos"]
    assert after0[0].confidence == 0.95
    after1 = cells(frames[3], 0, strings, mask_id=M, eos_ids=[E])
    assert [(c.text, c.kind) for c in after1] == [
        ("x", "old"),
        ("y", "new"),
        ("<|mdm_mask|>", "mask"),
        ("<|mdm_mask|>", "mask"),
        ("<|endoftext|>", "new"),
        ("<|endoftext|>", "eos"),
    ]
    assert after1[0].confidence == 0.95  # earlier tokens keep the confidence they were filled with


def test_html_frames_hold_each_step_with_lengths_and_passes() -> None:
    trace = Trace(events=tuple(EVENTS))
    data = frames_data(trace, {7: "x", 8: "y", E: "<|endoftext|>"}, eos_ids=[E])
    assert [(d["label"], d["lengths"], d["passes"]) for d in data] == [
        ("grow", [2], 1),
        ("canvas-initialized", [4], 1),
        ("step 1", [6], 2),
        ("step 2", [6], 3),
    ]
    assert [kind for _, kind, _ in data[2]["rows"][0]] == ["new", "inserted", "inserted", "inserted", "mask", "eos"]
    page = render_html(trace, {7: "x"}, title="t</script>")
    assert "t</script>" not in page and "t&lt;/script&gt;" in page  # escaped title


def test_live_view_draws_every_frame_with_counter_length_and_legend() -> None:
    from rich.console import Console

    from daedal.models import bundled
    from daedal.models.viz.live import LiveView
    from daedal.policies import Daedal

    console = Console(record=True, width=160, force_terminal=True, color_system="truecolor")
    view = LiveView(console=console, prompts=["repeat: a b c"])
    adapter = bundled.load()
    engine = Engine(adapter, [Daedal(**bundled.daedal_settings()), view], config=EngineConfig(record=True))
    result = engine.generate(["repeat: a b c"])
    trace = result.trace
    n_frames = sum(len(trace.of_kind(k)) for k in ("canvas-initialized", "length-changed", "step-finished"))
    assert view.frames_drawn == n_frames
    text = console.export_text()
    n_steps = len(trace.of_kind("step-finished"))
    assert f"step {n_steps} \u00b7 length {result.lengths[0]}" in text
    assert "sizing" in text and "denoising" in text and "> repeat: a b c" in text
    assert "legend:" in text and "inserted mask block" in text and "filled this step" in text
