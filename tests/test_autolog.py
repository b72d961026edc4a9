"""Autologging: fits, scores, models and system metrics recorded with no tracker calls.

Unit tests drive a real IPython shell; the slow ones run the fixture notebooks under
``tests/notebooks/autolog/`` (which never mention the tracker) through ``check`` and ``sweep``
in real kernels.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import run as runs
from jupyter_mlops.autologging.system import Sampler
from jupyter_mlops.clock_metrics import is_clock_metric
from jupyter_mlops.compare import diff_runs
from jupyter_mlops.hashing import content_hash

from .conftest import PYTHON, child_env, run_child

NOTEBOOKS = Path(__file__).parent / "notebooks" / "autolog"

DATA = (
    "import numpy as np\n"
    "from sklearn.datasets import make_classification\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.metrics import accuracy_score, log_loss\n"
    "from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate\n"
    "from sklearn.model_selection import train_test_split\n"
    "X, y = make_classification(200, 5, random_state=0)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
)


@pytest.fixture
def autolog() -> Iterator[None]:
    """Autologging on for one test (without the sampler thread), off again after it."""
    mlops.autolog(system=False)
    yield
    mlops.autolog(False)


def run_cells(shell: Any, *cells: str) -> None:
    for cell in cells:
        result = shell.run_cell(cell)
        assert result.success, result.error_in_exec or result.error_before_exec


def tracked(shell: Any, *cells: str) -> mlops.RunRecord:
    """Run cells in a run of their own (started after the data cell) and return its record."""
    run_cells(shell, DATA, "%track start t")
    run_cells(shell, *cells)
    run_cells(shell, "%track end")
    return mlops.get_run("t")


def series(record: mlops.RunRecord, key: str) -> list[tuple[int, float]]:
    return [(p["step"], p["value"]) for p in record.metric_series(key)]


# -- names ----------------------------------------------------------------------------------------


def test_a_score_is_named_after_its_variable_else_its_function(shell: Any, autolog: None) -> None:
    record = tracked(
        shell,
        "model = LogisticRegression().fit(X_train, y_train)\n"
        "pred = model.predict(X_test)\n"
        "acc = accuracy_score(y_test, pred)",
        "accuracy_score(y_test, pred)",
        "print(accuracy_score(y_train, model.predict(X_train)))",
        "train_acc = accuracy_score(y_train, model.predict(X_train))\n"
        "other = accuracy_score(y_test, pred)",
        "for c in (0.1, 1.0):\n"
        "    m = LogisticRegression(C=c).fit(X_train, y_train)\n"
        "    loss = log_loss(y_test, m.predict_proba(X_test))",
    )
    acc = shell.user_ns["acc"]
    assert series(record, "acc") == [(0, acc)]
    train = shell.user_ns["train_acc"]
    assert [step for step, _ in series(record, "accuracy_score")] == [0, 1]
    assert series(record, "accuracy_score")[1][1] == pytest.approx(train)
    assert series(record, "train_acc") == [(0, train)]
    assert series(record, "other") == [(0, acc)]
    assert [step for step, _ in series(record, "loss")] == [0, 1]
    assert series(record, "loss")[1][1] == pytest.approx(shell.user_ns["loss"])


def test_estimator_scores_and_cross_validation_become_metrics(shell: Any, autolog: None) -> None:
    record = tracked(
        shell,
        "model = LogisticRegression().fit(X_train, y_train)\n"
        "test_score = model.score(X_test, y_test)",
        "scores = cross_val_score(LogisticRegression(), X, y, cv=4)",
        "cross_validate(LogisticRegression(), X, y, cv=3, return_train_score=True)",
    )
    metrics = record.metrics
    assert metrics["test_score"] == shell.user_ns["test_score"]
    scores = shell.user_ns["scores"]
    assert metrics["scores.mean"] == pytest.approx(scores.mean())
    assert metrics["scores.std"] == pytest.approx(scores.std())
    assert {"cross_validate.test_score.mean", "cross_validate.train_score.std"} <= set(metrics)
    # The fits inside cross-validation are the library's own: only the notebook's fit counts.
    assert [k for k in metrics if k.endswith(".fit_time")] == ["model.fit_time"]
    assert "accuracy_score" not in metrics  # score() calls it inside: not the notebook's call


# -- fits -----------------------------------------------------------------------------------------


def test_a_pipeline_fit_records_nested_params_data_and_time(shell: Any, autolog: None) -> None:
    run_cells(shell, DATA, "%track start t", "%track data X_train")
    run_cells(
        shell,
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.pipeline import Pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "pipe = Pipeline([('scale', StandardScaler()),"
        " ('clf', RandomForestClassifier(n_estimators=7, random_state=0))])\n"
        "pipe.fit(X_train, y_train)",
        "%track end",
    )
    record = mlops.get_run("t")
    params = record.params
    assert params["pipe.estimator"] == "Pipeline"
    assert params["pipe.clf.n_estimators"] == 7
    assert params["pipe.steps"] == [["scale", "StandardScaler"], ["clf", "RandomForestClassifier"]]
    assert params["pipe.X"] == {
        "hash": content_hash(shell.user_ns["X_train"]),
        "shape": [150, 5],
        "variable": "X_train",
        "dataset": "X_train",
    }
    assert params["pipe.y"]["variable"] == "y_train"
    assert "dataset" not in params["pipe.y"]
    assert len(series(record, "pipe.fit_time")) == 1
    assert 0 < record.metrics["pipe.fit_time"] < 60


def test_the_users_calls_behave_as_without_autologging(shell: Any, autolog: None) -> None:
    run_cells(
        shell,
        DATA,
        "%track start t",
        "model = LogisticRegression()\n"
        "returned = model.fit(X_train, y_train)\n"
        "value = accuracy_score(y_test, model.predict(X_test))",
    )
    ns = shell.user_ns
    assert ns["returned"] is ns["model"]
    assert type(ns["value"]) is float
    assert ns["accuracy_score"].__name__ == "accuracy_score"
    bare = ns["accuracy_score"].__wrapped__  # the library's own function
    assert bare(ns["y_test"], ns["model"].predict(ns["X_test"])) == ns["value"]
    mlops.autolog(False)
    run_cells(shell, "bare = accuracy_score(y_test, model.predict(X_test))")
    assert ns["bare"] == ns["value"]


def test_a_fit_that_raises_raises_the_same_and_records_nothing(shell: Any, autolog: None) -> None:
    from sklearn.linear_model import LogisticRegression

    errors = []
    for on in (False, True):
        mlops.autolog(on, system=False)
        try:
            LogisticRegression().fit([[0.0], [1.0]], [1, 1])  # one class only
        except ValueError as exc:
            errors.append(str(exc))
    assert len(errors) == 2 and errors[0] == errors[1]
    run_cells(shell, DATA, "%track start t")
    result = shell.run_cell(
        "broken = LogisticRegression()\nbroken.fit(X_train, np.ones_like(y_train))"
    )
    assert isinstance(result.error_in_exec, ValueError)
    assert str(result.error_in_exec) == errors[0]
    run_cells(shell, "%track end")
    record = mlops.get_run("t")
    assert not any(key.startswith("broken.") for key in record.params)


class _Settings:
    """A settings object that is no JSON value (as some estimators take)."""

    def __repr__(self) -> str:
        return f"<_Settings at {hex(id(self))}>"


def _odd_estimator() -> type:
    """An estimator class of a module of its own (so it pickles), with odd params."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    global Odd

    class Odd(ClassifierMixin, BaseEstimator):
        def __init__(self, settings: Any = None, transform: Any = None, weights: Any = None):
            self.settings = settings
            self.transform = transform
            self.weights = weights

        def fit(self, X: Any, y: Any) -> Odd:
            self.classes_ = sorted(set(y))
            return self

    Odd.__qualname__ = "Odd"
    return Odd


