"""The CI gate: does a run (or a notebook) still reproduce, and do its metrics pass?

``check RUN`` replays the run; ``check NOTEBOOK`` runs the saved notebook with its own
parameters (Papermill's defaults, and ``-p`` values when given) and compares it with the
newest earlier run of that notebook made with the same params that was not itself a replay
(or just runs it, when there is none). Then metric thresholds (``acc>=0.9``) are applied to
the new run, absolute or relative to the notebook's history (``acc>=best-0.01``,
``acc>=previous``, ``acc>=baseline`` with a baseline run), trends are checked for a slow slide
over the last runs (``--trend acc``), data files are checked against recorded datasets
(``--data PATH=RUN:DATASET``), and the new run's serving samples against its training data.
Every check is a JUnit test case, so CI systems show which one failed.
"""

from __future__ import annotations

import json
import math
import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from .errors import InvalidValueError
from .store import Store, open_store

__all__ = [
    "Threshold",
    "Trend",
    "check",
    "history_cases",
    "notebook_parameters",
    "parse_threshold",
    "write_junit",
]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_THRESHOLD = re.compile(r"^\s*([^<>=!\s]+)\s*(>=|<=|==|!=|>|<|=)\s*(.+?)\s*$")
# What a relative threshold is relative to: the best earlier run of the notebook, the newest
# earlier one, or the run given as the baseline.
REFERENCES = ("best", "previous", "baseline")
_RELATIVE = re.compile(r"^(best|previous|baseline)\s*(?:([+-])\s*(\S+))?$")
# Metrics whose lower values are better, so that "best" and a trend's "drop" face their way.
_LOWER_IS_BETTER = re.compile(r"loss|err|mse|mae|mape|rmse|perplexity|latency", re.IGNORECASE)


@dataclass(frozen=True)
class Threshold:
    """A metric threshold such as ``acc>=0.9``, or ``acc>=best-0.01`` (``reference`` set:
    ``value`` is the offset from it)."""

    key: str
    op: str
    value: float
    reference: str | None = None

    def __str__(self) -> str:
        if self.reference is None:
            return f"{self.key} {self.op} {self.value:g}"
        offset = f"{self.value:+g}" if self.value else ""
        return f"{self.key} {self.op} {self.reference}{offset}"

    def passes(self, actual: float) -> bool:
        """Whether a metric value meets the threshold (NaN never does)."""
        return not math.isnan(actual) and _OPERATORS[self.op](actual, self.value)

    def bound(self, reference_value: float) -> Threshold:
        """The absolute threshold a relative one is, given its reference's value."""
        return Threshold(self.key, self.op, reference_value + self.value)


@dataclass(frozen=True)
class Trend:
    """Fail when ``key`` slid by more than ``max_drop`` over the last ``window`` runs."""

    key: str
    window: int = 10
    max_drop: float = 0.02

    def __post_init__(self) -> None:
        if self.window < 3:
            raise InvalidValueError("--window", "a trend needs a window of 3 runs or more")
        if not (math.isfinite(self.max_drop) and self.max_drop >= 0):
            raise InvalidValueError("--max-drop", "must be a number zero or more")


def parse_threshold(text: str) -> Threshold:
    """``KEY>=X`` (or ``<=``, ``>``, ``<``, ``==``, ``!=``) into a Threshold."""
    match = _THRESHOLD.match(text)
    if not match:
        raise InvalidValueError(text, "a metric threshold looks like acc>=0.9 or loss<0.5")
    key, op, value = match.groups()
    relative = _RELATIVE.match(value)
    if relative:
        reference, sign, offset = relative.groups()
        try:
            amount = float(offset) if offset else 0.0
        except ValueError:
            raise InvalidValueError(text, f"{offset!r} is not a number") from None
        return Threshold(key, op, -amount if sign == "-" else amount, reference)
    try:
        number = float(value)
    except ValueError:
        raise InvalidValueError(
            text, f"{value!r} is not a number (nor best, previous or baseline)"
        ) from None
    return Threshold(key, op, number)


