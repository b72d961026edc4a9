"""The launcher's environment contract: what a kernel started by replay, sweep or check is told.

A Papermill kernel learns nothing of the run it belongs to by itself, so the process that
launches it sets ``JUPYTER_MLOPS_*`` variables (``tracked_env``) and the tracker inside the
kernel reads them back (``read_kernel_env``). The names are spelt here and nowhere else.
Nothing here imports anything of the package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUTOLOG",
    "AUTOSTART",
    "KERNEL",
    "KIND",
    "NOTEBOOK",
    "PARENT",
    "PRELUDE",
    "RUN_ID",
    "RUN_IDENTITY",
    "RUN_NAME",
    "STORE_DIR",
    "SWEEP",
    "SYSTEM_INTERVAL",
    "KernelEnv",
    "launcher_env",
    "read_kernel_env",
    "tracked_env",
    "untouched_env",
]

# Where the store lives (also set by users; see DESIGN.md "Where the store lives").
STORE_DIR = "JUPYTER_MLOPS_DIR"
# Where a run came from: its kind, the run it replays or sweeps, the sweep, the notebook file.
KIND = "JUPYTER_MLOPS_KIND"
PARENT = "JUPYTER_MLOPS_PARENT"
SWEEP = "JUPYTER_MLOPS_SWEEP"
NOTEBOOK = "JUPYTER_MLOPS_NOTEBOOK"
# A kernel whose whole notebook is one run, started when the extension loads: the run's id
# and name, and how many leading cells replay a prelude.
AUTOSTART = "JUPYTER_MLOPS_AUTOSTART"
RUN_ID = "JUPYTER_MLOPS_RUN_ID"
RUN_NAME = "JUPYTER_MLOPS_RUN_NAME"
PRELUDE = "JUPYTER_MLOPS_PRELUDE"
# The name of the kernel a launcher started (a kernel does not know its own kernelspec).
KERNEL = "JUPYTER_MLOPS_KERNEL"
# "1" switches autologging on in the kernel, "0" keeps it off; the system sampler's interval
# in seconds ("0": no system metrics).
AUTOLOG = "JUPYTER_MLOPS_AUTOLOG"
SYSTEM_INTERVAL = "JUPYTER_MLOPS_SYSTEM_INTERVAL"

# The variables that make a process's runs part of a launched run: a process that launches
# kernels of its own must not pass them on.
RUN_IDENTITY = (KIND, PARENT, SWEEP, NOTEBOOK, AUTOSTART, RUN_ID, RUN_NAME, PRELUDE, KERNEL)
# Jupyter's name for the session a kernel belongs to: a launched kernel's cells must not see
# the launcher's session as theirs.
_SESSION_NAME = "JPY_SESSION_NAME"


def tracked_env(
    store_dir: Path,
    *,
    run_id: str,
    run_name: str,
    kind: str,
    kernel: str,
    parent: str | None = None,
    sweep: str | None = None,
    notebook: Path | None = None,
    prelude: int = 0,
    autolog: bool = True,
) -> dict[str, str | None]:
    """The variables to set (None: to unset) for a kernel whose whole notebook is one run."""
    return {
        STORE_DIR: str(store_dir),
        AUTOSTART: "1",
        RUN_ID: run_id,
        RUN_NAME: run_name,
        KIND: kind,
        PARENT: parent,
        SWEEP: sweep,
        NOTEBOOK: str(notebook) if notebook else None,
        PRELUDE: str(prelude),
        KERNEL: kernel,
        _SESSION_NAME: None,
        AUTOLOG: "1" if autolog else "0",
    }


def launcher_env(store_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process that launches kernels: this store, no run's identity."""
    env = dict(os.environ if base is None else base)
    env[STORE_DIR] = str(store_dir)
    for name in RUN_IDENTITY:
        env.pop(name, None)
    return env


def untouched_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process no launcher spoke to: none of the contract's variables."""
    told = {STORE_DIR, *RUN_IDENTITY, AUTOLOG, SYSTEM_INTERVAL}
    return {k: v for k, v in (os.environ if base is None else base).items() if k not in told}


@dataclass(frozen=True)
class KernelEnv:
    """What a launcher told this process about the run it belongs to (empty when none did)."""

    store_dir: str | None = None
    kind: str | None = None
    parent: str | None = None
    sweep: str | None = None
    notebook: str | None = None
    autostart: bool = False
    run_id: str | None = None
    run_name: str | None = None
    prelude: int = 0
    kernel: str | None = None
    autolog: bool = False
    system_interval: float | None = None


def read_kernel_env(environ: Mapping[str, str] | None = None) -> KernelEnv:
    """The contract as this process's environment (or ``environ``) holds it now."""
    env = os.environ if environ is None else environ

    def text(name: str) -> str | None:
        return env.get(name) or None

    return KernelEnv(
        store_dir=text(STORE_DIR),
        kind=text(KIND),
        parent=text(PARENT),
        sweep=text(SWEEP),
        notebook=text(NOTEBOOK),
        autostart=bool(env.get(AUTOSTART)),
        run_id=text(RUN_ID),
        run_name=text(RUN_NAME),
        prelude=int(_number(env.get(PRELUDE), int) or 0),
        kernel=text(KERNEL),
        autolog=env.get(AUTOLOG) == "1",
        system_interval=_number(env.get(SYSTEM_INTERVAL), float),
    )


def _number(text: str | None, kind: type[int] | type[float]) -> int | float | None:
    """``text`` as a number, None when unset or not one (a launcher wrote it; a user may not)."""
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        return None