def test_params_that_are_no_json_are_kept_as_text(shell: Any, autolog: None) -> None:
    shell.user_ns.update(Settings=_Settings, Odd=_odd_estimator())
    record = tracked(
        shell,
        "odd = Odd(Settings(), np.log, np.array([1.5, float('nan')]))\n"
        "fitted = odd.fit(X_train, y_train)",
    )
    params = record.params
    assert params["odd.estimator"] == "Odd"
    assert params["odd.settings"] == "<_Settings>"  # no address: it would differ in a replay
    assert params["odd.transform"] == "log"
    assert params["odd.weights"] == [1.5, "nan"]
    assert shell.user_ns["fitted"] is shell.user_ns["odd"]
    # A class of the notebook's own is no type skops should rebuild: it is pickled.
    artifact = record.artifact("odd.model")
    assert artifact.kind == "model/pickle"
    assert type(artifact.load()).__name__ == "Odd"


def test_metrics_and_params_logged_by_hand_win(shell: Any, autolog: None) -> None:
    record = tracked(
        shell,
        "import jupyter_mlops as mlops\n"
        "mlops.log_param('model.C', 'by hand')\n"
        "model = LogisticRegression(C=2.0).fit(X_train, y_train)\n"
        "acc = accuracy_score(y_test, model.predict(X_test))\n"
        "mlops.log_metric('acc', 0.5)",
        "acc = accuracy_score(y_test, model.predict(X_test))",
        "f1 = accuracy_score(y_test, model.predict(X_test))\nmodel.fit(X_train, y_train)",
        "mlops.log_metric('f1', 0.25); mlops.log_param('model.tol', 'by hand too')",
        "f1 = accuracy_score(y_test, model.predict(X_test))\nmodel.fit(X_train, y_train)",
    )
    assert series(record, "acc") == [(0, 0.5)]
    assert record.params["model.C"] == "by hand"
    assert record.params["model.max_iter"] == 100
    # Logged by hand after autologging did: the hand's value stays the latest.
    assert series(record, "f1")[1:] == [(1, 0.25)]
    assert record.params["model.tol"] == "by hand too"


