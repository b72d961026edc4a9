"""The in-notebook views: real ipywidgets and plotly objects over a real store."""

from __future__ import annotations

import html
import itertools
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest

import jupyter_mlops as mlops
from jupyter_mlops import run as runs
from jupyter_mlops.errors import ExpressionError, InvalidValueError
from jupyter_mlops.linearity import cell_marks
from jupyter_mlops.store import open_store
from jupyter_mlops.views import (
    CompareView,
    LivePlot,
    MetricPlot,
    RunView,
    compare_view,
    in_notebook_frontend,
    plot_view,
    run_view,
    runs_view,
)
from jupyter_mlops.views.charts import LIVE_MAX_POINTS
from jupyter_mlops.views.markup import DIFF_BACKGROUND

from .conftest import child_env, run_child

EVIL = "<img src=x onerror=alert(1)>"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def make_run(
    name: str,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    losses: list[float] | None = None,
    status: str = "finished",
) -> runs.RunRecord:
    """A finished run with params, final metrics and a loss curve."""
    run = mlops.start_run(name=name)
    run.log_params(params or {})
    for value in losses or []:
        run.log_metric("loss", value)
    run.log_metrics(metrics or {})
    run.end(status)
    return mlops.get_run(run.id)


def all_html(widget: Any) -> str:
    """The HTML of every HTML widget inside ``widget``, joined."""
    import ipywidgets

    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, ipywidgets.HTML):
            found.append(node.value)
        for child in getattr(node, "children", ()) or ():
            walk(child)

    walk(widget)
    return "\n".join(found)


# -- runs table ------------------------------------------------------------------------------


def test_runs_table_rows_columns_and_pages() -> None:
    for index in range(25):
        make_run(f"run-{index}", {"lr": index / 100}, {"acc": 0.5 + index / 100}, [1.0, 0.5])
    table = runs_view(page_size=10)
    assert table.total == 25 and table.page_count == 3
    assert [r["name"] for r in table.rows] == [f"run-{i}" for i in range(24, 14, -1)]
    assert table.columns == [
        "id",
        "name",
        "status",
        "started",
        "duration",
        "params.lr",
        "metrics.acc",
        "metrics.loss",
    ]
    assert "run-24" in table.row_cells[0].value and "finished" in table.row_cells[0].value
    assert "runs 1–10 of 25" in table.page_label.value
    assert table.previous_button.disabled and not table.next_button.disabled
    table.next_button.click()
    assert table.page == 1 and table.rows[0]["name"] == "run-14"
    table.last_button.click()
    assert len(table.rows) == 5
    assert [box.layout.display for box in table.row_boxes[4:6]] == ["", "none"]
    assert table.next_button.disabled


def test_runs_table_sorts_on_the_server_side() -> None:
    for index, acc in enumerate([0.7, 0.9, 0.8]):
        make_run(f"s{index}", {"depth": 10 - index}, {"acc": acc})
    make_run("no-acc", {"depth": 1})
    table = runs_view(page_size=10)
    table.sort_menu.value = "metrics.acc"
    assert [r["name"] for r in table.rows] == ["s1", "s2", "s0", "no-acc"]
    table.order_button.value = False  # ascending; runs without the metric stay last
    assert [r["name"] for r in table.rows] == ["s0", "s2", "s1", "no-acc"]
    assert "metrics.acc ↑" in table.header.value
    table.sort("params.depth", descending=False)
    assert [r["name"] for r in table.rows] == ["no-acc", "s2", "s1", "s0"]
    table.sort("name")  # the direction stays
    assert [r["name"] for r in table.rows] == ["no-acc", "s0", "s1", "s2"]
    with pytest.raises(InvalidValueError, match="order_by"):
        runs.list_runs(order_by="colour")


def test_runs_table_filters_with_the_expression_language() -> None:
    make_run("low", {"lr": 0.1}, {"acc": 0.6})
    make_run("high", {"lr": 0.01}, {"acc": 0.95})
    make_run("broken", {"lr": 0.01}, {"acc": 0.2}, status="failed")
    table = runs_view()
    table.filter_box.value = "metrics.acc > 0.9 and status = finished"
    assert [r["name"] for r in table.rows] == ["high"] and table.total == 1
    table.filter_box.value = "metrics.acc >"
    assert "bad expression at column" in table.message.value
    assert [r["name"] for r in table.rows] == ["high"]  # the last good filter stays
    table.filter_box.value = ""
    assert table.total == 3 and table.message.value == ""
    with pytest.raises(ExpressionError):
        runs_view("params.lr <")


