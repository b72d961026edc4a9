"""Managing runs from every door: ids by prefix, tag/rename/note/delete, ordering and CSV,
``--store`` anywhere, and no silent surprises (refused logging, re-logged params)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import run as runs
from jupyter_mlops.errors import AmbiguousRunError
from jupyter_mlops.store import Store, open_store

from .conftest import PYTHON, child_env


def mlops_cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``jupyter mlops ARGS`` in a child process, as a shell runs it."""
    return subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(**env),
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2 with one line on stderr that names the problem."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def run_with_id(store: Store, run_id: str, name: str, **fields: Any) -> str:
    """A finished run with a chosen id (to make prefixes collide), parent or sweep."""
    run = runs.start_run(name=name, store=store, run_id=run_id, parent=fields.get("parent"))
    if "sweep" in fields:
        store.update_run(run.id, sweep_id=fields["sweep"])
    for key, value in fields.get("metrics", {}).items():
        run.log_metric(key, value)
    run.end()
    return run.id


# -- ids by prefix in filters ------------------------------------------------------------------


def test_where_takes_a_unique_prefix_of_id_parent_and_sweep(store: Store) -> None:
    sweep = uuid.uuid4().hex
    first = run_with_id(store, "abcdef01" + "0" * 24, "first", sweep=sweep)
    run_with_id(store, "abcdef02" + "0" * 24, "second", sweep=sweep, parent=first)
    run_with_id(store, "123456" + "0" * 26, "other")

    def names(where: str) -> list[str]:
        return sorted(r["name"] for r in runs.list_runs(where=where, store=store))

    assert names("id = abcdef01") == ["first"]
    assert names("id = ABCDEF01") == ["first"]  # ids print lowercase; a prefix is not text
    assert names(f"id = {first}") == ["first"]
    assert names("id != 123456") == ["first", "second"]
    assert names(f"parent = {first[:8]}") == ["second"]
    assert names(f"sweep = {sweep[:12]}") == ["first", "second"]  # as the sweep table prints
    assert names(f"sweep = {sweep[:12]} and not id = abcdef02") == ["first"]
    assert names("id = 12345") == []  # shorter than six: compared whole
    assert names("id = 999999") == []
    assert runs.count_runs(where=f"sweep = {sweep[:6]}", store=store) == 2
    with pytest.raises(AmbiguousRunError, match=r"^id prefix 'abcdef' is ambiguous: .*abcdef01"):
        runs.list_runs(where="id = abcdef", store=store)


def test_an_ambiguous_prefix_is_one_line_at_the_command_line(store: Store) -> None:
    run_with_id(store, "fedcba01" + "0" * 24, "a")
    run_with_id(store, "fedcba02" + "0" * 24, "b")
    done = mlops_cli("runs", "--where", "id = fedcba")
    one_line_error(done, "id prefix 'fedcba' is ambiguous", "fedcba010000", "more characters")
    listed = mlops_cli("runs", "--where", "id = fedcba02", "--format", "json")
    assert [r["name"] for r in json.loads(listed.stdout)["runs"]] == ["b"]


# -- changing runs from the command line -------------------------------------------------------