def test_a_search_records_best_params_score_table_and_model(shell: Any, autolog: None) -> None:
    record = tracked(
        shell,
        "grid = GridSearchCV(LogisticRegression(), {'C': [0.01, 1.0]}, cv=3)\n"
        "grid.fit(X_train, y_train)",
    )
    grid = shell.user_ns["grid"]
    assert record.params["grid.best.C"] == grid.best_params_["C"]
    assert record.params["grid.param_grid"] == {"C": [0.01, 1.0]}
    assert record.metrics["grid.best_score"] == pytest.approx(grid.best_score_)
    table = record.artifact("grid.cv_results.csv").load()
    assert list(table["param_C"]) == [0.01, 1.0]
    model = record.artifact("grid.model")
    assert model.kind == "model/skops"
    loaded = model.load()
    X_test = shell.user_ns["X_test"]
    assert (loaded.predict(X_test) == grid.predict(X_test)).all()
    assert record.params["grid.model_hash"] == content_hash(grid.best_estimator_)


def test_switched_off_nothing_is_autologged(shell: Any, autolog: None) -> None:
    run_cells(shell, "%track autolog off")
    record = tracked(
        shell,
        "model = LogisticRegression().fit(X_train, y_train)\n"
        "acc = accuracy_score(y_test, model.predict(X_test))",
    )
    assert record.metrics == {}
    assert record.params == {}
    assert record.artifacts() == []
    assert "autolog" not in record.tags


def test_autolog_magic_says_what_is_wrong(shell: Any) -> None:
    from IPython.core.error import UsageError

    for line, message in (
        ("%track autolog maybe", "say on or off"),
        ("%track autolog on --system-interval soon", "wants seconds"),
        ("%track autolog on --system-interval 0", "above 0"),
    ):
        result = shell.run_cell(line)
        assert isinstance(result.error_in_exec, UsageError)
        assert message in str(result.error_in_exec)
    assert not mlops.autologging.is_on()


# -- cells and system metrics ---------------------------------------------------------------------


def test_cells_record_cpu_time_and_peak_memory(shell: Any) -> None:
    run_cells(
        shell,
        "%track start t",
        "total = sum(i * i for i in range(2_000_000))",
        "import time; time.sleep(0.2)",
        "%track end",
    )
    cells = {cell["source"]: cell for cell in mlops.get_run("t").cells()}
    busy = cells["total = sum(i * i for i in range(2_000_000))"]
    idle = cells["import time; time.sleep(0.2)"]
    assert busy["cpu_time"] > 0.02
    assert idle["cpu_time"] < idle["duration"] - 0.1  # asleep: wall time without CPU time
    assert busy["peak_rss"] > 10_000_000  # bytes: a Python process with numpy loaded


