"""The runs table: a page of runs to sort, filter and select, then show, compare or plot."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import records
from ..errors import InvalidValueError, MlopsError
from ..text import common_keys, format_duration, format_value, replay_count, run_duration, when
from .charts import MetricPlot
from .comparison import CompareView, compare_view
from .frontend import load_ipywidgets
from .markup import BORDER, FONT, MONO, error_html, esc, status_badge
from .run_detail import RunView, run_view

__all__ = ["MAX_PAGE_SIZE", "RunsTable", "runs_view"]

MAX_PAGE_SIZE = 200
# Param and metric columns a page shows, each (widgets scroll sideways; text tables show fewer).
MAX_KEY_COLUMNS = 8

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
        from ..store import open_store

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
        self.total = records.count_runs(
            where=self.where, notebook=self.notebook, replays=self.replays, store=self.store
        )
        self.page = min(self.page, max(self.page_count - 1, 0))
        self.rows = records.list_runs(
            where=self.where,
            notebook=self.notebook,
            limit=self.page_size,
            offset=self.page * self.page_size,
            order_by=_SORT_KEYS.get(self.order_by or "", self.order_by),
            descending=self.descending,
            replays=self.replays,
            store=self.store,
        )
        params = common_keys(self.rows, "params", MAX_KEY_COLUMNS)
        metrics = common_keys(self.rows, "metrics", MAX_KEY_COLUMNS)
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
            return when(run["start_time"])
        if column == "duration":
            return format_duration(run_duration(run))
        if column == "replays":
            return replay_count(run.get("replay_summary"))
        field, _, key = column.partition(".")
        values = run[field]
        return format_value(values[key], 24) if key in values else ""

    # -- widgets -------------------------------------------------------------------------

    def _build(self) -> None:
        w = load_ipywidgets()
        toolbar = self._build_toolbar(w)
        self.message = w.HTML()
        rows = self._build_rows(w)
        pager = self._build_pager(w)
        actions = self._build_actions(w)
        self.detail = w.VBox()
        self.widget = w.VBox([toolbar, self.message, rows, pager, actions, self.detail])

    def _build_toolbar(self, w: Any) -> Any:
        """The filter box, the sort menu, its direction and a refresh button."""
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
        return w.HBox([self.filter_box, self.sort_menu, self.order_button, refresh])

    def _build_rows(self, w: Any) -> Any:
        """The header and a page of rows (a checkbox and the cells), reused from page to page."""
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
        # Header and rows scroll sideways together when the columns are many.
        return w.VBox(
            [
                w.HBox(
                    [self.page_checkbox, self.header],
                    layout=w.Layout(align_items="center", min_width="max-content"),
                ),
                w.VBox(row_boxes, layout=w.Layout(min_width="max-content")),
            ],
            layout=w.Layout(overflow="auto hidden"),
        )

    def _build_pager(self, w: Any) -> Any:
        """First, previous, next and last page buttons around where the page is."""
        self.first_button = w.Button(icon="angle-double-left", layout=_narrow(w))
        self.previous_button = w.Button(icon="angle-left", layout=_narrow(w))
        self.next_button = w.Button(icon="angle-right", layout=_narrow(w))
        self.last_button = w.Button(icon="angle-double-right", layout=_narrow(w))
        self.first_button.on_click(self._guard(lambda _: self.go_to(0)))
        self.previous_button.on_click(self._guard(lambda _: self.go_to(self.page - 1)))
        self.next_button.on_click(self._guard(lambda _: self.go_to(self.page + 1)))
        self.last_button.on_click(self._guard(lambda _: self.go_to(self.page_count - 1)))
        self.page_label = w.HTML()
        return w.HBox(
            [
                self.first_button,
                self.previous_button,
                self.page_label,
                self.next_button,
                self.last_button,
            ],
            layout=w.Layout(align_items="center"),
        )

    def _build_actions(self, w: Any) -> Any:
        """What is selected, and the buttons that show, compare or plot it."""
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
        return w.HBox(
            [
                self.selection_label,
                self.show_button,
                self.compare_button,
                self.plot_menu,
                self.plot_button,
                clear,
            ],
            layout=w.Layout(align_items="center"),
        )

    def _render(self) -> None:
        """Put the loaded page into the widgets (reused from page to page)."""
        self._updating = True
        try:
            widths = self._widths()
            template = " ".join(f"{width}ch" for width in widths)
            grid = (
                f"display:grid;grid-template-columns:{template};column-gap:12px;"
                f"{MONO};white-space:nowrap;line-height:24px"
            )
            labels = [_column_label(c, self.order_by, self.descending) for c in self.columns]
            self.header.value = (
                f'<div style="{grid};font-weight:600;border-bottom:1px solid {BORDER}">'
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
                f'<span style="{FONT};padding:0 8px">runs {first:,}–{last:,} of '
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
        return f'<div style="{grid};border-bottom:1px solid {BORDER}">{"".join(cells)}</div>'

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
            f'<span style="{FONT};padding-right:8px">{count} selected'
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
                self.message.value = error_html(str(exc))
            except Exception as exc:
                self.message.value = error_html(f"{type(exc).__name__}: {exc}")

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