def test_tag_rename_note_and_delete_from_the_shell(store: Store) -> None:
    ids = [
        run_with_id(store, uuid.uuid4().hex, f"point-{i}", metrics={"acc": 0.5 + i / 10})
        for i in range(3)
    ]
    tagged = mlops_cli("tag", ids[0][:8], "stage=prod", "owner=ana")
    assert tagged.returncode == 0, tagged.stderr
    assert mlops.get_run(ids[0]).tags == {"stage": "prod", "owner": "ana"}
    assert mlops_cli("tag", ids[0], "--remove", "owner").returncode == 0
    assert mlops.get_run(ids[0]).tags == {"stage": "prod"}
    many = mlops_cli("tag", "--where", "metrics.acc >= 0.6", "good=yes", "--format", "json")
    assert json.loads(many.stdout)["count"] == 2
    assert {r["name"] for r in runs.list_runs(where="tags.good = yes")} == {"point-1", "point-2"}

    assert mlops_cli("rename", "point-1", "best point").returncode == 0
    assert mlops.get_run(ids[1]).name == "best point"
    assert mlops_cli("note", ids[1], "kept for the paper\nsecond line").returncode == 0
    assert mlops.get_run(ids[1]).note == "kept for the paper\nsecond line"
    shown = mlops_cli("show", ids[1]).stdout
    assert "note      kept for the paper" in shown and "second line" in shown
    assert mlops_cli("note", ids[1], "").returncode == 0
    assert mlops.get_run(ids[1]).note is None

    refused = mlops_cli("delete", ids[2])
    one_line_error(refused, "needs --yes")
    assert runs.count_runs() == 3
    deleted = mlops_cli("delete", "--where", "tags.good = yes", "--yes", "--format", "json")
    assert sorted(json.loads(deleted.stdout)["runs"]) == sorted(ids[1:])
    assert [r["id"] for r in runs.list_runs()] == [ids[0]]
    one_line_error(mlops_cli("tag", "nothing-here", "a=b"), "nothing-here")
    one_line_error(mlops_cli("tag", ids[0], "novalue"), "KEY=VALUE", "novalue")
    # With --where every word is a tag: a run id among them is named as no tag.
    one_line_error(mlops_cli("tag", ids[0], "--where", "status = finished", "a=b"), ids[0])


def test_runs_order_and_csv(store: Store) -> None:
    for name, acc, lr in [("a", 0.7, 0.1), ("b", 0.9, 0.01), ("c", None, 0.5)]:
        with runs.start_run(name=name, store=store) as run:
            run.log_params({"lr": lr, "layers": [2, 3]})
            if acc is not None:
                run.log_metric("acc", acc)
    best = mlops_cli("runs", "--order-by", "metrics.acc", "--format", "json")
    assert [r["name"] for r in json.loads(best.stdout)["runs"]] == ["b", "a", "c"]
    ascending = mlops_cli("runs", "--order-by", "params.lr", "--asc", "--format", "json")
    assert [r["name"] for r in json.loads(ascending.stdout)["runs"]] == ["b", "a", "c"]
    table = mlops_cli("runs", "--order-by", "name", "--asc").stdout.splitlines()
    assert [line.split()[1] for line in table[2:]] == ["a", "b", "c"]
    rows = list(csv.DictReader(io.StringIO(mlops_cli("runs", "--format", "csv").stdout)))
    assert [row["name"] for row in rows] == ["c", "b", "a"]
    assert rows[1]["metrics.acc"] == "0.9" and rows[0]["metrics.acc"] == ""
    assert rows[0]["params.layers"] == "[2, 3]" and rows[0]["params.lr"] == "0.5"
    one_line_error(mlops_cli("runs", "--order-by", "speed"), "speed", "params.KEY")


def test_store_anywhere_and_the_project_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    store = open_store(project / ".mlops")
    with runs.start_run(name="elsewhere", store=store):
        pass
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for line in (
        ["--store", str(project / ".mlops"), "runs", "--format", "json"],
        ["runs", "--format", "json", "--store", str(project)],
        ["runs", f"--store={project}", "--format", "json"],
    ):
        done = mlops_cli(*line, cwd=elsewhere, JUPYTER_MLOPS_DIR=str(elsewhere / ".mlops"))
        assert done.returncode == 0, (line, done.stderr)
        assert [r["name"] for r in json.loads(done.stdout)["runs"]] == ["elsewhere"]


def test_usage_errors_are_one_line() -> None:
    one_line_error(mlops_cli("runs", "--limit", "zero"), "--limit", "'jupyter mlops runs --help'")
    one_line_error(mlops_cli("runs", "--bogus"), "No such option '--bogus' (see")
    one_line_error(mlops_cli("frobnicate"), "No such command 'frobnicate' (see")
    one_line_error(mlops_cli("show"), "Missing argument 'RUN'")
    helped = mlops_cli("runs", "--help")
    assert helped.returncode == 0 and "--order-by" in helped.stdout


# -- the magics --------------------------------------------------------------------------------


