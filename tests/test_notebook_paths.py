"""Where a run's notebook file is: the path a run stores and the file it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mlops.notebooks import notebook_file, session_notebook, stored_notebook


def test_a_notebook_inside_the_project_is_stored_relative_and_found_again(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    notebook = project / "sub" / "train.ipynb"
    assert stored_notebook(project, notebook) == "sub/train.ipynb"
    assert notebook_file(project, "sub/train.ipynb") == notebook


def test_a_notebook_outside_the_project_is_stored_absolute(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    elsewhere = tmp_path / "elsewhere.ipynb"
    stored = stored_notebook(project, elsewhere)
    assert stored == elsewhere.resolve().as_posix()
    assert notebook_file(project, stored) == elsewhere.resolve()


def test_a_link_out_of_the_project_is_stored_where_it_leads(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    target = tmp_path / "real.ipynb"
    target.write_text("{}")
    (project / "link.ipynb").symlink_to(target)
    assert stored_notebook(project, project / "link.ipynb") == target.resolve().as_posix()


def test_the_session_names_the_notebook_or_its_name_in_this_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert session_notebook(None) is None
    assert session_notebook("console-1") is None
    assert session_notebook("work/a.ipynb") == "work/a.ipynb"
    (tmp_path / "a.ipynb").write_text("{}")
    assert session_notebook("work/a.ipynb") == "a.ipynb"
    assert session_notebook(str(tmp_path / "b.ipynb")) == str(tmp_path / "b.ipynb")
