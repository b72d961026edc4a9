"""The commands on recorded runs: list, show and diff them; tag, rename, note, delete; get an
artifact back."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..vocabulary import KINDS
from .options import (
    MAX_LIMIT,
    format_option,
    home_expanded,
    store_of,
    where_option,
)
from .output import emit_json, emit_json_streaming, friendly_errors

__all__ = [
    "artifact_command",
    "delete_command",
    "diff_command",
    "note_command",
    "rename_command",
    "runs_command",
    "show_command",
    "tag_command",
]


@click.command("runs")
@click.option(
    "--notebook",
    callback=lambda ctx, param, value: home_expanded(value),
    help="Only runs of this notebook (a path).",
)
@click.option(
    "--where",
    help='Filter, e.g. "metrics.acc > 0.9 and params.lr <= 0.01 and status = finished".',
)
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True)
@click.option(
    "--order-by",
    metavar="KEY",
    help="Sort by start_time, end_time, duration, name, status, kind, notebook, id, "
    "params.K or metrics.K (runs without it last).",
)
@click.option("--asc", is_flag=True, help="Smallest first (default: largest, newest first).")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KINDS),
    help="Only runs of this kind (repeatable); --kind replay lists replays.",
)
@click.option(
    "--replays",
    "with_replays",
    is_flag=True,
    help="List replay runs as runs of their own too (by default each run shows how often it "
    "was replayed and the latest verdict instead).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people, json for tools (a stable shape, see the README), csv for "
    "spreadsheets (a row a run, params.* and metrics.* columns).",
)
@click.pass_context
@friendly_errors
def runs_command(
    ctx: click.Context,
    notebook: str | None,
    where: str | None,
    limit: int,
    order_by: str | None,
    asc: bool,
    kinds: tuple[str, ...],
    with_replays: bool,
    output_format: str,
) -> None:
    """List runs, newest first; replays are counted under their run, not listed."""
    from ..run import list_runs

    store = store_of(ctx)
    found = list_runs(
        where=where,
        notebook=notebook,
        limit=limit,
        order_by=order_by,
        descending=not asc,
        kinds=kinds,
        replays=with_replays,
        store=store,
    )
    if output_format == "json":
        emit_json({"runs": found, "count": len(found)})
        return
    if output_format == "csv":
        from ..text import runs_csv

        click.echo(runs_csv(found), nl=False)
        return
    from ..text import runs_table

    click.echo(runs_table(found))


@click.command("show")
@click.argument("run")
@click.option(
    "--all-points",
    is_flag=True,
    help="JSON: every point of every metric series, streamed (default: each series thinned "
    "to its shape in about 1,000 points, with its full length in metric_series_length).",
)
@format_option
@click.pass_context
@friendly_errors
def show_command(ctx: click.Context, run: str, all_points: bool, output_format: str) -> None:
    """Show one run whole: params, metrics and their series, cells, data, environment."""
    from ..run import get_run
    from ..server.api import DEFAULT_POINTS, run_view

    record = get_run(run, store=store_of(ctx))
    if output_format == "json" and all_points:
        # Series left out of the view (a limit of 0 points), then written as they are read.
        emit_json_streaming(run_view(record, 0, thin=False), record.store.iter_metric_series)
        return
    detail = run_view(record, DEFAULT_POINTS)
    if output_format == "json":
        emit_json(detail)
        return
    from ..text import run_text

    click.echo(run_text(detail))


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@format_option
@click.pass_context
@friendly_errors
def diff_command(ctx: click.Context, run_a: str, run_b: str, output_format: str) -> None:
    """Show what differs between two runs: params, metrics, data, cells, packages."""
    from ..compare import diff_runs
    from ..run import get_run

    store = store_of(ctx)
    diff = diff_runs(
        get_run(run_a, store=store).to_dict(full=True),
        get_run(run_b, store=store).to_dict(full=True),
    )
    if output_format == "json":
        emit_json(diff)
        return
    from ..text import diff_text

    click.echo(diff_text(diff))


def _target_runs(ctx: click.Context, refs: tuple[str, ...], where: str | None) -> list[str]:
    """The ids of the runs a managing command works on: RUN arguments, or ``--where``."""
    from ..run import list_runs

    store = store_of(ctx)
    if where is not None:
        if refs:
            raise click.UsageError("give RUN or --where, not both")
        return [run["id"] for run in list_runs(where=where, store=store)]
    if not refs:
        raise click.UsageError("give RUN (or --where EXPR for many)")
    return [store.resolve_run(ref) for ref in refs]


def _changed(ids: list[str], what: str, output_format: str) -> None:
    if output_format == "json":
        emit_json({"runs": ids, "count": len(ids)})
    else:
        click.echo(f"{what} {len(ids)} run{'' if len(ids) == 1 else 's'}")


@click.command("tag")
@click.argument("items", nargs=-1, metavar="[RUN] KEY=VALUE...")
@click.option(
    "--remove", "removed", multiple=True, metavar="KEY", help="Remove a tag (repeatable)."
)
@where_option
@format_option
@click.pass_context
@friendly_errors
def tag_command(
    ctx: click.Context,
    items: tuple[str, ...],
    removed: tuple[str, ...],
    where: str | None,
    output_format: str,
) -> None:
    """Set tags (KEY=VALUE) and remove tags (--remove KEY) of RUN, or of every run --where."""
    from ..run import update_run

    refs = items[:1] if where is None else ()
    pairs = items[len(refs) :]
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"a tag is KEY=VALUE, not {pair!r}")
        tags[key] = value
    if not tags and not removed:
        raise click.UsageError("give KEY=VALUE tags or --remove KEY")
    ids = _target_runs(ctx, refs, where)
    for run_id in ids:
        update_run(run_id, tags=tags, remove_tags=removed, store=store_of(ctx))
    _changed(ids, "tagged", output_format)


@click.command("rename")
@click.argument("run")
@click.argument("name")
@format_option
@click.pass_context
@friendly_errors
def rename_command(ctx: click.Context, run: str, name: str, output_format: str) -> None:
    """Give RUN a new NAME."""
    from ..run import update_run

    record = update_run(_target_runs(ctx, (run,), None)[0], name=name, store=store_of(ctx))
    _changed([record.id], f"renamed to {record.name!r}:", output_format)


@click.command("note")
@click.argument("items", nargs=-1, metavar="[RUN] TEXT")
@where_option
@format_option
@click.pass_context
@friendly_errors
def note_command(
    ctx: click.Context, items: tuple[str, ...], where: str | None, output_format: str
) -> None:
    """Set the note of RUN (or of every run --where) to TEXT; "" clears it."""
    from ..run import update_run

    refs = items[:1] if where is None else ()
    text = items[len(refs) :]
    if len(text) != 1:
        raise click.UsageError('give the note as one TEXT argument (quote it; "" clears it)')
    ids = _target_runs(ctx, refs, where)
    for run_id in ids:
        update_run(run_id, note=text[0], store=store_of(ctx))
    _changed(ids, "noted", output_format)


@click.command("delete")
@click.argument("refs", nargs=-1, metavar="RUN...")
@where_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask first.")
@format_option
@click.pass_context
@friendly_errors
def delete_command(
    ctx: click.Context, refs: tuple[str, ...], where: str | None, yes: bool, output_format: str
) -> None:
    """Delete runs with their params, metrics, cells and replays (asks first unless --yes)."""
    from ..run import delete_run, get_run

    ids = list(dict.fromkeys(_target_runs(ctx, refs, where)))
    if not ids:
        _changed(ids, "deleted", output_format)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"deleting {len(ids)} run(s) needs --yes when not at a terminal")
        names = ", ".join(get_run(i, store=store_of(ctx)).name for i in ids[:5])
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        click.confirm(f"Delete {len(ids)} run(s): {names}{more}?", abort=True)
    for run_id in ids:
        delete_run(run_id, store=store_of(ctx))
    _changed(ids, "deleted", output_format)


@click.command("artifact")
@click.argument("run")
@click.argument("name", required=False)
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Where to write it (a file, or a folder to write NAME in; - for standard output; "
    "default: NAME in the current folder).",
)
@click.option("--force", is_flag=True, help="Overwrite a file already at the output path.")
@click.option("--list", "list_only", is_flag=True, help="List RUN's artifacts instead.")
@format_option
@click.pass_context
@friendly_errors
def artifact_command(
    ctx: click.Context,
    run: str,
    name: str | None,
    output: str | None,
    force: bool,
    list_only: bool,
    output_format: str,
) -> None:
    """Get the artifact NAME of RUN back as a file (or list RUN's artifacts with --list)."""
    from ..run import get_run

    record = get_run(run, store=store_of(ctx))
    if list_only or name is None:
        if not list_only:
            raise click.UsageError("give the artifact's NAME, or --list")
        rows = record.artifacts()
        if output_format == "json":
            emit_json({"run": record.id, "artifacts": rows})
            return
        from ..text import artifacts_table

        click.echo(artifacts_table(rows))
        return
    artifact = record.artifact(name)
    payload = artifact.read_bytes()
    if output == "-":
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return
    target = Path(home_expanded(output) or ".")
    if output is None or target.is_dir():
        target = target / Path(name).name
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; pass --force to overwrite it")
    try:
        target.write_bytes(payload)
    except OSError as exc:
        raise click.UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    if output_format == "json":
        emit_json({"run": record.id, "name": name, "path": str(target), "bytes": len(payload)})
    else:
        click.echo(f"{target} ({len(payload)} bytes, {artifact.kind})")
