"""``jupyter mlops …`` (the ``jupyter-mlops`` script): a thin door onto the run API."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable, Iterable
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


def _point_json(point: dict[str, Any]) -> str:
    """One metric point as ``json.dumps(json_ready(point))`` writes it, a few times faster."""
    value = point["value"]
    shown = repr(value) if math.isfinite(value) else json.dumps(json_ready(value))
    cell = "null" if point["cell"] is None else int(point["cell"])
    at = "null" if point["time"] is None else repr(float(point["time"]))
    return f'{{"step": {int(point["step"])}, "value": {shown}, "time": {at}, "cell": {cell}}}'


def _emit_json_streaming(
    detail: dict[str, Any], points_of: Callable[[str, str], Iterable[dict[str, Any]]]
) -> None:
    """A run's JSON with its ``metric_series`` written point by point as they are read, so
    memory does not grow with the series (same shape as ``_emit_json`` gives)."""
    out = sys.stdout
    head = {key: value for key, value in detail.items() if key != "metric_series"}
    text = json.dumps(json_ready(head), indent=2, default=str)
    out.write(text[: text.rindex("}")].rstrip() + ',\n  "metric_series": {')
    for number, key in enumerate(detail["metrics"]):
        out.write(("," if number else "") + f"\n    {json.dumps(key)}: [")
        batch: list[str] = []
        for index, point in enumerate(points_of(detail["id"], key)):
            batch.append(("," if index else "") + "\n      " + _point_json(point))
            if len(batch) >= 1_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch) + "\n    ]")
    out.write("\n  }\n}\n")
    out.flush()


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
            message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            click.echo(f"Error: {message}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _home_expanded(path: str | None) -> str | None:
    """A path option with ``~`` expanded, or a usage error (``~nobody`` has no home)."""
    if not path:
        return path
    try:
        return str(Path(path).expanduser())
    except RuntimeError as exc:
        raise click.BadParameter(f"{path!r}: {exc}") from None


# As many runs as anyone lists; far below SQLite's 64-bit integers.
MAX_LIMIT = 1_000_000_000


class _Commands(click.Group):
    """The command group; refuses arguments that are not valid UTF-8 before anything runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Python hands bytes that are not UTF-8 over as lone surrogates; no store, path or
        # expression can hold them, so they are refused here in one line.
        for index, arg in enumerate(args, start=1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                shown = _undecoded(arg)[:60]
                click.echo(f"Error: argument {index} ({shown!r}) is not valid UTF-8", err=True)
                ctx.exit(2)
        if ctx.parent is None:
            args = _store_first(args)
        return super().parse_args(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; a usage error is one line (what was wrong, and where help is)."""
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "jupyter mlops"
            message = " ".join(exc.format_message().split()).rstrip(".")
            click.echo(f"Error: {message} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        # ``ctx.exit(code)`` (help, version, a refused argument) comes back as its code.
        sys.exit(result if isinstance(result, int) else 0)


def _undecoded(arg: str) -> bytes:
    """The bytes an argument came from; a lone surrogate no byte decodes to is escaped."""
    try:
        return arg.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return arg.encode("utf-8", "backslashreplace")


def _store_first(args: list[str]) -> list[str]:
    """The line with ``--store DIR`` moved before the subcommand, wherever it was given."""
    rest: list[str] = []
    moved: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--":
            rest += args[index:]
            break
        if token == "--store" and index + 1 < len(args):
            moved += args[index : index + 2]
            index += 2
            continue
        if token.startswith("--store="):
            moved.append(token)
        else:
            rest.append(token)
        index += 1
    return moved + rest


def _store_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """The store folder: a project folder holding ``.mlops/`` stands for that ``.mlops/``."""
    if value is None:
        return None
    value = Path(_home_expanded(str(value)) or value)
    inner = value / ".mlops"
    if value.name != ".mlops" and not (value / "tracking.db").exists() and inner.is_dir():
        return inner
    return value


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="jupyter-mlops", prog_name="jupyter-mlops")
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="JUPYTER_MLOPS_DIR",
    callback=_store_folder,
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


@cli.command("runs")
@click.option(
    "--notebook",
    callback=lambda ctx, param, value: _home_expanded(value),
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
    type=click.Choice(["interactive", "replay", "sweep", "script"]),
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
    from .run import list_runs

    store = _store(ctx)
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
        _emit_json({"runs": found, "count": len(found)})
        return
    if output_format == "csv":
        from .tables import runs_csv

        click.echo(runs_csv(found), nl=False)
        return
    from .tables import runs_table

    click.echo(runs_table(found))


@cli.command("show")
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
    from .run import get_run
    from .server.api import DEFAULT_POINTS, run_view

    record = get_run(run, store=_store(ctx))
    if output_format == "json" and all_points:
        # Series left out of the view (a limit of 0 points), then written as they are read.
        _emit_json_streaming(run_view(record, 0, thin=False), record.store.iter_metric_series)
        return
    detail = run_view(record, DEFAULT_POINTS)
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


def _target_runs(ctx: click.Context, refs: tuple[str, ...], where: str | None) -> list[str]:
    """The ids of the runs a managing command works on: RUN arguments, or ``--where``."""
    from .run import list_runs

    store = _store(ctx)
    if where is not None:
        if refs:
            raise click.UsageError("give RUN or --where, not both")
        return [run["id"] for run in list_runs(where=where, store=store)]
    if not refs:
        raise click.UsageError("give RUN (or --where EXPR for many)")
    return [store.resolve_run(ref) for ref in refs]


def where_option(command: F) -> F:
    """The ``--where`` option of the commands that change runs."""
    return click.option(
        "--where", metavar="EXPR", help="Every run matching this filter instead of RUN."
    )(command)


def _changed(ids: list[str], what: str, output_format: str) -> None:
    if output_format == "json":
        _emit_json({"runs": ids, "count": len(ids)})
    else:
        click.echo(f"{what} {len(ids)} run{'' if len(ids) == 1 else 's'}")


@cli.command("tag")
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
    from .run import update_run

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
        update_run(run_id, tags=tags, remove_tags=removed, store=_store(ctx))
    _changed(ids, "tagged", output_format)


@cli.command("rename")
@click.argument("run")
@click.argument("name")
@format_option
@click.pass_context
@friendly_errors
def rename_command(ctx: click.Context, run: str, name: str, output_format: str) -> None:
    """Give RUN a new NAME."""
    from .run import update_run

    record = update_run(_target_runs(ctx, (run,), None)[0], name=name, store=_store(ctx))
    _changed([record.id], f"renamed to {record.name!r}:", output_format)


@cli.command("note")
@click.argument("items", nargs=-1, metavar="[RUN] TEXT")
@where_option
@format_option
@click.pass_context
@friendly_errors
def note_command(
    ctx: click.Context, items: tuple[str, ...], where: str | None, output_format: str
) -> None:
    """Set the note of RUN (or of every run --where) to TEXT; "" clears it."""
    from .run import update_run

    refs = items[:1] if where is None else ()
    text = items[len(refs) :]
    if len(text) != 1:
        raise click.UsageError('give the note as one TEXT argument (quote it; "" clears it)')
    ids = _target_runs(ctx, refs, where)
    for run_id in ids:
        update_run(run_id, note=text[0], store=_store(ctx))
    _changed(ids, "noted", output_format)


@cli.command("delete")
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
    from .run import delete_run, get_run

    ids = list(dict.fromkeys(_target_runs(ctx, refs, where)))
    if not ids:
        _changed(ids, "deleted", output_format)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"deleting {len(ids)} run(s) needs --yes when not at a terminal")
        names = ", ".join(get_run(i, store=_store(ctx)).name for i in ids[:5])
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        click.confirm(f"Delete {len(ids)} run(s): {names}{more}?", abort=True)
    for run_id in ids:
        delete_run(run_id, store=_store(ctx))
    _changed(ids, "deleted", output_format)


@cli.command("artifact")
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
    from .run import get_run

    record = get_run(run, store=_store(ctx))
    if list_only or name is None:
        if not list_only:
            raise click.UsageError("give the artifact's NAME, or --list")
        rows = record.artifacts()
        if output_format == "json":
            _emit_json({"run": record.id, "artifacts": rows})
            return
        from .tables import artifacts_table

        click.echo(artifacts_table(rows))
        return
    artifact = record.artifact(name)
    payload = artifact.read_bytes()
    if output == "-":
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return
    target = Path(_home_expanded(output) or ".")
    if output is None or target.is_dir():
        target = target / Path(name).name
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; pass --force to overwrite it")
    try:
        target.write_bytes(payload)
    except OSError as exc:
        raise click.UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    if output_format == "json":
        _emit_json({"run": record.id, "name": name, "path": str(target), "bytes": len(payload)})
    else:
        click.echo(f"{target} ({len(payload)} bytes, {artifact.kind})")


@cli.command("register")
@click.argument("run")
@click.argument("name")
@click.option("--artifact", help="The run's artifact to register (default: its one model).")
@click.option(
    "--require-reproduced",
    is_flag=True,
    help="Refuse unless the run's latest replay reproduced it (within tolerance counts).",
)
@format_option
@click.pass_context
@friendly_errors
def register_command(
    ctx: click.Context,
    run: str,
    name: str,
    artifact: str | None,
    require_reproduced: bool,
    output_format: str,
) -> None:
    """Register RUN's model as the next version of the model NAME."""
    from .registry import register_model

    version = register_model(
        name, run, artifact, require_reproduced=require_reproduced, store=_store(ctx)
    )
    if output_format == "json":
        _emit_json(version)
    else:
        click.echo(
            f"registered {version['name']}/{version['version']}: {version['artifact']} of run "
            f"{version['run_id'][:12]} (verdict: {version['verdict'] or 'never replayed'})"
        )


@cli.command("models")
@click.argument("name", required=False)
@format_option
@click.pass_context
@friendly_errors
def models_command(ctx: click.Context, name: str | None, output_format: str) -> None:
    """List registered models and their versions (of NAME only when given)."""
    from .registry import models

    found = models(name, store=_store(ctx))
    if output_format == "json":
        _emit_json({"versions": found, "count": len(found)})
        return
    from .tables import models_table

    click.echo(models_table(found))


@cli.command("alias")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.argument("alias")
@click.option("--remove", is_flag=True, help="Remove ALIAS from NAME instead (VERSION unused).")
@format_option
@click.pass_context
@friendly_errors
def alias_command(
    ctx: click.Context, name: str, version: int, alias: str, remove: bool, output_format: str
) -> None:
    """Point ALIAS (prod, staging) of the model NAME at VERSION, moving it from another."""
    from .registry import set_alias

    result = set_alias(name, None if remove else version, alias, store=_store(ctx))
    if output_format == "json":
        _emit_json(result)
    elif remove:
        click.echo(f"removed {name}@{alias}")
    else:
        click.echo(f"{name}@{alias} is now {name}/{version}")


def _tolerances(values: tuple[str, ...]) -> dict[str, tuple[float, float] | float]:
    """``--tol KEY=RTOL`` or ``--tol KEY=RTOL,ATOL`` into per-metric tolerances."""
    out: dict[str, tuple[float, float] | float] = {}
    for text in values:
        key, sep, value = text.partition("=")
        try:
            numbers = [float(v) for v in value.split(",")] if sep and key.strip() else []
        except ValueError:
            numbers = []
        if not 1 <= len(numbers) <= 2 or any(n < 0 or n != n for n in numbers):
            raise click.BadParameter(
                f"{text!r} is not KEY=RTOL or KEY=RTOL,ATOL", param_hint="--tol"
            )
        out[key.strip()] = numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])
    return out


