"""Runs as recorded: read them (one, a list, a DataFrame), rename, tag, note or delete them.

The reading side of runs, for every door: a run of another process, ended or still going,
is read here the same way. A run found running whose process is gone is marked ``crashed``
first (``liveness.reap_crashed``). How a run looks as a card in a notebook is the views'
business: they register the renderer (``register_card``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import Artifact
from .cellcode import fill_cell_facts
from .errors import InvalidValueError
from .liveness import HOST, pid_alive, reap_crashed
from .notebooks import notebook_file, stored_notebook
from .store import Store, open_store
from .validate import MAX_TEXT_BYTES, checked_name, tag_value
from .vocabulary import KINDS, STATUSES

if TYPE_CHECKING:
    import pandas as pd

    from .query import Node

__all__ = [
    "RunRecord",
    "count_runs",
    "delete_run",
    "get_run",
    "list_runs",
    "register_card",
    "runs",
    "update_run",
]

# Draws a recorded run as an HTML card (set by the views when they are imported).
_card: Callable[[RunRecord], str] | None = None


def register_card(render: Callable[[RunRecord], str]) -> None:
    """Make ``render`` the HTML card a recorded run shows as in a notebook."""
    global _card
    _card = render


class RunRecord:
    """A recorded run as read from the store: its row, params, latest metrics and tags."""

    def __init__(self, store: Store, row: dict[str, Any]) -> None:
        self.store = store
        self.row = row
        self.id: str = row["id"]
        self.name: str = row["name"]
        self.status: str = row["status"]

    def __repr__(self) -> str:
        return f"<RunRecord {self.name!r} {self.id[:12]} {self.status}>"

    def _repr_html_(self) -> str | None:
        """The run as a card in a notebook, once the views registered how to draw one."""
        return _card(self) if _card is not None else None

    @property
    def params(self) -> dict[str, Any]:
        """The run's params."""
        return self.store.params([self.id])[self.id]

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value of each metric."""
        return {k: v["value"] for k, v in self.store.latest_metrics([self.id])[self.id].items()}

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags."""
        return dict(self.row.get("tags") or {})

    def metric_series(self, key: str) -> list[dict[str, Any]]:
        """Every point of one metric: step, value, time, cell."""
        return self.store.metric_series(self.id, key)

    def cells(self) -> list[dict[str, Any]]:
        """The cells the run executed, in the order they ran."""
        cells = self.store.cells(self.id)
        fill_cell_facts(cells)  # a run still going has not worked these out yet
        return cells

    def prelude(self) -> list[dict[str, Any]]:
        """The cells its kernel ran before the run started (sources and execution counts)."""
        return self.store.cells(self.id, prelude=True)

    def datasets(self) -> list[dict[str, Any]]:
        """The datasets the run recorded."""
        return self.store.datasets(self.id)

    def serving(self) -> list[dict[str, Any]]:
        """The serving samples the run recorded (``log_data(..., context="serving")``)."""
        return self.store.datasets(self.id, context="serving")

    def data_checks(self) -> list[dict[str, Any]]:
        """Data checks made in this run or against its datasets, newest first."""
        return self.store.data_checks(self.id)

    def artifacts(self) -> list[dict[str, Any]]:
        """The artifacts the run stored."""
        return self.store.artifacts(self.id)

    def artifact(self, name: str) -> Artifact:
        """One stored artifact by name (the latest of that name), to ``load()`` it back."""
        rows = [row for row in self.artifacts() if row["name"] == name]
        if not rows:
            known = ", ".join(sorted({row["name"] for row in self.artifacts()})) or "none"
            raise InvalidValueError(name, f"run {self.name!r} has no such artifact ({known})")
        return Artifact(self.store, rows[-1])

    def _notebook_path(self) -> Path | None:
        notebook = self.row.get("notebook")
        return notebook_file(self.store.directory.parent, notebook) if notebook else None

    def environment(self) -> dict[str, Any] | None:
        """The environment the run ran in."""
        env_id = self.row.get("env_id")
        return self.store.environment(env_id) if env_id else None

    @property
    def note(self) -> str | None:
        """The free-text note on the run, if any."""
        note = self.row.get("note")
        return str(note) if note is not None else None

    def replays(self) -> list[dict[str, Any]]:
        """Replays of this run, newest first, each with its verdict and summary (no report)."""
        rows = self.store.replays(original_id=self.id)
        return [{k: v for k, v in row.items() if k != "report"} for row in rows]

    def replay_of(self) -> dict[str, Any] | None:
        """For a replay run: the replay that made it, with its verdict and whole report."""
        rows = self.store.replays(replay_run_id=self.id)
        return rows[0] if rows else None

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """The run as plain data; ``full`` adds series, cells, datasets, artifacts, environment,
        replays of it and, for a replay run, the replay that made it."""
        out = dict(self.row)
        out["params"] = self.params
        latest = self.store.latest_metrics([self.id])[self.id]
        out["metrics"] = {k: v["value"] for k, v in latest.items()}
        if full:
            out["metric_series"] = {key: self.metric_series(key) for key in latest}
            from .linearity import annotate_cells

            cells = self.cells()
            # How each cell broke top-to-bottom order, and its number, worked out once for
            # every door.
            annotate_cells(cells, self._notebook_path(), ended=self.status != "running")
            out["cells"] = cells
            out["prelude"] = self.prelude()
            out["datasets"] = self.datasets()
            out["serving"] = self.serving()
            out["data_checks"] = self.data_checks()
            out["artifacts"] = self.artifacts()
            out["environment"] = self.environment()
            out["replays"] = self.replays()
            out["replay_of"] = self.replay_of()
            out["param_history"] = self.param_history()
            out["registered"] = self.store.model_versions(run_id=self.id)
        return out

    def param_history(self) -> dict[str, list[dict[str, Any]]]:
        """Earlier values of params logged again with another value, oldest first."""
        return self.store.param_history(self.id)


