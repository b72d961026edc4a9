"""In-notebook views of runs: a runs table, one run, a comparison and metric charts.

ipywidgets and plotly are imported only when a view is built, so ``%load_ext`` and
``import jupyter_mlops`` stay fast. Everything is read through ``run.py`` (which reads the
store) and compared through ``compare.py``. Text from runs (names, params, sources) reaches
the page only through ``html.escape``: the HTML widget sets ``innerHTML``.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import run as runs
from .records import register_card
from .errors import InvalidValueError, MlopsError
from .linearity import cell_label
from .tables import format_duration, format_value, replay_count
from .threads import start_background

__all__ = [
    "CompareView",
    "LivePlot",
    "MetricPlot",
    "RunView",
    "RunsTable",
    "compare_view",
    "in_notebook_frontend",
    "plot_view",
    "run_html",
    "run_view",
    "runs_view",
]

STATUS_COLOURS = {
    "running": "#1a73e8",
    "finished": "#188038",
    "failed": "#d93025",
    "killed": "#e37400",
    "crashed": "#8e24aa",
}
VERDICT_COLOURS = {
    "reproduced": "#188038",
    "reproduced within tolerance": "#5f9e2f",
    "diverged": "#e37400",
    "failed": "#d93025",
}
DIFF_BACKGROUND = "rgba(255, 193, 7, 0.28)"
MAX_PAGE_SIZE = 200
MAX_KEY_COLUMNS = 8
MAX_CELLS_SHOWN = 500
MAX_CHARTS = 12
MAX_PARALLEL_PARAMS = 12
LIVE_INTERVAL_S = 0.3
# A poll that took c seconds waits at least c * this before the next, so drawing never takes
# more than about 1/this of the logging thread's time, however long the series grows.
LIVE_DUTY_FACTOR = 40
LIVE_MAX_POINTS = 5_000
LIVE_MAX_WAIT_S = 5.0
_FONT = "font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px"
_MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 12px"
_BORDER = "var(--jp-border-color2, #e0e0e0)"


# -- where output goes ---------------------------------------------------------------------


def in_notebook_frontend() -> bool:
    """Whether this process is a kernel whose output a notebook frontend renders (widgets)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return False
    # ipykernel's shell sends output to a frontend over ZMQ; terminal IPython and a plain
    # InteractiveShell print to a terminal, where widget reprs would be noise.
    if not any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__):
        return False
    return getattr(shell, "kernel", None) is not None


def _ipywidgets() -> Any:
    import ipywidgets

    return ipywidgets


def _graph_objects() -> Any:
    import plotly.graph_objects as go

    return go


# -- small HTML pieces (every value escaped) ---------------------------------------------------


def esc(value: Any) -> str:
    """Text made safe to put inside HTML (element text or a quoted attribute)."""
    return html.escape(str(value), quote=True)


def badge(text: str, colour: str) -> str:
    """A coloured pill with escaped text."""
    return (
        f'<span style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px;'
        f'{_FONT};font-size:11px;white-space:nowrap">{esc(text)}</span>'
    )


def status_badge(status: str) -> str:
    """A run's status as a coloured pill."""
    return badge(status, STATUS_COLOURS.get(status, "#5f6368"))


