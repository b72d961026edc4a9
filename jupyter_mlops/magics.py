"""The ``%track`` and ``%%track`` magics: a thin door onto the run API."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from . import run as runs
from .capture import quiet
from .errors import MagicUsageError, MlopsError
from .validate import check_artifact, check_metrics, check_params, checked_name, user_path
from .views import card as _card  # noqa: F401  (imported, it shows a run as a card)
from .vocabulary import DATA_CONTEXTS

__all__ = ["TrackMagics", "split_arguments"]

_OPEN, _CLOSE = "([{", ")]}"
# The commands a mistaken ``%track`` line is reminded of.
_COMMANDS_LISTED = (
    "start, params, metric, data, artifact, tag, end, status, runs, show, compare or plot"
)


def split_arguments(line: str) -> list[str]:
    """Split a magic line on spaces outside quotes and brackets: ``a=f(1, 2) --step n``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quote: str | None = None
    escaped = False
    for char in line:
        if quote:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth = max(depth - 1, 0)
        elif char.isspace() and depth == 0:
            if current:
                parts.append("".join(current))
                current = []
            continue
        current.append(char)
    if quote:
        raise MagicUsageError(f"unclosed quote in: {line.strip()}")
    if current:
        parts.append("".join(current))
    return parts


def _options(
    words: list[str], spec: dict[str, bool], command: str
) -> tuple[list[str], dict[str, list[str]]]:
    """Positional words and ``--option value`` pairs; ``spec`` says which options repeat."""
    positional: list[str] = []
    options: dict[str, list[str]] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--") and len(word) > 2:
            name, _, value = word[2:].partition("=")
            if name not in spec:
                known = ", ".join(f"--{o}" for o in spec) or "none"
                raise MagicUsageError(f"{command}: unknown option --{name} (options: {known})")
            if not value:
                index += 1
                if index >= len(words):
                    raise MagicUsageError(f"{command}: --{name} needs a value")
                value = words[index]
            if name in options and not spec[name]:
                raise MagicUsageError(f"{command}: --{name} given twice")
            options.setdefault(name, []).append(value)
        else:
            positional.append(word)
        index += 1
    return positional, options


def _key_value(word: str, command: str) -> tuple[str, str] | None:
    """``key=expr`` split at the first ``=`` that is not part of ``==``/``<=``/``>=``/``!=``."""
    for index, char in enumerate(word):
        if char in _OPEN or char in "'\"":
            return None
        if char == "=":
            before = word[index - 1] if index else ""
            after = word[index + 1] if index + 1 < len(word) else ""
            if before in "<>!=" or after == "=":
                return None
            key, expr = word[:index], word[index + 1 :]
            if not key.replace(".", "_").replace("-", "_").replace("/", "_").isidentifier():
                raise MagicUsageError(f"{command}: {key!r} is not a valid name in {word!r}")
            if not expr:
                raise MagicUsageError(f"{command}: {word!r} has no value after '='")
            return key, expr
    return None