def tolerance_options(command: F) -> F:
    """The shared ``--rtol``, ``--atol`` and ``--tol`` options of replay and check."""
    from .compare import DEFAULT_ATOL, DEFAULT_RTOL

    command = click.option(
        "--tol",
        "tolerances",
        multiple=True,
        metavar="KEY=RTOL[,ATOL]",
        help="A tolerance for one metric (repeatable), e.g. --tol loss=1e-3.",
    )(command)
    command = click.option(
        "--atol",
        type=click.FloatRange(min=0),
        default=DEFAULT_ATOL,
        show_default=True,
        help="Absolute tolerance of metrics.",
    )(command)
    return click.option(
        "--rtol",
        type=click.FloatRange(min=0),
        default=DEFAULT_RTOL,
        show_default=True,
        help="Relative tolerance of metrics: float noise passes, real change fails.",
    )(command)


def autolog_option(command: F) -> F:
    """The shared ``--autolog/--no-autolog`` option of replay, sweep and check."""
    return click.option(
        "--autolog/--no-autolog",
        default=True,
        show_default=True,
        help="Autolog fits, scores, models and system metrics in the kernel "
        "(a replay autologs only when its original run did).",
    )(command)


def confirm_option(command: F) -> F:
    """The shared ``--confirm`` option of replay and check."""
    return click.option(
        "--confirm",
        is_flag=True,
        help="When the replay diverges, replay once more: replays that differ from each other "
        "mean a nondeterministic cell, replays that agree a changed environment or input "
        "(done anyway when no cause is found).",
    )(command)