def verdict_badge(verdict: str | None) -> str:
    """A replay verdict as a coloured pill."""
    if not verdict:
        return badge("no verdict yet", "#5f6368")
    return badge(verdict, VERDICT_COLOURS.get(verdict, "#5f6368"))


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def _duration(run: dict[str, Any]) -> float | None:
    end = run.get("end_time") or (time.time() if run.get("status") == "running" else None)
    return end - run["start_time"] if end else None


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    highlight: Sequence[bool] | None = None,
) -> str:
    """An HTML table; cells are given as HTML already escaped by the caller."""
    head = "".join(
        f'<th style="text-align:left;padding:3px 10px;border-bottom:1px solid {_BORDER}">'
        f"{esc(h)}</th>"
        for h in headers
    )
    body = []
    for index, row in enumerate(rows):
        marked = highlight is not None and highlight[index]
        style = f' style="background:{DIFF_BACKGROUND}"' if marked else ""
        cells = "".join(
            f'<td style="padding:3px 10px;vertical-align:top;border-bottom:1px solid {_BORDER}">'
            f"{cell}</td>"
            for cell in row
        )
        body.append(f"<tr{style}>{cells}</tr>")
    return (
        f'<table style="border-collapse:collapse;{_FONT}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _value(value: Any, width: int = 60) -> str:
    """A param or metric value as escaped text; a missing one as a grey dash."""
    if value is None:
        return '<span style="opacity:0.5">-</span>'
    return esc(format_value(value, width))


def _note(text: str) -> str:
    return f'<div style="{_FONT};opacity:0.7;margin:6px 0">{esc(text)}</div>'


def _section(title: str) -> str:
    return f'<div style="{_FONT};font-weight:600;margin:10px 0 4px">{esc(title)}</div>'


def run_html(record: runs.RunRecord) -> str:
    """A run as an HTML card: name, status, when, linear, params and latest metrics."""
    data = record.to_dict()
    head = (
        f'<div style="{_FONT};font-size:14px;font-weight:600;margin-bottom:4px">'
        f"{esc(data['name'])} {status_badge(data['status'])} "
        f'<span style="{_MONO};opacity:0.6">{esc(data["id"][:12])}</span></div>'
    )
    facts = [
        ["notebook", esc(data.get("notebook") or "-")],
        ["started", esc(_when(data["start_time"]))],
        ["duration", esc(format_duration(_duration(data)))],
        ["linear", _linear_html(data)],
    ]
    if data.get("tags"):
        facts.append(["tags", esc(", ".join(f"{k}={v}" for k, v in data["tags"].items()))])
    parts = [head, _table(["", ""], facts)]
    if data["params"]:
        rows = [[esc(k), _value(v)] for k, v in data["params"].items()]
        parts += [_section("params"), _table(["key", "value"], rows)]
    if data["metrics"]:
        rows = [[esc(k), _value(v)] for k, v in data["metrics"].items()]
        parts += [_section("metrics (latest)"), _table(["key", "value"], rows)]
    return f'<div style="padding:4px 0">{"".join(parts)}</div>'


def _linear_html(run: dict[str, Any]) -> str:
    linear = run.get("linear")
    if linear is None:
        return '<span style="opacity:0.6">not known yet</span>'
    if linear:
        return "yes"
    reasons = run.get("linear_reasons") or []
    listed = "".join(f"<li>{esc(reason)}</li>" for reason in reasons)
    return f'no<ul style="margin:2px 0 0 0;padding-left:18px">{listed}</ul>'


# -- runs table --------------------------------------------------------------------------------

_FIXED_COLUMNS = ("id", "name", "status", "started", "duration")
_SORT_KEYS = {"started": "start_time", "duration": "duration", "name": "name", "status": "status"}


class RunsTable:
    """A page of runs as a table: sort, filter, select; buttons to show, compare or plot."""

    def __init__(
        self,
        *,
        where: str | None = None,
        notebook: str | Path | None = None,
        page_size: int = 20,
        order_by: str | None = None,
        descending: bool = True,
        replays: bool = False,
        store: Any = None,
    ) -> None:
        from .store import open_store

        if page_size < 1:
            raise InvalidValueError("page size", "must be at least 1")
        self.store = store or open_store(create=False)
        self.notebook = notebook
        # Replay runs are counted under their run (a replays column) unless asked for.
        self.replays = replays
        self.where = where or None
        self.order_by = order_by
        self.descending = descending
        # A page is widgets: past a few hundred rows the frontend slows, and paging shows the rest.
        self.page_size = min(page_size, MAX_PAGE_SIZE)
        self.page = 0
        self.total = 0
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = list(_FIXED_COLUMNS)
        self.selected: dict[str, str] = {}  # run id -> name, in the order they were picked
        self.detail_view: Any = None
        self._updating = False
        self._load()  # a bad filter fails here, before any widget exists
        self._build()
        self._render()

    # -- data ----------------------------------------------------------------------------

    def _load(self) -> None:
        self.total = runs.count_runs(
            where=self.where, notebook=self.notebook, replays=self.replays, store=self.store
        )
        self.page = min(self.page, max(self.page_count - 1, 0))
        self.rows = runs.list_runs(
            where=self.where,
            notebook=self.notebook,
            limit=self.page_size,
            offset=self.page * self.page_size,
            order_by=_SORT_KEYS.get(self.order_by or "", self.order_by),
            descending=self.descending,
            replays=self.replays,
            store=self.store,
        )
        params = _ranked_keys(self.rows, "params")
        metrics = _ranked_keys(self.rows, "metrics")
        # The column sorted by stays in view even when this page's runs lack it.
        if self.order_by and self.order_by.startswith("params."):
            params = list(dict.fromkeys([self.order_by[7:], *params]))
        if self.order_by and self.order_by.startswith("metrics."):
            metrics = list(dict.fromkeys([self.order_by[8:], *metrics]))
        replayed = any(run["replay_summary"]["count"] for run in self.rows)
        self.columns = [
            *_FIXED_COLUMNS,
            *(["replays"] if replayed else []),
            *(f"params.{k}" for k in params),
            *(f"metrics.{k}" for k in metrics),
        ]

    @property
    def page_count(self) -> int:
        """How many pages the matching runs fill."""
        return max(math.ceil(self.total / self.page_size), 1)

    def cell_text(self, run: dict[str, Any], column: str) -> str:
        """What a table cell shows, as plain text."""
        if column == "id":
            return str(run["id"][:8])
        if column == "name":
            return str(run["name"])
        if column == "status":
            return str(run["status"])
        if column == "started":
            return _when(run["start_time"])
        if column == "duration":
            return format_duration(_duration(run))
        if column == "replays":
            return replay_count(run.get("replay_summary"))
        field, _, key = column.partition(".")
        values = run[field]
        return format_value(values[key], 24) if key in values else ""

    # -- widgets -------------------------------------------------------------------------

    def _build(self) -> None:
        w = _ipywidgets()
        self.filter_box = w.Text(
            value=self.where or "",
            placeholder="filter: metrics.acc > 0.9 and params.lr <= 0.01 and status = finished",
            continuous_update=False,
            layout=w.Layout(flex="1 1 auto", min_width="260px"),
        )
        self.filter_box.observe(self._guard(self._on_filter), names="value")
        self.sort_menu = w.Dropdown(description="sort by", layout=w.Layout(width="240px"))
        self.sort_menu.style.description_width = "50px"
        self.sort_menu.observe(self._guard(self._on_sort), names="value")
        self.order_button = w.ToggleButton(
            value=self.descending,
            tooltip="descending / ascending",
            layout=w.Layout(width="44px"),
        )
        self.order_button.observe(self._guard(self._on_order), names="value")
        refresh = w.Button(icon="refresh", tooltip="read the store again", layout=_narrow(w))
        refresh.on_click(self._guard(lambda _: self.refresh()))
        self.message = w.HTML()
        self.page_checkbox = w.Checkbox(
            indent=False, tooltip="select this page", layout=w.Layout(width="28px")
        )
        self.page_checkbox.observe(self._guard(self._on_select_page), names="value")
        self.header = w.HTML()
        self.row_checkboxes = []
        self.row_cells = []
        row_boxes = []
        # Rows share their layout and style models: a page builds a third fewer objects.
        from ipywidgets.widgets.widget_bool import CheckboxStyle
        from ipywidgets.widgets.widget_string import HTMLStyle

        checkbox_layout, checkbox_style = w.Layout(width="28px"), CheckboxStyle()
        cells_layout, cells_style = w.Layout(), HTMLStyle()
        for index in range(self.page_size):
            checkbox = w.Checkbox(indent=False, layout=checkbox_layout, style=checkbox_style)
            checkbox.observe(self._guard(self._row_toggler(index)), names="value")
            cells = w.HTML(layout=cells_layout, style=cells_style)
            self.row_checkboxes.append(checkbox)
            self.row_cells.append(cells)
            row_boxes.append(w.HBox([checkbox, cells], layout=w.Layout(align_items="center")))
        self.row_boxes = row_boxes
        self.first_button = w.Button(icon="angle-double-left", layout=_narrow(w))
        self.previous_button = w.Button(icon="angle-left", layout=_narrow(w))
        self.next_button = w.Button(icon="angle-right", layout=_narrow(w))
        self.last_button = w.Button(icon="angle-double-right", layout=_narrow(w))
        self.first_button.on_click(self._guard(lambda _: self.go_to(0)))
        self.previous_button.on_click(self._guard(lambda _: self.go_to(self.page - 1)))
        self.next_button.on_click(self._guard(lambda _: self.go_to(self.page + 1)))
        self.last_button.on_click(self._guard(lambda _: self.go_to(self.page_count - 1)))
        self.page_label = w.HTML()
        self.selection_label = w.HTML(layout=w.Layout(min_width="220px"))
        self.show_button = w.Button(description="Show", icon="eye", tooltip="one selected run")
        self.compare_button = w.Button(
            description="Compare", icon="columns", tooltip="two or more selected runs"
        )
        self.plot_menu = w.Dropdown(layout=w.Layout(width="180px"))
        self.plot_button = w.Button(
            description="Plot", icon="line-chart", tooltip="the metric's curves of the selection"
        )
        clear = w.Button(description="Clear", tooltip="clear the selection")
        self.show_button.on_click(self._guard(lambda _: self.show_selected()))
        self.compare_button.on_click(self._guard(lambda _: self.compare_selected()))
        self.plot_button.on_click(self._guard(lambda _: self.plot_selected()))
        clear.on_click(self._guard(lambda _: self.select([])))
        self.detail = w.VBox()
        self.widget = w.VBox(
            [
                w.HBox([self.filter_box, self.sort_menu, self.order_button, refresh]),
                self.message,
                # Header and rows scroll sideways together when the columns are many.
                w.VBox(
                    [
                        w.HBox(
                            [self.page_checkbox, self.header],
                            layout=w.Layout(align_items="center", min_width="max-content"),
                        ),
                        w.VBox(row_boxes, layout=w.Layout(min_width="max-content")),
                    ],
                    layout=w.Layout(overflow="auto hidden"),
                ),
                w.HBox(
                    [
                        self.first_button,
                        self.previous_button,
                        self.page_label,
                        self.next_button,
                        self.last_button,
                    ],
                    layout=w.Layout(align_items="center"),
                ),
                w.HBox(
                    [
                        self.selection_label,
                        self.show_button,
                        self.compare_button,
                        self.plot_menu,
                        self.plot_button,
                        clear,
                    ],
                    layout=w.Layout(align_items="center"),
                ),
                self.detail,
            ]
        )

    def _render(self) -> None:
        """Put the loaded page into the widgets (reused from page to page)."""
        self._updating = True
        try:
            widths = self._widths()
            template = " ".join(f"{width}ch" for width in widths)
            grid = (
                f"display:grid;grid-template-columns:{template};column-gap:12px;"
                f"{_MONO};white-space:nowrap;line-height:24px"
            )
            labels = [_column_label(c, self.order_by, self.descending) for c in self.columns]
            self.header.value = (
                f'<div style="{grid};font-weight:600;border-bottom:1px solid {_BORDER}">'
                + "".join(f"<span>{esc(label)}</span>" for label in labels)
                + "</div>"
            )
            for index, box in enumerate(self.row_boxes):
                if index >= len(self.rows):
                    box.layout.display = "none"
                    continue
                run = self.rows[index]
                box.layout.display = ""
                self.row_checkboxes[index].value = run["id"] in self.selected
                self.row_cells[index].value = self._row_html(run, grid)
            self.page_checkbox.value = bool(self.rows) and all(
                run["id"] in self.selected for run in self.rows
            )
            first = self.page * self.page_size + 1 if self.rows else 0
            last = self.page * self.page_size + len(self.rows)
            self.page_label.value = (
                f'<span style="{_FONT};padding:0 8px">runs {first:,}–{last:,} of '
                f"{self.total:,} · page {self.page + 1:,} of {self.page_count:,}</span>"
            )
            self.first_button.disabled = self.previous_button.disabled = self.page == 0
            self.next_button.disabled = self.last_button.disabled = self.page >= self.page_count - 1
            sort_options = [
                ("started", "started"),
                ("name", "name"),
                ("status", "status"),
                ("duration", "duration"),
            ]
            sort_options += [(c, c) for c in self.columns if "." in c]
            self.sort_menu.options = sort_options
            self.sort_menu.value = self.order_by or "started"
            self.order_button.value = self.descending
            self.order_button.icon = "arrow-down" if self.descending else "arrow-up"
            self._render_selection()
        finally:
            self._updating = False

    def _row_html(self, run: dict[str, Any], grid: str) -> str:
        cells = []
        for column in self.columns:
            text = self.cell_text(run, column)
            content = status_badge(text) if column == "status" else esc(text)
            cells.append(
                f'<span title="{esc(text)}" style="overflow:hidden;text-overflow:ellipsis">'
                f"{content}</span>"
            )
        return f'<div style="{grid};border-bottom:1px solid {_BORDER}">{"".join(cells)}</div>'

    def _widths(self) -> list[int]:
        widths = []
        for column in self.columns:
            label = _column_label(column, "", True)
            longest = max([len(label) + 2, *(len(self.cell_text(r, column)) for r in self.rows)])
            if column == "status":
                longest += 3  # the badge's padding
            widths.append(min(max(longest, 4), 12 if column == "status" else 28))
        return widths

    def _render_selection(self) -> None:
        count = len(self.selected)
        names = ", ".join(list(self.selected.values())[:4]) + (" …" if count > 4 else "")
        self.selection_label.value = (
            f'<span style="{_FONT};padding-right:8px">{count} selected'
            f"{': ' + esc(names) if count else ''}</span>"
        )
        self.show_button.disabled = count != 1
        self.compare_button.disabled = count < 2
        keys = sorted(
            {k for run in self.rows if run["id"] in self.selected for k in run["metrics"]}
        )
        previous = self.plot_menu.value
        self.plot_menu.options = keys
        self.plot_menu.value = previous if previous in keys else (keys[0] if keys else None)
        self.plot_button.disabled = count == 0 or not keys

    # -- actions (also callable from Python) -------------------------------------------------

    def refresh(self) -> None:
        """Read the current page from the store again."""
        self._load()
        self._render()

    def set_where(self, where: str | None) -> None:
        """Filter with an expression (as ``runs --where``); a bad one raises ExpressionError."""
        previous = self.where
        self.where = where.strip() if where and where.strip() else None
        self.page = 0
        try:
            self._load()
        except MlopsError:
            self.where = previous
            raise
        self._render()

    def sort(self, column: str, descending: bool | None = None) -> None:
        """Order by a column (``started``, ``name``, ``status``, ``duration``, ``params.K``,
        ``metrics.K``)."""
        self.order_by = None if column == "started" else column
        if descending is not None:
            self.descending = descending
        self.page = 0
        self._load()
        self._render()

    def go_to(self, page: int) -> None:
        """Show a page (numbered from 0; clamped to the pages there are)."""
        self.page = min(max(page, 0), self.page_count - 1)
        self._load()
        self._render()

    def select(self, run_ids: Sequence[str]) -> None:
        """Replace the selection with these runs (ids of any page)."""
        names = {run["id"]: run["name"] for run in self.rows}
        self.selected = {rid: names.get(rid, rid[:8]) for rid in run_ids}
        self._render()

    def show_selected(self) -> RunView:
        """Show the one selected run below the table."""
        if len(self.selected) != 1:
            raise InvalidValueError("selection", "select exactly one run to show it")
        view = run_view(next(iter(self.selected)), store=self.store)
        self._show_detail(view)
        return view

    def compare_selected(self) -> CompareView:
        """Compare the selected runs below the table."""
        if len(self.selected) < 2:
            raise InvalidValueError("selection", "select two or more runs to compare them")
        view = compare_view(list(self.selected), store=self.store)
        self._show_detail(view)
        return view

    def plot_selected(self, key: str | None = None) -> MetricPlot:
        """Plot one metric of the selected runs below the table."""
        key = key or self.plot_menu.value
        if not self.selected or not key:
            raise InvalidValueError("selection", "select runs with a metric to plot")
        view = MetricPlot(key, list(self.selected), store=self.store)
        self._show_detail(view)
        return view

    def _show_detail(self, view: Any) -> None:
        self.detail_view = view
        self.detail.children = [view.widget]

    # -- events ------------------------------------------------------------------------------

    def _guard(self, handler: Callable[[Any], object]) -> Callable[[Any], None]:
        """A widget callback that shows a user's mistake as a message and never raises."""

        def guarded(change: Any) -> None:
            if self._updating:
                return
            try:
                handler(change)
                self.message.value = ""
            except MlopsError as exc:
                self.message.value = _error_html(str(exc))
            except Exception as exc:
                self.message.value = _error_html(f"{type(exc).__name__}: {exc}")

        return guarded

    def _on_filter(self, change: Any) -> None:
        self.set_where(change["new"])

    def _on_sort(self, change: Any) -> None:
        if change["new"]:
            self.sort(change["new"])

    def _on_order(self, change: Any) -> None:
        self.sort(self.order_by or "started", descending=bool(change["new"]))

    def _on_select_page(self, change: Any) -> None:
        for run in self.rows:
            if change["new"]:
                self.selected[run["id"]] = run["name"]
            else:
                self.selected.pop(run["id"], None)
        self._render()

    def _row_toggler(self, index: int) -> Callable[[Any], None]:
        def toggle(change: Any) -> None:
            run = self.rows[index]
            if change["new"]:
                self.selected[run["id"]] = run["name"]
            else:
                self.selected.pop(run["id"], None)
            self._updating = True
            try:
                self.page_checkbox.value = all(r["id"] in self.selected for r in self.rows)
                self._render_selection()
            finally:
                self._updating = False

        return toggle

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _narrow(w: Any) -> Any:
    return w.Layout(width="36px")


def _column_label(column: str, order_by: str | None, descending: bool) -> str:
    sorted_here = (order_by or "started") == column
    return column + ((" ↓" if descending else " ↑") if sorted_here else "")


def _ranked_keys(rows: list[dict[str, Any]], field: str) -> list[str]:
    """The keys most runs of the page have, at most MAX_KEY_COLUMNS, in name order."""
    seen: dict[str, int] = {}
    for run in rows:
        for key in run[field]:
            seen[key] = seen.get(key, 0) + 1
    ranked = sorted(seen, key=lambda k: (-seen[k], k))
    return sorted(ranked[:MAX_KEY_COLUMNS])


def _error_html(text: str) -> str:
    return f'<div style="{_FONT};color:#d93025;margin:2px 0">{esc(text)}</div>'


# -- one run -------------------------------------------------------------------------------


class RunView:
    """One run in tabs: overview, params, metrics, cells, datasets, environment, replays."""

    def __init__(self, record: runs.RunRecord) -> None:
        w = _ipywidgets()
        self.record = record
        self.data = record.to_dict(full=True)
        self.figures: list[Any] = []
        pages: list[tuple[str, Any]] = [
            ("overview", w.HTML(self.overview_html())),
            ("params", w.HTML(self.params_html())),
        ]
        self.metrics_box = w.VBox([w.HTML(self.metrics_html())])
        pages.append(("metrics", self.metrics_box))
        pages.append(("cells", w.HTML(self.cells_html())))
        pages.append(("datasets", w.HTML(self.datasets_html())))
        if self.data.get("data_checks") or self.data.get("serving"):
            pages.append(("data checks", w.HTML(self.data_checks_html())))
        if self.data.get("artifacts"):
            pages.append(("artifacts", w.HTML(self.artifacts_html())))
        pages.append(("environment", w.HTML(self.environment_html())))
        if self.data.get("replays") or self.data.get("replay_of"):
            pages.append(("replay", w.HTML(self.replay_html())))
        self.titles = [title for title, _ in pages]
        self.widget = w.Tab(children=[page for _, page in pages], titles=self.titles)
        # Charts are drawn when their tab is first opened: plotly is slow to import cold.
        self.widget.observe(self._on_tab, names="selected_index")

    def _on_tab(self, change: Any) -> None:
        if change["new"] is not None and self.titles[change["new"]] == "metrics":
            with _failure_shown_in(self.metrics_box):
                self.metric_figures()

    def select(self, title: str) -> None:
        """Open a tab by its title."""
        self.widget.selected_index = self.titles.index(title)

    def metric_figures(self) -> list[Any]:
        """One line chart a metric's step series (drawn once, at first call)."""
        if self.figures:
            return self.figures
        # A metric logged once is a number, in the table above; a series is a curve.
        curves = [k for k, series in self.data["metric_series"].items() if len(series) > 1]
        keys = curves[:MAX_CHARTS]
        shown = list(self.metrics_box.children)
        if keys:
            # Plotly takes seconds to import cold: say so while the charts are being drawn.
            loading = _ipywidgets().HTML(
                _note(f"Drawing {len(keys)} chart(s)…"), _dom_classes=["jp-mlops-loading"]
            )
            self.metrics_box.children = [*shown, loading]
        for key in keys:
            figure = _line_figure(key, height=280)
            figure.add_trace(_series_trace(self.data["metric_series"][key], self.data["name"]))
            self.figures.append(figure)
        extra = len(curves) - len(keys)
        notes = [_ipywidgets().HTML(_note(f"{extra} more metric(s) not drawn"))] if extra else []
        self.metrics_box.children = [*shown, *self.figures, *notes]
        return self.figures

    def overview_html(self) -> str:
        """Status, linear or not and why, notebook, times, parent, replays, tags, note."""
        data = self.data
        rows = [
            [
                "status",
                status_badge(data["status"])
                + (f" {esc(data['error'])}" if data.get("error") else ""),
            ],
            ["id", f'<span style="{_MONO}">{esc(data["id"])}</span>'],
            ["kind", esc(data["kind"])],
            ["notebook", esc(data.get("notebook") or "-")],
            ["started", esc(_when(data["start_time"]))],
            ["ended", esc(_when(data.get("end_time")))],
            ["duration", esc(format_duration(_duration(data)))],
            ["linear", _linear_html(data)],
        ]
        if data.get("parent_id"):
            rows.append(["parent", self._run_label(data["parent_id"])])
        replay_of = data.get("replay_of")
        if replay_of:
            rows.append(
                [
                    "replay of",
                    self._run_label(replay_of["original_id"])
                    + " "
                    + verdict_badge(replay_of.get("verdict")),
                ]
            )
        for replay in data.get("replays") or []:
            rows.append(["replayed", _replay_line(replay)])
        if data.get("tags"):
            rows.append(["tags", esc(", ".join(f"{k}={v}" for k, v in data["tags"].items()))])
        if data.get("note"):
            rows.append(["note", f'<div style="white-space:pre-wrap">{esc(data["note"])}</div>'])
        head = (
            f'<div style="{_FONT};font-size:14px;font-weight:600;margin:4px 0 8px">'
            f"{esc(data['name'])}</div>"
        )
        return head + _table(["", ""], rows)

    def _run_label(self, run_id: str) -> str:
        try:
            name = self.record.store.get_run(run_id)["name"]
        except MlopsError:
            name = "(deleted)"
        return f'{esc(name)} <span style="{_MONO};opacity:0.6">{esc(run_id[:12])}</span>'

    def params_html(self) -> str:
        """Every param and its value."""
        if not self.data["params"]:
            return _note("no params recorded")
        rows = [[esc(k), _value(v, 200)] for k, v in self.data["params"].items()]
        return _table(["param", "value"], rows)

    def metrics_html(self) -> str:
        """Latest value, points and step range of each metric."""
        if not self.data["metrics"]:
            return _note("no metrics recorded")
        rows = []
        for key, value in self.data["metrics"].items():
            series = self.data["metric_series"].get(key) or []
            steps = f"{series[0]['step']}–{series[-1]['step']}" if series else "-"
            rows.append([esc(key), _value(value), esc(len(series)), esc(steps)])
        return _table(["metric", "latest", "points", "steps"], rows)

    def cells_html(self) -> str:
        """The executed sources in run order: counts, durations, errors, out-of-order marks."""
        cells = self.data.get("cells") or []
        if not cells:
            return _note("no cells recorded (a run from a script, or still starting)")
        marks = [cell.get("marks") or [] for cell in cells]
        parts = []
        for cell, marked in list(zip(cells, marks, strict=True))[:MAX_CELLS_SHOWN]:
            label = cell_label(cell)
            flags = "".join(" " + badge(mark, "#e37400") for mark in marked)
            if cell.get("error"):
                flags += " " + badge(cell["error"], "#d93025")
            colour = "#d93025" if cell.get("error") else ("#e37400" if marked else _BORDER)
            error = (
                f'<div style="{_MONO};color:#d93025;white-space:pre-wrap">'
                f"{esc(cell['error_value'])}</div>"
                if cell.get("error_value")
                else ""
            )
            parts.append(
                f'<div style="border-left:3px solid {colour};margin:6px 0;padding:2px 8px">'
                f'<div style="{_FONT}"><b>{esc(label)}</b> '
                f'<span style="opacity:0.7">{esc(format_duration(cell.get("duration")))}</span>'
                f"{flags}</div>"
                f'<pre style="{_MONO};margin:2px 0;white-space:pre-wrap">'
                f"{esc(cell.get('source') or '')}</pre>"
                f"{error}</div>"
            )
        if len(cells) > MAX_CELLS_SHOWN:
            parts.append(_note(f"first {MAX_CELLS_SHOWN} of {len(cells)} cells shown"))
        return "".join(parts)

    def datasets_html(self) -> str:
        """Each dataset: hash, kind, shape, schema and per-column profile."""
        datasets = self.data.get("datasets") or []
        if not datasets:
            return _note("no datasets recorded")
        parts = []
        for dataset in datasets:
            shape = "x".join(map(str, dataset.get("shape") or [])) or "-"
            parts.append(
                f'<div style="{_FONT};margin-top:10px"><b>{esc(dataset["name"])}</b> '
                f"{esc(dataset['kind'])} · {esc(shape)} · "
                f'<span style="{_MONO}">{esc(dataset["hash"])}</span>'
                + (f" · {esc(dataset['path'])}" if dataset.get("path") else "")
                + "</div>"
            )
            profile = dataset.get("profile") or {}
            columns = profile.get("columns") if isinstance(profile, dict) else None
            schema = dataset.get("schema")
            if isinstance(columns, dict) and columns:
                fields = ("dtype", "count", "missing", "min", "max", "mean", "distinct")
                rows = [
                    [esc(name), *(_value(stats.get(f), 24) for f in fields)]
                    for name, stats in list(columns.items())[:200]
                    if isinstance(stats, dict)
                ]
                parts.append(_table(["column", *fields], rows))
                if profile.get("approximate"):
                    parts.append(_note("profile approximate (sampled)"))
            elif isinstance(schema, dict) and schema:
                rows = [[esc(k), _value(v)] for k, v in list(schema.items())[:200]]
                parts.append(_table(["field", "type"], rows))
            elif schema is not None:
                parts.append(
                    f'<pre style="{_MONO}">{esc(json.dumps(schema, default=str)[:5000])}</pre>'
                )
        return "".join(parts)

    def artifacts_html(self) -> str:
        """Each stored artifact: name, kind, size, hash."""
        rows = [
            [
                esc(a["name"]),
                esc(a["kind"]),
                esc(f"{a['size_bytes']:,}"),
                f'<span style="{_MONO}">{esc(a["hash"])}</span>',
            ]
            for a in self.data.get("artifacts") or []
        ]
        return _table(["artifact", "kind", "bytes", "hash"], rows)

    def environment_html(self) -> str:
        """Python, platform, git state and installed packages."""
        env = self.data.get("environment")
        if not env:
            return _note("no environment recorded yet")
        rows = [
            ["python", esc(f"{env.get('python', '')} ({env.get('implementation', '')})")],
            ["platform", esc(env.get("platform", ""))],
            ["executable", esc(env.get("executable", ""))],
        ]
        git = env.get("git") or {}
        if git:
            state = " (dirty)" if git.get("dirty") else ""
            rows.append(
                ["git", esc(f"{(git.get('commit') or '')[:12]} {git.get('branch') or ''}{state}")]
            )
        for name, value in sorted((env.get("env_vars") or {}).items()):
            rows.append([esc(name), esc(value)])
        packages = env.get("packages") or {}
        listed = _table(
            ["package", "version"], [[esc(k), esc(v)] for k, v in sorted(packages.items())]
        )
        return (
            _table(["", ""], rows)
            + f'<details style="{_FONT};margin-top:8px"><summary>{len(packages)} packages</summary>'
            f"{listed}</details>"
        )

    def data_checks_html(self) -> str:
        """Data checks made in this run or against its data: result, then each problem."""
        parts = []
        serving = self.data.get("serving") or []
        if serving:
            names = ", ".join(d["name"] for d in serving)
            parts.append(_note(f"serving samples recorded: {names}"))
        for check in self.data.get("data_checks") or []:
            report = check.get("report") or {}
            outcome = "passed" if check["passed"] else "failed"
            result = badge(outcome, STATUS_COLOURS["finished" if check["passed"] else "failed"])
            against = f"{(check.get('baseline_run') or '')[:12]}:{check.get('baseline_dataset')}"
            parts.append(
                f'<div style="{_FONT};margin-top:10px">{result} <b>{esc(check["subject"])}</b>'
                f" against {esc(against)} · {esc(_when(check['time']))}</div>"
            )
            problems = report.get("problems") or []
            if problems:
                rows = [
                    [esc(p["severity"]), esc(p["column"]), esc(p["kind"]), esc(p["detail"])]
                    for p in problems[:200]
                ]
                parts.append(_table(["severity", "column", "kind", "detail"], rows))
            drifted = [n for n, c in (report.get("columns") or {}).items() if c.get("drift")]
            if drifted:
                parts.append(_note(f"drift in {', '.join(drifted)}"))
        return "".join(parts) or _note("no data checks")

    def replay_html(self) -> str:
        """The replays of this run and their verdicts, or the replay that made this run."""
        parts = []
        replay_of = self.data.get("replay_of")
        if replay_of:
            parts.append(
                f'<div style="{_FONT}">replay of {self._run_label(replay_of["original_id"])}: '
                f"{verdict_badge(replay_of.get('verdict'))}</div>"
            )
            if replay_of.get("summary"):
                parts.append(
                    f'<div style="{_FONT};white-space:pre-wrap;margin:6px 0">'
                    f"{esc(replay_of['summary'])}</div>"
                )
            if replay_of.get("report"):
                report = json.dumps(replay_of["report"], indent=1, default=str)[:20_000]
                parts.append(
                    f'<details style="{_FONT}"><summary>full report</summary>'
                    f'<pre style="{_MONO}">{esc(report)}</pre></details>'
                )
        replays = self.data.get("replays") or []
        if replays:
            rows = [
                [
                    esc(_when(r.get("start_time"))),
                    esc(r.get("mode") or ""),
                    esc(
                        f"{r.get('state')} {r.get('cells_done') or 0}/{r.get('cells_total') or '?'}"
                    ),
                    verdict_badge(r.get("verdict")),
                    esc(r.get("summary") or ""),
                ]
                for r in replays
            ]
            parts.append(_section("replays of this run"))
            parts.append(_table(["started", "mode", "state", "verdict", "summary"], rows))
        return "".join(parts)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _replay_line(replay: dict[str, Any]) -> str:
    state = replay.get("state")
    if state == "running":
        progress = f"running {replay.get('cells_done') or 0}/{replay.get('cells_total') or '?'}"
        return esc(f"{_when(replay.get('start_time'))} {progress}")
    return f"{esc(_when(replay.get('start_time')))} {verdict_badge(replay.get('verdict'))}"


# -- comparing runs ----------------------------------------------------------------------------


class CompareView:
    """Runs side by side: params (differences marked), metric curves, data, packages, cells."""

    def __init__(self, records: Sequence[runs.RunRecord]) -> None:
        from .compare import diff_runs

        if len(records) < 2:
            raise InvalidValueError("compare", "give two or more runs")
        w = _ipywidgets()
        self.records = list(records)
        self.data = [record.to_dict(full=True) for record in self.records]
        # One diff, compare.py's: the first run against each other.
        self.diffs = [diff_runs(self.data[0], other) for other in self.data[1:]]
        self.metric_keys = sorted({k for run in self.data for k in run["metrics"]})
        # The curves open on the metric with the longest series: a curve, not a single point.
        longest = max(
            self.metric_keys,
            key=lambda k: max(len(run["metric_series"].get(k) or []) for run in self.data),
            default=None,
        )
        self.metric_menu = w.Dropdown(options=self.metric_keys, value=longest, description="metric")
        self.metric_menu.observe(self._on_metric, names="value")
        self.curves: Any = None
        self.parallel: Any = None
        self.parallel_menu = w.Dropdown(options=self.metric_keys, description="colour by")
        self.parallel_menu.observe(self._on_parallel_metric, names="value")
        self.metrics_box = w.VBox([w.HTML(self.metrics_html()), self.metric_menu])
        pages: list[tuple[str, Any]] = [
            ("params", w.HTML(self.params_html())),
            ("metrics", self.metrics_box),
            ("datasets", w.HTML(self.datasets_html())),
            ("packages", w.HTML(self.packages_html())),
            ("cells", w.HTML(self.cells_html())),
        ]
        if len(self.data) >= 3:
            self.parallel_box = w.VBox([self.parallel_menu])
            pages.append(("parallel", self.parallel_box))
        self.titles = [title for title, _ in pages]
        tabs = w.Tab(children=[page for _, page in pages], titles=self.titles)
        tabs.observe(self._on_tab, names="selected_index")
        self.tabs = tabs
        head = w.HTML(
            f'<div style="{_FONT};margin:4px 0">'
            + " · ".join(f"{esc(r['name'])} {status_badge(r['status'])}" for r in self.data)
            + "</div>"
        )
        self.widget = w.VBox([head, tabs])

    def select(self, title: str) -> None:
        """Open a tab by its title."""
        self.tabs.selected_index = self.titles.index(title)

    def _on_tab(self, change: Any) -> None:
        title = self.titles[change["new"]] if change["new"] is not None else ""
        if title == "metrics":
            with _failure_shown_in(self.metrics_box):
                self.curve_figure()
        elif title == "parallel":
            with _failure_shown_in(self.parallel_box):
                self.parallel_figure()

    @property
    def differing_params(self) -> list[str]:
        """Param keys that differ between the first run and any other."""
        return sorted({key for diff in self.diffs for key in diff["params"]})

    def params_html(self) -> str:
        """Every param of every run side by side; rows that differ are highlighted."""
        keys = sorted({k for run in self.data for k in run["params"]})
        if not keys:
            return _note("no params recorded")
        differing = set(self.differing_params)
        rows = [[esc(k), *(_value(run["params"].get(k), 40) for run in self.data)] for k in keys]
        table = _table(["param", *self._headers()], rows, highlight=[k in differing for k in keys])
        return _note(f"{len(differing)} of {len(keys)} params differ (highlighted)") + table

    def metrics_html(self) -> str:
        """Latest metric values side by side; rows that differ are highlighted."""
        if not self.metric_keys:
            return _note("no metrics recorded")
        differing = {key for diff in self.diffs for key in diff["metrics"]}
        rows = [
            [esc(k), *(_value(run["metrics"].get(k)) for run in self.data)]
            for k in self.metric_keys
        ]
        return _table(
            ["metric", *self._headers()], rows, highlight=[k in differing for k in self.metric_keys]
        )

    def datasets_html(self) -> str:
        """Datasets whose content hash differs, with each run's hash."""
        names = sorted({name for diff in self.diffs for name in diff["datasets"]})
        if not names:
            return _note("the datasets are the same")
        hashes = [{d["name"]: d["hash"] for d in run.get("datasets") or []} for run in self.data]
        rows = [
            [esc(name), *(_value((h.get(name) or "")[:16] or None) for h in hashes)]
            for name in names
        ]
        return _table(["dataset", *self._headers()], rows)

    def packages_html(self) -> str:
        """Packages (and Python) whose versions differ, with each run's version."""
        names = sorted({name for diff in self.diffs for name in diff["packages"]})
        envs = [run.get("environment") or {} for run in self.data]
        rows = [
            [esc(name), *(_value((env.get("packages") or {}).get(name)) for env in envs)]
            for name in names
        ]
        if any(diff.get("python") for diff in self.diffs):
            rows.insert(0, ["python", *(_value(env.get("python")) for env in envs)])
        if not rows:
            return _note("the packages are the same")
        return _table(["package", *self._headers()], rows)

    def cells_html(self) -> str:
        """Where the executed cells differ, the first run against each other."""
        parts = []
        for diff in self.diffs:
            cells = diff["cells"]
            count_a, count_b = cells["count"]
            title = f"{diff['a']['name']} vs {diff['b']['name']}: {count_a} vs {count_b} cells"
            parts.append(_section(title))
            if not cells["differences"]:
                parts.append(_note("the cells are the same"))
                continue
            rows = []
            for d in cells["differences"][:50]:
                side = d["a"] or d["b"]
                line = side.get("line") or side["first_line"]
                rows.append(
                    [
                        esc(d.get("label") or f"cell {d['position']}"),
                        esc(", ".join(d["reasons"])),
                        f'<span style="{_MONO}">{esc(line)}</span>',
                    ]
                )
            parts.append(_table(["cell", "differs in", "source"], rows))
        return "".join(parts)

    def _headers(self) -> list[str]:
        return [f"{run['name']} ({run['id'][:6]})" for run in self.data]

    def curve_figure(self, key: str | None = None) -> Any:
        """The curves of one metric (the chosen one), a trace per run, overlaid."""
        key = key or self.metric_menu.value
        if not key:
            return None
        if self.curves is None:
            self.curves = _line_figure(key, height=340)
            self.metrics_box.children = [*self.metrics_box.children, self.curves]
        with self.curves.batch_update():
            self.curves.data = []
            for run in self.data:
                series = run["metric_series"].get(key) or []
                self.curves.add_trace(_series_trace(series, _trace_name(run)))
            self.curves.layout.title.text = key
            self.curves.layout.yaxis.title.text = key
        return self.curves

    def _on_metric(self, change: Any) -> None:
        if self.curves is not None and change["new"]:
            with _failure_shown_in(self.metrics_box):
                self.curve_figure(change["new"])

    def parallel_figure(self, key: str | None = None) -> Any:
        """Parallel coordinates of the params against one metric (three or more runs)."""
        if len(self.data) < 3:
            return None
        go = _graph_objects()
        key = key or self.parallel_menu.value
        dimensions = _parallel_dimensions(self.data, key)
        line: dict[str, Any] = {}
        if key:
            values = [_number(run["metrics"].get(key)) for run in self.data]
            line = {"color": values, "colorscale": "Viridis", "showscale": True}
        trace = go.Parcoords(dimensions=dimensions, line=line)
        if self.parallel is None:
            self.parallel = _figure_widget(
                data=[trace],
                layout={"height": 380, "margin": {"l": 60, "r": 60, "t": 50, "b": 30}},
            )
            self.parallel_box.children = [*self.parallel_box.children, self.parallel]
        else:
            with self.parallel.batch_update():
                self.parallel.data = []
                self.parallel.add_trace(trace)
        return self.parallel

    def _on_parallel_metric(self, change: Any) -> None:
        if self.parallel is not None and change["new"]:
            with _failure_shown_in(self.parallel_box):
                self.parallel_figure(change["new"])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _number(value: Any) -> float:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else math.nan
    )


