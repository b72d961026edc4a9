"""One run in tabs: overview, params, metrics and their charts, cells, data, environment."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import MlopsError
from ..linearity import cell_label
from ..records import get_run
from ..text import format_duration, run_duration, when
from .charts import line_figure, series_trace
from .frontend import failure_shown_in, load_ipywidgets
from .markup import (
    BORDER,
    FONT,
    MONO,
    STATUS_COLOURS,
    badge,
    esc,
    html_table,
    linear_html,
    note_html,
    section_html,
    status_badge,
    value_html,
    verdict_badge,
)

if TYPE_CHECKING:
    from ..records import RunRecord

__all__ = ["RunView", "run_view"]

MAX_CELLS_SHOWN = 500
MAX_CHARTS = 12


class RunView:
    """One run in tabs: overview, params, metrics, cells, datasets, environment, replays."""

    def __init__(self, record: RunRecord) -> None:
        w = load_ipywidgets()
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
            with failure_shown_in(self.metrics_box):
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
            loading = load_ipywidgets().HTML(
                note_html(f"Drawing {len(keys)} chart(s)…"), _dom_classes=["jp-mlops-loading"]
            )
            self.metrics_box.children = [*shown, loading]
        for key in keys:
            figure = line_figure(key, height=280)
            figure.add_trace(series_trace(self.data["metric_series"][key], self.data["name"]))
            self.figures.append(figure)
        extra = len(curves) - len(keys)
        notes = (
            [load_ipywidgets().HTML(note_html(f"{extra} more metric(s) not drawn"))]
            if extra
            else []
        )
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
            ["id", f'<span style="{MONO}">{esc(data["id"])}</span>'],
            ["kind", esc(data["kind"])],
            ["notebook", esc(data.get("notebook") or "-")],
            ["started", esc(when(data["start_time"]))],
            ["ended", esc(when(data.get("end_time")))],
            ["duration", esc(format_duration(run_duration(data)))],
            ["linear", linear_html(data)],
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
            f'<div style="{FONT};font-size:14px;font-weight:600;margin:4px 0 8px">'
            f"{esc(data['name'])}</div>"
        )
        return head + html_table(["", ""], rows)

    def _run_label(self, run_id: str) -> str:
        try:
            name = self.record.store.get_run(run_id)["name"]
        except MlopsError:
            name = "(deleted)"
        return f'{esc(name)} <span style="{MONO};opacity:0.6">{esc(run_id[:12])}</span>'

    def params_html(self) -> str:
        """Every param and its value."""
        if not self.data["params"]:
            return note_html("no params recorded")
        rows = [[esc(k), value_html(v, 200)] for k, v in self.data["params"].items()]
        return html_table(["param", "value"], rows)

    def metrics_html(self) -> str:
        """Latest value, points and step range of each metric."""
        if not self.data["metrics"]:
            return note_html("no metrics recorded")
        rows = []
        for key, value in self.data["metrics"].items():
            series = self.data["metric_series"].get(key) or []
            steps = f"{series[0]['step']}–{series[-1]['step']}" if series else "-"
            rows.append([esc(key), value_html(value), esc(len(series)), esc(steps)])
        return html_table(["metric", "latest", "points", "steps"], rows)

    def cells_html(self) -> str:
        """The executed sources in run order: counts, durations, errors, out-of-order marks."""
        cells = self.data.get("cells") or []
        if not cells:
            return note_html("no cells recorded (a run from a script, or still starting)")
        marks = [cell.get("marks") or [] for cell in cells]
        parts = []
        for cell, marked in list(zip(cells, marks, strict=True))[:MAX_CELLS_SHOWN]:
            label = cell_label(cell)
            flags = "".join(" " + badge(mark, "#e37400") for mark in marked)
            if cell.get("error"):
                flags += " " + badge(cell["error"], "#d93025")
            colour = "#d93025" if cell.get("error") else ("#e37400" if marked else BORDER)
            error = (
                f'<div style="{MONO};color:#d93025;white-space:pre-wrap">'
                f"{esc(cell['error_value'])}</div>"
                if cell.get("error_value")
                else ""
            )
            parts.append(
                f'<div style="border-left:3px solid {colour};margin:6px 0;padding:2px 8px">'
                f'<div style="{FONT}"><b>{esc(label)}</b> '
                f'<span style="opacity:0.7">{esc(format_duration(cell.get("duration")))}</span>'
                f"{flags}</div>"
                f'<pre style="{MONO};margin:2px 0;white-space:pre-wrap">'
                f"{esc(cell.get('source') or '')}</pre>"
                f"{error}</div>"
            )
        if len(cells) > MAX_CELLS_SHOWN:
            parts.append(note_html(f"first {MAX_CELLS_SHOWN} of {len(cells)} cells shown"))
        return "".join(parts)

    def datasets_html(self) -> str:
        """Each dataset: hash, kind, shape, schema and per-column profile."""
        datasets = self.data.get("datasets") or []
        if not datasets:
            return note_html("no datasets recorded")
        parts = []
        for dataset in datasets:
            shape = "x".join(map(str, dataset.get("shape") or [])) or "-"
            parts.append(
                f'<div style="{FONT};margin-top:10px"><b>{esc(dataset["name"])}</b> '
                f"{esc(dataset['kind'])} · {esc(shape)} · "
                f'<span style="{MONO}">{esc(dataset["hash"])}</span>'
                + (f" · {esc(dataset['path'])}" if dataset.get("path") else "")
                + "</div>"
            )
            profile = dataset.get("profile") or {}
            columns = profile.get("columns") if isinstance(profile, dict) else None
            schema = dataset.get("schema")
            if isinstance(columns, dict) and columns:
                fields = ("dtype", "count", "missing", "min", "max", "mean", "distinct")
                rows = [
                    [esc(name), *(value_html(stats.get(f), 24) for f in fields)]
                    for name, stats in list(columns.items())[:200]
                    if isinstance(stats, dict)
                ]
                parts.append(html_table(["column", *fields], rows))
                if profile.get("approximate"):
                    parts.append(note_html("profile approximate (sampled)"))
            elif isinstance(schema, dict) and schema:
                rows = [[esc(k), value_html(v)] for k, v in list(schema.items())[:200]]
                parts.append(html_table(["field", "type"], rows))
            elif schema is not None:
                parts.append(
                    f'<pre style="{MONO}">{esc(json.dumps(schema, default=str)[:5000])}</pre>'
                )
        return "".join(parts)

    def artifacts_html(self) -> str:
        """Each stored artifact: name, kind, size, hash."""
        rows = [
            [
                esc(a["name"]),
                esc(a["kind"]),
                esc(f"{a['size_bytes']:,}"),
                f'<span style="{MONO}">{esc(a["hash"])}</span>',
            ]
            for a in self.data.get("artifacts") or []
        ]
        return html_table(["artifact", "kind", "bytes", "hash"], rows)

    def environment_html(self) -> str:
        """Python, platform, git state and installed packages."""
        env = self.data.get("environment")
        if not env:
            return note_html("no environment recorded yet")
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
        listed = html_table(
            ["package", "version"], [[esc(k), esc(v)] for k, v in sorted(packages.items())]
        )
        return (
            html_table(["", ""], rows)
            + f'<details style="{FONT};margin-top:8px"><summary>{len(packages)} packages</summary>'
            f"{listed}</details>"
        )

    def data_checks_html(self) -> str:
        """Data checks made in this run or against its data: result, then each problem."""
        parts = []
        serving = self.data.get("serving") or []
        if serving:
            names = ", ".join(d["name"] for d in serving)
            parts.append(note_html(f"serving samples recorded: {names}"))
        for check in self.data.get("data_checks") or []:
            report = check.get("report") or {}
            outcome = "passed" if check["passed"] else "failed"
            result = badge(outcome, STATUS_COLOURS["finished" if check["passed"] else "failed"])
            against = f"{(check.get('baseline_run') or '')[:12]}:{check.get('baseline_dataset')}"
            parts.append(
                f'<div style="{FONT};margin-top:10px">{result} <b>{esc(check["subject"])}</b>'
                f" against {esc(against)} · {esc(when(check['time']))}</div>"
            )
            problems = report.get("problems") or []
            if problems:
                rows = [
                    [esc(p["severity"]), esc(p["column"]), esc(p["kind"]), esc(p["detail"])]
                    for p in problems[:200]
                ]
                parts.append(html_table(["severity", "column", "kind", "detail"], rows))
            drifted = [n for n, c in (report.get("columns") or {}).items() if c.get("drift")]
            if drifted:
                parts.append(note_html(f"drift in {', '.join(drifted)}"))
        return "".join(parts) or note_html("no data checks")

    def replay_html(self) -> str:
        """The replays of this run and their verdicts, or the replay that made this run."""
        parts = []
        replay_of = self.data.get("replay_of")
        if replay_of:
            parts.append(
                f'<div style="{FONT}">replay of {self._run_label(replay_of["original_id"])}: '
                f"{verdict_badge(replay_of.get('verdict'))}</div>"
            )
            if replay_of.get("summary"):
                parts.append(
                    f'<div style="{FONT};white-space:pre-wrap;margin:6px 0">'
                    f"{esc(replay_of['summary'])}</div>"
                )
            if replay_of.get("report"):
                report = json.dumps(replay_of["report"], indent=1, default=str)[:20_000]
                parts.append(
                    f'<details style="{FONT}"><summary>full report</summary>'
                    f'<pre style="{MONO}">{esc(report)}</pre></details>'
                )
        replays = self.data.get("replays") or []
        if replays:
            rows = [
                [
                    esc(when(r.get("start_time"))),
                    esc(r.get("mode") or ""),
                    esc(
                        f"{r.get('state')} {r.get('cells_done') or 0}/{r.get('cells_total') or '?'}"
                    ),
                    verdict_badge(r.get("verdict")),
                    esc(r.get("summary") or ""),
                ]
                for r in replays
            ]
            parts.append(section_html("replays of this run"))
            parts.append(html_table(["started", "mode", "state", "verdict", "summary"], rows))
        return "".join(parts)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _replay_line(replay: dict[str, Any]) -> str:
    """A replay of the run in one line: when, and its progress or verdict."""
    state = replay.get("state")
    if state == "running":
        progress = f"running {replay.get('cells_done') or 0}/{replay.get('cells_total') or '?'}"
        return esc(f"{when(replay.get('start_time'))} {progress}")
    return f"{esc(when(replay.get('start_time')))} {verdict_badge(replay.get('verdict'))}"


def run_view(ref: str, *, store: Any = None) -> RunView:
    """One run in tabs (id, id prefix or name)."""
    return RunView(get_run(ref, store=store))
