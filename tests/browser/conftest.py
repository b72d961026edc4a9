"""Browser fixtures: a real ``jupyter lab`` on a temporary root, and chromium driven by Playwright.

Fixtures:

- ``lab_server`` (module scope): starts ``jupyter lab`` with a temporary root folder that holds
  an empty ``.mlops/`` store folder (``JUPYTER_MLOPS_DIR`` unset, so kernels and the server find
  that store from their folders), on a free port with a random token. It has ``url`` (the base
  URL, ending in ``/``), ``token`` and ``root`` (a ``Path``); the server stops at teardown.
  The app is exposed in the page as ``window.jupyterapp`` so tests can run JupyterLab commands.
- ``lab_page``: a Playwright page (chromium, sync API) logged in to that lab, the UI ready.

Helpers (plain functions, import them from ``tests.browser.conftest``):

- ``open_and_run_notebook(page, path)``: opens ``path`` (relative to the lab's root), runs all
  its cells and waits until the kernel is idle again.
- ``lab_command(page, command, args)``: runs a JupyterLab command in the page.

Browser tests are marked ``browser``; they skip when ``/usr/bin/chromium`` is missing. They
never use pytest-jupyter's fixtures, whose event loop clashes with Playwright's sync API.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Test runs write screenshots to an ignored folder; the documented ones in docs/screenshots/
# change only when asked for (JUPYTER_MLOPS_REFRESH_SCREENSHOTS=1).
_PROJECT = Path(__file__).resolve().parents[2]
REFRESH_SCREENSHOTS = os.environ.get("JUPYTER_MLOPS_REFRESH_SCREENSHOTS") == "1"
SCREENSHOTS = _PROJECT / ("docs" if REFRESH_SCREENSHOTS else "build") / "screenshots"
START_TIMEOUT_S = 60.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip browser tests, with the reason, on a machine without Debian's chromium."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@dataclass
class LabServer:
    """A running ``jupyter lab``: its base URL (ending in ``/``), token and root folder."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, token: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(OSError):
            request = urllib.request.Request(
                f"{url}api/status", headers={"Authorization": f"token {token}"}
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.25)
    raise RuntimeError(f"jupyter lab did not start in time:\n{log.read_text()[-4000:]}")


# pytest-jupyter's autouse fixtures apply to every test collected after its plugin loads (the
# handler tests load it). Under Playwright's sync API its loop fixture would close the
# loop Playwright runs ("Cannot close a running event loop"), so the browser tests, whose
# Jupyter server is a process of its own, shadow both with fixtures that do nothing.


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    """No event loop of pytest-jupyter's here: Playwright runs its own."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    """No in-process Jupyter server to clean up here."""
    yield None


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A real ``jupyter lab`` over a temporary root holding an empty ``.mlops/`` folder."""
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    root = tmp_path_factory.mktemp("lab-root")
    (root / ".mlops").mkdir()
    home = tmp_path_factory.mktemp("lab-home")
    port = _free_port()
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_MLOPS_")}
    # A private config and runtime folder: nothing from the user's own setup leaks in, and
    # the workspace starts empty every time.
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )
    # No "get news?" prompt over the screenshots.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log = home / "lab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    server = LabServer(url=url, token=token, root=root, process=process, log=log)
    try:
        _wait_ready(url, token, process, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def _browser(lab_server: LabServer) -> Iterator[Any]:
    """One chromium for the module's tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def lab_page(lab_server: LabServer, _browser: Any) -> Iterator[Any]:
    """A Playwright page logged in to ``lab_server`` with JupyterLab's UI ready."""
    context = _browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{lab_server.url}lab?reset&token={lab_server.token}")
    page.wait_for_selector("#jp-main-dock-panel", state="attached")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
    page.evaluate("() => window.jupyterapp.started")
    page.wait_for_selector(".jp-SideBar .lm-TabBar-tab", state="attached")
    try:
        yield page
    finally:
        context.close()


def lab_command(page: Any, command: str, args: dict[str, Any] | None = None) -> Any:
    """Run a JupyterLab command in the page; the id of the widget it returns, if any."""
    return page.evaluate(
        """async ([command, args]) => {
            const result = await window.jupyterapp.commands.execute(command, args);
            return result && result.id ? result.id : null;
        }""",
        [command, args or {}],
    )


def open_and_run_notebook(
    page: Any, path: str, *, wait: bool = True, timeout_ms: int = 120_000
) -> None:
    """Open a notebook (a path relative to the lab's root) and run all its cells.

    With ``wait`` (the default) it returns once every cell has run and the kernel is idle;
    without, as soon as the cells are queued (to watch what happens while they run).
    """
    lab_command(page, "docmanager:open", {"path": path, "factory": "Notebook"})
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook", timeout=timeout_ms)
    _wait_kernel_idle(page, timeout_ms)
    lab_command(page, "notebook:run-all-cells")
    if wait:
        wait_notebook_done(page, timeout_ms)


def wait_notebook_done(page: Any, timeout_ms: int = 120_000) -> None:
    """Wait until every cell of the notebook in view has run and the kernel is idle."""
    # The run counts as done once no cell shows the busy marker and the kernel is idle.
    page.wait_for_function(
        """() => {
            const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            if (!nb) { return false; }
            const prompts = [...nb.querySelectorAll('.jp-InputArea-prompt')];
            return prompts.length > 0 && prompts.every(p => !p.textContent.includes('*'))
                && prompts.some(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=timeout_ms,
    )
    _wait_kernel_idle(page, timeout_ms)


def _wait_kernel_idle(page: Any, timeout_ms: int) -> None:
    # The status bar says "Idle" only once the kernel exists and is idle (the toolbar's
    # data-status reads idle earlier).
    page.wait_for_function(
        """() => {
            const items = [...document.querySelectorAll('#jp-main-statusbar *')];
            return items.some(
                el => el.childElementCount === 0 && /\\|\\s*Idle/.test(el.textContent));
        }""",
        timeout=timeout_ms,
    )


def save_screenshot(page: Any, name: str) -> Path:
    """Save a screenshot of the page under ``SCREENSHOTS`` (``docs/screenshots/`` when asked
    to refresh them, else the ignored ``build/screenshots/``)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(target))
    return target
