"""The sidebar in a real JupyterLab and chromium: live runs, detail, compare, replay, safety."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_mlops import run as runs
from jupyter_mlops.store import open_store

from .conftest import (
    LabServer,
    lab_command,
    open_and_run_notebook,
    save_screenshot,
    wait_notebook_done,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIDEBAR_TAB = '[data-id="jupyter-mlops-sidebar"]'
SIDEBAR = "#jupyter-mlops-sidebar"
XSS_NAME = '<img src=x onerror="window.__mlopsXss=1">'


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code cells with the python3 kernel."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(nb, path)


TRACKED_CELLS = [
    "%load_ext jupyter_mlops\n%track start --name live-train --tag team=vision",
    "import time\nlr = 0.01\n%track params lr epochs=6",
    "loss = 1.0\nfor epoch in range(6):\n    loss = loss * 0.7\n"
    "    %track metric loss=loss --step epoch\n    time.sleep(1.0)",
    "acc = 0.91\n%track metric acc",
    "%track end",
]


def seed_run(root: Path, name: str, **values: Any) -> str:
    """A finished run written straight into the lab's store (as another kernel would)."""
    store = open_store(root / ".mlops")
    run = runs.start_run(name=name, store=store, notebook=values.pop("notebook", None))
    if "params" in values:
        run.log_params(values["params"])
    for step, loss in enumerate(values.get("losses", [])):
        run.log_metric("loss", loss, step=step)
    if "metrics" in values:
        run.log_metrics(values["metrics"])
    run.end()
    return run.id


def open_sidebar(page: Any) -> Any:
    """Click the sidebar's tab and wait for its first list."""
    page.click(SIDEBAR_TAB)
    page.wait_for_selector(f"{SIDEBAR} .jp-mlops-runlist[data-loaded=true]")
    return page.locator(SIDEBAR)


def show_all(page: Any) -> None:
    """Switch the sidebar to all runs."""
    page.select_option(f"{SIDEBAR} .jp-mlops-scope", "all")


def row(page: Any, run_id: str) -> Any:
    """The sidebar's row of a run."""
    return page.locator(f'{SIDEBAR} li.jp-mlops-run[data-run-id="{run_id}"]')


@pytest.fixture
def no_dialogs(lab_page: Any) -> list[str]:
    """Fail on any alert/confirm a script might open; collect page errors."""
    errors: list[str] = []
    lab_page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    lab_page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    return errors


def test_sidebar_tab_and_commands_exist(lab_page: Any) -> None:
    tab = lab_page.locator(SIDEBAR_TAB)
    assert tab.count() == 1
    open_sidebar(lab_page)
    commands = lab_page.evaluate(
        "() => window.jupyterapp.commands.listCommands()"
        ".filter(c => c.startsWith('jupyter-mlops:'))"
    )
    assert {"jupyter-mlops:open-sidebar", "jupyter-mlops:compare-selected"} <= set(commands)
    # Usable by keyboard: the filter box takes focus from a command and Enter filters.
    lab_command(lab_page, "jupyter-mlops:search")
    assert lab_page.evaluate("() => document.activeElement.classList.contains('jp-mlops-search')")


def test_a_run_appears_live_and_finishes(lab_server: LabServer, lab_page: Any) -> None:
    write_notebook(lab_server.root / "train.ipynb", TRACKED_CELLS)
    open_sidebar(lab_page)
    open_and_run_notebook(lab_page, "train.ipynb", wait=False)
    # The sidebar follows the notebook in focus, and shows the run while it is going.
    lab_page.wait_for_selector(f"{SIDEBAR} .jp-mlops-scope-note:has-text('train.ipynb')")
    running = lab_page.locator(f"{SIDEBAR} li.jp-mlops-run[data-status=running]")
    running.first.wait_for(timeout=60_000)
    assert "live-train" in running.first.inner_text()
    save_screenshot(lab_page, "sidebar-running")
    wait_notebook_done(lab_page)
    finished = lab_page.locator(f"{SIDEBAR} li.jp-mlops-run[data-status=finished]")
    finished.first.wait_for(timeout=15_000)
    assert "live-train" in finished.first.inner_text()
    assert "finished" in finished.first.locator(".jp-mlops-badge").inner_text()


def test_run_detail_shows_params_charts_cells(lab_server: LabServer, lab_page: Any) -> None:
    store = open_store(lab_server.root / ".mlops")
    found = runs.list_runs(where="name = live-train", store=store)
    if not found:
        write_notebook(lab_server.root / "train.ipynb", TRACKED_CELLS)
        open_and_run_notebook(lab_page, "train.ipynb")
        found = runs.list_runs(where="name = live-train", store=store)
    run_id = found[0]["id"]
    open_sidebar(lab_page)
    show_all(lab_page)
    row(lab_page, run_id).locator(".jp-mlops-run-open").click()
    detail = lab_page.locator(f"#jupyter-mlops-run-{run_id}")
    detail.locator("h2.jp-mlops-run-title").wait_for()
    assert detail.locator("h2.jp-mlops-run-title").inner_text() == "live-train"
    assert "lr" in detail.inner_text() and "0.01" in detail.inner_text()
    detail.locator(".jp-mlops-chart .main-svg").first.wait_for(timeout=20_000)
    cells = detail.locator(".jp-mlops-cell")
    assert cells.count() == len(TRACKED_CELLS)
    assert "%track end" in cells.nth(len(TRACKED_CELLS) - 1).inner_text()
    assert detail.locator(".jp-mlops-linear-yes, .jp-mlops-linear-no").count() == 1
    assert "packages" in detail.locator(".jp-mlops-packages summary").inner_text()
    save_screenshot(lab_page, "run-detail")


