"""Every subcommand and option of the ``daedal`` command line appears on docs/reference/cli.md."""

from __future__ import annotations

import argparse

import pytest

from tests.docs.conftest import DOCS

CLI_PAGE = DOCS / "reference" / "cli.md"


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[tuple[str, str]]:
    """(command path, option string) for every option and positional of every subcommand."""
    found: list[tuple[str, str]] = []
    for action in parser._actions:  # argparse has no public walk API
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((" ".join(path), name))
                found.extend(_walk(sub, (*path, name)))
        elif isinstance(action, argparse._HelpAction):
            continue
        elif action.option_strings:
            found.extend((" ".join(path), opt) for opt in action.option_strings if opt.startswith("--"))
        elif path:
            found.append((" ".join(path), action.metavar or action.dest))
    return found


def _cli() -> list[tuple[str, str]]:
    try:
        from daedal.models.cli import build_parser
    except ImportError:
        return []
    try:
        parser = build_parser(["eval"])
    except Exception:  # daedal-eval not installed: the base command only
        parser = build_parser()
    return _walk(parser, ("daedal",))


def test_the_cli_is_found() -> None:
    if not _cli():
        pytest.skip("daedal-models (the daedal command) is not installed")
    assert ("daedal", "generate") in _cli()


@pytest.mark.parametrize("command,option", _cli())
def test_option_is_documented(command: str, option: str) -> None:
    text = CLI_PAGE.read_text(encoding="utf-8")
    assert f"## {command}" in text or command == "daedal", f"docs/reference/cli.md has no section for `{command}`"
    assert f"`{option}" in text or f"{option}`" in text or f" {option} " in text, (
        f"docs/reference/cli.md does not mention `{option}` of `{command}`"
    )
