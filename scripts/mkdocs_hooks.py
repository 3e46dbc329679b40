"""MkDocs hooks of the docs site (``hooks:`` in mkdocs.yml).

The docstrings use Sphinx roles (``:class:`~daedal.core.Canvas```), which mkdocstrings
renders literally as ``:class:<code>~daedal.core.Canvas</code>``. This hook turns each one
into a cross-reference that mkdocs-autorefs resolves when the target is documented
(``optional``: no warning when it is not), showing the short name for ``~`` targets.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj):<code>(?P<tilde>~?)(?P<target>[\w.]+)(?:\(\))?</code>")


def _replace(match: re.Match[str]) -> str:
    target = match["target"]
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
    if "." not in target:
        return f"<code>{shown}</code>"
    return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'


def on_page_content(html: str, **_: Any) -> str:
    return _ROLE.sub(_replace, html)