def test_track_tag_during_a_run(shell: Any) -> None:
    cell = shell.run_cell("%track tag stage=dev")
    assert type(cell.error_in_exec).__name__ == "UsageError"
    assert "no run is active" in str(cell.error_in_exec)
    shell.run_cell("%track start --name tagged --tag team=cv")
    shell.run_cell("%track tag stage=dev owner=ana")
    shell.run_cell("%track tag --remove owner")
    shell.run_cell("%track end")
    assert mlops.get_run("tagged").tags == {"team": "cv", "stage": "dev"}


def test_a_refused_log_call_starts_no_run(shell: Any, store_dir: Path) -> None:
    for source in (
        "%track metric acc='high'",
        "%track metric acc=0.9 loss='low'",
        "%track params lr=object()",
        "%track artifact no_such_file.bin",
    ):
        cell = shell.run_cell(source)
        assert cell.error_in_exec is not None, source
        assert runs.active_run() is None, source
    for call in (
        lambda: mlops.log_metric("acc", "high"),
        lambda: mlops.log_metrics({"acc": 0.9, "loss": "low"}),
        lambda: mlops.log_params({"lr": object()}),
        lambda: mlops.log_artifact("no_such_file.bin"),
    ):
        with pytest.raises(mlops.MlopsError):
            call()
        assert runs.active_run() is None
    assert not (store_dir / "tracking.db").exists()  # nothing was started, not even a store
    # Within a run, a refused call logs none of its values.
    with mlops.start_run(name="partial") as run, pytest.raises(mlops.MlopsError):
        run.log_metrics({"acc": 0.9, "loss": "low"})
    assert mlops.get_run("partial").metrics == {}


def test_a_param_logged_again_warns_and_keeps_both(shell: Any) -> None:
    shell.run_cell("%track start --name relog")
    shell.run_cell("%track params lr=0.1 depth=3")
    with pytest.warns(UserWarning, match=r"param 'lr' was 0.1 and is now 0.01"):
        shell.run_cell("%track params lr=0.01 depth=3")
    shell.run_cell("%track end")
    record = mlops.get_run("relog")
    assert record.params == {"lr": 0.01, "depth": 3}
    history = record.to_dict(full=True)["param_history"]
    assert [h["value"] for h in history["lr"]] == [0.1]
    assert "depth" not in history
    shown = mlops_cli("show", "relog")
    line = next(x for x in shown.stdout.splitlines() if x.startswith("lr "))
    assert line.split() == ["lr", "0.01", "0.1"]
    assert json.loads(mlops_cli("show", "relog", "--format", "json").stdout)["param_history"] == {
        "lr": [{"value": 0.1, "replaced": history["lr"][0]["replaced"]}]
    }


# -- sweeps over names the notebook does not have ----------------------------------------------

SCALE = ["import jupyter_mlops as mlops\nmlops.log_metric('score', alpha * 2)"]


def test_a_misspelled_sweep_axis_stops_before_anything_runs(tmp_path: Path) -> None:
    from .test_replay import write_notebook

    notebook = write_notebook(
        tmp_path / "scale.ipynb", SCALE, parameters="alpha = 0.5\nbeta: int = 1"
    )
    done = mlops_cli("sweep", str(notebook), "-p", "alhpa", "0.1", "0.2", "--no-progress")
    one_line_error(done, "alhpa: is not a parameter of scale.ipynb (did you mean 'alpha'?")
    assert "its parameters: alpha, beta" in done.stderr
    assert not (tmp_path / ".mlops" / "sweeps").exists()  # no point was started
    bare = write_notebook(tmp_path / "bare.ipynb", SCALE)
    done = mlops_cli("sweep", str(bare), "-p", "alpha", "0.1", "--no-progress")
    one_line_error(done, "bare.ipynb has no parameters cell", "--allow-new")


@pytest.mark.slow
def test_allow_new_injects_the_axis_anyway(tmp_path: Path) -> None:
    from jupyter_mlops.sweeps import sweep

    from .test_replay import write_notebook

    bare = write_notebook(tmp_path / "bare.ipynb", SCALE)
    result = sweep(bare, {"alpha": [3]}, allow_new=True, progress=False)
    assert result["failed"] == 0
    assert result["points"][0]["metrics"] == {"score": 6}


