"""The sidebar's first render over a store of 10,000 runs (timed and recorded, not asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.store import open_store

from .conftest import LabServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUNS = 10_000
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_server.py"


def _seed_store(store: Any, count: int) -> None:
    spec = importlib.util.spec_from_file_location("bench_server", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.seed_store(store, count)


@pytest.fixture(scope="module")
def big_lab(lab_server: LabServer) -> LabServer:
    """The lab with 10,000 runs in its store."""
    _seed_store(open_store(lab_server.root / ".mlops"), RUNS)
    return lab_server


def test_first_render_with_10000_runs(big_lab: LabServer, lab_page: Any) -> None:
    # Timed inside the page: from asking the shell for the sidebar to its first list drawn
    # (the request to the server included).
    lab_page.evaluate(
        """() => {
            window.__mlopsT0 = performance.now();
            window.jupyterapp.shell.activateById('jupyter-mlops-sidebar');
        }"""
    )
    lab_page.wait_for_selector("#jupyter-mlops-sidebar .jp-mlops-runlist[data-loaded=true]")
    elapsed_ms = lab_page.evaluate(
        """() => performance.getEntriesByName('jupyter-mlops:first-render')[0].startTime
                 - window.__mlopsT0"""
    )
    rows = lab_page.locator("#jupyter-mlops-sidebar li.jp-mlops-run").count()
    count = lab_page.locator("#jupyter-mlops-sidebar .jp-mlops-count").inner_text()
    assert rows == 50
    assert count.replace(",", "").replace("\u202f", "").endswith(str(RUNS))
    result = {"runs": RUNS, "first_render_ms": round(elapsed_ms, 1), "target_ms": 1000}
    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sidebar_first_render.json").write_text(json.dumps(result, indent=2))
    print(f"\nsidebar first render: {json.dumps(result)}")
    # Show more pages in further runs.
    lab_page.locator("#jupyter-mlops-sidebar .jp-mlops-more").click()
    lab_page.wait_for_function(
        "() => document.querySelectorAll('#jupyter-mlops-sidebar li.jp-mlops-run').length === 100"
    )
