"""The REST API's test fixtures and helpers: a real jupyter_server with our extension, its root
folder, the store found from it, and JSON requests.

A pytest plugin, named by the suite's conftest after pytest_jupyter's (so this module's
``jp_server_config`` is the one the server starts with). A test asks for ``server_root`` and
``server_store`` (named apart from the suite's own ``store``, which a plugin's fixture could
not override) and imports the helpers it calls.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from jupyter_mlops import kernel_env
from jupyter_mlops import run as runs
from jupyter_mlops.store import Store, open_store

__all__ = [
    "API",
    "UNKNOWN_ID",
    "assert_error",
    "get_json",
    "make_run",
]

API = "jupyter-mlops/api"
UNKNOWN_ID = "0" * 32


@pytest.fixture
def jp_server_config() -> Config:
    """The server with our extension enabled (as the shipped config file does)."""
    return Config({"ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}}})


@pytest.fixture
def server_root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's root folder; the store is found from it, not from the environment."""
    monkeypatch.delenv(kernel_env.STORE_DIR, raising=False)
    return Path(jp_root_dir)


@pytest.fixture
def server_store(server_root: Path) -> Store:
    """A store in ``<root>/.mlops``, as a kernel started anywhere under the root finds it."""
    return open_store(server_root / ".mlops")


def make_run(
    store: Store,
    name: str,
    *,
    notebook: Path | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    status: str = "finished",
) -> str:
    """A real run in the store, ended with ``status``; its id."""
    run = runs.start_run(name=name, notebook=notebook, store=store)
    if params:
        run.log_params(params)
    if metrics:
        run.log_metrics(metrics)
    if status != "running":
        run.end(status)
    time.sleep(0.002)  # distinct start times keep "newest first" unambiguous
    return run.id


async def get_json(jp_fetch: Any, *parts: str, **kwargs: Any) -> tuple[int, Any]:
    """Fetch and decode; errors are answers too."""
    response: HTTPResponse = await jp_fetch(API, *parts, raise_error=False, **kwargs)
    return response.code, json.loads(response.body or b"null")


def assert_error(code: int, body: Any, status: int, error: str) -> None:
    """A one-line JSON error with the expected status and code."""
    assert code == status, body
    assert body["error"] == error, body
    assert body["message"] and "\n" not in body["message"]
    assert "Traceback" not in body["message"]