def test_selecting_rows_then_compare_show_and_plot() -> None:
    for name, lr in [("a", 0.1), ("b", 0.2), ("c", 0.3)]:
        make_run(name, {"lr": lr}, {"acc": lr * 3}, [1.0, 0.6, 0.3])
    table = runs_view()
    assert table.compare_button.disabled and table.show_button.disabled
    table.row_checkboxes[0].value = True
    assert table.selected == {table.rows[0]["id"]: "c"}
    assert not table.show_button.disabled and table.compare_button.disabled
    table.show_button.click()
    assert isinstance(table.detail_view, RunView)
    assert table.detail.children == (table.detail_view.widget,)
    table.page_checkbox.value = True
    assert len(table.selected) == 3 and not table.compare_button.disabled
    table.compare_button.click()
    assert isinstance(table.detail_view, CompareView)
    assert set(table.plot_menu.options) == {"acc", "loss"}
    table.plot_menu.value = "loss"
    table.plot_button.click()
    plot = table.detail_view
    assert isinstance(plot, MetricPlot)
    assert sorted(len(trace.y) for trace in plot.figure.data) == [3, 3, 3]
    table.row_checkboxes[1].value = False
    assert len(table.selected) == 2 and table.page_checkbox.value is False


def test_runs_table_displays_as_a_widget() -> None:
    make_run("shown")
    bundle = runs_view()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


# -- one run ---------------------------------------------------------------------------------


def test_run_view_tabs_and_metric_charts() -> None:
    with mlops.start_run(name="full", tags={"team": "cv"}) as run:
        run.log_params({"lr": 0.05, "layers": [64, 32]})
        for step, value in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", value, step=step * 10)
        run.log_metric("acc", 0.875)
        run.log_data("table", [[1, 2], [3, 4]])
    view = run_view("full")
    assert view.titles[:6] == ["overview", "params", "metrics", "cells", "datasets", "environment"]
    overview = view.widget.children[0].value
    assert "finished" in overview and "team=cv" in overview
    assert "0.05" in view.widget.children[1].value and "[64, 32]" in view.widget.children[1].value
    assert view.figures == []  # charts wait for their tab
    view.select("metrics")
    # A curve for the series; the metric logged once is a number in the table.
    assert [figure.layout.title.text for figure in view.figures] == ["loss"]
    loss = next(f for f in view.figures if f.layout.title.text == "loss")
    assert list(loss.data[0].x) == [0, 10, 20] and list(loss.data[0].y) == [0.9, 0.5, 0.3]
    assert "table" in view.widget.children[view.titles.index("datasets")].value


