"""``jupyter mlops …`` (the ``jupyter-mlops`` script): a thin door onto the run API."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import MlopsError

__all__ = ["cli", "json_ready", "main"]

F = TypeVar("F", bound=Callable[..., Any])


def json_ready(value: Any) -> Any:
    """A copy fit for strict JSON: non-finite floats become "nan", "inf" or "-inf"."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(json_ready(data), indent=2, sort_keys=False, default=str))


def format_option(command: F) -> F:
    """The shared ``--format table|json`` option."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for people, json for tools (a stable shape, see the README).",
    )(command)


def _store(ctx: click.Context) -> Any:
    from .store import open_store

    directory = ctx.obj.get("store_dir") if ctx.obj else None
    return open_store(Path(directory) if directory else None, create=False)


def friendly_errors(command: F) -> F:
    """Turn our errors into a one-line message and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MlopsError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="jupyter-mlops", prog_name="jupyter-mlops")
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="JUPYTER_MLOPS_DIR",
    help="The store folder (default: JUPYTER_MLOPS_DIR, else the nearest .mlops/ "
    "up from here, else .mlops/ at the git root).",
)
@click.pass_context
def cli(ctx: click.Context, store_dir: Path | None) -> None:
    """Track notebook runs and check that they reproduce.

    RUN is a run id, a unique id prefix, or a run name (the newest run of that name).
    """
    ctx.ensure_object(dict)
    ctx.obj["store_dir"] = store_dir


@cli.command("runs")
@click.option("--notebook", help="Only runs of this notebook (a path).")
@click.option(
    "--where",
    help='Filter, e.g. "metrics.acc > 0.9 and params.lr <= 0.01 and status = finished".',
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@format_option
@click.pass_context
@friendly_errors
def runs_command(
    ctx: click.Context, notebook: str | None, where: str | None, limit: int, output_format: str
) -> None:
    """List runs, newest first."""
    from .run import list_runs

    store = _store(ctx)
    found = list_runs(where=where, notebook=notebook, limit=limit, store=store)
    if output_format == "json":
        _emit_json({"runs": found, "count": len(found)})
        return
    from .tables import runs_table

    click.echo(runs_table(found))


@cli.command("show")
@click.argument("run")
@format_option
@click.pass_context
@friendly_errors
def show_command(ctx: click.Context, run: str, output_format: str) -> None:
    """Show one run whole: params, metrics and their series, cells, data, environment."""
    from .run import get_run

    detail = get_run(run, store=_store(ctx)).to_dict(full=True)
    if output_format == "json":
        _emit_json(detail)
        return
    from .tables import run_text

    click.echo(run_text(detail))


@cli.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@format_option
@click.pass_context
@friendly_errors
def diff_command(ctx: click.Context, run_a: str, run_b: str, output_format: str) -> None:
    """Show what differs between two runs: params, metrics, data, cells, packages."""
    from .compare import diff_runs
    from .run import get_run

    store = _store(ctx)
    diff = diff_runs(
        get_run(run_a, store=store).to_dict(full=True),
        get_run(run_b, store=store).to_dict(full=True),
    )
    if output_format == "json":
        _emit_json(diff)
        return
    from .tables import diff_text

    click.echo(diff_text(diff))


def main() -> None:
    """Entry point of the ``jupyter-mlops`` script."""
    cli(prog_name="jupyter mlops")
