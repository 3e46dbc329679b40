"""A self-contained HTML replay of a step trace (inline CSS and JS, data embedded).

The page steps or plays through every frame of :meth:`daedal.core.events.Trace.frames`
with the live view's legend: masks, tokens filled in the current step, tokens filled
earlier shaded by their confidence, inserted mask blocks, end-of-text tokens; plus the
step counter, the current lengths and the forward passes so far.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from daedal.core.events import Trace
from daedal.models.viz.frames import LEGEND, VOCAB_KIND, cells, short

__all__ = ["frames_data", "render_html"]


def frames_data(
    trace: Trace, strings: Mapping[int, str], *, mask_id: int | None = None, eos_ids: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """Every frame of ``trace`` as plain data: label, step, lengths, passes, cells per row."""
    sources = [e for e in trace.events if e["kind"] in ("canvas-initialized", "length-changed", "step-finished")]
    out = []
    current_mask = -1
    for event, frame in zip(sources, trace.frames(), strict=False):
        current_mask = event.get("mask_id", current_mask)  # step events inherit the canvas's mask id
        mid = mask_id if mask_id is not None else current_mask
        rows = []
        for b in range(len(frame.rows)):
            row = []
            for cell in cells(frame, b, strings, mask_id=mid, eos_ids=eos_ids):
                conf = None if cell.confidence is None else round(cell.confidence, 3)
                row.append([short(cell.text), cell.kind, conf])
            rows.append(row)
        out.append(
            {
                "label": frame.label if frame.step < 0 else f"step {frame.step + 1}",
                "step": frame.step,
                "lengths": [len(r) - p for r, p in zip(frame.rows, frame.prompt_len, strict=False)],
                "passes": event.get("forward_passes"),
                "rows": rows,
            }
        )
    return out


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2328;background:#fff}
h1{font-size:1.2rem}.meta{color:#57606a;font-size:.9rem;margin:.2rem 0}
.controls{margin:1rem 0;display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
button{font-size:1rem;padding:.2rem .7rem}#slider{flex:1;min-width:12rem}
#status{font-weight:600;margin:.5rem 0}.prompt{color:#57606a;margin:.6rem 0 .2rem}
.row{font-family:ui-monospace,monospace;line-height:2;margin-bottom:.8rem}
.tok{display:inline-block;padding:0 .25rem;margin:1px;border-radius:3px;min-width:.8rem;text-align:center}
.mask{background:#d0d7de;color:#6e7781}.new{background:#7ee787;color:#000;font-weight:700}
.inserted{background:#a371f7;color:#fff;font-weight:700}.eos{color:#8c959f;background:#f6f8fa}
.old{color:#fff}.legend span.tok{margin-right:.3rem}.legend{font-size:.9rem;margin-top:1rem}
"""

_JS = """
const data = JSON.parse(document.getElementById('frames').textContent);
const frames = data.frames; let i = 0; let timer = null;
const slider = document.getElementById('slider'); slider.max = frames.length - 1;
function shade(p){ if(p===null) p=1; const lo=[190,200,215], hi=[31,111,235];
  const c=lo.map((a,k)=>Math.round(a+(hi[k]-a)*p)); return 'rgb('+c.join(',')+')'; }
function show(k){ i=Math.max(0,Math.min(frames.length-1,k)); slider.value=i; const f=frames[i];
  document.getElementById('status').textContent = f.label + ' \\u00b7 frame ' + (i+1) + '/' + frames.length +
    ' \\u00b7 length ' + f.lengths.join(', ') + ' \\u00b7 forward passes ' + (f.passes===null?'-':f.passes);
  const box=document.getElementById('rows'); box.innerHTML='';
  f.rows.forEach((row,b)=>{ if(data.prompts[b]!==undefined){ const p=document.createElement('div');
      p.className='prompt'; p.textContent=data.prompts[b]; box.appendChild(p);}
    const div=document.createElement('div'); div.className='row';
    row.forEach(([text,kind,conf])=>{ const s=document.createElement('span'); s.className='tok '+kind;
      s.textContent=(kind==='mask'||kind==='inserted')?'\\u2591':text;
      if(kind==='old'){ s.style.background=shade(conf); }
      if(conf!==null) s.title='confidence '+conf; div.appendChild(s); });
    box.appendChild(div); }); }
function play(){ if(timer){ clearInterval(timer); timer=null; document.getElementById('play').textContent='play'; return; }
  if(i>=frames.length-1) show(0); document.getElementById('play').textContent='pause';
  timer=setInterval(()=>{ if(i>=frames.length-1){ play(); return; } show(i+1); },
    Number(document.getElementById('speed').value)); }
document.getElementById('prev').onclick=()=>show(i-1);
document.getElementById('next').onclick=()=>show(i+1);
document.getElementById('first').onclick=()=>show(0);
document.getElementById('last').onclick=()=>show(frames.length-1);
document.getElementById('play').onclick=play; slider.oninput=()=>show(Number(slider.value));
document.addEventListener('keydown',e=>{ if(e.key==='ArrowRight') show(i+1); if(e.key==='ArrowLeft') show(i-1);
  if(e.key===' '){ e.preventDefault(); play(); } });
show(0);
"""


def render_html(
    trace: Trace,
    strings: Mapping[int, str] | None = None,
    *,
    title: str = "daedal trace",
    mask_id: int | None = None,
    eos_ids: Sequence[int] | None = None,
    prompts: Sequence[str] | None = None,
) -> str:
    """The replay page of ``trace`` as one HTML string.

    Args:
        trace: A recorded trace (e.g. ``Trace.from_jsonl(path)``).
        strings: Token id -> text; defaults to the trace's ``vocabulary`` event (written by
            ``daedal generate --trace``), else ids are shown as ``#id``.
        title: Page title.
        mask_id: Mask id (default: from the trace).
        eos_ids: End-of-text ids (default: from the trace's ``vocabulary`` event).
        prompts: Prompt texts shown above each row (default: from the vocabulary event).
    """
    vocab = next((e for e in trace.events if e["kind"] == VOCAB_KIND), {})
    if strings is None:
        strings = {int(k): v for k, v in vocab.get("strings", {}).items()}
    if eos_ids is None:
        eos_ids = vocab.get("eos_ids", [])
    if prompts is None:
        prompts = vocab.get("prompts", [])
    frames = frames_data(trace, strings, mask_id=mask_id, eos_ids=eos_ids)
    payload = json.dumps({"frames": frames, "prompts": list(prompts)}, ensure_ascii=True).replace("</", "<\\/")
    legend = "".join(
        f'<span class="tok {kind}"{" style=background:rgb(110,155,225)" if kind == "old" else ""}>'
        f"{'&#9617;' if kind in ('mask', 'inserted') else 'ab'}</span>{html.escape(label)} &nbsp; "
        for kind, label in LEGEND.items()
    )
    meta = " \u00b7 ".join(
        f"{k}: {html.escape(str(vocab[k]))}" for k in ("model", "policy", "seed") if vocab.get(k) is not None
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1><div class="meta">{meta}</div>
<div class="controls"><button id="first">&#9198;</button><button id="prev">&#9664; step</button>
<button id="play">play</button><button id="next">step &#9654;</button><button id="last">&#9197;</button>
<input id="slider" type="range" min="0" value="0"><label>speed <select id="speed">
<option value="600">slow</option><option value="250" selected>normal</option><option value="80">fast</option>
</select></label></div>
<div id="status"></div><div id="rows"></div>
<div class="legend">{legend}</div>
<script id="frames" type="application/json">{payload}</script>
<script>{_JS}</script>
</body></html>
"""
