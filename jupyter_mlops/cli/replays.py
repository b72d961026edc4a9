"""The commands that run notebooks again: replay a run, sweep a grid, check (the CI gate)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..vocabulary import MODES
from .options import (
    autolog_option,
    confirm_option,
    data_threshold_options,
    data_thresholds,
    format_option,
    kernel_option,
    progress_option,
    store_of,
    timeout_option,
    tolerance_options,
    tolerances_of,
)
from .output import emit, friendly_errors

__all__ = ["check_command", "replay_command", "sweep_command"]


@click.command("replay")
@click.argument("run")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=MODES[0],
    show_default=True,
    help="recorded: the cells the run executed, in the order they ran; "
    "file: the saved notebook top to bottom with the run's params.",
)
@tolerance_options
@timeout_option
@kernel_option
@click.option(
    "--notebook",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File mode: run this notebook instead of the run's own.",
)
@progress_option("per cell")
@autolog_option
@confirm_option
@format_option
@click.pass_context
@friendly_errors
def replay_command(
    ctx: click.Context,
    run: str,
    mode: str,
    rtol: float,
    atol: float,
    tolerances: tuple[str, ...],
    timeout: float | None,
    kernel_name: str | None,
    notebook: Path | None,
    progress: bool,
    autolog: bool,
    confirm: bool,
    output_format: str,
) -> None:
    """Re-execute RUN in a fresh kernel and say whether it reproduced.

    Exits 0 when it reproduced (within tolerance counts), 1 when it diverged or failed.
    """
    from ..replays import replay
    from ..text import report_text
    from ..verdicts import verdict_exit_code

    report = replay(
        run,
        mode=mode,
        rtol=rtol,
        atol=atol,
        tolerances=tolerances_of(tolerances),
        timeout=timeout,
        kernel_name=kernel_name,
        notebook=notebook,
        progress=progress,
        autolog=autolog,
        confirm=confirm,
        store=store_of(ctx),
    )
    emit(report, output_format, report_text)
    sys.exit(verdict_exit_code(report))


class _SweepCommand(click.Command):
    """Reads ``-p NAME VALUE [VALUE ...]``: every value up to the next option is NAME's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        grouped: list[str] = []
        index = 0
        while index < len(args):
            token = args[index]
            if token in ("-p", "--param"):
                if index + 1 >= len(args):
                    raise click.UsageError("-p needs a NAME and at least one VALUE", ctx=ctx)
                name, values = args[index + 1], []
                index += 2
                while index < len(args) and not _is_option(args[index]):
                    values.append(args[index])
                    index += 1
                if not values:
                    raise click.UsageError(f"-p {name} needs at least one VALUE", ctx=ctx)
                grouped += ["--param", json.dumps([name, values])]
                continue
            grouped.append(token)
            index += 1
        return super().parse_args(ctx, grouped)


def _is_option(token: str) -> bool:
    if not token.startswith("-") or token == "-":
        return False
    try:
        float(token)  # a negative number is a value
    except ValueError:
        return True
    return False


