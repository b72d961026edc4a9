"""The linear verdict on recorded cells against a saved notebook file."""

from __future__ import annotations

from pathlib import Path

import nbformat

from jupyter_mlops.linearity import (
    INJECTED_TAG,
    assess_linearity,
    cell_label,
    cell_marks,
    cell_numbers,
    is_injected_parameters,
    looks_injected,
    notebook_cell_number,
    saved_cells,
)


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
    return [
        {"cell_id": c, "source": s, "execution_count": n, "seq": seq}
        for seq, (c, s, n) in enumerate(cells, start=1)
    ]


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
        "1 cell(s) ran more than once: cell 2 ([5], [6])",
        "1 cell(s) that ran are not in the saved notebook (cell ?#5 [7]; deleted, edited, "
        "or the notebook was not saved)",
        "cells ran out of notebook order: cell 2 [5] ran after cell 3 [2]",
        "the saved notebook differs from what ran in cell 2 (edited after running, or not saved)",
    ]


def test_without_cell_ids_cells_are_matched_by_source(tmp_path: Path) -> None:
    path = saved(tmp_path / "n.ipynb", FILE)
    papermill = ran(
        (None, "y = x + 1", 2), (None, "# Parameters\nx = 5\n", 3), (None, "print(y)", 4)
    )
    assert assess_linearity(papermill, path) == (True, [])
    shuffled = ran((None, "print(y)", 1), (None, "x = 1", 2))
    assert assess_linearity(shuffled, path)[1] == [
        "cells ran out of notebook order: cell 1 [2] ran after cell 3 [1]"
    ]


def test_no_saved_file_checks_counts_and_reruns_only(tmp_path: Path) -> None:
    assert assess_linearity(ran(("a", "x", 1), ("b", "y", 2)), None) == (True, [])
    assert assess_linearity(ran(("a", "x", 1)), tmp_path / "missing.ipynb") == (True, [])


def test_papermill_parameters_cell_is_recognised() -> None:
    assert is_injected_parameters("# Parameters\nalpha = 0.1\n")
    assert not is_injected_parameters("# Parameters are below\nalpha = 0.1")


def test_empty_cells_are_not_mistakes(tmp_path: Path) -> None:
    path = saved(tmp_path / "n.ipynb", [("a", "x = 1"), ("e", "  \n"), ("b", "y = x + 1")])
    papermill = ran((None, "x = 1", 1), (None, "y = x + 1", 2))
    assert assess_linearity(papermill, path) == (True, [])
    assert cell_numbers(papermill, path) == [1, 3]


def test_a_parameters_comment_in_the_saved_notebook_is_the_users_cell(tmp_path: Path) -> None:
    own = "# Parameters\nlr = 0.1\nepochs = 3"
    path = saved(tmp_path / "n.ipynb", [("a", "import math"), ("p", own), ("b", "print(lr)")])
    cells = saved_cells(path)
    assert looks_injected(own) and is_injected_parameters(own)
    assert not is_injected_parameters(own, cells)
    # Papermill's own cell (not in the file) is still injected, and not counted.
    injected = "# Parameters\nlr = 0.5\n"
    assert is_injected_parameters(injected, cells)
    run = ran((None, "import math", 1), (None, own, 2), (None, injected, 3), (None, "print(lr)", 4))
    assert assess_linearity(run, path) == (True, [])
    assert cell_numbers(run, path) == [1, 2, None, 3]
    assert not looks_injected("# Parameters\nlr = compute()")


def test_without_cell_ids_reruns_and_out_of_order_cells_are_named(tmp_path: Path) -> None:
    path = saved(tmp_path / "n.ipynb", [(f"c{i}", f"step_{i}()") for i in range(1, 5)])
    # Only the sources are known, as from a kernel driven without cell ids.
    rerun = ran(*[(None, f"step_{i}()", n) for n, i in enumerate([1, 2, 3, 2, 4], start=1)])
    assert cell_marks(rerun, saved_cells(path)) == [
        [],
        [],
        [],
        ["ran again", "out of order: cell 2 after cell 3"],
        [],
    ]
    assert assess_linearity(rerun, path)[1] == [
        "1 cell(s) ran more than once: cell 2 ([2], [4])",
        "cells ran out of notebook order: cell 2 [4] ran after cell 3 [3]",
    ]
    shuffled = ran(*[(None, f"step_{i}()", n) for n, i in enumerate([1, 3, 2], start=1)])
    assert cell_marks(shuffled, saved_cells(path)) == [
        [],
        [],
        ["out of order: cell 2 after cell 3"],
    ]
    assert assess_linearity(shuffled, path)[1] == [
        "cells ran out of notebook order: cell 2 [3] ran after cell 3 [2]"
    ]
    unsaved = ran((None, "step_1()", 1), (None, "scratch()", 2))
    assert cell_marks(unsaved, saved_cells(path)) == [[], ["not in the saved notebook"]]


def test_cells_are_numbered_as_saved_without_markdown_or_injected_cells(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("alpha = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("# Parameters\nalpha = 2\n", metadata={"tags": [INJECTED_TAG]}),
        nbformat.v4.new_markdown_cell("## Fit"),
        nbformat.v4.new_code_cell("fit(alpha)"),
    ]
    path = tmp_path / "out.ipynb"
    nbformat.write(notebook, path)
    assert [c.number for c in saved_cells(path) or []] == [1, None, 2]
    assert [notebook_cell_number(notebook.cells, i) for i in range(5)] == [None, 1, None, None, 2]
    run = ran(
        (None, "alpha = 1", 1), (None, "# Parameters\nalpha = 2\n", 2), (None, "fit(alpha)", 3)
    )
    assert cell_numbers(run, path) == [1, None, 2]
    # A replay's cells take the numbers of the original cells they replay.
    original = [{**cell, "cell_number": n} for cell, n in zip(run, [1, None, 2], strict=True)]
    assert cell_numbers(run[2:], None, original) == [2]


def test_every_door_names_a_cell_the_same_way() -> None:
    assert cell_label({"cell_number": 4, "execution_count": 7, "seq": 9}) == "cell 4 [7]"
    assert cell_label({"cell_number": 4}) == "cell 4"
    assert cell_label({"seq": 12, "execution_count": 7, "source": "x"}) == "cell ?#12 [7]"
    assert cell_label({"seq": -1, "execution_count": 2}) == "a cell run before the run started [2]"
    assert (
        cell_label({"seq": 2, "execution_count": 2, "source": "# Parameters\na = 1\n"})
        == "the injected parameters cell [2]"
    )
