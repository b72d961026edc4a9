"""Files a cell reads and writes, recorded by the audit hook in a real IPython shell."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops import files, hashing


def cell_files(run_name: str, position: int) -> dict[str, Any]:
    cell = mlops.get_run(run_name).cells()[position - 1]
    return {"read": cell["files_read"], "written": cell["files_written"]}


def tracked(shell: Any, name: str, *cells: str) -> dict[str, Any]:
    """Run the cells as one run; the files its first cell read and wrote."""
    shell.run_cell(f"%track start --name {name}", store_history=True)
    for source in cells:
        shell.run_cell(source, store_history=True)
    shell.run_cell("%track end", store_history=True)
    return cell_files(name, 2)


def entry(path: Path) -> dict[str, Any]:
    return {"path": str(path), "size": path.stat().st_size, "hash": hashing.hash_file(path)}


def test_files_read_through_pandas_numpy_pickle_and_open_are_recorded(
    shell: Any, tmp_path: Path
) -> None:
    pd.DataFrame({"x": [1, 2], "y": [3.5, 4.5]}).to_csv(tmp_path / "table.csv", index=False)
    np.save(tmp_path / "weights.npy", np.arange(6.0))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"depth": 3}))
    (tmp_path / "notes.txt").write_text("seen once\n")
    shell.run_cell("%track start --name reads", store_history=True)
    shell.run_cell(
        "import pandas as pd, numpy as np, pickle\n"
        "frame = pd.read_csv('table.csv')\n"
        "weights = np.load('weights.npy')\n"
        "with open('model.pkl', 'rb') as f:\n"
        "    model = pickle.load(f)\n"
        "notes = open('notes.txt').read()\n"
        "notes = open('notes.txt').read()",
        store_history=True,
    )
    shell.run_cell("total = frame.x.sum()", store_history=True)
    shell.run_cell("%track end", store_history=True)
    recorded = cell_files("reads", 2)
    names = ("table.csv", "weights.npy", "model.pkl", "notes.txt")
    # In the order they were first opened, once each, with their content hash.
    assert recorded["read"] == [entry(tmp_path / name) for name in names]
    assert recorded["written"] is None
    assert cell_files("reads", 3) == {"read": None, "written": None}


def test_files_written_are_hashed_as_the_cell_left_them(shell: Any, tmp_path: Path) -> None:
    (tmp_path / "raw.csv").write_text("a\n1\n2\n")
    recorded = tracked(
        shell,
        "writes",
        "import pandas as pd\n"
        "frame = pd.read_csv('raw.csv')\n"
        "frame.assign(b=frame.a * 2).to_csv('clean.csv', index=False)\n"
        "with open('log.txt', 'w') as f:\n"
        "    f.write('cleaned')",
    )
    assert recorded["read"] == [entry(tmp_path / "raw.csv")]
    assert recorded["written"] == [entry(tmp_path / "clean.csv"), entry(tmp_path / "log.txt")]
    assert (tmp_path / "log.txt").read_text() == "cleaned"


def test_library_and_store_files_are_left_out(shell: Any, tmp_path: Path) -> None:
    import sklearn

    library_file = Path(sklearn.__file__)
    (tmp_path / "mine.txt").write_text("data")
    recorded = tracked(
        shell,
        "quiet",
        f"library = open({str(library_file)!r}).read()\n"
        "stored = [p.read_bytes() for p in __import__('pathlib').Path('.mlops').rglob('*')"
        " if p.is_file()]\n"
        "import json\n"
        "mine = open('mine.txt').read()\n"
        "%track artifact mine.txt",
    )
    assert shell.user_ns["stored"], "the store has files to leave out"
    assert recorded["read"] == [entry(tmp_path / "mine.txt")]
    assert recorded["written"] is None


def test_nothing_is_collected_outside_a_recorded_cell(shell: Any, tmp_path: Path) -> None:
    (tmp_path / "before.txt").write_text("x")
    shell.run_cell("text = open('before.txt').read()", store_history=True)
    assert files.stop() == []
    assert tracked(shell, "later", "text = open('before.txt').read()")["read"] == [
        entry(tmp_path / "before.txt")
    ]
    assert files.stop() == []


def test_a_project_in_a_hidden_folder_records_its_files_but_not_its_caches(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / ".work" / "project"
    (project / ".cache").mkdir(parents=True)
    (project / "data.txt").write_text("1 2 3")
    (project / ".cache" / "state.txt").write_text("cached")
    monkeypatch.chdir(project)
    recorded = tracked(
        shell,
        "hidden",
        "data = open('data.txt').read()\nstate = open('.cache/state.txt').read()",
    )
    assert recorded["read"] == [entry(project / "data.txt")]
