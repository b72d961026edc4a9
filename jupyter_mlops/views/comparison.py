"""Runs side by side: params with differences marked, metric curves, data, packages, cells,
and parallel coordinates of params against a metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ..records import get_run
from ..text import format_value
from .charts import figure_widget, line_figure, series_trace, trace_name
from .frontend import failure_shown_in, load_graph_objects, load_ipywidgets
from .markup import FONT, MONO, esc, html_table, note_html, section_html, status_badge, value_html

if TYPE_CHECKING:
    from ..records import RunRecord

__all__ = ["CompareView", "compare_view"]

MAX_PARALLEL_PARAMS = 12


class CompareView:
    """Runs side by side: params (differences marked), metric curves, data, packages, cells."""

    def __init__(self, records: Sequence[RunRecord]) -> None:
        from ..compare import diff_runs

        if len(records) < 2:
            raise InvalidValueError("compare", "give two or more runs")
        w = load_ipywidgets()
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
            f'<div style="{FONT};margin:4px 0">'
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
            with failure_shown_in(self.metrics_box):
                self.curve_figure()
        elif title == "parallel":
            with failure_shown_in(self.parallel_box):
                self.parallel_figure()

    @property
    def differing_params(self) -> list[str]:
        """Param keys that differ between the first run and any other."""
        return sorted({key for diff in self.diffs for key in diff["params"]})

    def params_html(self) -> str:
        """Every param of every run side by side; rows that differ are highlighted."""
        keys = sorted({k for run in self.data for k in run["params"]})
        if not keys:
            return note_html("no params recorded")
        differing = set(self.differing_params)
        rows = [
            [esc(k), *(value_html(run["params"].get(k), 40) for run in self.data)] for k in keys
        ]
        table = html_table(
            ["param", *self._headers()], rows, highlight=[k in differing for k in keys]
        )
        return note_html(f"{len(differing)} of {len(keys)} params differ (highlighted)") + table

    def metrics_html(self) -> str:
        """Latest metric values side by side; rows that differ are highlighted."""
        if not self.metric_keys:
            return note_html("no metrics recorded")
        differing = {key for diff in self.diffs for key in diff["metrics"]}
        rows = [
            [esc(k), *(value_html(run["metrics"].get(k)) for run in self.data)]
            for k in self.metric_keys
        ]
        return html_table(
            ["metric", *self._headers()], rows, highlight=[k in differing for k in self.metric_keys]
        )

    def datasets_html(self) -> str:
        """Datasets whose content hash differs, with each run's hash."""
        names = sorted({name for diff in self.diffs for name in diff["datasets"]})
        if not names:
            return note_html("the datasets are the same")
        hashes = [{d["name"]: d["hash"] for d in run.get("datasets") or []} for run in self.data]
        rows = [
            [esc(name), *(value_html((h.get(name) or "")[:16] or None) for h in hashes)]
            for name in names
        ]
        return html_table(["dataset", *self._headers()], rows)

    def packages_html(self) -> str:
        """Packages (and Python) whose versions differ, with each run's version."""
        names = sorted({name for diff in self.diffs for name in diff["packages"]})
        envs = [run.get("environment") or {} for run in self.data]
        rows = [
            [esc(name), *(value_html((env.get("packages") or {}).get(name)) for env in envs)]
            for name in names
        ]
        if any(diff.get("python") for diff in self.diffs):
            rows.insert(0, ["python", *(value_html(env.get("python")) for env in envs)])
        if not rows:
            return note_html("the packages are the same")
        return html_table(["package", *self._headers()], rows)

    def cells_html(self) -> str:
        """Where the executed cells differ, the first run against each other."""
        parts = []
        for diff in self.diffs:
            cells = diff["cells"]
            count_a, count_b = cells["count"]
            title = f"{diff['a']['name']} vs {diff['b']['name']}: {count_a} vs {count_b} cells"
            parts.append(section_html(title))
            if not cells["differences"]:
                parts.append(note_html("the cells are the same"))
                continue
            rows = []
            for d in cells["differences"][:50]:
                side = d["a"] or d["b"]
                line = side.get("line") or side["first_line"]
                rows.append(
                    [
                        esc(d.get("label") or f"cell {d['position']}"),
                        esc(", ".join(d["reasons"])),
                        f'<span style="{MONO}">{esc(line)}</span>',
                    ]
                )
            parts.append(html_table(["cell", "differs in", "source"], rows))
        return "".join(parts)

    def _headers(self) -> list[str]:
        return [f"{run['name']} ({run['id'][:6]})" for run in self.data]

    def curve_figure(self, key: str | None = None) -> Any:
        """The curves of one metric (the chosen one), a trace per run, overlaid."""
        key = key or self.metric_menu.value
        if not key:
            return None
        if self.curves is None:
            self.curves = line_figure(key, height=340)
            self.metrics_box.children = [*self.metrics_box.children, self.curves]
        with self.curves.batch_update():
            self.curves.data = []
            for run in self.data:
                series = run["metric_series"].get(key) or []
                self.curves.add_trace(series_trace(series, trace_name(run)))
            self.curves.layout.title.text = key
            self.curves.layout.yaxis.title.text = key
        return self.curves

    def _on_metric(self, change: Any) -> None:
        if self.curves is not None and change["new"]:
            with failure_shown_in(self.metrics_box):
                self.curve_figure(change["new"])

    def parallel_figure(self, key: str | None = None) -> Any:
        """Parallel coordinates of the params against one metric (three or more runs)."""
        if len(self.data) < 3:
            return None
        go = load_graph_objects()
        key = key or self.parallel_menu.value
        dimensions = _parallel_dimensions(self.data, key)
        line: dict[str, Any] = {}
        if key:
            values = [_number(run["metrics"].get(key)) for run in self.data]
            line = {"color": values, "colorscale": "Viridis", "showscale": True}
        trace = go.Parcoords(dimensions=dimensions, line=line)
        if self.parallel is None:
            self.parallel = figure_widget(
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
            with failure_shown_in(self.parallel_box):
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


def compare_view(refs: Sequence[str], *, store: Any = None) -> CompareView:
    """Two or more runs side by side."""
    return CompareView([get_run(ref, store=store) for ref in refs])
