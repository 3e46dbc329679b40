"""Every "reference semantics" citation in the packages resolves to an anchor of docs/reference/semantics.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.conftest import DOCS, ROOT

PAGE = DOCS / "reference" / "semantics.md"
SOURCES = sorted((ROOT / "packages").glob("daedal-*/src/daedal/**/*.py"))
#: A citation: "reference semantics" followed by section, quirk and baseline ids ("§6 step 7 and 8",
#: "Q6", "a.1, a.2", "b"), in docstrings, comments and messages.
CITATION = re.compile(r"reference semantics((?:[ ,]+(?:and |§\d+|Q\d+|E\d+|[abc]\.\d|b\b|step \d+))+)")
ID = re.compile(r"§(\d+)|Q(\d+)|E(\d+)|\b([abc])\.(\d)|\bb\b")


def _anchors() -> set[str]:
    text = PAGE.read_text(encoding="utf-8")
    return set(re.findall(r"\{#([\w-]+)\}", text)) | set(re.findall(r'id="([\w-]+)"', text))


def _anchor(match: re.Match[str]) -> str:
    section, quirk, evaluation, baseline, number = match.groups()
    if section:
        return f"s{section}"
    if quirk:
        return f"q{quirk}"
    if evaluation:
        return f"e{evaluation}"
    if baseline:
        return f"{baseline}{number}"
    return "b"


def _citations() -> list[tuple[str, str]]:
    found = []
    for path in SOURCES:
        for m in CITATION.finditer(path.read_text(encoding="utf-8")):
            tail = re.sub(r"step \d+", "", m.group(1))
            for ref in ID.finditer(tail):
                found.append((f"{path.relative_to(ROOT)}", _anchor(ref)))
    return found


def test_the_packages_cite_the_page() -> None:
    cited = {anchor for _, anchor in _citations()}
    assert {"s4", "s5", "s6", "q6", "a2", "b", "c1", "e4", "e5"} <= cited, f"citations found: {sorted(cited)}"


@pytest.mark.parametrize(("where", "anchor"), sorted(set(_citations())))
def test_each_citation_resolves(where: str, anchor: str) -> None:
    assert anchor in _anchors(), f"{where} cites reference semantics #{anchor}, which the page does not define"


def test_no_docstring_cites_documents_a_reader_does_not_have() -> None:
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for name in ("daedal.md", "baselines.md", "paper-results"):
            assert name not in text, f"{path.relative_to(ROOT)} cites {name}; cite 'reference semantics' instead"


def test_the_page_is_in_the_navigation() -> None:
    assert "reference/semantics.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert Path(PAGE).is_file()
