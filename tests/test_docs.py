"""The README cannot fall behind: every subcommand, magic and API function is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

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


def _commands(group: click.Group, path: list[str]) -> list[tuple[str, click.Command]]:
    ctx = click.Context(group)
    found: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += _commands(command, [*path, name])
        elif command is not None:
            found.append((" ".join([*path, name]), command))
    return found


def test_every_option_is_on_its_commands_readme_line() -> None:
    missing = []
    for name, command in _commands(cli, []):
        lines = "\n".join(line for line in README.splitlines() if f"jupyter mlops {name}" in line)
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            names = [o for o in [*param.opts, *param.secondary_opts] if o != "--help"]
            if not any(re.search(re.escape(o) + r"(?![\w-])", lines) for o in names):
                missing.append(f"jupyter mlops {name} {'/'.join(names)}")
    assert not missing, f"options missing from their command's README line: {missing}"
    for param in cli.params:
        for option in getattr(param, "opts", []):
            assert option in README, f"`jupyter mlops {option}` is not in the README"


def test_every_json_key_is_in_the_readme(tmp_path: Path) -> None:
    """The keys of runs, show, models and artifact --list JSON all appear in the README (as
    `"key"` in an example or `` `key` `` where a shape is described)."""
    from jupyter_mlops.registry import models, register_model
    from jupyter_mlops.server.api import run_view

    (tmp_path / "data.csv").write_text("x\n1\n2\n")
    with jupyter_mlops.start_run(name="documented") as run:
        run.log_params({"lr": 0.1})
        with pytest.warns(UserWarning, match="param 'lr' was 0.1"):
            run.log_params({"lr": 0.2})
        run.log_metric("acc", 0.9)
        run.log_data("train", tmp_path / "data.csv")
        run.log_artifact(tmp_path / "data.csv")
        run.log_artifact(LinearModel(), name="model")
    record = jupyter_mlops.get_run(run.id)
    register_model("documented", record, "model")
    listed = jupyter_mlops.run.list_runs()[0]
    shapes = {
        "runs": listed,
        "replay_summary": listed["replay_summary"],
        "show": run_view(record, 1_000),
        "param_history": record.param_history()["lr"][0],
        "artifacts": record.artifacts()[0],
        "models": models()[0],
    }
    missing = [
        f"{shape}.{key}"
        for shape, data in shapes.items()
        for key in data
        if f'"{key}"' not in README and f"`{key}`" not in README
    ]
    assert not missing, f"JSON keys missing from the README: {missing}"


class LinearModel:
    """A model class of the notebook's own (pickled as such)."""

    coef = 0.5


def test_every_module_is_in_the_readmes_layout() -> None:
    # The developer section's table of layers names every module and package of the package.
    package = Path(jupyter_mlops.__file__).parent
    layout = README[README.index("The package, layer by layer") :]
    layout = layout[: layout.index("\n\n", layout.index("| layer |"))]
    named = set(re.findall(r"`([a-z_]+(?:\.py|/))`", layout))
    modules = {p.name for p in package.glob("*.py")} | {
        f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()
    }
    assert modules - named == set(), "modules missing from the README's layout"
    assert named - modules == set(), "the README's layout names modules that do not exist"
