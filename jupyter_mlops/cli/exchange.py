"""Runs in and out: ``import`` from another store or an MLflow server, ``export mlflow``."""

from __future__ import annotations

import click

from .options import format_option, progress_option, store_of, tracking_uri_option
from .output import emit, friendly_errors

__all__ = ["export_group", "import_command"]


@click.command("import")
@click.argument("source", metavar="STORE_DIR|mlflow")
@tracking_uri_option
@format_option
@click.pass_context
@friendly_errors
def import_command(
    ctx: click.Context,
    source: str,
    tracking_uri: str | None,
    experiment: str | None,
    output_format: str,
) -> None:
    """Copy runs into this store: from another store (STORE_DIR: a .mlops folder or the folder
    holding it), or with `import mlflow --tracking-uri URI` from an MLflow server.

    Runs already here are left as they are, so importing again changes nothing; each copied
    run keeps its origin.
    """
    store = store_of(ctx, create=True)
    if source == "mlflow":
        from ..mlflow_bridge import import_mlflow
        from ..text import mlflow_text

        result = import_mlflow(tracking_uri, experiment=experiment, store=store)
        text = mlflow_text(result)
    else:
        from ..merge import import_store
        from ..text import import_text

        result = import_store(source, store=store)
        text = import_text(result)
    emit(result, output_format, lambda _: text)


@click.group("export")
def export_group() -> None:
    """Send runs elsewhere: `export mlflow` to an MLflow tracking server."""


@export_group.command("mlflow")
@tracking_uri_option
@click.option("--where", help="Only runs matching this filter (as `runs --where`).")
@progress_option("over the runs")
@format_option
@click.pass_context
@friendly_errors
def export_mlflow_command(
    ctx: click.Context,
    tracking_uri: str | None,
    experiment: str | None,
    where: str | None,
    progress: bool,
    output_format: str,
) -> None:
    """Export runs to an MLflow tracking server through MLflow's own client: params, metric
    series, tags, datasets, artifacts, cells, executed notebooks and replay verdicts.

    Exporting again updates the MLflow runs made before instead of making new ones.
    """
    from ..mlflow_bridge import export_mlflow
    from ..text import mlflow_text

    result = export_mlflow(
        tracking_uri,
        experiment=experiment,
        where=where,
        progress=progress,
        store=store_of(ctx),
    )
    emit(result, output_format, mlflow_text)
