"""The sidebar for daily use: replays counted under their run (and a toggle to list them),
kind badges, and names readable whole at the sidebar's default width."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest

from jupyter_mlops import run as runs
from jupyter_mlops.store import open_store

from .conftest import LabServer, save_screenshot
from .test_sidebar import SIDEBAR, open_sidebar, row, show_all

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POINTS = [
    "train[n_estimators=100,max_depth=4,learning_rate=0.05]",
    "train[n_estimators=100,max_depth=4,learning_rate=0.10]",
]


def seed(root: Any) -> dict[str, Any]:
    """An original run replayed twice, and two sweep points whose names differ at the end."""
    store = open_store(root / ".mlops")
    with runs.start_run(name="original-daily", store=store) as original:
        original.log_metric("acc", 0.93)
    replay_ids = []
    for verdict in ("diverged", "reproduced"):
        replay = runs.start_run(
            name="replay of original-daily", kind="replay", parent=original.id, store=store
        )
        replay.end()
        store.insert_replay(
            {
                "id": uuid.uuid4().hex,
                "original_id": original.id,
                "replay_run_id": replay.id,
                "mode": "recorded",
                "state": "done",
                "verdict": verdict,
                "start_time": time.time(),
            }
        )
        replay_ids.append(replay.id)
    points = []
    for name in POINTS:
        with runs.start_run(name=name, kind="sweep", store=store) as point:
            point.log_metric("val_accuracy", 0.9)
        points.append(point.id)
    return {"original": original.id, "replays": replay_ids, "points": points}


def test_replays_set_apart_and_names_whole(lab_server: LabServer, lab_page: Any) -> None:
    ids = seed(lab_server.root)
    open_sidebar(lab_page)
    show_all(lab_page)
    original = row(lab_page, ids["original"])
    original.wait_for()
    for replay_id in ids["replays"]:
        assert row(lab_page, replay_id).count() == 0
    badge = original.locator(".jp-mlops-replays")
    assert badge.inner_text() == "↻2 reproduced"
    assert "jp-mlops-verdict-good" in (badge.get_attribute("class") or "")

    # Names are whole at the default width: nothing is clipped, and they fit in their row.
    for point_id, name in zip(ids["points"], POINTS, strict=True):
        point = row(lab_page, point_id)
        assert point.locator(".jp-mlops-kind-badge").inner_text() == "sweep"
        label = point.locator(".jp-mlops-run-name")
        assert label.inner_text() == name
        fits = label.evaluate(
            """el => {
                const r = el.getBoundingClientRect();
                const li = el.closest('li').getBoundingClientRect();
                return el.scrollWidth <= el.clientWidth + 1 && r.right <= li.right + 0.5
                    && getComputedStyle(el).textOverflow !== 'ellipsis';
            }"""
        )
        assert fits, name
        meta = point.locator(".jp-mlops-run-meta")
        assert "val_accuracy 0.9" in meta.inner_text()
        assert meta.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    sidebar_width = lab_page.locator(SIDEBAR).evaluate("el => el.getBoundingClientRect().width")
    assert sidebar_width < 400  # the default width, not one widened for the test
    save_screenshot(lab_page, "sidebar-replays-apart")

    # The toggle lists them as runs again; by keyboard like any checkbox.
    toggle = lab_page.locator(f"{SIDEBAR} input.jp-mlops-show-replays")
    toggle.focus()
    lab_page.keyboard.press("Space")
    for replay_id in ids["replays"]:
        row(lab_page, replay_id).wait_for()
        assert row(lab_page, replay_id).get_attribute("data-kind") == "replay"
    toggle.click()
    row(lab_page, ids["replays"][0]).wait_for(state="detached")


def test_only_differences_keeps_the_header_and_reruns_are_separate_lines(
    lab_server: LabServer, lab_page: Any
) -> None:
    store = open_store(lab_server.root / ".mlops")
    ids = []
    for name, lr in (("diff-a", 0.1), ("diff-b", 0.01)):
        with runs.start_run(name=name, store=store) as run:
            run.log_params({"lr": lr, "depth": 3})
            for step, loss in enumerate([1.0, 0.6, 0.4]):
                run.log_metric("loss", loss, step=step)
            for step, loss in enumerate([0.9, 0.5]):  # the training cell run again
                run.log_metric("loss", loss, step=step)
        ids.append(run.id)
    open_sidebar(lab_page)
    show_all(lab_page)
    for run_id in ids:
        row(lab_page, run_id).locator("input.jp-mlops-select").check()
    lab_page.locator(f"{SIDEBAR} .jp-mlops-selection button").click()
    view = lab_page.locator(".jp-mlops-compare")
    view.locator("h2").wait_for()
    params = view.locator("table.jp-mlops-values").first
    params.locator("xpath=..").locator("label.jp-mlops-only-label input").check()
    assert params.locator("thead th").first.is_visible()
    assert params.locator("thead").inner_text().split() == ["key", "diff-a", "diff-b"]
    visible = [
        r.inner_text().split()[0] for r in params.locator("tbody tr").all() if r.is_visible()
    ]
    assert visible == ["lr"]
    chart = view.locator(".jp-mlops-chart").filter(has_text="loss")
    chart.locator(".main-svg").first.wait_for(timeout=20_000)
    xs = chart.evaluate("el => el.data.map(trace => trace.x)")
    assert xs == [[0, 1, 2, None, 0, 1]] * 2
    legend_top = chart.locator(".legend").evaluate("el => el.getBoundingClientRect().bottom")
    axis_title = chart.locator(".g-xtitle").evaluate("el => el.getBoundingClientRect().top")
    assert legend_top < axis_title  # the legend sits above the plot, not on the step title


def test_the_replay_mode_is_chosen_in_the_detail(lab_server: LabServer, lab_page: Any) -> None:
    store = open_store(lab_server.root / ".mlops")
    with runs.start_run(name="mode-choice", store=store) as run:
        run.log_metric("acc", 0.5)
    lab_page.evaluate(
        "id => window.jupyterapp.commands.execute('jupyter-mlops:show-run', {id})", run.id
    )
    detail = lab_page.locator(f"#jupyter-mlops-run-{run.id}")
    mode = detail.locator("select.jp-mlops-replay-mode")
    assert mode.input_value() == "recorded"
    mode.select_option("file")
    with lab_page.expect_request(
        lambda r: re.search(r"/replay(\?|$)", r.url) and r.method == "POST"
    ) as sent:
        detail.locator("button.jp-mlops-replay").click()
    assert json.loads(sent.value.post_data or "{}") == {"mode": "file"}
    # A run with no saved notebook cannot be replayed from its file: said in one line.
    error = detail.locator(".jp-mlops-replay-box .jp-mlops-error, .jp-mlops-error[role=alert]")
    error.first.wait_for(timeout=30_000)
    assert "notebook" in error.first.inner_text()
