"""The README is the manual: every command is documented, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import click

from monitor.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "monitor") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme() -> None:
    paths = command_paths(main)
    assert "monitor feeds add" in paths  # the walk itself works
    missing = [p for p in paths if f"`{p}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"


def test_every_option_is_in_the_readme() -> None:
    missing = []
    for path in command_paths(main):
        command: click.Command = main
        for name in path.split()[1:]:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        for param in command.params:
            if isinstance(param, click.Option) and param.opts[0] not in README:
                missing.append(f"{path} {param.opts[0]}")
    assert not missing, f"options missing from README.md: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r'^TEST_COMMAND="(.+)"$', ci, re.MULTILINE)
    assert match, ".ci/run must define TEST_COMMAND"
    assert match.group(1) in README


def test_readme_opens_with_the_demo_command() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "monitor demo" in first_block
    assert "pip install" in first_block
