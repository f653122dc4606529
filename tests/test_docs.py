"""The CLI documents itself: every command's help ends with an example (STYLE.md habit 11)."""

from __future__ import annotations

import click
import pytest

from sipflow.cli import main


def _commands() -> list[tuple[str, click.Command]]:
    assert isinstance(main, click.Group)
    return sorted(main.commands.items())


@pytest.mark.parametrize(("name", "command"), _commands())
def test_command_has_help_with_example(name: str, command: click.Command) -> None:
    assert command.help, f"sipflow {name} has no help"
    assert "Example:" in command.help
    assert f"sipflow {name} " in command.help.split("Example:", 1)[1]


def test_readme_mentions_every_command() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for name, _ in _commands():
        assert f"sipflow {name}" in readme
