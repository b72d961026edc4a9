"""jupyter-mlops: a notebook-native experiment tracker.

Records what a notebook actually executed (cells, order, data, params, metrics,
environment) into a local SQLite store, and tells whether a run reproduces.
Names are imported on first use so that ``import jupyter_mlops`` and ``%load_ext`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "start_run": "run",
    "end_run": "run",
    "active_run": "run",
    "autolog": "autologging",
    "log_param": "run",
    "log_params": "run",
    "log_metric": "run",
    "log_metrics": "run",
    "log_data": "run",
    "log_artifact": "run",
    "runs": "records",
    "get_run": "records",
    "update_run": "records",
    "delete_run": "records",
    "Run": "run",
    "RunRecord": "records",
    "content_hash": "hashing",
    "replay": "replays",
    "sweep": "sweeps",
    "check": "gate",
    "check_data": "datachecks",
    "diff_runs": "compare",
    "MlopsError": "errors",
    "import_store": "merge",
    "export_mlflow": "mlflow_bridge",
    "import_mlflow": "mlflow_bridge",
    "register_model": "registry",
    "load_model": "registry",
    "models": "registry",
    "set_alias": "registry",
}

__all__ = [
    "MlopsError",
    "Run",
    "RunRecord",
    "__version__",
    "active_run",
    "autolog",
    "check",
    "check_data",
    "content_hash",
    "delete_run",
    "diff_runs",
    "end_run",
    "export_mlflow",
    "get_run",
    "import_mlflow",
    "import_store",
    "load_ipython_extension",
    "load_model",
    "log_artifact",
    "log_data",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "models",
    "register_model",
    "replay",
    "runs",
    "set_alias",
    "start_run",
    "sweep",
    "unload_ipython_extension",
    "update_run",
]

if TYPE_CHECKING:
    from .autologging import autolog
    from .compare import diff_runs
    from .datachecks import check_data
    from .errors import MlopsError
    from .gate import check
    from .hashing import content_hash
    from .merge import import_store
    from .mlflow_bridge import export_mlflow, import_mlflow
    from .records import RunRecord, delete_run, get_run, runs, update_run
    from .registry import load_model, models, register_model, set_alias
    from .replays import replay
    from .run import (
        Run,
        active_run,
        end_run,
        log_artifact,
        log_data,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        start_run,
    )
    from .sweeps import sweep


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_mlops' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    if module in _SHOW_RUNS:
        _show_cards_in_a_shell()
    return value


# The modules whose names hand out runs a notebook may display.
_SHOW_RUNS = frozenset({"run", "records"})


def _show_cards_in_a_shell() -> None:
    """In an IPython shell, let a run display as its card even without ``%load_ext``; the
    views are loaded only there (a script never imports them)."""
    from .liveness import is_kernel

    if is_kernel():
        importlib.import_module(".views.card", __name__)


def __dir__() -> list[str]:
    return sorted(__all__)


_capture: Any = None


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext jupyter_mlops``: add the ``%track`` magics and start capturing cells."""
    global _capture
    from .capture import CellCapture
    from .magics import TrackMagics

    shell.register_magics(TrackMagics)
    if _capture is None or _capture.shell is not shell:
        if _capture is not None:
            _capture.unregister()
        _capture = CellCapture(shell)
        _capture.register()
    from .run import start_managed_run

    if start_managed_run() is not None:
        from .autologging import enable_from_environment

        enable_from_environment()
        # Loaded by our launcher before the notebook's own `%load_ext jupyter_mlops`: let
        # that line load quietly, as it did in the original run, rather than print
        # "already loaded" into the cell's output.
        loaded = getattr(getattr(shell, "extension_manager", None), "loaded", None)
        if isinstance(loaded, set):
            loaded.discard(__name__)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext jupyter_mlops``: stop capturing (the active run stays open)."""
    global _capture
    if _capture is not None:
        _capture.unregister()
        _capture = None
