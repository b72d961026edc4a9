"""A run's artifacts in the sidebar's detail: listed, and downloaded with the page's login."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops import run as runs
from jupyter_mlops.registry import register_model, set_alias
from jupyter_mlops.store import open_store

from .conftest import LabServer, save_screenshot
from .test_sidebar import SIDEBAR, open_sidebar, row, show_all

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_artifacts_are_listed_and_downloaded(
    lab_server: LabServer, lab_page: Any, tmp_path: Path
) -> None:
    store = open_store(lab_server.root / ".mlops")
    (tmp_path / "scores.csv").write_text("fold,acc\n1,0.9\n2,0.8\n")
    with runs.start_run(name="with-artifacts", store=store) as run:
        run.log_artifact(tmp_path / "scores.csv")
        run.log_artifact({"weights": [1, 2, 3]}, name="state")
    register_model("weights", run.id, "state", store=store)
    set_alias("weights", 1, "prod", store=store)
    open_sidebar(lab_page)
    show_all(lab_page)
    row(lab_page, run.id).locator(".jp-mlops-run-open").click()
    detail = lab_page.locator(f"#jupyter-mlops-run-{run.id}")
    table = detail.locator("table.jp-mlops-artifacts")
    table.wait_for()
    names = table.locator(".jp-mlops-artifact-name").all_inner_texts()
    assert names == ["scores.csv", "state"]
    assert "Artifacts (2)" in detail.inner_text()
    button = table.locator("button.jp-mlops-download").first
    assert button.get_attribute("aria-label") == "Download scores.csv"
    # The button is reachable and pressed from the keyboard like any other.
    button.focus()
    with lab_page.expect_download() as caught:
        lab_page.keyboard.press("Enter")
    download = caught.value
    assert download.suggested_filename == "scores.csv"
    assert Path(download.path()).read_text() == "fold,acc\n1,0.9\n2,0.8\n"
    with lab_page.expect_download() as caught:
        table.locator("button.jp-mlops-download").nth(1).click()
    assert pickle.loads(Path(caught.value.path()).read_bytes()) == {"weights": [1, 2, 3]}
    registered = detail.locator("table.jp-mlops-registered")
    assert registered.locator(".jp-mlops-model-version").all_inner_texts() == ["weights/1"]
    assert "prod" in registered.inner_text() and "never replayed" in registered.inner_text()
    table.scroll_into_view_if_needed()
    save_screenshot(lab_page, "run-artifacts")
    assert lab_page.locator(f"{SIDEBAR}").count() == 1