def _parallel_dimensions(data: list[dict[str, Any]], metric: str | None) -> list[dict[str, Any]]:
    """One axis a param that varies (numbers as they are, anything else as categories), then
    the metric; a param with the same value in every run tells the runs apart nowhere."""
    keys = [
        key
        for key in sorted({k for run in data for k in run["params"]})
        if len({format_value(run["params"].get(key), 80) for run in data}) > 1
    ][:MAX_PARALLEL_PARAMS]
    dimensions = []
    for key in keys:
        values = [run["params"].get(key) for run in data]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dimensions.append({"label": key, "values": [float(v) for v in values]})
            continue
        labels = [format_value(v, 20) if v is not None else "(none)" for v in values]
        categories = sorted(set(labels))
        dimensions.append(
            {
                "label": key,
                "values": [categories.index(label) for label in labels],
                "tickvals": list(range(len(categories))),
                "ticktext": categories,
            }
        )
    if metric:
        dimensions.append(
            {"label": metric, "values": [_number(run["metrics"].get(metric)) for run in data]}
        )
    return dimensions


# -- metric charts -----------------------------------------------------------------------------


@contextlib.contextmanager
def _failure_shown_in(box: Any) -> Iterator[None]:
    """Run a widget callback; a failure becomes a message at the end of ``box``."""
    try:
        yield
    except Exception as exc:
        text = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
        message = _ipywidgets().HTML(_error_html(text))
        box.children = [*box.children, message]


