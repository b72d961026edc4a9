"""The launcher's environment contract: what a launcher writes, a kernel reads back."""

from __future__ import annotations

from pathlib import Path

from jupyter_mlops import kernel_env
from jupyter_mlops.kernel_env import launcher_env, read_kernel_env, tracked_env, untouched_env


def test_what_a_launcher_writes_the_kernel_reads(tmp_path: Path) -> None:
    written = tracked_env(
        tmp_path / ".mlops",
        run_id="abc",
        run_name="replay of train",
        kind="replay",
        kernel="python3",
        parent="def",
        notebook=tmp_path / "train.ipynb",
        prelude=2,
        autolog=False,
    )
    assert written["JPY_SESSION_NAME"] is None
    assert written[kernel_env.SWEEP] is None
    read = read_kernel_env({k: v for k, v in written.items() if v is not None})
    assert read.store_dir == str(tmp_path / ".mlops")
    assert (read.run_id, read.run_name, read.kind, read.parent) == (
        "abc",
        "replay of train",
        "replay",
        "def",
    )
    assert read.sweep is None
    assert read.notebook == str(tmp_path / "train.ipynb")
    assert (read.autostart, read.prelude, read.kernel, read.autolog) == (True, 2, "python3", False)


def test_an_untouched_environment_reads_as_no_launcher() -> None:
    read = read_kernel_env({})
    assert read == kernel_env.KernelEnv()
    assert not read.autostart and read.prelude == 0 and read.system_interval is None


def test_numbers_a_person_mistyped_read_as_unset() -> None:
    read = read_kernel_env({kernel_env.PRELUDE: "two", kernel_env.SYSTEM_INTERVAL: "soon"})
    assert read.prelude == 0 and read.system_interval is None
    assert read_kernel_env({kernel_env.SYSTEM_INTERVAL: "0.5"}).system_interval == 0.5


def test_a_launching_process_passes_on_the_store_but_no_runs_identity(tmp_path: Path) -> None:
    base = {name: "x" for name in kernel_env.RUN_IDENTITY} | {"PATH": "/bin"}
    env = launcher_env(tmp_path, base)
    assert env == {"PATH": "/bin", kernel_env.STORE_DIR: str(tmp_path)}


def test_an_untouched_environment_keeps_nothing_a_launcher_says(tmp_path: Path) -> None:
    written = tracked_env(tmp_path, run_id="abc", run_name="x", kind="sweep", kernel="python3")
    base = {k: v for k, v in written.items() if v is not None}
    base |= {kernel_env.SYSTEM_INTERVAL: "1", "PATH": "/bin"}
    assert untouched_env(base) == {"PATH": "/bin"}
    assert read_kernel_env(untouched_env(base)) == kernel_env.KernelEnv()