# -- replays set apart -------------------------------------------------------------------------


def replayed(store: Store, original: str, verdict: str, at: float) -> str:
    """A replay run of ``original`` and its replay row, as a replay leaves them."""
    run = runs.start_run(name="replay of original", kind="replay", parent=original, store=store)
    run.end()
    store.insert_replay(
        {
            "id": uuid.uuid4().hex,
            "original_id": original,
            "replay_run_id": run.id,
            "mode": "recorded",
            "state": "done",
            "verdict": verdict,
            "start_time": at,
        }
    )
    return run.id


def test_replays_are_counted_under_their_run(store: Store) -> None:
    with runs.start_run(name="original", store=store) as run:
        run.log_metric("acc", 0.9)
    with runs.start_run(name="never replayed", store=store):
        pass
    replayed(store, run.id, "diverged", 1.0)
    latest = replayed(store, run.id, "reproduced", 2.0)
    listed = runs.list_runs(replays=False, store=store)
    assert [r["name"] for r in listed] == ["never replayed", "original"]
    assert listed[1]["replay_summary"] == {
        "count": 2,
        "verdict": "reproduced",
        "state": "done",
        "run_id": latest,
    }
    assert listed[0]["replay_summary"]["count"] == 0
    assert runs.count_runs(replays=False, store=store) == 2
    assert len(runs.list_runs(store=store)) == 4  # the Python default lists every run
    assert len(runs.list_runs(where="kind = replay", replays=False, store=store)) == 2

    table = mlops_cli("runs").stdout.splitlines()
    assert "replays" in table[0].split()
    assert [line.split()[1] for line in table[2:]] == ["never", "original"]
    assert "2, reproduced" in table[3]
    shown = json.loads(mlops_cli("runs", "--replays", "--format", "json").stdout)
    assert shown["count"] == 4
    kinds = json.loads(mlops_cli("runs", "--kind", "replay", "--format", "json").stdout)
    assert {r["kind"] for r in kinds["runs"]} == {"replay"} and kinds["count"] == 2
    rows = list(csv.DictReader(io.StringIO(mlops_cli("runs", "--format", "csv").stdout)))
    assert (rows[1]["replays"], rows[1]["replay_verdict"]) == ("2", "reproduced")


def test_show_text_has_series_values_and_the_full_length(store: Store) -> None:
    with runs.start_run(name="curves", store=store) as run:
        for step in range(3_000):
            run.log_metric("loss", 1 / (step + 1), step=step)
        run.log_metric("acc", 0.5)
        run.log_metric("acc", 0.75)
    lines = mlops_cli("show", "curves").stdout.splitlines()
    loss = next(line for line in lines if line.startswith("loss "))
    # The whole series' length, not the thinned view's, and its first and last points.
    assert loss.split()[:3] == ["loss", "0.000333333", "3000"]
    values = loss.split(None, 3)[3]
    assert values.startswith("0: 1, ") and " … " in values
    assert values.endswith("2999: 0.000333333 (thinned)")
    acc = next(line for line in lines if line.startswith("acc "))
    assert acc.split() == ["acc", "0.75", "2", "0:", "0.5,", "1:", "0.75"]


def test_track_runs_and_the_runs_view_count_replays_under_their_run(
    shell: Any, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from jupyter_mlops import views

    with runs.start_run(name="trained", store=store) as run:
        pass
    replayed(store, run.id, "reproduced", 1.0)
    shell.run_cell("%track runs")
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in listed[2:]] == ["trained"]
    assert "1, reproduced" in listed[2]
    shell.run_cell("%track runs --replays")
    assert len(capsys.readouterr().out.splitlines()[2:]) == 2
    view = views.runs_view(store=store)
    assert view.total == 1 and "replays" in view.columns
    assert view.cell_text(view.rows[0], "replays") == "1, reproduced"
    assert views.runs_view(replays=True, store=store).total == 2
