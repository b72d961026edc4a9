"""The CI gate: does a run (or a notebook) still reproduce, and do its metrics pass?

``check RUN`` replays the run; ``check NOTEBOOK`` runs the saved notebook with its own
parameters (Papermill's defaults, and ``-p`` values when given) and compares it with the
newest earlier run of that notebook made with the same params that was not itself a replay
(or just runs it, when there is none). Then metric thresholds (``acc>=0.9``) are applied to
the new run. Every check is a JUnit test case, so CI systems show which one failed.
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

__all__ = ["Threshold", "check", "notebook_parameters", "parse_threshold", "write_junit"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_THRESHOLD = re.compile(r"^\s*([^<>=!\s]+)\s*(>=|<=|==|!=|>|<|=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Threshold:
    """A metric threshold such as ``acc>=0.9``."""

    key: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.value:g}"

    def passes(self, actual: float) -> bool:
        """Whether a metric value meets the threshold (NaN never does)."""
        return not math.isnan(actual) and _OPERATORS[self.op](actual, self.value)


def parse_threshold(text: str) -> Threshold:
    """``KEY>=X`` (or ``<=``, ``>``, ``<``, ``==``, ``!=``) into a Threshold."""
    match = _THRESHOLD.match(text)
    if not match:
        raise InvalidValueError(text, "a metric threshold looks like acc>=0.9 or loss<0.5")
    key, op, value = match.groups()
    try:
        number = float(value)
    except ValueError:
        raise InvalidValueError(text, f"{value!r} is not a number") from None
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
    confirm: bool = False,
    store: Store | None = None,
) -> dict[str, Any]:
    """Replay a run (or run a notebook), apply thresholds; ``result["passed"]`` says all held.

    ``parameters`` (a notebook only) are injected as Papermill does; ``kernel_name`` picks the
    kernel (else the one the run recorded, else the notebook's); ``confirm`` replays a
    diverged run once more, to tell a nondeterministic cell from a changed world.
    """
    from .compare import DEFAULT_ATOL, DEFAULT_RTOL
    from .replays import replay

    limits = [t if isinstance(t, Threshold) else parse_threshold(t) for t in thresholds]
    store = store or open_store()
    started = time.perf_counter()
    notebook = _as_notebook(target)
    options: dict[str, Any] = {
        "rtol": DEFAULT_RTOL if rtol is None else rtol,
        "atol": DEFAULT_ATOL if atol is None else atol,
        "tolerances": tolerances,
        "timeout": timeout,
        "progress": progress,
        "kernel_name": kernel_name,
        "confirm": confirm,
        "store": store,
    }
    cases: list[dict[str, Any]] = []
    report: dict[str, Any] | None = None
    if notebook is not None:
        given = dict(parameters or {})
        earlier = _earlier_run(notebook, given, store)
        if earlier is not None:
            mode = mode or "file"
            # The saved notebook with its own parameters, not the earlier run's.
            chosen = given if mode == "file" else None
            report = replay(earlier, mode=mode, notebook=notebook, parameters=chosen, **options)
            run_id = report["replay_run"]["id"]
        else:
            run_id, case = _run_notebook(notebook, store, timeout, given, kernel_name)
            cases.append(case)
    else:
        if parameters:
            raise InvalidValueError(
                "-p", "params are given to a notebook; a run replays with its own params"
            )
        report = replay(target, mode=mode or "recorded", **options)
        run_id = report["replay_run"]["id"]
    if report is not None:
        cases.append(
            {
                "name": f"reproduces: {report['original']['name']}",
                "passed": bool(report["reproduced"]),
                "message": report["summary"],
            }
        )
    from .run import get_run

    metrics = get_run(run_id, store=store).metrics
    for limit in limits:
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
        passed = limit.passes(actual)
        cases.append(
            {
                "name": f"metric {limit}",
                "passed": passed,
                "message": f"{limit.key} = {actual:.6g}" + ("" if passed else f", needs {limit}"),
            }
        )
    return {
        "target": target,
        "run": run_id,
        "passed": all(case["passed"] for case in cases),
        "checks": cases,
        "replay": report,
        "duration_s": round(time.perf_counter() - started, 3),
    }


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


def check_text(result: Mapping[str, Any]) -> str:
    """A check's result for people: a line a check, then the verdict of the whole."""
    lines = []
    for case in result["checks"]:
        mark = "PASS" if case["passed"] else "FAIL"
        lines.append(f"{mark}  {case['name']}: {case['message']}")
    failed = sum(1 for case in result["checks"] if not case["passed"])
    lines.append(
        "all checks passed"
        if not failed
        else f"{failed} of {len(result['checks'])} check(s) failed"
    )
    return "\n".join(lines)


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
    from .run import list_runs

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

    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    values: dict[str, Any] = {}
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        if "parameters" in ((cell.get("metadata") or {}).get("tags") or []):
            source = cell.get("source") or ""
            source = "".join(source) if isinstance(source, list) else source
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
    )
    store_notebook_artifact(store, execution.run_id, output, "check.ipynb")
    failure = execution.failure
    message = "ran without errors; no earlier run of this notebook to compare against"
    if failure is not None:
        message = str(failure)
    case = {"name": f"runs: {notebook.name}", "passed": failure is None, "message": message}
    return execution.run_id, case
