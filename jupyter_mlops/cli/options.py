"""How the command line is read: the command group, the store option and the shared options."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "MAX_LIMIT",
    "CommandGroup",
    "autolog_option",
    "confirm_option",
    "data_threshold_options",
    "data_thresholds",
    "format_option",
    "home_expanded",
    "kernel_option",
    "progress_option",
    "store_folder",
    "store_of",
    "timeout_option",
    "tolerance_options",
    "tolerances_of",
    "tracking_uri_option",
    "where_option",
]

F = TypeVar("F", bound=Callable[..., Any])

# As many runs as anyone lists; far below SQLite's 64-bit integers.
MAX_LIMIT = 1_000_000_000


class CommandGroup(click.Group):
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


def store_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """The store folder: a project folder holding ``.mlops/`` stands for that ``.mlops/``."""
    if value is None:
        return None
    value = Path(home_expanded(str(value)) or value)
    inner = value / ".mlops"
    if value.name != ".mlops" and not (value / "tracking.db").exists() and inner.is_dir():
        return inner
    return value


def home_expanded(path: str | None) -> str | None:
    """A path option with ``~`` expanded, or a usage error (``~nobody`` has no home)."""
    if not path:
        return path
    try:
        return str(Path(path).expanduser())
    except RuntimeError as exc:
        raise click.BadParameter(f"{path!r}: {exc}") from None


def store_of(ctx: click.Context, *, create: bool = False) -> Store:
    """The store the line names (``--store``), else the one found from here; ``create`` makes
    it when there is none yet."""
    from ..store import open_store

    directory = ctx.obj.get("store_dir") if ctx.obj else None
    return open_store(Path(directory) if directory else None, create=create)


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


def where_option(command: F) -> F:
    """The ``--where`` option of the commands that change runs."""
    return click.option(
        "--where", metavar="EXPR", help="Every run matching this filter instead of RUN."
    )(command)


def tolerances_of(values: tuple[str, ...]) -> dict[str, tuple[float, float] | float]:
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
    from ..compare import DEFAULT_ATOL, DEFAULT_RTOL

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


def timeout_option(command: F) -> F:
    """The shared ``--timeout`` option of the commands that run notebooks: seconds per cell."""
    return click.option(
        "--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per cell."
    )(command)


def progress_option(shown: str) -> Callable[[F], F]:
    """The shared ``--progress/--no-progress`` option, on by default; ``shown`` says what the
    bar counts (``per cell``, ``over the runs``)."""

    def add(command: F) -> F:
        return click.option(
            "--progress/--no-progress", default=True, help=f"A progress bar {shown}."
        )(command)

    return add


def kernel_option(command: F) -> F:
    """The shared ``--kernel`` option of replay and check."""
    return click.option(
        "--kernel",
        "kernel_name",
        help="Kernel name (default: the run's kernel, else the notebook's, else python3).",
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
    from ..data_thresholds import load_thresholds, parse_threshold_options

    base = load_thresholds(thresholds_file) if thresholds_file is not None else None
    return parse_threshold_options(threshold_options, ignored, base)


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
