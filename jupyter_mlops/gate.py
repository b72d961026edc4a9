"""The CI gate: does a run (or a notebook) still reproduce, and do its metrics pass?

``check RUN`` replays the run; ``check NOTEBOOK`` runs the notebook file and compares it
with the newest earlier run of that notebook (or just runs it, when there is none). Then
metric thresholds (``acc>=0.9``) are applied to the new run. Every check is a JUnit test
case, so CI systems show which one failed.
"""

from __future__ import annotations

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

__all__ = ["Threshold", "check", "parse_threshold", "write_junit"]

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
    store: Store | None = None,
) -> dict[str, Any]:
    """Replay a run (or run a notebook), apply thresholds; ``result["passed"]`` says all held."""
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
        "store": store,
    }
    cases: list[dict[str, Any]] = []
    report: dict[str, Any] | None = None
    if notebook is not None:
        earlier = _newest_run_of(notebook, store)
        if earlier is not None:
            report = replay(earlier, mode=mode or "file", notebook=notebook, **options)
            run_id = report["replay_run"]["id"]
        else:
            run_id, case = _run_notebook(notebook, store, timeout)
            cases.append(case)
    else:
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


def _newest_run_of(notebook: Path, store: Store) -> str | None:
    from .run import list_runs

    for run in list_runs(notebook=notebook, limit=20, store=store):
        if run["status"] != "running":
            return str(run["id"])
    return None


def _run_notebook(
    notebook: Path, store: Store, timeout: float | None
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
        timeout=timeout,
    )
    store_notebook_artifact(store, execution.run_id, output, "check.ipynb")
    failure = execution.failure
    message = "ran without errors; no earlier run of this notebook to compare against"
    if failure is not None:
        message = str(failure)
    case = {"name": f"runs: {notebook.name}", "passed": failure is None, "message": message}
    return execution.run_id, case