def test_the_sampler_records_cpu_and_memory_series_cheaply() -> None:
    run = mlops.start_run("sampled")
    sampler = Sampler(0.05)
    deadline = time.monotonic() + 10  # a loaded machine may starve the thread for a while
    while sampler.samples < 5 and time.monotonic() < deadline:
        sum(i for i in range(10_000))  # keep this process busy
    sampler.stop()
    run.end()
    record = mlops.get_run("sampled")
    cpu = series(record, "system/cpu_percent")
    rss = series(record, "system/rss_mb")
    assert len(cpu) >= 5 and len(rss) == len(cpu)
    assert [step for step, _ in cpu] == list(range(len(cpu)))
    assert max(value for _, value in cpu) > 5  # the loop above kept the process busy
    assert all(10 < value < 100_000 for _, value in rss)
    # A sample costs the thread well under a millisecond (measured: about 100 us).
    assert sampler.cpu_seconds / sampler.samples < 0.002


def test_clock_metrics_are_no_difference_between_runs() -> None:
    assert is_clock_metric("system/rss_mb") and is_clock_metric("pipe.fit_time")
    assert not is_clock_metric("acc")
    made = []
    for fit_time in (0.1, 0.3):
        with mlops.start_run("r") as run:
            run.log_metrics({"pipe.fit_time": fit_time, "system/cpu_percent": fit_time, "acc": 1.0})
        made.append(run.record().to_dict(full=True))
    diff = diff_runs(made[0], made[1])
    assert diff["metrics"] == {}


def test_nothing_is_imported_before_the_notebook_imports_it(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "import jupyter_mlops as mlops\n"
        "mlops.autolog(system=False)\n"
        "assert 'sklearn' not in sys.modules and 'xgboost' not in sys.modules\n"
        "from sklearn.metrics import accuracy_score\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "assert getattr(accuracy_score, '__jupyter_mlops_autolog__', False)\n"
        "assert getattr(LogisticRegression.fit, '__jupyter_mlops_autolog__', False)\n"
        "with mlops.start_run('script') as run:\n"
        "    model = LogisticRegression().fit([[0.0], [1.0], [2.0]], [0, 1, 1])\n"
        "    accuracy_score([0, 1], [0, 1])\n"
        "print(sorted(run.record().metrics))\n"
    )
    out = run_child(script, timeout=120)
    # In a script the model is still found by its variable; a score not assigned in a cell
    # is named after its function.
    assert json.loads(out.replace("'", '"')) == ["accuracy_score", "model.fit_time"]


# -- real kernels ---------------------------------------------------------------------------------


def mlops_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=cwd,
        timeout=600,
    )


