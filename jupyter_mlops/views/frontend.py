"""Where views go out: a notebook frontend or not, and the widget libraries, loaded late.

ipywidgets and plotly are imported only when a view is built, so ``%load_ext`` and
``import jupyter_mlops`` stay fast.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from ..errors import MlopsError
from .markup import error_html

__all__ = ["failure_shown_in", "in_notebook_frontend", "load_graph_objects", "load_ipywidgets"]


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


def load_ipywidgets() -> Any:
    """ipywidgets, imported when a view is first built."""
    import ipywidgets

    return ipywidgets


def load_graph_objects() -> Any:
    """plotly's graph objects, imported when a chart is first drawn."""
    import plotly.graph_objects as go

    return go


@contextlib.contextmanager
def failure_shown_in(box: Any) -> Iterator[None]:
    """Run a widget callback; a failure becomes a message at the end of ``box``."""
    try:
        yield
    except Exception as exc:
        text = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
        message = load_ipywidgets().HTML(error_html(text))
        box.children = [*box.children, message]
