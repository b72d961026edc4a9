"""Autologging: what a notebook trained and scored becomes part of its run by itself.

Switched on by ``autolog()`` or ``%track autolog``, and in every kernel that ``check``,
``sweep`` and ``replay`` start. Each fit of a scikit-learn estimator (pipelines, searches,
and XGBoost and LightGBM through their scikit-learn API) and each score the notebook computes
is noted by a patched call (``patches``); at the end of the cell they become params and
metrics named after the notebook's own variables (``record``); at the end of the run the last
fitted model of each variable is stored (``models``). A sampler thread records the process's
CPU and memory, and the GPU's when there is one (``system``). Nothing here computes a
prediction or a metric the notebook did not compute itself.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from typing import Any

from .. import run as runs
from ..kernel_env import read_kernel_env
from . import patches

__all__ = [
    "TAG",
    "autolog",
    "cell_ended",
    "enable_from_environment",
    "is_on",
]

# A run that autologged says so, so that its replay autologs too (and only then: a replay
# that logged more than its original would not be the same run).
TAG = "autolog"
DEFAULT_SYSTEM_INTERVAL = 10.0


class _Settings:
    models = True
    system_interval: float | None = DEFAULT_SYSTEM_INTERVAL


settings = _Settings()
_warned: set[str] = set()
_lock = threading.Lock()


def autolog(
    on: bool = True,
    *,
    models: bool = True,
    system: bool = True,
    system_interval: float = DEFAULT_SYSTEM_INTERVAL,
) -> None:
    """Switch autologging of fits, scores, models and system metrics on (or off)."""
    from ..errors import InvalidValueError

    if not system_interval > 0:
        raise InvalidValueError("system_interval", "must be a number of seconds above 0")
    settings.models = models
    settings.system_interval = system_interval if system else None
    if not on:
        patches.switch.on = False
        runs.remove_run_listener(_listener)
        from . import system as sampler

        sampler.stop()
        return
    patches.install(warn_once)
    patches.pending.overflow = _flush_overflow
    patches.switch.on = True
    runs.add_run_listener(_listener)
    run = runs.active_run()
    if run is not None and run.status == "running":
        _listener.started(run)


def is_on() -> bool:
    """Whether autologging is on in this process."""
    return patches.switch.on


def enable_from_environment() -> None:
    """In a kernel our launchers started: switch autologging on if they asked for it."""
    launched = read_kernel_env()
    if not launched.autolog:
        return
    interval = launched.system_interval
    if interval is None:
        interval = DEFAULT_SYSTEM_INTERVAL
    autolog(system=interval > 0, system_interval=interval if interval > 0 else 1.0)


def cell_ended(run: runs.Run, source: str, assigned: list[str] | None, namespace: Any) -> None:
    """At the end of a cell: write what its fits and scores reported (cheap when none)."""
    pending = patches.pending
    if not pending.fits and not pending.scores:
        pending.hashes.clear()
        return
    from .record import record_cell

    fits, scores = pending.fits, pending.scores
    pending.clear()
    try:
        record_cell(run, fits, scores, source, assigned, namespace)
    except Exception as exc:
        warn_once(exc)


def _flush_overflow() -> None:
    run = runs.active_run()
    if run is not None:
        cell_ended(run, "", None, _main_namespace())


def _main_namespace() -> Mapping[str, Any]:
    import sys

    main = sys.modules.get("__main__")
    return vars(main) if main is not None else {}


class _RunListener:
    """Told by runs as they start and before they end, while autologging is on."""

    def started(self, run: runs.Run) -> None:
        """Tag the run as autologged and start the sampler."""
        try:
            run.set_tags({TAG: "on"})
            if settings.system_interval is not None:
                from . import system as sampler

                sampler.start(settings.system_interval)
        except Exception as exc:
            warn_once(exc)

    def ending(self, run: runs.Run) -> None:
        """Write what is pending, link datasets, store the final models, stop the sampler."""
        try:
            from .record import last_namespace, link_datasets

            namespace = last_namespace() or _main_namespace()
            if patches.pending.fits or patches.pending.scores:
                cell_ended(run, "", None, namespace)
            link_datasets(run)
            if settings.models:
                from .models import save_final_models

                save_final_models(run, namespace)
        except Exception as exc:
            warn_once(exc)
        finally:
            from . import system as sampler

            sampler.stop()


_listener = _RunListener()


def warn_once(exc: BaseException) -> None:
    """One warning per kind of failure: the notebook's calls go on as without autologging."""
    key = type(exc).__name__
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(
        f"jupyter-mlops: autologging failed ({type(exc).__name__}: {exc}); your code runs "
        "as usual, but this run may miss what was autologged",
        RuntimeWarning,
        stacklevel=2,
    )
