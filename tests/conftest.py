"""Shared fixtures: a real store in tmp_path, a real IPython shell with the extension loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import jupyter_mlops
from jupyter_mlops import kernel_env
from jupyter_mlops import run as runs
from jupyter_mlops.store import Store, close_all, open_store

# A real Jupyter server for the REST API's tests, then our fixtures for it (in this order, so
# ours are the ones that win: our server config enables the extension).
pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.server_fixtures"]

# Fuzzing in CI tries the same examples on every run, so a failure there is one that can be
# reproduced; runs elsewhere draw new examples each time and so keep finding new cases.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test works in its own folder with its own store, and leaves no run behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(kernel_env.STORE_DIR, str(tmp_path / ".mlops"))
    for name in (kernel_env.KIND, kernel_env.PARENT, kernel_env.SWEEP, kernel_env.NOTEBOOK):
        monkeypatch.delenv(name, raising=False)
    yield
    active = runs.active_run()
    if active is not None:
        active.end("finished")
    close_all()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """The store folder of this test."""
    return tmp_path / ".mlops"


@pytest.fixture
def store(store_dir: Path) -> Store:
    """A fresh store on a real SQLite file."""
    return open_store(store_dir)


@pytest.fixture
def shell() -> Iterator[object]:
    """A real IPython shell with ``%load_ext jupyter_mlops`` done."""
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    assert ip is not None
    ip.run_cell("%load_ext jupyter_mlops", store_history=False)
    yield ip
    ip.run_cell("%unload_ext jupyter_mlops", store_history=False)
    ip.reset(new_session=True)


PYTHON = sys.executable
SRC = str(Path(jupyter_mlops.__file__).resolve().parent.parent)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process that uses this test's store."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_child(script: str, *args: str, timeout: float = 60, **env: str) -> str:
    """The stdout of ``python -c SCRIPT ARGS`` run to its end on this test's store (exit 0)."""
    done = subprocess.run(
        [PYTHON, "-c", script, *args],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def python_child(script: str, *args: str) -> subprocess.Popen[str]:
    """``python -c SCRIPT ARGS`` as a child process of this test's store, its output piped."""
    return subprocess.Popen(
        [PYTHON, "-c", script, *args],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