@click.command("sweep", cls=_SweepCommand)
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME VALUE [VALUE ...]",
    help="A param and its values (repeatable); values are read as YAML: 0.1, true, rf.",
)
@click.option(
    "-f",
    "--grid",
    "grid_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A YAML file of NAME: [VALUES]; -p values are added to it.",
)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the executed notebooks go (default: .mlops/sweeps/SWEEP_ID/).",
)
@click.option(
    "--cwd",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Working directory of the kernels (default: the notebook's folder).",
)
@click.option("--kernel", "kernel_name", help="Kernel name (default: the notebook's).")
@timeout_option
@progress_option("over the points")
@autolog_option
@click.option(
    "--cluster",
    metavar="ADDRESS|local[:N]",
    help="Run the points on a Dask cluster: a scheduler address (tcp://host:8786) or "
    "local:N for N worker processes started here (needs the dask extra).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="With --cluster: try a point again this many times when its worker dies.",
)
@click.option(
    "--upload",
    is_flag=True,
    help="With --cluster: send the notebook's folder to the workers (else they must see "
    "its files on a shared path).",
)
@click.option(
    "--allow-new",
    is_flag=True,
    help="Inject a param the notebook's parameters cell does not assign (else an error "
    "before anything runs, which catches a misspelled -p).",
)
@format_option
@click.pass_context
@friendly_errors
def sweep_command(
    ctx: click.Context,
    notebook: Path,
    params: tuple[str, ...],
    grid_file: Path | None,
    workers: int,
    output_dir: Path | None,
    cwd: Path | None,
    kernel_name: str | None,
    timeout: float | None,
    progress: bool,
    autolog: bool,
    cluster: str | None,
    retries: int,
    upload: bool,
    allow_new: bool,
    output_format: str,
) -> None:
    """Run NOTEBOOK over the cartesian grid of params with Papermill.

    Each point is a tracked run of kind sweep (the notebook need not mention the tracker).
    Example: jupyter mlops sweep train.ipynb -p lr 0.1 0.01 -p depth 3 5 --workers 2
    Exits 1 when any point failed.
    """
    from ..sweeps import load_grid, parse_value, sweep
    from ..text import sweep_table

    grid: dict[str, list[Any]] = load_grid(grid_file) if grid_file else {}
    for encoded in params:
        try:
            name, values = json.loads(encoded)
        except ValueError:
            raise click.BadParameter("use -p NAME VALUE [VALUE ...]", param_hint="-p") from None
        grid[name] = [parse_value(v) for v in values]
    if not grid:
        raise click.UsageError("give the grid with -p NAME VALUE ... or -f grid.yaml")
    result = sweep(
        notebook,
        grid,
        workers=workers,
        output_dir=output_dir,
        cwd=cwd,
        kernel_name=kernel_name,
        timeout=timeout,
        progress=progress,
        autolog=autolog,
        store=store_of(ctx, create=True),
        cluster=cluster,
        retries=retries,
        upload=upload,
        allow_new=allow_new,
    )
    emit(result, output_format, sweep_table)
    sys.exit(1 if result["failed"] else 0)


@click.command("check")
@click.argument("target", metavar="RUN_OR_NOTEBOOK")
@click.option(
    "--metric",
    "thresholds",
    multiple=True,
    metavar="KEY>=X",
    help="A metric threshold the new run must meet (repeatable): acc>=0.9, loss<0.5; or "
    "relative to the notebook's history: acc>=best-0.01, acc>=previous, acc>=baseline.",
)
@click.option("--baseline", metavar="RUN", help="The run that KEY>=baseline compares with.")
@click.option(
    "--trend",
    "trends",
    multiple=True,
    metavar="KEY",
    help="Fail when KEY slid by more than --max-drop over the last --window runs of the "
    "notebook (repeatable; loss-like keys slide up).",
)
@click.option("--window", type=click.IntRange(min=3), default=10, show_default=True)
@click.option("--max-drop", type=click.FloatRange(min=0), default=0.02, show_default=True)
@click.option(
    "--data",
    "data_checks",
    multiple=True,
    metavar="PATH=RUN:DATASET",
    help="Check a data file against a recorded dataset (repeatable); fails on schema "
    "problems or drift.",
)
@data_threshold_options
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the checks as JUnit XML here.",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    help="Replay mode (default: recorded for a run, file for a notebook).",
)
@tolerance_options
@timeout_option
@click.option(
    "-p",
    "--param",
    "params",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A notebook parameter (repeatable), injected as Papermill does.",
)
@kernel_option
@progress_option("per cell")
@autolog_option
@confirm_option
@format_option
@click.pass_context
@friendly_errors
def check_command(
    ctx: click.Context,
    target: str,
    thresholds: tuple[str, ...],
    trends: tuple[str, ...],
    window: int,
    max_drop: float,
    tolerances: tuple[str, ...],
    params: tuple[tuple[str, str], ...],
    data_checks: tuple[str, ...],
    thresholds_file: Path | None,
    threshold_options: tuple[str, ...],
    ignored: tuple[str, ...],
    junit: Path | None,
    output_format: str,
    **given: Any,
) -> None:
    """A CI gate: replay RUN (or run NOTEBOOK with its own parameters against its newest
    earlier run with the same params), apply the metric thresholds and trends, check data
    files and the run's serving samples, exit 1 if anything failed.
    """
    from ..gate import Trend, check, parse_threshold, write_junit
    from ..sweeps import parse_value
    from ..text import check_text

    # ``given``: the options check() takes as they are (mode, rtol, atol, timeout, progress,
    # autolog, confirm, kernel_name, baseline), named alike on both sides.
    result = check(
        target,
        [parse_threshold(text) for text in thresholds],
        tolerances=tolerances_of(tolerances),
        parameters={name: parse_value(value) for name, value in params},
        trends=[Trend(key, window, max_drop) for key in trends],
        data=data_checks,
        data_thresholds=data_thresholds(thresholds_file, threshold_options, ignored),
        store=store_of(ctx, create=True),
        **given,
    )
    if junit is not None:
        write_junit(result, junit)
    emit(result, output_format, check_text)
    sys.exit(0 if result["passed"] else 1)
