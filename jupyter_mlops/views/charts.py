"""Metric charts: a metric's step series per run, and a live chart that grows as a run logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidValueError, MlopsError
from ..records import get_run
from ..run import Run, active_run
from ..threads import start_background
from .frontend import load_graph_objects

__all__ = [
    "LIVE_MAX_POINTS",
    "LivePlot",
    "MetricPlot",
    "figure_widget",
    "line_figure",
    "plot_view",
    "segmented",
    "series_trace",
    "trace_name",
]

LIVE_INTERVAL_S = 0.3
# A poll that took c seconds waits at least c * this before the next, so drawing never takes
# more than about 1/this of the logging thread's time, however long the series grows.
LIVE_DUTY_FACTOR = 40
LIVE_MAX_POINTS = 5_000
LIVE_MAX_WAIT_S = 5.0


def figure_widget(**kwargs: Any) -> Any:
    """A plotly FigureWidget, or a one-line MlopsError naming what is missing."""
    try:
        return load_graph_objects().FigureWidget(**kwargs)
    except ImportError as exc:
        # plotly's FigureWidget runs on anywidget, which plotly does not install itself.
        missing = exc.name or "anywidget"
        raise MlopsError(
            f"charts in a notebook need the {missing!r} package: pip install {missing}"
        ) from None


def line_figure(key: str, *, height: int = 320) -> Any:
    """An empty chart of a metric against its step."""
    return figure_widget(
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


def series_trace(series: list[dict[str, Any]], name: str) -> Any:
    """A step series as a line (with markers while it is short)."""
    go = load_graph_objects()
    steps, values = segmented(series)
    mode = "lines+markers" if len(series) <= 50 else "lines"
    return go.Scatter(x=steps, y=values, mode=mode, name=name, connectgaps=False)


def trace_name(run: dict[str, Any]) -> str:
    """A run's name in a legend: its name and the start of its id."""
    return f"{run['name']} ({run['id'][:6]})"


class MetricPlot:
    """A chart of one metric's step series, a line per run."""

    def __init__(self, key: str, refs: Sequence[str], *, store: Any = None) -> None:
        self.key = key
        self.records = [get_run(ref, store=store) for ref in refs]
        series = [record.metric_series(key) for record in self.records]
        if not any(series):
            names = ", ".join(repr(record.name) for record in self.records)
            raise InvalidValueError(key, f"no metric of that name in run(s) {names}")
        self.figure = line_figure(key)
        with self.figure.batch_update():
            for record, points in zip(self.records, series, strict=True):
                self.figure.add_trace(series_trace(points, trace_name(record.row)))
        self.widget = self.figure

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class _Followed:
    """What a live plot knows about one run it draws."""

    __slots__ = ("done", "every", "position", "run", "steps", "trace", "values")

    def __init__(self, run: Run, trace: int) -> None:
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
        self.figure = line_figure(key)
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
        active = active_run()
        if active is not None and not self.followed:
            self.figure.add_trace(
                load_graph_objects().Scatter(x=[], y=[], mode="lines", name=active.name)
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


def plot_view(key: str, refs: Sequence[str] = (), *, store: Any = None) -> MetricPlot | LivePlot:
    """A metric's curves for these runs, or with none a live chart of the active run."""
    if refs:
        return MetricPlot(key, refs, store=store)
    return LivePlot(key)
