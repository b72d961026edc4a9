"""At the end of a cell: the fits and scores it reported become params and metrics.

Names come from the notebook itself. A fitted estimator is named after the variable that
holds it (else its class); a score after the variable it was assigned to: the value of a
name the cell assigned that *is* the returned object, else the one name that every call of
that function in the cell's source is assigned to (a loop), else the function's name.
"""

from __future__ import annotations

import ast
import contextlib
import math
import re
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from .. import run as runs
from ..artifacts import store_bytes
from ..clock_metrics import FIT_TIME_SUFFIX
from ..errors import MlopsError
from .patches import Fit, Score

__all__ = [
    "last_namespace",
    "link_datasets",
    "log_artifact_bytes",
    "log_params_kept",
    "plain_value",
    "record_cell",
    "run_state",
]

# A param that is no JSON value is kept as its text, at most this long.
_MAX_TEXT = 200
_MAX_ITEMS = 1000
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class RunState:
    """What autologging wrote to one run: its keys (so hand-logged ones win) and models."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        # The step or value autologging last wrote under each name: a name that holds
        # anything else was logged by hand, and autologging leaves it alone from then on.
        self.metric_steps: dict[str, int] = {}
        self.param_values: dict[str, Any] = {}
        self.models: dict[str, Any] = {}
        self.data_params: dict[str, dict[str, Any]] = {}
        self.namespace: Any = None


_state: list[RunState] = []


def run_state(run: runs.Run) -> RunState:
    """The autologging state of a run (a new one when the run changed)."""
    if not _state or _state[0].run_id != run.id:
        _state[:] = [RunState(run.id)]
    return _state[0]


def last_namespace() -> Mapping[str, Any] | None:
    """The namespace the last cell ran in (where the run's variables are found at its end)."""
    if not _state or _state[0].namespace is None:
        return None
    namespace = _state[0].namespace()
    return namespace if isinstance(namespace, Mapping) else None


def record_cell(
    run: runs.Run,
    fits: list[Fit],
    scores: list[Score],
    source: str,
    assigned: list[str] | None,
    namespace: Mapping[str, Any],
) -> None:
    """Write a cell's fits as params and fit times, its scores as metrics."""
    if run.status != "running":
        return
    state = run_state(run)
    try:
        state.namespace = weakref.ref(namespace)
    except TypeError:
        state.namespace = lambda: namespace
    names = _Names(namespace, assigned)
    if fits:
        _record_fits(run, state, fits, names)
    if scores:
        _record_scores(run, state, scores, names, source)


class _Names:
    """Which variable holds an object, by identity (the cell's own names first)."""

    def __init__(self, namespace: Mapping[str, Any], assigned: list[str] | None) -> None:
        self.namespace = namespace
        self.assigned = [name for name in assigned or () if name in namespace]
        self._by_id: dict[int, str] | None = None

    def of(self, value: Any) -> str | None:
        return self.assigned_to(value) or self.of_id(id(value))

    def of_id(self, ident: int) -> str | None:
        if self._by_id is None:
            self._by_id = {}
            for name, held in list(self.namespace.items()):
                if not name.startswith("_"):
                    self._by_id.setdefault(id(held), name)
        return self._by_id.get(ident)

    def assigned_to(self, value: Any) -> str | None:
        for name in self.assigned:
            if self.namespace.get(name) is value:
                return name
        return None


# -- fits -----------------------------------------------------------------------------------------


def _record_fits(run: runs.Run, state: RunState, fits: list[Fit], names: _Names) -> None:
    last: dict[str, Fit] = {}
    for fit in fits:
        name = names.of(fit.estimator) or type(fit.estimator).__name__
        last.pop(name, None)
        last[name] = fit
        _log_metric(run, state, name + FIT_TIME_SUFFIX, fit.duration)
    if not last:
        return
    params: dict[str, Any] = {}
    for name, fit in last.items():
        estimator = fit.estimator
        state.models[name] = estimator
        params[f"{name}.estimator"] = type(estimator).__name__
        for key, value in estimator_params(estimator).items():
            params[f"{name}.{key}"] = value
        for arg, info in fit.data.items():
            data: dict[str, Any] = {"hash": info["hash"]}
            if info["shape"] is not None:
                data["shape"] = list(info["shape"])
            value = info["ref"]()
            held = names.of(value) if value is not None else None
            if held is not None:
                data["variable"] = held
            params[f"{name}.{arg}"] = state.data_params[f"{name}.{arg}"] = data
        if hasattr(estimator, "cv_results_"):
            _record_search(run, state, name, estimator, params)
    log_params_kept(run, state, params)


def link_datasets(run: runs.Run) -> None:
    """Name the run's dataset beside each ``X`` and ``y`` it has the content hash of (once,
    as the run ends: reading datasets writes the store's buffered rows first)."""
    state = run_state(run)
    if not state.data_params:
        return
    datasets = {row["hash"]: row["name"] for row in run.store.datasets(run.id)}
    linked = {
        key: {**data, "dataset": datasets[data["hash"]]}
        for key, data in state.data_params.items()
        if data["hash"] in datasets
    }
    if linked:
        log_params_kept(run, state, linked)


def estimator_params(estimator: Any) -> dict[str, Any]:
    """An estimator's params as JSON values, nested ones with dotted keys (``clf.max_depth``)."""
    raw = estimator.get_params(deep=True)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "steps" or key == "transformers":
            value = [list(item[:2]) if isinstance(item, tuple) else item for item in value]
        out[key.replace("__", ".")] = plain_value(value)
    return out


def plain_value(value: Any) -> Any:
    """A JSON value for any param: estimators by class name, other objects by a short text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if hasattr(value, "get_params") and isinstance(value, object) and not isinstance(value, type):
        return type(value).__name__
    if type(value).__module__ == "numpy" and getattr(value, "size", _MAX_ITEMS + 1) <= _MAX_ITEMS:
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            return plain_value(value.tolist())  # a numpy scalar or a small array
    if isinstance(value, type) or callable(value):
        return getattr(value, "__qualname__", None) or type(value).__name__
    text = _ADDRESS.sub("", repr(value))  # an address would differ in every run
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _record_search(
    run: runs.Run, state: RunState, name: str, search: Any, params: dict[str, Any]
) -> None:
    for key, value in (getattr(search, "best_params_", None) or {}).items():
        params[f"{name}.best.{key.replace('__', '.')}"] = plain_value(value)
    best = getattr(search, "best_score_", None)
    if best is not None:
        _log_metric(run, state, f"{name}.best_score", best)
    import pandas as pd

    table = pd.DataFrame(search.cv_results_)
    payload = table.to_csv(index=False).encode()
    log_artifact_bytes(run, f"{name}.cv_results.csv", payload, "table", "cv_results_")


def log_artifact_bytes(run: runs.Run, name: str, payload: bytes, kind: str, source: str) -> None:
    """Log bytes as an artifact of the run, of a kind ``Artifact.load()`` knows."""
    row = store_bytes(run.store, name, payload, kind, source)
    row.update(run_id=run.id, cell_seq=run.current_cell, time=time.time())
    run.store.add_artifact(row)


def log_params_kept(run: runs.Run, state: RunState, params: dict[str, Any]) -> None:
    """Log autologged params, but none the notebook set by hand; one that cannot be stored
    is left out, not the rest with it."""
    existing = run.store.params([run.id])[run.id]
    written = state.param_values
    mine = {
        key: value
        for key, value in params.items()
        # A param set by hand wins.
        if key not in existing or (key in written and existing[key] == written[key])
    }
    try:
        run.log_params(mine, quiet=True)
    except MlopsError:
        for key, value in list(mine.items()):
            try:
                run.log_params({key: value}, quiet=True)
            except MlopsError:
                mine.pop(key)
    written.update(mine)


# -- scores ---------------------------------------------------------------------------------------


def _record_scores(
    run: runs.Run, state: RunState, scores: list[Score], names: _Names, source: str
) -> None:
    sites: dict[str, str | None] | None = None
    for score in scores:
        numbers = _numbers(score)
        if not numbers:
            continue
        base = names.assigned_to(score.value)
        if base is None:
            if sites is None:
                sites = _assignment_sites(source)
            base = sites.get(score.function) or score.function
        for suffix, number in numbers:
            _log_metric(run, state, base + suffix, number)


def _numbers(score: Score) -> list[tuple[str, float]]:
    value = score.value
    if score.function == "cross_val_score":
        return _summary("", value)
    if score.function == "cross_validate" and isinstance(value, Mapping):
        out: list[tuple[str, float]] = []
        for key, values in value.items():
            if isinstance(key, str) and key.startswith(("test_", "train_")):
                out.extend(_summary(f".{key}", values))
        return out
    number = _number(value)
    return [("", number)] if number is not None else []


def _summary(prefix: str, values: Any) -> list[tuple[str, float]]:
    try:
        import numpy as np

        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return []
    if array.ndim != 1 or not array.size:
        return []
    return [(f"{prefix}.mean", float(array.mean())), (f"{prefix}.std", float(array.std()))]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return None


def _assignment_sites(source: str) -> dict[str, str | None]:
    """For each function called in the cell: the one name all its calls are assigned to."""
    from ..cellcode import parse_cell

    module = parse_cell(source) if source else None
    if module is None:
        return {}
    calls: dict[str, int] = {}
    assigned: dict[str, list[str]] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Call):
            callee = _callee(node)
            if callee:
                calls[callee] = calls.get(callee, 0) + 1
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
            targets: Iterable[ast.expr] = (
                node.targets if isinstance(node, ast.Assign) else [node.target]
            )
            callee = _callee(node.value)
            for target in targets:
                if callee and isinstance(target, ast.Name):
                    assigned.setdefault(callee, []).append(target.id)
    return {
        callee: targets[0]
        for callee, targets in assigned.items()
        if len(set(targets)) == 1 and len(targets) == calls.get(callee)
    }


def _callee(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _log_metric(run: runs.Run, state: RunState, key: str, value: Any) -> None:
    step = run.last_step(key)
    if step is not None and state.metric_steps.get(key) != step:
        return  # logged by hand: the notebook's own metric wins
    number = _number(value)
    if number is None:
        return
    try:
        run.log_metric(key, number)
    except MlopsError:
        return
    logged = run.last_step(key)
    if logged is not None:
        state.metric_steps[key] = logged
