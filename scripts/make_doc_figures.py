"""Draw the canvas figures of docs/concepts/canvas.md from real ``Canvas.apply`` calls.

Run ``python scripts/make_doc_figures.py`` after changing the canvas semantics; the SVGs
are committed so the docs build needs nothing but mkdocs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from daedal.core import Canvas, Expand, Remask, Unmask

HERE = Path(__file__).resolve().parents[1] / "docs" / "assets"
CELL, GAP, LEFT, TOP = 34, 4, 92, 34
MASK, PAD = 99, 0
STYLE = {
    "prompt": ("#cfd8dc", "#455a64"),
    "mask": ("#7e57c2", "#ffffff"),
    "token": ("#aed581", "#1b5e20"),
    "new": ("#ffca28", "#3e2723"),
    "inserted": ("#b39ddb", "#ffffff"),
    "remasked": ("#ef9a9a", "#b71c1c"),
    "pad": ("#ffffff", "#b0bec5"),
}


def classify(canvas: Canvas, before: Canvas | None, inserted: torch.Tensor | None, remasked: torch.Tensor | None):
    kinds = []
    for b in range(canvas.batch_size):
        row = []
        for c in range(canvas.width):
            tok = int(canvas.tokens[b, c])
            if c >= int(canvas.length[b]):
                row.append(("pad", "·"))
            elif c < int(canvas.prompt_len[b]):
                row.append(("prompt", str(tok)))
            elif remasked is not None and bool(remasked[b, c]):
                row.append(("remasked", "M"))
            elif tok == canvas.mask_id:
                kind = "inserted" if inserted is not None and bool(inserted[b, c]) else "mask"
                row.append((kind, "M"))
            else:
                new = before is not None and c < before.width and int(before.tokens[b, c]) == before.mask_id
                row.append(("new" if new else "token", str(tok)))
        kinds.append(row)
    return kinds


def svg(title: str, canvas: Canvas, cells, legend: list[str], marks: list[tuple[int, int, str]] = ()) -> str:
    width = max(LEFT + canvas.width * (CELL + GAP) + 20, int(8.6 * len(title)) + 12)
    height = TOP + canvas.batch_size * (CELL + GAP) + 50
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-family="ui-monospace, SFMono-Regular, Menlo, monospace" font-size="13">',
        f'<text x="4" y="20" font-size="14" font-weight="bold" fill="#37474f">{title}</text>',
    ]
    for b, row in enumerate(cells):
        y = TOP + b * (CELL + GAP)
        out.append(f'<text x="4" y="{y + CELL / 2 + 5}" fill="#37474f">row {b}  L={int(canvas.length[b])}</text>')
        for c, (kind, label) in enumerate(row):
            x = LEFT + c * (CELL + GAP)
            fill, ink = STYLE[kind]
            dash = ' stroke-dasharray="3,3"' if kind == "pad" else ""
            out.append(
                f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" rx="5" fill="{fill}" stroke="#78909c"{dash}/>'
                f'<text x="{x + CELL / 2}" y="{y + CELL / 2 + 5}" text-anchor="middle" fill="{ink}">{label}</text>'
            )
    for b, c, label in marks:
        x = LEFT + c * (CELL + GAP) + CELL / 2
        y = TOP + b * (CELL + GAP)
        out.append(f'<text x="{x}" y="{y - 3}" text-anchor="middle" font-size="11" fill="#d84315">{label}</text>')
    y = TOP + canvas.batch_size * (CELL + GAP) + 22
    x = 4
    for kind in legend:
        fill, _ = STYLE[kind]
        dash = ' stroke-dasharray="3,3"' if kind == "pad" else ""
        out.append(f'<rect x="{x}" y="{y - 12}" width="16" height="16" rx="3" fill="{fill}" stroke="#78909c"{dash}/>')
        out.append(f'<text x="{x + 22}" y="{y + 1}" fill="#37474f">{kind}</text>')
        x += 40 + 9 * len(kind)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    canvas = Canvas.from_prompts(
        [[11, 12, 13], [21, 22], [31, 32, 33, 34]], gen_length=[5, 6, 4], mask_id=MASK, pad_id=PAD, max_length=12
    )
    (HERE / "canvas-initial.svg").write_text(
        svg(
            "A canvas: prompt | masks | pad, right-padded, one length per row",
            canvas,
            classify(canvas, None, None, None),
            ["prompt", "mask", "pad"],
        )
    )

    where = torch.zeros_like(canvas.masked)
    where[0, 3] = where[0, 5] = where[1, 2] = where[2, 5] = True
    tokens = torch.full_like(canvas.tokens, 7)
    tokens[0, 3], tokens[0, 5], tokens[1, 2], tokens[2, 5] = 41, 42, 43, 44
    stepped = canvas.apply(Unmask(where=where, tokens=tokens))
    (HERE / "canvas-unmask.svg").write_text(
        svg(
            "After Unmask: four masked slots committed, nothing else moves",
            stepped,
            classify(stepped, canvas, None, None),
            ["prompt", "token", "new", "mask", "pad"],
        )
    )

    grow = torch.zeros_like(stepped.masked)
    grow[0, 4] = True
    grow[2, 6] = True
    expanded = stepped.apply(expand=Expand(where=grow, factor=3))
    inserted = torch.zeros_like(expanded.masked)
    inserted[0, 4:7] = True
    inserted[2, 6:9] = True
    (HERE / "canvas-expand.svg").write_text(
        svg(
            "After Expand(factor=3): each selected mask becomes three; later tokens shift right",
            expanded,
            classify(expanded, None, inserted, None),
            ["prompt", "token", "inserted", "mask", "pad"],
        )
    )

    back = torch.zeros_like(expanded.masked)
    back[0, 3] = True
    remasked = expanded.apply(remask=Remask(where=back))
    (HERE / "canvas-remask.svg").write_text(
        svg(
            "After Remask: a committed token becomes a mask again",
            remasked,
            classify(remasked, None, None, back),
            ["prompt", "token", "remasked", "mask", "pad"],
        )
    )


if __name__ == "__main__":
    main()
