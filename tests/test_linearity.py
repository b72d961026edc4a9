"""The linear verdict on recorded cells against a saved notebook file."""

from __future__ import annotations

from pathlib import Path

import nbformat

from jupyter_mlops.linearity import assess_linearity, is_injected_parameters


def saved(path: Path, cells: list[tuple[str, str]]) -> Path:
    notebook = nbformat.v4.new_notebook()
    for cell_id, source in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.id = cell_id
        notebook.cells.append(cell)
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell("notes"))
    nbformat.write(notebook, path)
    return path


def ran(*cells: tuple[str | None, str, int]) -> list[dict]:
    return [{"cell_id": c, "source": s, "execution_count": n} for c, s, n in cells]


FILE = [("a", "x = 1"), ("b", "y = x + 1"), ("c", "print(y)")]


def test_top_to_bottom_is_linear(tmp_path: Path) -> None:
    path = saved(tmp_path / "n.ipynb", FILE)
    assert assess_linearity(ran(("a", "x = 1", 1), ("b", "y = x + 1", 2)), path) == (True, [])


def test_each_way_of_breaking_it_is_named(tmp_path: Path) -> None:
    path = saved(tmp_path / "n.ipynb", FILE)
    linear, reasons = assess_linearity(
        ran(
            ("a", "x = 1", 1),
            ("c", "print(y)", 2),
            ("b", "y = x + 2", 5),
            ("b", "y = x + 2", 6),
            ("z", "gone()", 7),
        ),
        path,
    )
    assert not linear
    assert reasons == [
        "execution counts jump from [2] to [5]",
        "1 cell(s) ran more than once",
        "1 cell(s) that ran are not in the saved notebook (deleted, or the notebook was not saved)",
        "cells ran out of notebook order: cell 2 ran after cell 3",
        "the saved notebook differs from what ran in cell 2 (edited after running, or not saved)",
    ]


def test_without_cell_ids_what_ran_must_be_a_stretch_of_the_file(tmp_path: Path) -> None:
    path = saved(tmp_path / "n.ipynb", FILE)
    papermill = ran(
        (None, "y = x + 1", 2), (None, "# Parameters\nx = 5\n", 3), (None, "print(y)", 4)
    )
    assert assess_linearity(papermill, path) == (True, [])
    shuffled = ran((None, "print(y)", 1), (None, "x = 1", 2))
    assert assess_linearity(shuffled, path)[1] == [
        "the cells that ran do not match the saved notebook, top to bottom"
    ]


def test_no_saved_file_checks_counts_and_reruns_only(tmp_path: Path) -> None:
    assert assess_linearity(ran(("a", "x", 1), ("b", "y", 2)), None) == (True, [])
    assert assess_linearity(ran(("a", "x", 1)), tmp_path / "missing.ipynb") == (True, [])


def test_papermill_parameters_cell_is_recognised() -> None:
    assert is_injected_parameters("# Parameters\nalpha = 0.1\n")
    assert not is_injected_parameters("# Parameters are below\nalpha = 0.1")