def test_compare_two_runs(lab_server: LabServer, lab_page: Any) -> None:
    a = seed_run(
        lab_server.root,
        "cmp-a",
        params={"lr": 0.1, "depth": 3},
        losses=[1.0, 0.6, 0.4],
        metrics={"acc": 0.8},
    )
    b = seed_run(
        lab_server.root,
        "cmp-b",
        params={"lr": 0.01, "depth": 3},
        losses=[1.0, 0.5, 0.2],
        metrics={"acc": 0.9},
    )
    open_sidebar(lab_page)
    show_all(lab_page)
    row(lab_page, a).wait_for()
    row(lab_page, a).locator("input.jp-mlops-select").check()
    row(lab_page, b).locator("input.jp-mlops-select").check()
    compare_button = lab_page.locator(f"{SIDEBAR} .jp-mlops-selection button")
    assert compare_button.inner_text() == "Compare 2"
    compare_button.click()
    view = lab_page.locator(".jp-mlops-compare")
    view.locator("h2").wait_for()
    differing = view.locator("tr.jp-mlops-differs")
    assert any(row_text.startswith("lr") for row_text in differing.all_inner_texts())
    assert not any(t.startswith("depth") for t in differing.all_inner_texts())
    chart = view.locator(".jp-mlops-chart").filter(has_text="loss")
    chart.locator(".main-svg").first.wait_for(timeout=20_000)
    assert chart.locator(".scatterlayer .trace").count() == 2  # both curves overlaid
    save_screenshot(lab_page, "compare")


def test_replay_from_the_detail_shows_the_verdict(lab_server: LabServer, lab_page: Any) -> None:
    store = open_store(lab_server.root / ".mlops")
    found = runs.list_runs(where="name = live-train and kind = interactive", store=store)
    if not found:
        write_notebook(lab_server.root / "train.ipynb", TRACKED_CELLS)
        open_and_run_notebook(lab_page, "train.ipynb")
        found = runs.list_runs(where="name = live-train and kind = interactive", store=store)
    run_id = found[0]["id"]
    lab_command(lab_page, "jupyter-mlops:show-run", {"id": run_id})
    detail = lab_page.locator(f"#jupyter-mlops-run-{run_id}")
    detail.locator("button.jp-mlops-replay").click()
    result = detail.locator(".jp-mlops-replay-result")
    result.wait_for(timeout=180_000)
    verdict = result.locator(".jp-mlops-verdict").inner_text()
    assert verdict in ("reproduced", "reproduced within tolerance", "diverged", "failed")
    save_screenshot(lab_page, "replay-verdict")
    detail.locator("button.jp-mlops-open-replay-run").click()
    replay_run = store.replays(original_id=run_id)[0]["replay_run_id"]
    lab_page.locator(f"#jupyter-mlops-run-{replay_run} h2.jp-mlops-run-title").wait_for()


def test_a_run_name_with_markup_is_text_and_runs_nothing(
    lab_server: LabServer, lab_page: Any, no_dialogs: list[str]
) -> None:
    other = seed_run(lab_server.root, "plain", params={"p": 1}, losses=[3, 2, 1])
    run_id = seed_run(
        lab_server.root,
        XSS_NAME,
        params={"<b>key</b>": "<script>window.__mlopsXss=2</script>"},
        losses=[3, 2, 1],
        metrics={"<img src=y onerror=alert(1)>": 1.0},
    )
    runs.update_run(
        run_id,
        tags={"<i>t</i>": "<svg onload=alert(3)>"},
        note="<img src=z>",
        store=open_store(lab_server.root / ".mlops"),
    )
    open_sidebar(lab_page)
    show_all(lab_page)
    name = row(lab_page, run_id).locator(".jp-mlops-run-name")
    name.wait_for()
    assert name.inner_text() == XSS_NAME
    row(lab_page, run_id).locator(".jp-mlops-run-open").click()
    detail = lab_page.locator(f"#jupyter-mlops-run-{run_id}")
    detail.locator("h2.jp-mlops-run-title").wait_for()
    assert detail.locator("h2.jp-mlops-run-title").inner_text() == XSS_NAME
    assert "<script>window.__mlopsXss=2</script>" in detail.inner_text()
    detail.locator(".jp-mlops-chart .main-svg").first.wait_for(timeout=20_000)
    row(lab_page, run_id).locator("input.jp-mlops-select").check()
    row(lab_page, other).locator("input.jp-mlops-select").check()
    lab_page.locator(f"{SIDEBAR} .jp-mlops-selection button").click()
    lab_page.locator(".jp-mlops-compare .jp-mlops-chart .main-svg").first.wait_for(timeout=20_000)
    lab_page.wait_for_timeout(500)
    # Nothing from the data became an element or ran.
    injected = lab_page.evaluate(
        """() => [...document.querySelectorAll(
            '.jp-mlops-sidebar img, .jp-mlops-detail img, .jp-mlops-compare img, '
            + '.jp-mlops-detail script, .jp-mlops-compare script, .jp-mlops-detail svg[onload]'
        )].length"""
    )
    assert injected == 0
    assert lab_page.evaluate("() => window.__mlopsXss") is None
    assert no_dialogs == []
    save_screenshot(lab_page, "markup-as-text")


