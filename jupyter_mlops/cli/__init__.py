"""``jupyter mlops …`` (the ``jupyter-mlops`` script): a thin door onto the run API.

The group and its ``--store`` option live here; the subcommands, by what they work on, in
``runs``, ``models``, ``replays``, ``data`` and ``exchange``; the options several share in
``options``; JSON output and one-line errors in ``output``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..kernel_env import STORE_DIR
from . import data, exchange, models, replays, runs
from .options import CommandGroup, store_folder

__all__ = ["cli", "main"]


@click.group(
    cls=CommandGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="jupyter-mlops", prog_name="jupyter-mlops")
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=STORE_DIR,
    callback=store_folder,
    help="The store: a .mlops/ folder or the project folder holding it; anywhere on the line "
    "(default: JUPYTER_MLOPS_DIR, else the nearest .mlops/ up from here, else .mlops/ at the "
    "git root).",
)
@click.pass_context
def cli(ctx: click.Context, store_dir: Path | None) -> None:
    """Track notebook runs and check that they reproduce.

    RUN is a run id, a unique id prefix, or a run name (the newest run of that name).
    """
    ctx.ensure_object(dict)
    ctx.obj["store_dir"] = store_dir


for _command in (
    runs.runs_command,
    runs.show_command,
    runs.diff_command,
    runs.tag_command,
    runs.rename_command,
    runs.note_command,
    runs.delete_command,
    runs.artifact_command,
    models.register_command,
    models.models_command,
    models.alias_command,
    replays.replay_command,
    replays.sweep_command,
    replays.check_command,
    exchange.import_command,
    exchange.export_group,
    data.data_group,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``jupyter-mlops`` script."""
    from ..execute import skip_slow_optional_imports

    skip_slow_optional_imports()
    cli(prog_name="jupyter mlops")
