"""Data tests: ``data check`` of a file, or of a run's serving samples, against a recorded
dataset."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import (
    CommandGroup,
    data_threshold_options,
    data_thresholds,
    format_option,
    store_of,
)
from .output import emit_json, friendly_errors

__all__ = ["data_group"]


@click.group("data", cls=CommandGroup)
def data_group() -> None:
    """Data tests: check new data against the recorded profile of a dataset."""


@data_group.command("check")
@click.argument(
    "path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--against", metavar="RUN:DATASET", help="The recorded dataset to check PATH against."
)
@click.option(
    "--serving",
    metavar="RUN",
    help="Check RUN's serving samples against its training datasets of the same names.",
)
@data_threshold_options
@click.option("--no-record", is_flag=True, help="Do not store the check in the store.")
@format_option
@click.pass_context
@friendly_errors
def data_check_command(
    ctx: click.Context,
    path: Path | None,
    against: str | None,
    serving: str | None,
    thresholds_file: Path | None,
    threshold_options: tuple[str, ...],
    ignored: tuple[str, ...],
    no_record: bool,
    output_format: str,
) -> None:
    """Check PATH (CSV, TSV, Parquet, Feather, JSON lines) against RUN:DATASET: schema
    problems and drift per column. Exit 0 passed, 1 failed, 2 usage error."""
    from ..datachecks import check_data, check_serving
    from ..text import data_check_text

    if (path is None) == (serving is None) or (path is not None and against is None):
        raise click.UsageError("give PATH --against RUN:DATASET, or --serving RUN")
    limits = data_thresholds(thresholds_file, threshold_options, ignored)
    store = store_of(ctx)
    if path is not None and against is not None:
        reports = [check_data(path, against, thresholds=limits, record=not no_record, store=store)]
    elif serving is not None:
        reports = check_serving(serving, thresholds=limits, record=not no_record, store=store)
        if not reports:
            raise click.UsageError(
                f"run {serving!r} has no serving sample with a training dataset of its name"
            )
    passed = all(report["passed"] for report in reports)
    if output_format == "json":
        emit_json(reports[0] if path is not None else {"passed": passed, "checks": reports})
    else:
        click.echo("\n\n".join(data_check_text(report) for report in reports))
    sys.exit(0 if passed else 1)