@pytest.mark.slow
def test_check_gates_on_what_a_plain_notebook_autologged(tmp_path: Path) -> None:
    notebook = Path(shutil.copy(NOTEBOOKS / "train.ipynb", tmp_path / "train.ipynb"))
    first = mlops_cli(tmp_path, "check", str(notebook), "--metric", "acc>=0.9", "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "PASS  metric acc >= 0.9" in first.stdout
    record = mlops.get_run("train")
    assert record.tags["autolog"] == "on"
    params, metrics = record.params, record.metrics
    assert params["pipe.forest.n_estimators"] == 30
    assert params["pipe.X"]["variable"] == "X_train"
    assert params["pipe.X"]["shape"] == [426, 30]
    assert params["grid.best.logreg.C"] in (0.1, 1.0, 10.0)
    assert {"acc", "f1_score", "test_acc", "scores.mean", "scores.std", "grid.best_score"} <= set(
        metrics
    )
    assert metrics["pipe.fit_time"] > 0
    assert "system/rss_mb" in metrics  # the run's last sample, taken as it ended
    # The model comes back and scores as the notebook's did.
    import pandas as pd
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(tmp_path / "cancer.csv")
    X, y = frame.drop(columns="target"), frame["target"]
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    model = record.artifact("pipe.model").load()
    assert accuracy_score(y_test, model.predict(X_test)) == metrics["acc"]
    grid = record.artifact("grid.model").load()
    assert grid.score(X_test, y_test) == metrics["test_acc"]
    assert len(record.artifact("grid.cv_results.csv").load()) == 3
    # Again: the earlier run is replayed, autologging too, and reproduces (fit times and
    # system load differ, and are no difference).
    second = mlops_cli(tmp_path, "check", str(notebook), "--metric", "acc>=0.99", "--no-progress")
    assert second.returncode == 1
    assert "PASS  reproduces: train" in second.stdout, second.stdout
    assert "FAIL  metric acc >= 0.99" in second.stdout


@pytest.mark.slow
def test_a_sweep_autologs_xgboost_and_lightgbm(tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    pytest.importorskip("lightgbm")
    notebook = Path(shutil.copy(NOTEBOOKS / "boosting.ipynb", tmp_path / "boosting.ipynb"))
    result = mlops_cli(
        tmp_path, "sweep", str(notebook), "-p", "n_estimators", "5", "15", "--no-progress"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    _, X_test, _, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    frame = mlops.runs()
    assert len(frame) == 2
    for run_id in frame["run_id"]:
        record = mlops.get_run(run_id)
        n = record.params["n_estimators"]
        assert record.params["xgb.n_estimators"] == n
        assert record.params["xgb.estimator"] == "XGBClassifier"
        assert record.params["lgbm.n_estimators"] == n
        assert record.params["lgbm.num_leaves"] == 15
        xgb = record.artifact("xgb.model")
        assert xgb.kind == "model/xgboost"
        assert accuracy_score(y_test, xgb.load().predict(X_test)) == record.metrics["xgb_acc"]
        lgbm = record.artifact("lgbm.model")
        assert lgbm.kind == "model/lightgbm"
        booster = lgbm.load()
        assert roc_auc_score(y_test, booster.predict(X_test)) == pytest.approx(
            record.metrics["lgbm_auc"], abs=1e-12
        )
    off = mlops_cli(
        tmp_path, "sweep", str(notebook), "-p", "n_estimators", "5", "--no-autolog", "--no-progress"
    )
    assert off.returncode == 0, off.stderr
    newest = mlops.get_run(mlops.runs()["run_id"][0])
    assert newest.metrics == {} and "xgb.estimator" not in newest.params


def test_an_artifact_that_is_not_there_is_named(shell: Any) -> None:
    from jupyter_mlops.errors import InvalidValueError

    with mlops.start_run("a") as run:
        run.log_artifact({"k": 1}, name="thing")
    record = mlops.get_run("a")
    assert record.artifact("thing").load() == {"k": 1}
    with pytest.raises(InvalidValueError, match="no such artifact"):
        record.artifact("model")
    assert runs.active_run() is None


@pytest.mark.slow
def test_the_benchmark_runs() -> None:
    bench = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_autolog.py"
    done = subprocess.run(
        [PYTHON, str(bench), "--quick", "--json"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["ours"]["fit_times_recorded"] == 2 * 20 + 5  # every fit of the on blocks
    assert result["sampler"]["samples"] >= 5


@pytest.mark.slow
def test_a_replay_autologs_when_its_original_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_mlops.replays import replay

    from .test_replay import run_original, write_notebook

    body = [
        DATA,
        "model = LogisticRegression(C=0.5).fit(X_train, y_train)\n"
        "acc = accuracy_score(y_test, model.predict(X_test))",
        "%track end",
    ]
    plain = write_notebook(
        tmp_path / "plain.ipynb", ["%load_ext jupyter_mlops\n%track start --name plain", *body]
    )
    logged = write_notebook(
        tmp_path / "logged.ipynb",
        ["%load_ext jupyter_mlops\n%track autolog\n%track start --name logged", *body],
    )
    for notebook in (plain, logged):
        run_original(notebook, monkeypatch)
    assert "autolog" not in mlops.get_run("plain").tags
    assert mlops.get_run("logged").params["model.C"] == 0.5
    for name, autologged in (("plain", False), ("logged", True)):
        report = replay(name, progress=False)
        assert report["verdict"] == "reproduced", report["summary"]
        again = mlops.get_run(report["replay_run"]["id"])
        assert ("autolog" in again.tags) is autologged
        assert ("acc" in again.metrics) is autologged
        assert ("model.C" in again.params) is autologged