def _figure_widget(**kwargs: Any) -> Any:
    """A plotly FigureWidget, or a one-line MlopsError naming what is missing."""
    try:
        return _graph_objects().FigureWidget(**kwargs)
    except ImportError as exc:
        # plotly's FigureWidget runs on anywidget, which plotly does not install itself.
        missing = exc.name or "anywidget"
        raise MlopsError(
            f"charts in a notebook need the {missing!r} package: pip install {missing}"
        ) from None


def _line_figure(key: str, *, height: int = 320) -> Any:
    return _figure_widget(
        layout={
            "title": {"text": key},
            "height": height,
            "margin": {"l": 55, "r": 20, "t": 40, "b": 40},
            "xaxis": {"title": {"text": "step"}},
            "yaxis": {"title": {"text": key}},
            # Above the plot, clear of the step axis's title.
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        }
    )


def segmented(series: list[dict[str, Any]]) -> tuple[list[int | None], list[float | None]]:
    """Steps and values with a gap wherever the step goes back (a training cell run again
    logs its series from step 0 once more), so each pass is a line of its own."""
    steps: list[int | None] = []
    values: list[float | None] = []
    previous: int | None = None
    for point in series:
        if previous is not None and point["step"] <= previous:
            steps.append(None)
            values.append(None)
        steps.append(point["step"])
        values.append(point["value"])
        previous = point["step"]
    return steps, values


