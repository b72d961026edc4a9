"""The sidebar's run detail lists the data checks made in a run, problems as text."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from jupyter_mlops import run as runs
from jupyter_mlops.datachecks import check_data
from jupyter_mlops.store import open_store

from .conftest import LabServer, save_screenshot
from .test_sidebar import SIDEBAR, XSS_NAME, open_sidebar, row, show_all

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_run_detail_lists_data_checks(lab_server: LabServer, lab_page: Any) -> None:
    store = open_store(lab_server.root / ".mlops")
    train = runs.start_run(name="checked-train", store=store)
    train.log_data("train", pd.DataFrame({"age": [20, 30, 40, 50], "city": list("abab")}))
    train.end()
    scoring = runs.start_run(name="checked-scoring", store=store)
    batch = pd.DataFrame({"age": [25, 35, 45, 55]})
    report = check_data(batch, f"{train.id}:train", subject=XSS_NAME, store=store)
    scoring.end()
    assert report["run"] == scoring.id and not report["passed"]

    open_sidebar(lab_page)
    show_all(lab_page)
    row(lab_page, scoring.id).locator(".jp-mlops-run-open").click()
    detail = lab_page.locator(f"#jupyter-mlops-run-{scoring.id}")
    table = detail.locator(".jp-mlops-data-checks")
    table.wait_for()
    text = table.inner_text()
    assert "failed" in text and "missing_column city" in text and train.id[:12] in text
    assert XSS_NAME in text  # shown as text, never as markup
    assert lab_page.evaluate("window.__mlopsXss") is None
    assert lab_page.locator(f"{SIDEBAR} img[src=x]").count() == 0
    save_screenshot(lab_page, "data-checks")
