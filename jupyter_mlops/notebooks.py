"""Where a run's notebook file is: the path a run stores, and the file that path names.

A run stores its notebook relative to the project folder (the store's parent) when the
notebook lies inside it, so that a project moved or checked out elsewhere still finds its
notebooks; an absolute path otherwise. Every reader turns the stored text back into a file
here. Nothing here imports anything of the package, and nothing here decides whether a
caller may read the file (the server checks that against its root).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["notebook_file", "session_notebook", "stored_notebook"]


def stored_notebook(project: Path, path: Path) -> str:
    """A notebook path as a run stores it: relative to ``project`` when inside it."""
    resolved = path.expanduser().resolve()
    root = project.resolve()
    if resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix()
    return resolved.as_posix()


def notebook_file(project: Path, ref: str) -> Path:
    """The file a stored notebook path names (not resolved; it may no longer exist)."""
    stored = Path(ref)
    return stored if stored.is_absolute() else project / stored


def session_notebook(session: object) -> str | None:
    """The notebook a kernel runs, from the ``__session__`` JupyterLab gives it (None if none)."""
    if not isinstance(session, str) or not session.endswith(".ipynb"):
        return None
    path = Path(session)
    # The session names the notebook from the server's root; a kernel started in the
    # notebook's own folder finds it by its name alone.
    if not path.is_absolute() and not path.exists() and Path(path.name).exists():
        path = Path(path.name)
    return str(path)