def _series_trace(series: list[dict[str, Any]], name: str) -> Any:
    go = _graph_objects()
    steps, values = segmented(series)
    mode = "lines+markers" if len(series) <= 50 else "lines"
    return go.Scatter(x=steps, y=values, mode=mode, name=name, connectgaps=False)


def _trace_name(run: dict[str, Any]) -> str:
    return f"{run['name']} ({run['id'][:6]})"


class MetricPlot:
    """A chart of one metric's step series, a line per run."""

    def __init__(self, key: str, refs: Sequence[str], *, store: Any = None) -> None:
        self.key = key
        self.records = [runs.get_run(ref, store=store) for ref in refs]
        series = [record.metric_series(key) for record in self.records]
        if not any(series):
            names = ", ".join(repr(record.name) for record in self.records)
            raise InvalidValueError(key, f"no metric of that name in run(s) {names}")
        self.figure = _line_figure(key)
        with self.figure.batch_update():
            for record, points in zip(self.records, series, strict=True):
                self.figure.add_trace(_series_trace(points, _trace_name(record.row)))
        self.widget = self.figure

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class _Followed:
    """What a live plot knows about one run it draws."""

    __slots__ = ("done", "every", "position", "run", "steps", "trace", "values")

    def __init__(self, run: runs.Run, trace: int) -> None:
        self.run = run
        self.trace = trace
        self.position = 0
        self.every = 1  # read every n-th new point: doubles each time the chart fills up
        self.steps: list[int] = []
        self.values: list[float] = []
        self.done = False

    def add(self, points: list[tuple[int, float]], every: int) -> None:
        """Keep new points (read one in ``every``); past LIVE_MAX_POINTS keep every other one
        and read half as many from then on."""
        self.every = max(self.every, every)
        self.steps.extend(point[0] for point in points)
        self.values.extend(point[1] for point in points)
        while len(self.steps) > LIVE_MAX_POINTS:
            last_step, last_value = self.steps[-1], self.values[-1]
            self.steps, self.values = self.steps[::2], self.values[::2]
            if self.steps[-1] != last_step:
                self.steps.append(last_step)
                self.values.append(last_value)
            self.every *= 2


