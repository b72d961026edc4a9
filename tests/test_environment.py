"""capture_environment, environment_id and package_changes on real interpreters and repos."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from jupyter_mlops import environment
from jupyter_mlops.environment import (
    DIFF_LIMIT,
    DIFF_TRUNCATED_MARKER,
    ENV_VARS,
    capture_environment,
    environment_id,
    package_changes,
)

KEYS = {
    "python",
    "implementation",
    "executable",
    "platform",
    "machine",
    "packages",
    "git",
    "env_vars",
    "cpu_count",
}


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the user's git config out, and stop git from finding a repo above tmp_path."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


AUTHOR = ("-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false")


def git(repo: Path, *args: str) -> str:
    """Run git in repo as a test author; its stdout."""
    done = subprocess.run(
        ["git", "-C", str(repo), *AUTHOR, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree with one commit of model.py on branch main."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "model.py").write_text("depth = 3\nlr = 0.1\n")
    git(path, "add", "model.py")
    git(path, "commit", "-q", "-m", "first")
    return path


def git_state(cwd: Path) -> dict[str, object]:
    state = capture_environment(cwd)["git"]
    assert isinstance(state, dict)
    return state


def test_keys_and_types(tmp_path: Path) -> None:
    env = capture_environment(tmp_path)
    assert set(env) == KEYS
    assert env["python"] == platform.python_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", str(env["python"]))
    assert env["implementation"] == platform.python_implementation()
    assert env["executable"] == sys.executable
    assert env["platform"] == platform.platform()
    assert env["machine"] == platform.machine()
    assert env["cpu_count"] == os.cpu_count()
    assert env["git"] is None
    assert isinstance(env["env_vars"], dict)
    packages = env["packages"]
    assert isinstance(packages, dict)
    assert list(packages) == sorted(packages)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in packages)
    assert all(isinstance(version, str) and version for version in packages.values())
    assert packages["pytest"] == metadata.version("pytest")
    assert packages["xxhash"] == metadata.version("xxhash")
    assert json.loads(json.dumps(env)) == env


def test_packages_agree_with_importlib_metadata() -> None:
    packages = capture_environment()["packages"]
    assert isinstance(packages, dict)
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        canonical = re.sub(r"[-_.]+", "-", name).lower()
        assert packages[canonical] == metadata.version(name)


def test_broken_odd_and_shadowing_distributions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    odd = site / "Odd_Name.Pkg-1.2.dist-info"
    odd.mkdir(parents=True)
    (odd / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Odd_Name.Pkg\nVersion: 1.2\n\nVersion: 9.9 in the body\n"
    )
    (site / "broken_pkg-0.1.dist-info").mkdir()
    legacy = site / "legacy_pkg.egg-info"
    legacy.mkdir()
    (legacy / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: legacy_pkg\nVersion: 0.3\n")
    shadow = site / "pytest-0.0.1.dist-info"
    shadow.mkdir()
    (shadow / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest\nVersion: 0.0.1\n")
    monkeypatch.syspath_prepend(str(site))

    packages = capture_environment(tmp_path)["packages"]
    assert isinstance(packages, dict)
    assert packages["odd-name-pkg"] == "1.2"
    assert packages["legacy-pkg"] == "0.3"
    assert "broken-pkg" not in packages
    # The first distribution on sys.path wins, as it does for importlib.metadata.version.
    assert packages["pytest"] == "0.0.1" == metadata.version("pytest")


def test_git_clean_repo(repo: Path) -> None:
    state = git_state(repo)
    assert state == {
        "commit": git(repo, "rev-parse", "HEAD").strip(),
        "branch": "main",
        "dirty": False,
        "diff": "",
        "untracked": 0,
    }


def test_git_from_a_subfolder(repo: Path) -> None:
    sub = repo / "notebooks"
    sub.mkdir()
    assert git_state(sub)["commit"] == git(repo, "rev-parse", "HEAD").strip()


def test_git_dirty_repo_with_untracked_files(repo: Path) -> None:
    (repo / "model.py").write_text("depth = 5\nlr = 0.1\n")
    (repo / "scratch.txt").write_text("notes\n")
    # The tracker's own store must not count as the user's untracked work.
    (repo / ".mlops").mkdir()
    (repo / ".mlops" / "tracking.db").write_bytes(b"sqlite")
    state = git_state(repo)
    assert state["dirty"] is True
    assert state["untracked"] == 1
    diff = state["diff"]
    assert isinstance(diff, str)
    assert diff.startswith("diff --git a/model.py b/model.py")
    assert "-depth = 3\n+depth = 5\n" in diff


def test_untracked_files_alone_leave_the_tree_clean(repo: Path) -> None:
    (repo / "data").mkdir()
    (repo / "data" / "a.csv").write_text("x\n1\n")
    (repo / "data" / "b.csv").write_text("x\n2\n")
    state = git_state(repo)
    assert (state["dirty"], state["diff"], state["untracked"]) == (False, "", 2)


def test_staged_changes_and_renames_are_dirty(repo: Path) -> None:
    git(repo, "mv", "model.py", "train.py")
    state = git_state(repo)
    assert state["dirty"] is True
    assert state["untracked"] == 0
    assert "train.py" in str(state["diff"])


def test_repo_without_commits_and_detached_head(tmp_path: Path, repo: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q", "-b", "trunk")
    (fresh / "a.py").write_text("x = 1\n")
    # Without a commit there is no sha to record and nothing to diff against.
    assert capture_environment(fresh)["git"] is None

    git(repo, "checkout", "-q", "--detach")
    state = git_state(repo)
    assert state["branch"] is None
    assert state["commit"] == git(repo, "rev-parse", "HEAD").strip()


def test_huge_diff_is_capped(repo: Path) -> None:
    (repo / "model.py").write_text("".join(f"line {i} " + "x" * 60 + "\n" for i in range(50_000)))
    diff = git_state(repo)["diff"]
    assert isinstance(diff, str)
    assert diff.endswith("\n" + DIFF_TRUNCATED_MARKER + "\n")
    kept = diff[: -len(DIFF_TRUNCATED_MARKER) - 1]
    assert 0.9 * DIFF_LIMIT < len(kept.encode()) <= DIFF_LIMIT
    assert kept.startswith("diff --git") and kept.endswith("\n")


def test_no_git_outside_a_work_tree(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert capture_environment(plain)["git"] is None
    assert capture_environment(tmp_path / "does-not-exist")["git"] is None


def test_no_git_when_git_is_not_installed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert capture_environment(repo)["git"] is None


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in git is a shell script")
def test_no_git_when_git_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    slow_git = bin_dir / "git"
    slow_git.write_text("#!/bin/sh\nexec sleep 30\n")
    slow_git.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(environment, "GIT_TIMEOUT", 0.3)
    started = time.monotonic()
    assert capture_environment(tmp_path)["git"] is None
    assert time.monotonic() - started < 5


def test_only_known_env_vars_are_captured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert capture_environment()["env_vars"] == {
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    }


def test_environment_id_is_a_stable_content_hash() -> None:
    env: dict[str, object] = {"python": "3.11.7", "packages": {"numpy": "2.0.0", "pandas": "2.2.0"}}
    same: dict[str, object] = {
        "packages": {"pandas": "2.2.0", "numpy": "2.0.0"},
        "python": "3.11.7",
    }
    changed: dict[str, object] = {
        "python": "3.11.7",
        "packages": {"numpy": "2.0.1", "pandas": "2.2.0"},
    }
    assert environment_id(env) == environment_id(same)
    assert environment_id(env) != environment_id(changed)
    # Pinned: stored environments are deduplicated by this id, so it must not drift.
    assert environment_id(env) == "a8aaa1889222c17f26f2c331a2d91acb"


def test_environment_id_of_a_real_capture(tmp_path: Path) -> None:
    env = capture_environment(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{32}", environment_id(env))
    assert environment_id(env) == environment_id(capture_environment(tmp_path))


def test_package_changes() -> None:
    a: dict[str, object] = {"packages": {"numpy": "1.26.4", "pandas": "2.2.0", "scipy": "1.13.0"}}
    b: dict[str, object] = {"packages": {"numpy": "2.0.0", "polars": "1.0.0", "scipy": "1.13.0"}}
    changes = package_changes(a, b)
    assert changes == {
        "numpy": ("1.26.4", "2.0.0"),
        "pandas": ("2.2.0", None),
        "polars": (None, "1.0.0"),
    }
    assert list(changes) == ["numpy", "pandas", "polars"]
    assert package_changes(a, a) == {}
    assert package_changes({}, {"packages": {"x": "1"}}) == {"x": (None, "1")}


def test_import_is_cheap() -> None:
    # Loaded by file, apart from the package, so only this module's own imports count.
    module = Path(__file__).resolve().parents[1] / "jupyter_mlops" / "environment.py"
    code = (
        "import sys, importlib.util as util; before = set(sys.modules); "
        f"spec = util.spec_from_file_location('environment_under_test', {str(module)!r}); "
        "spec.loader.exec_module(util.module_from_spec(spec)); "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(done.stdout.split())
    assert "xxhash" in loaded
    assert not loaded & {"importlib.metadata", "subprocess", "platform", "pathlib", "email"}
