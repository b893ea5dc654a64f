"""The README's commands table and `hmo --help` cover every command the CLI has.

The commands are read from `flows.cli.parser()` itself (nested ones such as `aliases add` too), so a
command added without a line in the README fails here.
"""
from __future__ import annotations

import argparse
from typing import Iterator

import pytest

from flows.cli import main, parser
from hmo.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def _walk(command: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[tuple[str, bool]]:
    """(`hmo` words of a command, whether it is one a user runs rather than a group of others), top first."""
    groups = [action for action in command._actions if isinstance(action, argparse._SubParsersAction)]
    yield " ".join(words), not groups
    for group in groups:
        seen: set[int] = set()
        for name, sub in group.choices.items():
            if id(sub) not in seen:  # an argparse alias names the same parser again
                seen.add(id(sub))
                yield from _walk(sub, (*words, name))


COMMANDS = [(words, runnable) for words, runnable in _walk(parser()) if words]
RUNNABLE = [words for words, runnable in COMMANDS if runnable]


def _table_rows() -> list[str]:
    """The first cell of each row of the README's `## Commands` table."""
    section = README.read_text(encoding="utf-8").split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return [line.split(" | ", 1)[0].removeprefix("| ").strip() for line in section.splitlines()
            if line.startswith("| `hmo ")]


def _names(cell: str, command: str) -> bool:
    return cell == f"`hmo {command}`" or cell.startswith(f"`hmo {command} ")


def test_the_commands_are_found():
    # The walk itself: if argparse's internals it reads changed, this says so first.
    assert {"run", "check", "sql", "aliases add", "aliases list", "restore"} <= set(RUNNABLE)
    assert ("aliases", False) in COMMANDS
    assert _table_rows(), "README.md has no `## Commands` table of `hmo ...` rows"


@pytest.mark.parametrize("command", RUNNABLE)
def test_every_command_is_in_the_readme_commands_table(command):
    assert any(_names(cell, command) for cell in _table_rows()), (
        f"`hmo {command}` is a command, but README.md's commands table (## Commands) has no row `hmo {command} ...`")


def test_every_command_in_the_readme_table_exists():
    for cell in _table_rows():
        assert any(_names(cell, command) for command in RUNNABLE), f"README.md lists {cell}, which hmo does not have"


@pytest.mark.parametrize("command", ["", *(words for words, _ in COMMANDS)], ids=lambda c: c or "hmo")
def test_every_command_answers_help(command, capsys):
    argv = [*command.split(), "--help"]
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    out, err = capsys.readouterr()
    assert stopped.value.code == 0, err
    assert out.startswith(f"usage: hmo {command}".rstrip()) and err == ""