def data_threshold_options(command: F) -> F:
    """The shared ``--thresholds FILE``, ``--threshold [COLUMN:]KEY=X`` and ``--ignore``."""
    command = click.option(
        "--ignore",
        "ignored",
        multiple=True,
        metavar="COLUMN",
        help="Leave a column out of the data checks (repeatable).",
    )(command)
    command = click.option(
        "--threshold",
        "threshold_options",
        multiple=True,
        metavar="[COLUMN:]KEY=X",
        help="A data-check threshold (repeatable): psi, category_distance, missing, "
        "out_of_range, new_category; e.g. psi=0.25 or income:psi=0.4.",
    )(command)
    return click.option(
        "--thresholds",
        "thresholds_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Data-check thresholds from a YAML file (top-level keys, and columns: NAME: KEY: X).",
    )(command)


def data_thresholds(
    thresholds_file: Path | None, threshold_options: tuple[str, ...], ignored: tuple[str, ...]
) -> dict[str, Any]:
    """The thresholds the data-threshold options give."""
    from .datachecks import load_thresholds, parse_threshold_options

    base = load_thresholds(thresholds_file) if thresholds_file is not None else None
    return parse_threshold_options(threshold_options, ignored, base)


@cli.command("replay")
@click.argument("run")
@click.option(
    "--mode",
    type=click.Choice(["recorded", "file"]),
    default="recorded",
    show_default=True,
    help="recorded: the cells the run executed, in the order they ran; "
    "file: the saved notebook top to bottom with the run's params.",
)
@tolerance_options
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per cell.")
@click.option(
    "--kernel",
    "kernel_name",
    help="Kernel name (default: the run's kernel, else the notebook's, else python3).",
)
@click.option(
    "--notebook",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File mode: run this notebook instead of the run's own.",
)
@click.option("--progress/--no-progress", default=True, help="A progress bar per cell.")
@autolog_option
@confirm_option
@click.option("--replay-id", hidden=True)
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
    replay_id: str | None,
    output_format: str,
) -> None:
    """Re-execute RUN in a fresh kernel and say whether it reproduced.

    Exits 0 when it reproduced (within tolerance counts), 1 when it diverged or failed.
    """
    from .replays import replay
    from .verdicts import report_text, verdict_exit_code

    report = replay(
        run,
        mode=mode,
        rtol=rtol,
        atol=atol,
        tolerances=_tolerances(tolerances),
        timeout=timeout,
        kernel_name=kernel_name,
        notebook=notebook,
        progress=progress,
        autolog=autolog,
        replay_id=replay_id,
        confirm=confirm,
        store=_store(ctx),
    )
    if output_format == "json":
        _emit_json(report)
    else:
        click.echo(report_text(report))
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