def check(
    target: str,
    thresholds: Sequence[Threshold | str] = (),
    *,
    mode: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    tolerances: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    autolog: bool = True,
    confirm: bool = False,
    trends: Sequence[Trend | str] = (),
    baseline: str | None = None,
    data: Sequence[str] = (),
    data_thresholds: Mapping[str, Any] | None = None,
    store: Store | None = None,
) -> dict[str, Any]:
    """Replay a run (or run a notebook), apply thresholds; ``result["passed"]`` says all held.

    ``parameters`` (a notebook only) are injected as Papermill does; ``kernel_name`` picks the
    kernel (else the one the run recorded, else the notebook's); ``confirm`` replays a
    diverged run once more, to tell a nondeterministic cell from a changed world.
    ``trends`` and relative thresholds look at the notebook's history (``baseline``: the run
    ``acc>=baseline`` means); ``data`` holds ``PATH=RUN:DATASET`` data checks.
    """
    from .compare import DEFAULT_ATOL, DEFAULT_RTOL

    limits = [t if isinstance(t, Threshold) else parse_threshold(t) for t in thresholds]
    slides = [t if isinstance(t, Trend) else Trend(t) for t in trends]
    data_pairs = [_data_pair(text) for text in data]
    store = store or open_store()
    if baseline is None and any(limit.reference == "baseline" for limit in limits):
        raise InvalidValueError("--metric", "a threshold relative to baseline needs --baseline RUN")
    baseline_id = store.resolve_run(baseline) if baseline is not None else None
    started = time.perf_counter()
    options: dict[str, Any] = {
        "rtol": DEFAULT_RTOL if rtol is None else rtol,
        "atol": DEFAULT_ATOL if atol is None else atol,
        "tolerances": tolerances,
        "timeout": timeout,
        "progress": progress,
        "kernel_name": kernel_name,
        "autolog": autolog,
        "confirm": confirm,
        "store": store,
    }
    run_id, report, cases = _rerun(target, mode, parameters, options)
    cases.extend(history_cases(run_id, limits, slides, baseline=baseline_id, store=store))
    cases.extend(_data_cases(run_id, data_pairs, data_thresholds, store))
    return {
        "target": target,
        "run": run_id,
        "passed": all(case["passed"] for case in cases),
        "checks": cases,
        "replay": report,
        "duration_s": round(time.perf_counter() - started, 3),
    }


def _rerun(
    target: str, mode: str | None, parameters: Mapping[str, Any] | None, options: dict[str, Any]
) -> tuple[str, dict[str, Any] | None, list[dict[str, Any]]]:
    """Replay the run, or run the notebook (a replay of its newest earlier run with the same
    params, when there is one): the new run, the replay's report, and the case it makes."""
    from .replays import replay

    notebook = _as_notebook(target)
    if notebook is None:
        if parameters:
            raise InvalidValueError(
                "-p", "params are given to a notebook; a run replays with its own params"
            )
        report = replay(target, mode=mode or "recorded", **options)
    else:
        given = dict(parameters or {})
        store = options["store"]
        earlier = _earlier_run(notebook, given, store)
        if earlier is None:
            run_id, case = _run_notebook(
                notebook,
                store,
                options["timeout"],
                given,
                options["kernel_name"],
                options["autolog"],
            )
            return run_id, None, [case]
        mode = mode or "file"
        # The saved notebook with its own parameters, not the earlier run's.
        chosen = given if mode == "file" else None
        report = replay(earlier, mode=mode, notebook=notebook, parameters=chosen, **options)
    case = {
        "name": f"reproduces: {report['original']['name']}",
        "passed": bool(report["reproduced"]),
        "message": report["summary"],
    }
    return report["replay_run"]["id"], report, [case]


def history_cases(
    run_id: str,
    thresholds: Sequence[Threshold],
    trends: Sequence[Trend] = (),
    *,
    baseline: str | None = None,
    store: Store,
) -> list[dict[str, Any]]:
    """The metric checks of a run: thresholds (absolute, or relative to the best or previous
    earlier run of its notebook, or to ``baseline``) and trends, a JUnit case each."""
    from .records import get_run

    cases: list[dict[str, Any]] = []
    metrics = get_run(run_id, store=store).metrics
    history = _history(store, run_id) if thresholds or trends else []
    for limit in thresholds:
        actual = metrics.get(limit.key)
        if actual is None:
            cases.append(
                {
                    "name": f"metric {limit}",
                    "passed": False,
                    "message": f"metric {limit.key!r} was not logged",
                }
            )
            continue
        message = f"{limit.key} = {actual:.6g}"
        absolute = limit
        if limit.reference is not None:
            found = _reference(limit, history, run_id, baseline, store)
            if found is None:
                cases.append(
                    {
                        "name": f"metric {limit}",
                        "passed": True,
                        "message": f"{message}; no earlier run of the notebook logged "
                        f"{limit.key!r}: nothing to compare with",
                    }
                )
                continue
            value, source = found
            absolute = limit.bound(value)
            message += f"; {limit.reference} {value:.6g} ({source})"
        passed = absolute.passes(actual)
        if not passed:
            message += f", needs {limit.key} {limit.op} {absolute.value:.6g}"
        cases.append({"name": f"metric {limit}", "passed": passed, "message": message})
    for trend in trends:
        cases.append(_trend_case(trend, history))
    return cases