@magics_class
class TrackMagics(Magics):
    """``%track`` for runs, params, metrics, data and artifacts."""

    @no_var_expand
    @line_cell_magic
    def track(self, line: str, cell: str | None = None) -> Any:
        """Track this notebook's runs: what ran, with which params, data and results.

        Line magic:
          %track start [NAME] [--name NAME] [--tag KEY=VALUE]...
                starts a run; every cell executed from now on is recorded.
          %track params KEY=VALUE ...      log params: literals or expressions
          %track params NAME ...           log variables of the notebook as params
          %track metric KEY=VALUE ... [--step N]
                log metrics; N may be an expression (--step epoch); without --step
                each key's step counts up by itself.
          %track data NAME ...             record a variable (array, DataFrame) as a dataset
          %track data PATH ...             record a file or folder as a dataset
          %track data KEY=EXPR ...         record a value under a name
          %track data NAME ... --context serving
                record a serving sample, checked against the training data of that name
          %track check-data NAME_OR_PATH --against RUN:DATASET [--threshold [COL:]KEY=X]...
                [--thresholds FILE.yaml] [--ignore COLUMN]...
                check new data against a recorded dataset: schema problems and drift
          %track artifact PATH|NAME ... [--name NAME]
                store a file, or a picklable variable, by content hash.
          %track end [--status finished|failed|killed]
          %track tag KEY=VALUE ... [--remove KEY]
                                           set or remove tags of the active run
          %track register NAME [ARTIFACT] [--require-reproduced]
                register this run's model as the next version of the model NAME
          %track autolog [on|off] [--no-models] [--no-system] [--system-interval S]
                record fits, scores, final models and CPU/memory by themselves
          %track status                    the active run: id, cells, params, metrics
          %track runs [--notebook PATH] [--where EXPR] [--limit N] [--replays]
          %track show RUN                  one run whole
          %track compare RUN RUN ...       what differs between runs
          %track plot KEY [RUN ...]        a metric's curves; with no RUN a live chart
                                           of the active run that grows as it logs
        In a notebook these show widgets (tables, tabs, plotly charts); in a terminal, text.

        Cell magic:
          %%track [--name NAME] [--tag KEY=VALUE]...
                the cell becomes one whole run, ended `failed` if it raises.

        Values are Python literals or expressions in the notebook's namespace
        (`%track metric acc=score`, `%track metric loss=history[-1] --step epoch`);
        quote text: `model='rf'`. Logging with no active run starts one.
        RUN is a run id, a unique id prefix, or a run name (the newest of that name).
        EXPR filters runs: `metrics.acc > 0.9 and params.lr <= 0.01 and status = finished`.
        """
        try:
            if cell is not None:
                return self._whole_cell_run(line, cell)
            handler, args = self._command(split_arguments(line))
            # What the tracker prints about itself is no part of the cell's result.
            with quiet():
                return handler(args)
        except MlopsError as exc:
            # One line, whatever the message quotes (a pasted line may hold newlines).
            raise UsageError(f"%track: {' '.join(str(exc).splitlines())}") from None

    def _command(self, words: list[str]) -> tuple[Callable[[list[str]], Any], list[str]]:
        """The method that does a ``%track`` command, and the words it is given."""
        if not words:
            raise MagicUsageError(f"say what to track: {_COMMANDS_LISTED} (see %track?)")
        command, args = words[0], words[1:]
        handler: Callable[[list[str]], Any] | None = getattr(
            self, f"_do_{command.replace('-', '_')}", None
        )
        if handler is None:
            raise MagicUsageError(f"unknown command {command!r}; use {_COMMANDS_LISTED}")
        return handler, args

    # -- runs ------------------------------------------------------------------------------

    def _do_start(self, words: list[str]) -> None:
        positional, options = _options(words, {"name": False, "tag": True}, "start")
        if len(positional) > 1 or (positional and "name" in options):
            raise MagicUsageError("start: give the run name once (start NAME or --name NAME)")
        name = options.get("name", positional)[0] if (positional or "name" in options) else None
        run = runs.start_run(name=name, tags=self._tags(options.get("tag", [])))
        print(f"jupyter-mlops: started run {run.name!r} ({run.id[:12]})")

    def _tags(self, items: list[str]) -> dict[str, str]:
        tags = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise MagicUsageError(f"--tag wants KEY=VALUE, got {item!r}")
            tags[key] = value
        return tags

    def _do_end(self, words: list[str]) -> None:
        positional, options = _options(words, {"status": False}, "end")
        if positional:
            raise MagicUsageError(f"end: unexpected {' '.join(positional)!r}")
        run = runs.active_run()
        if run is None:
            raise MagicUsageError("end: no run is active")
        run.end(options.get("status", ["finished"])[0])
        print(f"jupyter-mlops: ended run {run.name!r} ({run.id[:12]}): {run.status}")

    def _do_tag(self, words: list[str]) -> None:
        positional, options = _options(words, {"remove": True}, "tag")
        if not positional and "remove" not in options:
            raise MagicUsageError("tag: give KEY=VALUE pairs (or --remove KEY)")
        run = runs.active_run()
        if run is None:
            raise MagicUsageError("tag: no run is active (tag a past run with `jupyter mlops tag`)")
        tags = self._tags(positional)
        runs.update_run(run.id, tags=tags, remove_tags=options.get("remove", []), store=run.store)

    def _do_register(self, words: list[str]) -> None:
        from .registry import register_model

        strict = "--require-reproduced" in words
        positional, _ = _options([w for w in words if w != "--require-reproduced"], {}, "register")
        if not 1 <= len(positional) <= 2:
            raise MagicUsageError("register: give the model NAME (and the run's ARTIFACT)")
        run = runs.active_run() or runs.last_started_run()
        if run is None:
            raise MagicUsageError(
                "register: no run was started here (register a past run with "
                "`jupyter mlops register RUN NAME`)"
            )
        version = register_model(
            positional[0],
            run.record(),
            positional[1] if len(positional) == 2 else None,
            require_reproduced=strict,
        )
        print(
            f"jupyter-mlops: registered {version['name']}/{version['version']} "
            f"({version['artifact']} of run {run.name!r})"
        )

    def _whole_cell_run(self, line: str, cell: str) -> None:
        positional, options = _options(
            split_arguments(line), {"name": False, "tag": True}, "%%track"
        )
        if positional:
            raise MagicUsageError(f"%%track: unexpected {' '.join(positional)!r}")
        name = options.get("name", [None])[0]
        run = runs.start_run(name=name, tags=self._tags(options.get("tag", [])))
        with run:
            self._shell.ex(cell)

    # -- logging ---------------------------------------------------------------------------

    def _do_params(self, words: list[str]) -> None:
        if not words:
            raise MagicUsageError("params: give KEY=VALUE pairs or variable names")
        values: dict[str, Any] = {}
        for word in words:
            pair = _key_value(word, "params")
            if pair is not None:
                values[pair[0]] = self._evaluate(pair[1], f"params {pair[0]}")
            else:
                values[word] = self._variable(word, "params")
        self._run(lambda: check_params(values)).log_params(values)

    def _do_metric(self, words: list[str]) -> None:
        positional, options = _options(words, {"step": False}, "metric")
        if not positional:
            raise MagicUsageError("metric: give KEY=VALUE pairs or variable names")
        step = self._evaluate(options["step"][0], "metric --step") if "step" in options else None
        values: dict[str, Any] = {}
        for word in positional:
            pair = _key_value(word, "metric")
            if pair is not None:
                values[pair[0]] = self._evaluate(pair[1], f"metric {pair[0]}")
            else:
                values[word] = self._variable(word, "metric")
        self._run(lambda: check_metrics(values, step)).log_metrics(values, step=step)

    _do_metrics = _do_metric

    def _do_data(self, words: list[str]) -> None:
        words, options = _options(words, {"context": False}, "data")
        if not words:
            raise MagicUsageError("data: give variable names, file paths or NAME=EXPR")
        context = options.get("context", ["training"])[0]
        if context not in DATA_CONTEXTS:
            raise MagicUsageError(f"data: --context is training or serving, not {context!r}")
        run = self._run()
        for word in words:
            pair = _key_value(word, "data")
            if pair is not None:
                name, value = pair[0], self._evaluate(pair[1], f"data {pair[0]}")
            elif word in self._namespace:
                name, value = word, self._namespace[word]
            elif _exists(user_path(_unquote(word))):
                name, value = _unquote(word), Path(_unquote(word))
            else:
                raise MagicUsageError(f"data: {word!r} is neither a variable nor an existing path")
            info = run.log_data(name, value, context)
            shape = "x".join(map(str, info.get("shape") or [])) or info["kind"]
            label = "serving sample" if context == "serving" else "data"
            print(f"jupyter-mlops: {label} {name!r} ({shape}) {info['hash'][:16]}")
            if info.get("check") is not None:
                from .text import data_check_text

                print(data_check_text(info["check"]))

    def _do_check_data(self, words: list[str]) -> None:
        spec = {"against": False, "threshold": True, "thresholds": False, "ignore": True}
        positional, options = _options(words, spec, "check-data")
        if len(positional) != 1 or "against" not in options:
            raise MagicUsageError("check-data: give NAME_OR_PATH --against RUN:DATASET")
        from .data_thresholds import load_thresholds, parse_threshold_options
        from .datachecks import check_data
        from .text import data_check_text

        word = positional[0]
        if word in self._namespace:
            value: Any = self._namespace[word]
        elif _exists(user_path(_unquote(word))):
            value = Path(_unquote(word))
        else:
            raise MagicUsageError(
                f"check-data: {word!r} is neither a variable nor an existing path"
            )
        base = load_thresholds(options["thresholds"][0]) if "thresholds" in options else None
        limits = parse_threshold_options(
            options.get("threshold", []), options.get("ignore", []), base
        )
        report = check_data(value, _unquote(options["against"][0]), thresholds=limits, subject=word)
        print(data_check_text(report))

    def _do_artifact(self, words: list[str]) -> None:
        positional, options = _options(words, {"name": False}, "artifact")
        if not positional:
            raise MagicUsageError("artifact: give file paths or variable names")
        if "name" in options and len(positional) > 1:
            raise MagicUsageError("artifact: --name goes with a single artifact")
        name = options.get("name", [None])[0]
        # Every source is found before a run is started for them: a refused call starts none.
        sources: list[tuple[Any, str | None]] = []
        for word in positional:
            path = user_path(_unquote(word))
            if _exists(path):
                sources.append((path, name))
            elif word in self._namespace:
                sources.append((self._namespace[word], name or word))
            else:
                raise MagicUsageError(
                    f"artifact: {word!r} is neither an existing file nor a variable"
                )

        def check() -> None:
            for source, _ in sources:
                check_artifact(source)

        run = self._run(check)
        for source, label in sources:
            row = run.log_artifact(source, name=label)
            print(f"jupyter-mlops: artifact {row['name']!r} ({row['size_bytes']} bytes)")

    def _do_autolog(self, words: list[str]) -> None:
        from .autologging import autolog

        flags = {word for word in words if word in ("--no-models", "--no-system")}
        positional, options = _options(
            [word for word in words if word not in flags], {"system-interval": False}, "autolog"
        )
        if len(positional) > 1 or (positional and positional[0] not in ("on", "off")):
            raise MagicUsageError(f"autolog: say on or off, not {' '.join(positional)!r}")
        on = not positional or positional[0] == "on"
        interval_text = options.get("system-interval", ["10"])[0]
        try:
            interval = float(interval_text)
        except ValueError:
            raise MagicUsageError(
                f"autolog: --system-interval wants seconds, got {interval_text!r}"
            ) from None
        autolog(
            on,
            models="--no-models" not in flags,
            system="--no-system" not in flags,
            system_interval=interval,
        )
        print(f"jupyter-mlops: autologging {'on' if on else 'off'}")

    # -- looking ---------------------------------------------------------------------------

    def _do_status(self, words: list[str]) -> None:
        if words:
            raise MagicUsageError("status takes no arguments")
        run = runs.active_run()
        if run is None:
            print("jupyter-mlops: no active run (start one with %track start)")
            return
        record = run.record().to_dict()
        from .text import format_value

        lines = [
            f"run {run.name!r} ({run.id[:12]}), running, {run.cells_recorded} cell(s) recorded",
            f"store: {run.store.directory}",
        ]
        if record["params"]:
            shown = ", ".join(f"{k}={format_value(v, 20)}" for k, v in record["params"].items())
            lines.append(f"params: {shown}")
        if record["metrics"]:
            shown = ", ".join(f"{k}={format_value(v)}" for k, v in record["metrics"].items())
            lines.append(f"metrics: {shown}")
        print("\n".join(lines))

    def _do_runs(self, words: list[str]) -> None:
        # Replay runs are counted under their run unless --replays lists them too.
        with_replays = "--replays" in words
        words = [word for word in words if word != "--replays"]
        positional, options = _options(
            words, {"notebook": False, "where": False, "limit": False}, "runs"
        )
        if positional:
            raise MagicUsageError(
                f"runs: unexpected {' '.join(positional)!r} (filter with --where 'EXPR')"
            )
        limit = options.get("limit", ["20"])[0]
        if not limit.isdigit() or int(limit) < 1:
            raise MagicUsageError(f"runs: --limit wants a number above 0, got {limit!r}")
        where = _unquote(options["where"][0]) if "where" in options else None
        notebook = options.get("notebook", [None])[0]
        if _widgets_shown():
            from .views import runs_view

            _display(
                runs_view(where, notebook=notebook, page_size=int(limit), replays=with_replays)
            )
            return
        from .text import runs_table

        found = runs.list_runs(
            where=where, notebook=notebook, limit=int(limit), replays=with_replays
        )
        print(runs_table(found))

    def _do_show(self, words: list[str]) -> None:
        if len(words) != 1:
            raise MagicUsageError("show: give one run (id, id prefix or name)")
        record = runs.get_run(_unquote(words[0]))
        if _widgets_shown():
            from .views import RunView

            _display(RunView(record))
            return
        from .text import run_text

        print(run_text(record.to_dict(full=True)))

    def _do_compare(self, words: list[str]) -> None:
        if len(words) < 2:
            raise MagicUsageError("compare: give two or more runs")
        found = [runs.get_run(_unquote(w)) for w in words]
        if _widgets_shown():
            from .views import CompareView

            _display(CompareView(found))
            return
        from .compare import diff_runs
        from .text import diff_text

        records = [record.to_dict(full=True) for record in found]
        print("\n\n".join(diff_text(diff_runs(records[0], other)) for other in records[1:]))

    def _do_plot(self, words: list[str]) -> None:
        if not words:
            raise MagicUsageError("plot: give a metric name, then runs (none: the active run)")
        key, refs = checked_name("metric", _unquote(words[0])), [_unquote(w) for w in words[1:]]
        if key.startswith("--"):
            raise MagicUsageError(f"plot: unknown option {key} (plot KEY [RUN ...])")
        if _widgets_shown():
            from .views import plot_view

            _display(plot_view(key, refs))
            return
        from .text import series_text

        if refs:
            records = [runs.get_run(ref) for ref in refs]
        else:
            run = runs.active_run() or runs.last_started_run()
            if run is None:
                raise MagicUsageError("plot: no active run; name the runs to plot")
            records = [run.record()]
        series = {f"{r.name} ({r.id[:12]})": r.metric_series(key) for r in records}
        if not any(series.values()):
            raise MagicUsageError(f"plot: no metric {key!r} in the run(s) given")
        print(series_text(key, series))

    # -- values ----------------------------------------------------------------------------

    @property
    def _shell(self) -> Any:
        shell = self.shell
        if shell is None:
            raise MagicUsageError("%track needs an IPython shell")
        return shell

    @property
    def _namespace(self) -> dict[str, Any]:
        namespace: dict[str, Any] = self._shell.user_ns
        return namespace

    def _run(self, check: Callable[[], object] = lambda: None) -> runs.Run:
        """The active run, or a new one once ``check()`` passed (a refused call starts none)."""
        if runs.active_run() is not None:
            return runs.run_for_logging()
        run = runs.run_for_logging(check)
        print(f"jupyter-mlops: started run {run.name!r} ({run.id[:12]})")
        return run

    def _evaluate(self, expression: str, what: str) -> Any:
        try:
            return ast.literal_eval(expression)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
        try:
            return eval(expression, self._namespace)
        except NameError as exc:
            raise MagicUsageError(
                f"{what}: {exc}; quote text values, e.g. {what.split()[-1]}='{expression}'"
            ) from None
        except Exception as exc:
            raise MagicUsageError(
                f"{what}: cannot evaluate {expression!r}: {type(exc).__name__}: {exc}"
            ) from None

    def _variable(self, name: str, command: str) -> Any:
        if not name.isidentifier():
            raise MagicUsageError(f"{command}: {name!r} is not KEY=VALUE or a variable name")
        if name not in self._namespace:
            raise MagicUsageError(f"{command}: no variable named {name!r}")
        return self._namespace[name]


def _widgets_shown() -> bool:
    """Whether views go out as widgets (a notebook frontend) rather than as text."""
    from .views.frontend import in_notebook_frontend

    return in_notebook_frontend()


def _display(view: Any) -> None:
    from IPython.display import display

    display(view)


def _exists(path: Path) -> bool:
    """Whether a path exists; a name too long for the file system does not."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word