def test_run_view_cells_mark_what_ran_out_of_order(shell: Any, tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    for cell_id, source in [("c1", "x = 1"), ("c2", "y = x + 1"), ("c3", "z = y / 0")]:
        cell = nbformat.v4.new_code_cell(source)
        cell.id = cell_id
        notebook.cells.append(cell)
    nbformat.write(notebook, tmp_path / "order.ipynb")
    run = mlops.start_run(name="shuffled", notebook=tmp_path / "order.ipynb")
    for cell_id, source in [
        ("c1", "x = 1"),
        ("c2", "y = x + 1"),
        ("c1", "x = 1"),
        ("c3", "z = y / 0"),
    ]:
        shell.run_cell(source, store_history=True, cell_id=cell_id)
    run.end()
    view = run_view("shuffled")
    cells = view.widget.children[view.titles.index("cells")].value
    assert "ran again" in cells and "out of order: cell 1 after cell 2" in cells
    assert "ZeroDivisionError" in cells and "y = x + 1" in cells
    assert cell_marks(
        [{"execution_count": 1, "cell_id": "a"}, {"execution_count": 5, "cell_id": "b"}],
        ["b", "a"],
    ) == [[], ["count jumped from [1]", "out of order: cell 1 after cell 2"]]


def test_run_view_shows_replay_verdicts() -> None:
    original = make_run("original", {"lr": 0.1}, {"acc": 0.9})
    replay = make_run("original-replay", {"lr": 0.1}, {"acc": 0.9})
    store = open_store()
    store.insert_replay(
        {
            "id": uuid.uuid4().hex,
            "original_id": original.id,
            "replay_run_id": replay.id,
            "mode": "recorded",
            "state": "done",
            "cells_done": 4,
            "cells_total": 4,
            "verdict": "reproduced within tolerance",
            "summary": "acc moved by 1e-9",
            "report": {"verdict": "reproduced within tolerance"},
            "start_time": time.time(),
        }
    )
    view = run_view("original")
    assert view.titles[-1] == "replay"
    text = view.widget.children[-1].value
    assert "reproduced within tolerance" in text and "acc moved by 1e-9" in text
    assert "reproduced within tolerance" in view.widget.children[0].value
    of = run_view(replay.id)
    assert "replay of" in of.widget.children[of.titles.index("replay")].value


# -- comparing -------------------------------------------------------------------------------


def test_compare_view_uses_the_diff_and_draws_curves_and_parallel_coordinates() -> None:
    make_run("lr1", {"lr": 0.1, "model": "rf", "seed": 1}, {"acc": 0.7}, [1.0, 0.8])
    make_run("lr2", {"lr": 0.2, "model": "rf", "seed": 1}, {"acc": 0.8}, [1.0, 0.6, 0.4])
    make_run("lr3", {"lr": 0.3, "model": "gbm", "seed": 1}, {"acc": 0.9}, [1.0])
    view = compare_view(["lr1", "lr2", "lr3"])
    assert view.titles == ["params", "metrics", "datasets", "packages", "cells", "parallel"]
    assert view.differing_params == ["lr", "model"]
    params = view.widget.children[1].children[0].value
    assert params.count(DIFF_BACKGROUND) == 2  # lr and model, not seed
    view.select("metrics")
    curves = view.curves
    assert [len(trace.y) for trace in curves.data] == [2, 3, 1]
    view.metric_menu.value = "loss"
    assert curves.layout.title.text == "loss"
    view.select("parallel")
    (parcoords,) = view.parallel.data
    labels = [d.label for d in parcoords.dimensions]
    assert labels == ["lr", "model", "acc"]  # seed is the same in every run: no axis
    assert list(parcoords.line.color) == [0.7, 0.8, 0.9]
    model = parcoords.dimensions[1]
    assert list(model.ticktext) == ["gbm", "rf"] and list(model.values) == [1, 1, 0]


def test_a_series_logged_again_is_drawn_as_passes_of_its_own() -> None:
    with mlops.start_run(name="rerun") as run:
        for step, value in enumerate([1.0, 0.5, 0.25]):
            run.log_metric("loss", value, step=step)
        for step, value in enumerate([0.9, 0.4]):  # the training cell run again
            run.log_metric("loss", value, step=step)
    plot = plot_view("loss", ["rerun"])
    (trace,) = plot.figure.data
    assert list(trace.x) == [0, 1, 2, None, 0, 1]
    assert list(trace.y) == [1.0, 0.5, 0.25, None, 0.9, 0.4]
    assert trace.connectgaps is False
    assert plot.figure.layout.legend.yanchor == "bottom"  # above the plot, off the axis title


def test_charts_say_they_are_loading_while_drawn() -> None:
    make_run("slow-charts", losses=[3.0, 2.0, 1.0])
    view = run_view("slow-charts")
    states: list[list[str]] = []
    view.metrics_box.observe(
        lambda change: states.append([type(c).__name__ for c in change["new"]]), names="children"
    )
    view.select("metrics")
    assert states[0] == ["HTML", "HTML"]  # the table, then "Drawing 1 chart(s)…"
    assert states[-1] == ["HTML", "FigureWidget"]  # the note gone once the chart is there


def test_compare_needs_two_runs() -> None:
    make_run("alone")
    with pytest.raises(InvalidValueError, match="two or more"):
        CompareView([mlops.get_run("alone")])


# -- plots -----------------------------------------------------------------------------------


def test_metric_plot_of_named_runs() -> None:
    make_run("p1", losses=[3.0, 2.0, 1.0])
    make_run("p2", losses=[4.0, 1.0])
    plot = plot_view("loss", ["p1", "p2"])
    assert isinstance(plot, MetricPlot)
    assert [list(trace.y) for trace in plot.figure.data] == [[3.0, 2.0, 1.0], [4.0, 1.0]]
    assert plot.figure.data[0].name.startswith("p1")
    with pytest.raises(InvalidValueError, match="no metric of that name"):
        plot_view("nope", ["p1"])


def test_live_plot_gains_points_as_the_run_logs() -> None:
    open_store()
    plot = LivePlot("loss", interval=60)  # polled by hand here
    assert plot.figure.data == ()
    run = mlops.start_run(name="training")
    plot.poll()
    assert len(plot.figure.data) == 1 and plot.figure.data[0].name == "training"
    for step in range(30):
        run.log_metric("loss", 1 / (step + 1))
    assert plot.poll() in (0, 30)  # the chart reads what the store's writer has written
    run.store.flush()  # the writer's next round, now
    assert plot.poll() == 30 or len(plot.figure.data[0].x) == 30
    assert len(plot.figure.data[0].x) == 30
    for step in range(30, 45):
        run.log_metric("loss", 1 / (step + 1))
    run.log_metric("acc", 0.5)  # another metric: not drawn
    run.store.flush()
    assert plot.poll() == 15
    assert list(plot.figure.data[0].x) == list(range(45))
    run.end()
    plot.poll()
    assert plot.finished
    plot.stop()


def test_live_plot_follows_the_run_by_itself() -> None:
    run = mlops.start_run(name="background")
    plot = LivePlot("loss", interval=0.05)
    for step in range(20):
        run.log_metric("loss", float(step))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(plot.figure.data[0].x) < 20:
        time.sleep(0.05)
    assert len(plot.figure.data[0].x) == 20
    for step in range(20, 25):
        run.log_metric("loss", float(step))
    run.end()
    assert plot.wait(10), "the live plot did not stop after its run ended"
    assert list(plot.figure.data[0].y) == [float(s) for s in range(25)]
    assert not plot.running


def test_a_long_live_series_is_thinned() -> None:
    run = mlops.start_run(name="long")
    plot = LivePlot("loss", interval=60)
    total = LIVE_MAX_POINTS * 3 + 7
    for step in range(total):
        run.log_metric("loss", float(step))
    run.store.flush()
    plot.poll()
    for step in range(total, total + 100):
        run.log_metric("loss", float(step))
    run.end()
    plot.poll()
    x = list(plot.figure.data[0].x)
    assert LIVE_MAX_POINTS // 4 <= len(x) <= LIVE_MAX_POINTS + 1
    assert x == sorted(x) and x[0] < 100 and x[-1] == total + 99
    # Points are picked by a hash of their position, about one in n: spread, with no long gap.
    gaps = [b - a for a, b in itertools.pairwise(x)]
    assert max(gaps) < 100
    plot.stop()


# -- text is text ----------------------------------------------------------------------------


def test_text_from_runs_is_escaped_everywhere() -> None:
    make_run(EVIL, {"model": "<script>alert(2)</script>", EVIL: 1}, {"acc": 0.5}, [1.0, 0.5])
    make_run("plain", {"model": "rf", EVIL: 2}, {"acc": 0.6}, [1.0])
    make_run("third", {"model": "gbm", EVIL: 3}, {"acc": 0.7}, [1.0])
    table = runs_view()
    views = [
        table.widget,
        run_view(EVIL).widget,
        compare_view([EVIL, "plain", "third"]).widget,
    ]
    pages = [all_html(view) for view in views] + [mlops.get_run(EVIL)._repr_html_()]
    for page in pages:
        assert "<img" not in page and "<script" not in page
    assert html.escape(EVIL) in pages[0] and html.escape(EVIL) in pages[1]
    assert "&lt;script&gt;" in pages[1]


# -- reprs, frontends and the magics -----------------------------------------------------------


def test_a_bare_run_shows_as_a_card() -> None:
    with mlops.start_run(name="card") as run:
        run.log_params({"lr": 0.1})
        run.log_metric("acc", 0.9)
        live_card = run._repr_html_()
    card = mlops.get_run("card")._repr_html_()
    assert "card" in card and "finished" in card and "lr" in card and "0.9" in card
    assert "running" in live_card


def test_the_card_is_drawn_once_the_views_or_the_extension_are_loaded() -> None:
    make_run("carded", {"lr": 0.1})
    code = (
        "import jupyter_mlops as mlops\n"
        "record = mlops.get_run('carded')\n"
        "print(record._repr_html_())\n"
        "import jupyter_mlops.magics\n"
        "print('carded' in record._repr_html_() and 'lr' in record._repr_html_())\n"
    )
    shown = run_child(code)
    assert shown.split() == ["None", "True"]


def test_a_plain_shell_is_not_a_notebook_frontend(shell: Any) -> None:
    assert in_notebook_frontend() is False


def test_plot_magic_prints_text_outside_a_notebook(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run("curve", losses=[float(v) for v in range(40, 0, -1)])
    assert shell.run_cell("%track plot loss curve").success
    out = capsys.readouterr().out
    assert "loss of curve" in out and "40 point(s), last 1" in out and "step" in out
    shell.run_cell("%track start live")
    shell.run_cell("%track metric loss=0.5")
    assert shell.run_cell("%track plot loss").success
    assert "loss of live" in capsys.readouterr().out
    for source, expected in [
        ("%track plot", "give a metric name"),
        ("%track plot nothing curve", "no metric 'nothing'"),
        ("%track plot loss no-such-run", "no run matches"),
    ]:
        result = shell.run_cell(source)
        assert type(result.error_in_exec).__name__ == "UsageError", source
        assert expected in str(result.error_in_exec)


def test_importing_the_extension_loads_no_widget_library() -> None:
    code = (
        "import sys, jupyter_mlops, jupyter_mlops.magics, jupyter_mlops.run\n"
        "names = ('ipywidgets', 'plotly', 'jupyter_mlops.views.runs_table',\n"
        "         'jupyter_mlops.views.run_detail', 'jupyter_mlops.views.comparison',\n"
        "         'jupyter_mlops.views.charts')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy)"
    )
    assert run_child(code).strip() == "[]"


@pytest.mark.slow
def test_terminal_ipython_prints_text_tables(tmp_path: Path) -> None:
    make_run("term-a", {"lr": 0.1}, {"acc": 0.8}, [1.0, 0.5])
    make_run("term-b", {"lr": 0.2}, {"acc": 0.9}, [1.0, 0.4])
    from jupyter_mlops.store import close_all

    close_all()
    script = tmp_path / "views.ipy"
    script.write_text(
        "%load_ext jupyter_mlops\n"
        "%track runs\n"
        "print('--show--')\n"
        "%track show term-a\n"
        "print('--compare--')\n"
        "%track compare term-a term-b\n"
        "print('--plot--')\n"
        "%track plot loss term-a term-b\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "IPython",
            "--no-banner",
            "--quick",
            "--colors=nocolor",
            str(script),
        ],
        env=child_env(IPYTHONDIR=str(tmp_path / "ipython")),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    runs_part, rest = out.split("--show--")
    assert "term-a" in runs_part and "term-b" in runs_part and "params.lr" in runs_part
    show_part, rest = rest.split("--compare--")
    assert "params" in show_part and "lr" in show_part
    compare_part, plot_part = rest.split("--plot--")
    assert "0.1" in compare_part and "0.2" in compare_part
    assert "loss of term-a" in plot_part and "loss of term-b" in plot_part
    for widget_repr in ("VBox(", "Tab(", "FigureWidget", "widget-view"):
        assert widget_repr not in out


@pytest.mark.slow
def test_views_notebook_in_a_real_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / "views.ipynb", as_version=4)
    for name, value in child_env().items():
        monkeypatch.setenv(name, value)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    widget_cells = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", "".join(output.get("traceback", []))
        tag = next((t for t in cell.metadata.get("tags", []) if t.startswith("view-")), None)
        if tag:
            widget_cells[tag] = [
                o
                for o in cell.outputs
                if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
            ]
    assert set(widget_cells) >= {"view-runs", "view-show", "view-compare", "view-plot", "view-live"}
    card = widget_cells.pop("view-card")
    for tag, outputs in widget_cells.items():
        assert outputs, f"the {tag} cell showed no widget"
    card_cell = next(c for c in notebook.cells if "view-card" in c.metadata.get("tags", []))
    assert "views-a" in card_cell.outputs[0]["data"]["text/html"] and not card
    state = notebook.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}
    )
    models = state.get("state", {})
    figures = [m for m in models.values() if "_py2js_restyle" in m.get("state", {})]
    assert len(figures) >= 2  # the plot and the live chart are plotly FigureWidgets
    record = mlops.get_run("views-live")
    assert len(record.metric_series("loss")) == 60


@pytest.mark.slow
def test_views_benchmark_quick_run() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_views.py", "--quick", "--where", "process", "--json"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["first_page"]["cases"]["newest first"]["rows"] == 20
    assert result["live_plot"]["polls"] > 0


def test_charts_without_anywidget_say_what_is_missing() -> None:
    code = (
        "import sys\n"
        "sys.modules['anywidget'] = None  # as if it were not installed\n"
        "from jupyter_mlops import views\n"
        "from jupyter_mlops.errors import MlopsError\n"
        "try:\n"
        "    views.LivePlot('loss')\n"
        "except MlopsError as exc:\n"
        "    print(exc)\n"
    )
    out = run_child(code, timeout=120)
    assert "need the 'anywidget' package: pip install anywidget" in out
