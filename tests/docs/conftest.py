"""Shared helpers of the docs tests: where the docs are and how to read their code blocks."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# A fence opens with ``` or ~~~ plus an info string, and closes with the same marker.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
_SKIP = re.compile(r"<!--\s*skip(?::\s*(?P<why>.*?))?\s*-->")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')


@attrs.frozen
class Block:
    """One fenced code block of a docs page."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    title: str | None
    code: str
    skip: str | None  # the reason given in a preceding <!-- skip: ... --> comment

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        lang = info.split()[0].lstrip("{.").rstrip("}") if info else ""
        title = _TITLE.search(info)
        skip = None
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (s := _SKIP.search(lines[j])):
            skip = s["why"] or "marked skip"
        body: list[str] = []
        k = i + 1
        while k < len(lines) and not (
            lines[k].strip().startswith(fence[0] * len(fence)) and lines[k].strip().strip(fence[0]) == ""
        ):
            body.append(lines[k][len(indent) :] if lines[k].startswith(indent) else lines[k])
            k += 1
        out.append(Block(page, i + 1, lang, title["title"] if title else None, "\n".join(body) + "\n", skip))
        i = k + 1
    return out