def _history(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Finished runs of the run's notebook (of its name, for runs of no notebook) up to and
    including it, newest first, with their latest metrics."""
    from .query import Comparison

    row = store.get_run(run_id)
    if row.get("notebook"):
        found = store.list_runs(notebook=row["notebook"], limit=_EARLIER_RUNS)
    else:
        same_name = Comparison("name", None, "=", row["name"], 0)
        found = store.list_runs(where=same_name, limit=_EARLIER_RUNS)
    return [
        run
        for run in found
        if run["id"] == run_id
        or (run["status"] == "finished" and run["start_time"] <= row["start_time"])
    ]


def _reference(
    limit: Threshold,
    history: Sequence[Mapping[str, Any]],
    run_id: str,
    baseline: str | None,
    store: Store,
) -> tuple[float, str] | None:
    """The value a relative threshold is relative to, and which run it comes from."""
    if limit.reference == "baseline" and baseline is not None:
        from .records import get_run

        record = get_run(baseline, store=store)
        value = record.metrics.get(limit.key)
        return None if value is None else (value, f"baseline {_run_label(record.row)}")
    earlier = [
        run for run in history if run["id"] != run_id and _is_value(run["metrics"].get(limit.key))
    ]
    if not earlier:
        return None
    if limit.reference == "previous":
        chosen = earlier[0]
    else:
        lower = _LOWER_IS_BETTER.search(limit.key) is not None or limit.op in ("<", "<=")
        pick = min if lower else max
        chosen = pick(earlier, key=lambda run: run["metrics"][limit.key])
    return float(chosen["metrics"][limit.key]), _run_label(chosen)


def _trend_case(trend: Trend, history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Fit a line through the metric over the last runs: a fitted drop above the limit fails,
    even when no single step between runs was large."""
    values = [
        float(run["metrics"][trend.key])
        for run in history
        if _is_value(run["metrics"].get(trend.key))
    ][: trend.window][::-1]
    name = f"trend {trend.key} over {trend.window} runs"
    if len(values) < 3:
        return {
            "name": name,
            "passed": True,
            "message": f"{len(values)} run(s) logged {trend.key!r}: too few for a trend",
        }
    count = len(values)
    mean_x = (count - 1) / 2
    mean_y = sum(values) / count
    spread = sum((x - mean_x) ** 2 for x in range(count))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / spread
    change = slope * (count - 1)
    lower = _LOWER_IS_BETTER.search(trend.key) is not None
    drop = change if lower else -change
    passed = drop <= trend.max_drop
    word = "rose" if lower else "fell"
    message = (
        f"{trend.key} over the last {count} runs: {values[0]:.6g} to {values[-1]:.6g}; "
        f"the fitted line {word if drop > 0 else 'moved'} by {abs(change):.4g}"
    )
    if not passed:
        message += f", more than {trend.max_drop:g}"
    return {"name": name, "passed": passed, "message": message}


def _is_value(value: Any) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def _run_label(run: Mapping[str, Any]) -> str:
    return f"run {run['name']} {run['id'][:12]}"


def _data_pair(text: str) -> tuple[Path, str]:
    """``PATH=RUN:DATASET`` split, the path checked to exist."""
    path, sep, against = text.partition("=")
    if not sep or not path or not against:
        raise InvalidValueError(text, "--data looks like PATH=RUN:DATASET")
    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidValueError(path, "no such data file")
    return file, against


def _data_cases(
    run_id: str,
    pairs: Sequence[tuple[Path, str]],
    thresholds: Mapping[str, Any] | None,
    store: Store,
) -> list[dict[str, Any]]:
    """A case for each data file checked against its dataset, and one for each serving
    sample of the run checked against its training data; each check stored with the run."""
    from .datachecks import check_data, check_serving

    reports = [
        check_data(path, against, thresholds=thresholds, run_id=run_id, store=store)
        for path, against in pairs
    ]
    reports += check_serving(run_id, thresholds=thresholds, store=store)
    cases = []
    for report in reports:
        base = report["baseline"]
        errors = [p for p in report["problems"] if p["severity"] == "error"]
        message = "; ".join(f"{p['column']}: {p['kind']}: {p['detail']}" for p in errors[:5])
        if len(errors) > 5:
            message += f"; and {len(errors) - 5} more"
        cases.append(
            {
                "name": f"data {report['subject']['name']} against "
                f"{base['run_name']}:{base['dataset']}",
                "passed": report["passed"],
                "message": message or f"no schema problem or drift in {report['rows']} rows",
            }
        )
    return cases


def write_junit(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write a check's result as JUnit XML (one test case a check)."""
    cases = result["checks"]
    suite = ElementTree.Element(
        "testsuite",
        name="jupyter-mlops check",
        tests=str(len(cases)),
        failures=str(sum(1 for c in cases if not c["passed"])),
        errors="0",
        time=f"{result['duration_s']:.3f}",
    )
    for case in cases:
        element = ElementTree.SubElement(
            suite, "testcase", classname=f"jupyter-mlops.{result['target']}", name=case["name"]
        )
        if case["passed"]:
            ElementTree.SubElement(element, "system-out").text = case["message"]
        else:
            failure = ElementTree.SubElement(element, "failure", message=case["message"])
            failure.text = case["message"]
    root = ElementTree.Element("testsuites")
    root.append(suite)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out


def _as_notebook(target: str) -> Path | None:
    path = Path(target).expanduser()
    if path.suffix == ".ipynb":
        if not path.is_file():
            raise InvalidValueError(target, "no such notebook file")
        return path.resolve()
    return None


def _earlier_run(notebook: Path, given: Mapping[str, Any], store: Store) -> str | None:
    """The newest ended run of the notebook, not a replay, whose params agree with the
    notebook's own (its ``parameters`` cell) overridden by ``given``."""
    from .records import list_runs

    defaults = notebook_parameters(notebook)
    wanted = {k: _plain(v) for k, v in {**defaults, **given}.items()}
    for run in list_runs(notebook=notebook, limit=_EARLIER_RUNS, store=store):
        if run["status"] == "running" or run["kind"] == "replay":
            continue
        recorded = {k: _plain(v) for k, v in run["params"].items()}
        # A value given with -p must have been the run's; a default, where the run recorded it.
        if all(recorded.get(k, _MISSING) == wanted[k] for k in given) and all(
            recorded[k] == v for k, v in wanted.items() if k in recorded
        ):
            return str(run["id"])
    return None


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The defaults of a notebook's ``parameters`` cell (its literal assignments)."""
    from .cellcode import literal_assignments, parse_cell
    from .sweeps import parameters_sources

    values: dict[str, Any] = {}
    for source in parameters_sources(notebook) or ():
        values.update(literal_assignments(parse_cell(source)))
    return values


_MISSING = object()
# How many of a notebook's newest runs are looked through for one with the same params.
_EARLIER_RUNS = 500


def _plain(value: Any) -> Any:
    """A param value as stored (JSON): tuples are lists, so equal values compare equal."""
    try:
        return json.loads(json.dumps(value, default=str))
    except ValueError:
        return value


def _run_notebook(
    notebook: Path,
    store: Store,
    timeout: float | None,
    parameters: Mapping[str, Any],
    kernel_name: str | None,
    autolog: bool = True,
) -> tuple[str, dict[str, Any]]:
    """A notebook with no earlier run: run it once, tracked, and check it ran."""
    import nbformat

    from .execute import execute_notebook, store_notebook_artifact

    output = store.directory / "checks" / f"{notebook.stem}-{int(time.time())}.ipynb"
    execution = execute_notebook(
        nbformat.read(notebook, as_version=4),
        output,
        store=store,
        kind="script",
        run_name=notebook.stem,
        cwd=notebook.parent,
        notebook_path=notebook,
        parameters=parameters or None,
        kernel_name=kernel_name,
        timeout=timeout,
        autolog=autolog,
    )
    store_notebook_artifact(store, execution.run_id, output, "check.ipynb")
    failure = execution.failure
    message = "ran without errors; no earlier run of this notebook to compare against"
    if failure is not None:
        message = str(failure)
    case = {"name": f"runs: {notebook.name}", "passed": failure is None, "message": message}
    return execution.run_id, case