def get_run(ref: str, *, store: Store | None = None) -> RunRecord:
    """A run by full id, unique id prefix, or name (the newest run of that name)."""
    store = store or open_store(create=False)
    reap_crashed(store)
    return RunRecord(store, store.get_run(store.resolve_run(ref)))


def list_runs(
    *,
    where: str | None = None,
    notebook: str | Path | None = None,
    statuses: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
    order_by: str | None = None,
    descending: bool = True,
    kinds: Sequence[str] = (),
    replays: bool = True,
    store: Store | None = None,
) -> list[dict[str, Any]]:
    """Runs newest first (or by ``order_by``: a column, ``params.K``, ``metrics.K``) as dicts
    with ``params``, ``metrics``, ``tags`` and ``replay_summary`` (how often it was replayed,
    the latest verdict); ``statuses`` and ``kinds`` keep runs of those; ``replays=False``
    leaves replay runs out (shown under their run) unless a kind or the filter asks for them."""
    store = store or open_store(create=False)
    if limit is not None and limit < 0:
        raise InvalidValueError("limit", "must be zero or more")
    if offset < 0:
        raise InvalidValueError("offset", "must be zero or more")
    reap_crashed(store)
    node, notebook_ref = _filters(store, where, notebook, statuses, kinds, replays)
    return store.list_runs(
        where=node,
        notebook=notebook_ref,
        limit=limit,
        offset=offset,
        order_by=order_by,
        descending=descending,
    )


def count_runs(
    *,
    where: str | None = None,
    notebook: str | Path | None = None,
    statuses: Sequence[str] = (),
    upto: int | None = None,
    kinds: Sequence[str] = (),
    replays: bool = True,
    store: Store | None = None,
) -> int:
    """How many runs ``list_runs`` with the same filters would give without a limit
    (counting no further than ``upto`` when given)."""
    store = store or open_store(create=False)
    node, notebook_ref = _filters(store, where, notebook, statuses, kinds, replays)
    return store.count_runs(where=node, notebook=notebook_ref, upto=upto)


