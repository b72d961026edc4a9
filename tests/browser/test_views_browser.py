"""The views in a real JupyterLab: the runs table, a run's tabs and plotly charts render.

Screenshots of each view go to ``docs/screenshots/views-*.png``; the README shows them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import SCREENSHOTS, LabServer, open_and_run_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "views.ipynb"
# A plotly FigureWidget draws its chart as SVG inside the widget's output.
PLOTLY_SVG = ".js-plotly-plot .main-svg"


def cell_with(page: Any, first_line: str) -> Any:
    """The notebook cell whose input starts with the line ``first_line``."""
    line = re.compile(rf"^{re.escape(first_line)}$")
    return page.locator(".jp-Notebook .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor .cm-line", has_text=line)
    )


def shoot(cell: Any, name: str) -> Path:
    """A screenshot of one cell's output under docs/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    output = cell.locator(".jp-OutputArea").first
    output.scroll_into_view_if_needed()
    output.screenshot(path=str(target))
    return target


def test_views_render_in_jupyterlab(lab_server: LabServer, lab_page: Any) -> None:
    page = lab_page
    page.set_viewport_size({"width": 1400, "height": 1500})  # tall views fit in one shot
    shutil.copy(NOTEBOOK, lab_server.root / "views.ipynb")
    open_and_run_notebook(page, "views.ipynb")
    errors = page.locator(".jp-Notebook [data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [text for text in errors.all_inner_texts() if "Traceback" in text]
    assert not tracebacks, tracebacks

    runs_cell = cell_with(page, "%track runs")
    rows = runs_cell.locator(".widget-html", has_text="views-a")
    rows.first.wait_for(timeout=60_000)
    table_text = runs_cell.locator(".jp-OutputArea").inner_text()
    for name in ("views-a", "views-b", "views-c"):
        assert name in table_text
    assert "finished" in table_text and "metrics.acc" in table_text
    # Select two runs and compare them inside the table's own detail area.
    checkboxes = runs_cell.locator(".widget-checkbox input[type=checkbox]")
    checkboxes.nth(1).check()  # the first is the whole page's
    checkboxes.nth(2).check()
    # The kernel answers each click: the label and the buttons follow.
    runs_cell.locator(".widget-html", has_text="2 selected").wait_for(timeout=30_000)
    shoot(runs_cell, "views-runs")
    runs_cell.locator("button", has_text="Compare").click()
    runs_cell.locator(".lm-TabBar-tab", has_text="packages").first.wait_for(timeout=30_000)
    shoot(runs_cell, "views-runs-compare")

    show_cell = cell_with(page, "%track show views-a")
    show_cell.locator(".lm-TabBar-tab", has_text="metrics").first.click()
    show_cell.locator(PLOTLY_SVG).first.wait_for(timeout=60_000)
    shoot(show_cell, "views-show")
    show_cell.locator(".lm-TabBar-tab", has_text="cells").first.click()
    show_cell.locator("pre", has_text="%track start").first.wait_for(timeout=10_000)
    shoot(show_cell, "views-show-cells")

    compare_cell = cell_with(page, "%track compare views-a views-b views-c")
    compare_cell.locator(".lm-TabBar-tab", has_text="parallel").first.click()
    compare_cell.locator(PLOTLY_SVG).first.wait_for(timeout=60_000)
    shoot(compare_cell, "views-compare")

    plot_cell = cell_with(page, "%track plot loss views-a views-b views-c")
    plot_cell.locator(PLOTLY_SVG).first.wait_for(timeout=60_000)
    assert plot_cell.locator(".scatterlayer .trace").count() == 3
    shoot(plot_cell, "views-plot")

    live_cell = cell_with(page, "%track plot loss")
    live_cell.locator(PLOTLY_SVG).first.wait_for(timeout=60_000)
    # The live chart drew the training loop's line while it ran.
    live_cell.locator(".scatterlayer .trace path.js-line").first.wait_for(timeout=30_000)
    shoot(live_cell, "views-live")
