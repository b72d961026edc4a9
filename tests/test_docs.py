"""The README cannot fall behind: every subcommand, magic and API function is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click

import jupyter_mlops
from jupyter_mlops.cli import cli
from jupyter_mlops.magics import TrackMagics

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_subcommand_is_in_the_readme() -> None:
    ctx = click.Context(cli)
    commands = cli.list_commands(ctx)
    assert commands, "the CLI has no subcommands"
    for name in commands:
        assert f"jupyter mlops {name}" in README, f"`jupyter mlops {name}` is not in the README"
        command = cli.get_command(ctx, name)
        assert command is not None and command.help, f"`{name}` has no --help text"


def test_every_magic_command_is_in_the_readme() -> None:
    names = sorted(
        # A command is typed with hyphens where its handler's name has underscores.
        name.removeprefix("_do_").replace("_", "-")
        for name in vars(TrackMagics)
        if name.startswith("_do_")
    )
    aliases = {"metrics"}
    for name in names:
        if name in aliases:
            continue
        assert f"%track {name}" in README, f"`%track {name}` is not in the README"
    assert "%%track" in README


def test_every_public_function_is_in_the_readme() -> None:
    for name in jupyter_mlops.__all__:
        if name.startswith("_") or name.endswith("_ipython_extension") or name[0].isupper():
            continue
        assert re.search(rf"\b{name}\(", README), f"`{name}()` is not in the README"


def test_readme_starts_with_setup_and_test_commands() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert 'pip install -e ".[test]"' in first_block
    assert "notebooks/quickstart.ipynb" in first_block
    assert "python -m pytest" in first_block