def _filters(
    store: Store,
    where: str | None,
    notebook: str | Path | None,
    statuses: Sequence[str],
    kinds: Sequence[str] = (),
    replays: bool = True,
) -> tuple[Node | None, str | None]:
    """The parsed filter (with the statuses and kinds joined to the tree, never pasted into
    the text) and the notebook as the store names it."""
    from .query import BoolOp, Comparison, fields_used, parse_expression

    node: Node | None = parse_expression(where) if where else None
    asks_kind = bool(kinds) or (node is not None and ("kind", None) in fields_used(node))
    for field, wanted, known in (("status", statuses, STATUSES), ("kind", kinds, KINDS)):
        either: Node | None = None
        for value in dict.fromkeys(wanted):
            if value not in known:
                raise InvalidValueError(field, f"{value!r} is not one of {', '.join(known)}")
            test = Comparison(field, None, "=", value, 0)
            either = test if either is None else BoolOp("or", either, test)
        if either is not None:
            node = either if node is None else BoolOp("and", node, either)
    if not replays and not asks_kind:
        no_replay = Comparison("kind", None, "!=", "replay", 0)
        node = no_replay if node is None else BoolOp("and", node, no_replay)
    notebook_ref = stored_notebook(store.directory.parent, Path(notebook)) if notebook else None
    return node, notebook_ref


def update_run(
    ref: str,
    *,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    remove_tags: Sequence[str] = (),
    note: str | None = None,
    store: Store | None = None,
) -> RunRecord:
    """Rename a run, set or remove its tags, or set its note (``""`` clears it)."""
    store = store or open_store(create=False)
    run_id = store.resolve_run(ref)
    if name is not None:
        name = checked_name("run", name)
        store.update_run(run_id, name=name)
    if tags:
        store.set_tags(run_id, {checked_name("tag", k): tag_value(k, v) for k, v in tags.items()})
    if remove_tags:
        store.delete_tags(run_id, [checked_name("tag", k) for k in remove_tags])
    if note is not None:
        if len(note.encode()) > MAX_TEXT_BYTES:
            raise InvalidValueError("note", "is too long (at most 64 KB)")
        store.update_run(run_id, note=note or None)
    return RunRecord(store, store.get_run(run_id))


def delete_run(ref: str, *, store: Store | None = None) -> str:
    """Delete a run that is not running, with its params, metrics, cells and replays; its id."""
    store = store or open_store(create=False)
    reap_crashed(store)
    run_id = store.resolve_run(ref)
    row = store.get_run(run_id)
    # A run thought crashed whose process is alive after all is still being recorded.
    alive = (
        row["status"] == "crashed"
        and row["host"] == HOST
        and row["pid"] is not None
        and row["process_start"] is not None
        and pid_alive(row["pid"], row["process_start"])
    )
    if row["status"] == "running" or alive:
        raise InvalidValueError(ref, "the run is still running; end it before deleting it")
    store.delete_run(run_id)
    return run_id


_FRAME_COLUMNS = (
    "run_id",
    "name",
    "status",
    "kind",
    "notebook",
    "start_time",
    "end_time",
    "linear",
    "parent_id",
)


def runs(
    where: str | None = None,
    *,
    notebook: str | Path | None = None,
    limit: int | None = None,
    store: Store | None = None,
) -> pd.DataFrame:
    """Runs newest first as a DataFrame: a row a run, ``params.*``/``metrics.*``/``tags.*``."""
    import pandas as pd

    rows = []
    for run in list_runs(where=where, notebook=notebook, limit=limit, store=store):
        row: dict[str, Any] = {"run_id": run["id"]}
        row.update({column: run[column] for column in _FRAME_COLUMNS[1:]})
        row["start_time"] = _timestamp(run["start_time"])
        row["end_time"] = _timestamp(run["end_time"])
        row["duration"] = run["end_time"] - run["start_time"] if run["end_time"] else None
        row.update({f"params.{k}": _flat(v) for k, v in run["params"].items()})
        row.update({f"metrics.{k}": v for k, v in run["metrics"].items()})
        row.update({f"tags.{k}": v for k, v in run["tags"].items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else [*_FRAME_COLUMNS, "duration"])


def _flat(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _timestamp(value: float | None) -> Any:
    import pandas as pd

    return pd.NaT if value is None else pd.Timestamp(value, unit="s", tz="UTC")