def test_search_box_uses_the_where_language(lab_server: LabServer, lab_page: Any) -> None:
    seed_run(lab_server.root, "search-hit", metrics={"acc": 0.99})
    seed_run(lab_server.root, "search-miss", metrics={"acc": 0.1})
    open_sidebar(lab_page)
    show_all(lab_page)
    search = lab_page.locator(f"{SIDEBAR} .jp-mlops-search")
    search.fill("metrics.acc > 0.95 and name ~ search")
    search.press("Enter")
    lab_page.wait_for_function(
        """() => [...document.querySelectorAll('#jupyter-mlops-sidebar .jp-mlops-run-name')]
                .map(n => n.textContent).join(',') === 'search-hit'"""
    )
    search.fill("metrics.acc >")
    search.press("Enter")
    error = lab_page.locator(f"{SIDEBAR} .jp-mlops-error")
    error.wait_for()
    assert re.search(r"bad expression at column \d+", error.inner_text())


def test_rename_tag_and_delete_with_confirmation(lab_server: LabServer, lab_page: Any) -> None:
    run_id = seed_run(lab_server.root, "to-edit", params={"x": 1})
    lab_command(lab_page, "jupyter-mlops:show-run", {"id": run_id})
    detail = lab_page.locator(f"#jupyter-mlops-run-{run_id}")
    detail.locator("button.jp-mlops-rename").click()
    dialog = lab_page.locator(".jp-Dialog")
    dialog.locator("input").fill("edited")
    dialog.locator("button.jp-mod-accept").click()
    detail.locator("h2.jp-mlops-run-title:has-text('edited')").wait_for()
    detail.locator("button.jp-mlops-tag").click()
    lab_page.locator(".jp-Dialog input").fill("stage=prod")
    lab_page.locator(".jp-Dialog button.jp-mod-accept").click()
    detail.locator(".jp-mlops-tag:has-text('stage=prod')").wait_for()
    detail.locator("button.jp-mlops-delete").click()
    lab_page.locator(".jp-Dialog button.jp-mod-reject").click()  # cancel keeps it
    assert runs.get_run(run_id, store=open_store(lab_server.root / ".mlops")).name == "edited"
    detail.locator("button.jp-mlops-delete").click()
    lab_page.locator(".jp-Dialog button.jp-mod-warn").click()
    detail.wait_for(state="detached")
    store = open_store(lab_server.root / ".mlops")
    assert runs.list_runs(where=f"id = {run_id}", store=store) == []


def test_dark_theme_is_followed(lab_page: Any) -> None:
    open_sidebar(lab_page)
    light = lab_page.evaluate(
        "() => getComputedStyle(document.querySelector('#jupyter-mlops-sidebar')).backgroundColor"
    )
    lab_command(lab_page, "apputils:change-theme", {"theme": "JupyterLab Dark"})
    lab_page.wait_for_function(
        "() => document.body.dataset.jpThemeLight === 'false'", timeout=15_000
    )
    lab_page.wait_for_timeout(300)
    dark = lab_page.evaluate(
        "() => getComputedStyle(document.querySelector('#jupyter-mlops-sidebar')).backgroundColor"
    )
    assert light != dark
    save_screenshot(lab_page, "sidebar-dark")
    lab_command(lab_page, "apputils:change-theme", {"theme": "JupyterLab Light"})


def test_usable_by_keyboard(lab_server: LabServer, lab_page: Any) -> None:
    seed_run(lab_server.root, "key-a", params={"k": 1})
    newest = seed_run(lab_server.root, "key-b", params={"k": 2})
    open_sidebar(lab_page)
    show_all(lab_page)
    row(lab_page, newest).wait_for()
    lab_command(lab_page, "jupyter-mlops:search")
    keyboard = lab_page.keyboard
    keyboard.press("ArrowDown")  # from the filter box into the list
    keyboard.press("Space")  # select the newest run
    keyboard.press("ArrowDown")
    keyboard.press("Space")  # and the next
    compare_button = lab_page.locator(f"{SIDEBAR} .jp-mlops-selection button")
    assert compare_button.inner_text() == "Compare 2"
    compare_button.focus()
    keyboard.press("Enter")
    lab_page.locator(".jp-mlops-compare h2").wait_for()
    row(lab_page, newest).locator(".jp-mlops-run-open").focus()
    keyboard.press("Enter")
    lab_page.locator(f"#jupyter-mlops-run-{newest} h2.jp-mlops-run-title").wait_for()
