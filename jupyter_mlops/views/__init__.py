"""In-notebook views of runs: a runs table, one run, a comparison and metric charts.

Everything is read through the run records and compared through ``compare.py``. The card
of a run (``card.py``) is registered as soon as this package is imported; the widget views
are imported on first use, and they import ipywidgets and plotly only when one is built, so
``%load_ext`` and ``import jupyter_mlops`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .card import run_html

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

_EXPORTS = {
    "CompareView": "comparison",
    "compare_view": "comparison",
    "LivePlot": "charts",
    "MetricPlot": "charts",
    "plot_view": "charts",
    "RunView": "run_detail",
    "run_view": "run_detail",
    "RunsTable": "runs_table",
    "runs_view": "runs_table",
    "in_notebook_frontend": "frontend",
}

if TYPE_CHECKING:
    from .charts import LivePlot, MetricPlot, plot_view
    from .comparison import CompareView, compare_view
    from .frontend import in_notebook_frontend
    from .run_detail import RunView, run_view
    from .runs_table import RunsTable, runs_view


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_mlops.views' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