@cli.command("sweep", cls=_SweepCommand)
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
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per cell.")
@click.option("--progress/--no-progress", default=True, help="A progress bar over the points.")
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
    from .store import open_store
    from .sweeps import load_grid, parse_value, sweep, sweep_table

    grid: dict[str, list[Any]] = load_grid(grid_file) if grid_file else {}
    for encoded in params:
        try:
            name, values = json.loads(encoded)
        except ValueError:
            raise click.BadParameter("use -p NAME VALUE [VALUE ...]", param_hint="-p") from None
        grid[name] = [parse_value(v) for v in values]
    if not grid:
        raise click.UsageError("give the grid with -p NAME VALUE ... or -f grid.yaml")
    directory = ctx.obj.get("store_dir") if ctx.obj else None
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
        store=open_store(Path(directory) if directory else None),
        cluster=cluster,
        retries=retries,
        upload=upload,
        allow_new=allow_new,
    )
    if output_format == "json":
        _emit_json(result)
    else:
        click.echo(sweep_table(result))
    sys.exit(1 if result["failed"] else 0)


@cli.command("check")
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
    type=click.Choice(["recorded", "file"]),
    help="Replay mode (default: recorded for a run, file for a notebook).",
)
@tolerance_options
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per cell.")
@click.option(
    "-p",
    "--param",
    "params",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A notebook parameter (repeatable), injected as Papermill does.",
)
@click.option(
    "--kernel",
    "kernel_name",
    help="Kernel name (default: the run's kernel, else the notebook's, else python3).",
)
@click.option("--progress/--no-progress", default=True, help="A progress bar per cell.")
@autolog_option
@confirm_option
@format_option
@click.pass_context
@friendly_errors
def check_command(
    ctx: click.Context,
    target: str,
    thresholds: tuple[str, ...],
    baseline: str | None,
    trends: tuple[str, ...],
    window: int,
    max_drop: float,
    data_checks: tuple[str, ...],
    thresholds_file: Path | None,
    threshold_options: tuple[str, ...],
    ignored: tuple[str, ...],
    junit: Path | None,
    mode: str | None,
    rtol: float,
    atol: float,
    tolerances: tuple[str, ...],
    timeout: float | None,
    params: tuple[tuple[str, str], ...],
    kernel_name: str | None,
    progress: bool,
    autolog: bool,
    confirm: bool,
    output_format: str,
) -> None:
    """A CI gate: replay RUN (or run NOTEBOOK with its own parameters against its newest
    earlier run with the same params), apply the metric thresholds and trends, check data
    files and the run's serving samples, exit 1 if anything failed.
    """
    from .gate import Trend, check, check_text, parse_threshold, write_junit
    from .store import open_store
    from .sweeps import parse_value

    limits = [parse_threshold(text) for text in thresholds]
    slides = [Trend(key, window, max_drop) for key in trends]
    directory = ctx.obj.get("store_dir") if ctx.obj else None
    result = check(
        target,
        limits,
        mode=mode,
        rtol=rtol,
        atol=atol,
        tolerances=_tolerances(tolerances),
        timeout=timeout,
        progress=progress,
        autolog=autolog,
        confirm=confirm,
        kernel_name=kernel_name,
        parameters={name: parse_value(value) for name, value in params},
        trends=slides,
        baseline=baseline,
        data=data_checks,
        data_thresholds=data_thresholds(thresholds_file, threshold_options, ignored),
        store=open_store(Path(directory) if directory else None),
    )
    if junit is not None:
        write_junit(result, junit)
    if output_format == "json":
        _emit_json(result)
    else:
        click.echo(check_text(result))
    sys.exit(0 if result["passed"] else 1)


