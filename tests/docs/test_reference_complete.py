"""The reference pages cover every hook, error class and error code (datasette-style enforced docs)."""

from __future__ import annotations

import importlib
import inspect
import re
import typing

import pytest

from daedal.core import errors, hookspecs
from tests.docs.conftest import DOCS

HOOKS_PAGE = DOCS / "reference" / "hooks.md"
ERRORS_PAGE = DOCS / "reference" / "errors.md"


def _hookspecs() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")
    }


def _headings(text: str) -> list[str]:
    return [m.group(2).strip() for m in re.finditer(r"^(#{2,4})\s+(.+?)\s*$", text, re.M)]


def test_every_hookspec_is_found() -> None:
    # Guards the helper itself: the core declares these hooks.
    assert {"initial_canvas", "should_stop", "predict", "select_unmask", "on_event"} <= set(_hookspecs())


@pytest.mark.parametrize("name", sorted(_hookspecs()))
def test_hook_is_documented_with_its_exact_signature(name: str) -> None:
    signature = f"{name}({', '.join(_hookspecs()[name].parameters)})"
    headings = _headings(HOOKS_PAGE.read_text(encoding="utf-8"))
    assert f"`{signature}`" in headings or signature in headings, (
        f"docs/reference/hooks.md needs a section headed `## {signature}` (the hook's exact argument names)"
    )


def test_hooks_page_has_no_stale_hook_sections() -> None:
    documented = {h.split("(")[0].strip("`") for h in _headings(HOOKS_PAGE.read_text(encoding="utf-8")) if "(" in h}
    stale = documented - set(_hookspecs())
    assert not stale, f"docs/reference/hooks.md documents hooks that do not exist: {sorted(stale)}"


def _error_classes() -> set[type]:
    """Every DaedalError subclass defined by the installed daedal packages, plus DaedalWarning."""
    for module in ("daedal.policies", "daedal.models", "daedal.eval"):
        try:
            importlib.import_module(module)
        except ImportError:  # a package not installed in this environment (isolated sessions)
            pass
    found: set[type] = {errors.DaedalWarning}
    todo: list[type] = [errors.DaedalError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("daedal.") and not cls.__module__.startswith("daedal.core.testing"):
            found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_core_error_classes_are_found() -> None:
    names = {c.__name__ for c in _error_classes()}
    assert {"DaedalError", "ConfigError", "PolicyError", "CanvasError", "AdapterError", "DaedalWarning"} <= names


@pytest.mark.parametrize("cls", sorted(_error_classes(), key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_error_class_is_documented(cls: type) -> None:
    headings = _headings(ERRORS_PAGE.read_text(encoding="utf-8"))
    assert cls.__name__ in headings or f"`{cls.__name__}`" in headings, (
        f"docs/reference/errors.md needs a section headed `### {cls.__name__}`"
    )


@pytest.mark.parametrize("code", typing.get_args(errors.ErrorCode))
def test_error_code_has_an_anchor(code: str) -> None:
    text = ERRORS_PAGE.read_text(encoding="utf-8")
    assert re.search(rf"^#{{2,4}} .*\{{ ?#{re.escape(code)} ?\}}\s*$", text, re.M), (
        f"docs/reference/errors.md needs a heading with the anchor {{ #{code} }}: errors link to "
        f"{errors.DOCS_URL}#{code}"
    )


def test_error_codes_page_is_where_errors_point() -> None:
    assert errors.DOCS_URL.endswith("/reference/errors/")
    assert ERRORS_PAGE.exists()
    # every code anchored on the page is a real code (no stale anchors)
    anchored = set(re.findall(r"\{ ?#([a-z-]+) ?\}", ERRORS_PAGE.read_text(encoding="utf-8")))
    assert anchored == set(typing.get_args(errors.ErrorCode))


def test_every_error_class_default_code_is_documented() -> None:
    codes = set(typing.get_args(errors.ErrorCode))
    for cls in _error_classes():
        code = getattr(cls, "code", None)
        if code is not None:
            assert code in codes, f"{cls.__name__}.code = {code!r} is not an ErrorCode"


ENTRY_POINTS_PAGE = DOCS / "reference" / "entry-points.md"


def _declared_entry_points() -> list[tuple[str, str]]:
    """(group, name) of every entry point the four packages declare in their pyproject.toml."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")

    from tests.docs.conftest import ROOT

    found = []
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        for group, entries in project.get("entry-points", {}).items():
            found.extend((group, name) for name in entries)
        found.extend(("console_scripts", name) for name in project.get("scripts", {}))
    return found


def test_entry_points_are_found() -> None:
    assert ("daedal.policies", "fixed-length") in _declared_entry_points()


@pytest.mark.parametrize("group,name", _declared_entry_points())
def test_entry_point_is_documented(group: str, name: str) -> None:
    text = ENTRY_POINTS_PAGE.read_text(encoding="utf-8")
    section = text if group == "console_scripts" else text.split(f"### {group}", 1)[-1].split("\n### ", 1)[0]
    assert f"`{name}`" in section, f"docs/reference/entry-points.md does not list `{name}` under {group}"