class LivePlot:
    """A chart of one metric that follows this process's active run and grows as it logs.

    A background thread polls the store every ``interval`` seconds (less often when drawing
    gets costly), so ``log_metric`` does no extra work. It follows the run active when it
    starts, or the next one to start, and stops once that run has ended and is drawn whole.
    A long series is drawn thinned to about LIVE_MAX_POINTS evenly spread points.
    """

    def __init__(self, key: str, *, interval: float = LIVE_INTERVAL_S) -> None:
        self.key = key
        self.interval = interval
        self.figure = _line_figure(key)
        self.widget = self.figure
        self.followed: dict[str, _Followed] = {}
        self.polls = 0
        self.busy_seconds = 0.0  # CPU time spent reading and drawing, all polls together
        self._flush_seconds = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.poll()
        self._thread = start_background(self._loop, "jupyter-mlops-live-plot")

    @property
    def running(self) -> bool:
        """Whether the plot still follows a run (or waits for one)."""
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def finished(self) -> bool:
        """Whether the followed run has ended and every point it logged is drawn."""
        return bool(self.followed) and all(state.done for state in self.followed.values())

    def stop(self) -> None:
        """Stop following (the chart keeps what it has drawn)."""
        self._stop.set()

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until the followed run has ended and is drawn whole; False on timeout."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def poll(self) -> int:
        """Draw the points logged since the last poll; how many were read."""
        with self._lock:
            started, self._flush_seconds = time.thread_time(), 0.0
            try:
                return self._poll()
            finally:
                self.polls += 1
                self.busy_seconds += time.thread_time() - started - self._flush_seconds

    def _poll(self) -> int:
        active = runs.active_run()
        if active is not None and not self.followed:
            self.figure.add_trace(
                _graph_objects().Scatter(x=[], y=[], mode="lines", name=active.name)
            )
            self.figure.layout.title.text = f"{self.key} · {active.name}"
            self.followed[active.id] = _Followed(active, len(self.figure.data) - 1)
        added = 0
        changed = []
        for state in self.followed.values():
            if state.done:
                continue
            ended = state.run.status != "running"
            if ended:
                # Write what the run logged last (its end is writing it too), apart from the
                # chart's own time.
                flushing = time.thread_time()
                state.run.store.flush()
                self._flush_seconds += time.thread_time() - flushing
            # The writer stores points within a fraction of a second: the chart reads what
            # it has stored rather than write from this thread too.
            points, state.position, every = state.run.store.metric_points_since(
                state.run.id,
                self.key,
                state.position,
                state.every,
                budget=LIVE_MAX_POINTS // 2,
                flush=False,
            )
            if points:
                state.add(points, every)
                added += len(points)
                changed.append(state)
            # Read after the run ended: every point it logged is in the store now.
            state.done = ended
        if changed:
            import numpy as np

            with self.figure.batch_update():
                for state in changed:
                    trace = self.figure.data[state.trace]
                    trace.x = np.asarray(state.steps)
                    trace.y = np.asarray(state.values, dtype=float)
                    trace.mode = "lines+markers" if len(state.steps) <= 50 else "lines"
        return added

    def _loop(self) -> None:
        wait = self.interval
        last = time.monotonic()
        while not self._stop.wait(self.interval):
            if getattr(self.figure, "comm", True) is None:
                return  # the chart was closed
            ended = any(
                state.run.status != "running" and not state.done for state in self.followed.values()
            )
            if not ended and time.monotonic() - last < wait:
                continue
            started = time.perf_counter()
            try:
                self.poll()
            except Exception:
                return  # a store that went away: the chart keeps what it has
            if self.finished:
                return
            last = time.monotonic()
            cost = time.perf_counter() - started
            wait = min(max(self.interval, cost * LIVE_DUTY_FACTOR), LIVE_MAX_WAIT_S)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


# -- the views by name, from Python ------------------------------------------------------------


def runs_view(
    where: str | None = None,
    *,
    notebook: str | Path | None = None,
    page_size: int = 20,
    order_by: str | None = None,
    descending: bool = True,
    replays: bool = False,
    store: Any = None,
) -> RunsTable:
    """The runs table (filter ``where`` as in ``runs --where``; ``replays`` lists replay runs
    too, else each run counts its replays)."""
    return RunsTable(
        where=where,
        notebook=notebook,
        page_size=page_size,
        order_by=order_by,
        descending=descending,
        replays=replays,
        store=store,
    )


def run_view(ref: str, *, store: Any = None) -> RunView:
    """One run in tabs (id, id prefix or name)."""
    return RunView(runs.get_run(ref, store=store))


def compare_view(refs: Sequence[str], *, store: Any = None) -> CompareView:
    """Two or more runs side by side."""
    return CompareView([runs.get_run(ref, store=store) for ref in refs])


def plot_view(key: str, refs: Sequence[str] = (), *, store: Any = None) -> MetricPlot | LivePlot:
    """A metric's curves for these runs, or with none a live chart of the active run."""
    if refs:
        return MetricPlot(key, refs, store=store)
    return LivePlot(key)


register_card(run_html)