def tracking_uri_option(command: F) -> F:
    """The shared ``--tracking-uri`` and ``--experiment`` options of MLflow export and import."""
    command = click.option(
        "--experiment",
        help="MLflow experiment name (export default: each run's notebook name; "
        "import default: every experiment).",
    )(command)
    return click.option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        help="The MLflow tracking server, e.g. http://mlflow.example:5000 "
        "(default: MLFLOW_TRACKING_URI).",
    )(command)


@cli.command("import")
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
    from .store import open_store

    directory = ctx.obj.get("store_dir") if ctx.obj else None
    store = open_store(Path(directory) if directory else None)
    if source == "mlflow":
        from .mlflow_bridge import import_mlflow, mlflow_text

        result = import_mlflow(tracking_uri, experiment=experiment, store=store)
        text = mlflow_text(result)
    else:
        from .merge import import_store, import_text

        result = import_store(source, store=store)
        text = import_text(result)
    if output_format == "json":
        _emit_json(result)
    else:
        click.echo(text)


@cli.group("export")
def export_group() -> None:
    """Send runs elsewhere: `export mlflow` to an MLflow tracking server."""


@export_group.command("mlflow")
@tracking_uri_option
@click.option("--where", help="Only runs matching this filter (as `runs --where`).")
@click.option("--progress/--no-progress", default=True, help="A progress bar over the runs.")
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
    from .mlflow_bridge import export_mlflow, mlflow_text

    result = export_mlflow(
        tracking_uri,
        experiment=experiment,
        where=where,
        progress=progress,
        store=_store(ctx),
    )
    if output_format == "json":
        _emit_json(result)
    else:
        click.echo(mlflow_text(result))


@cli.group("data", cls=_Commands)
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
    from .datachecks import check_data, check_serving, report_text

    if (path is None) == (serving is None) or (path is not None and against is None):
        raise click.UsageError("give PATH --against RUN:DATASET, or --serving RUN")
    limits = data_thresholds(thresholds_file, threshold_options, ignored)
    store = _store(ctx)
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
        _emit_json(reports[0] if path is not None else {"passed": passed, "checks": reports})
    else:
        click.echo("\n\n".join(report_text(report) for report in reports))
    sys.exit(0 if passed else 1)


def main() -> None:
    """Entry point of the ``jupyter-mlops`` script."""
    from .execute import skip_slow_optional_imports

    skip_slow_optional_imports()
    cli(prog_name="jupyter mlops")


if __name__ == "__main__":
    main()
