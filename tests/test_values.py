"""Which values a cell wrote are compared, how, and why the others are not."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.compare import diff_runs
from jupyter_mlops.values import MAX_ITEMS, TOO_LARGE, compare_written, value_hash

from .conftest import run_child


def hashed(value: object) -> str:
    digest, reason = value_hash(value)
    assert digest is not None, reason
    assert reason is None
    return digest


def not_compared(value: object) -> str:
    digest, reason = value_hash(value)
    assert digest is None, f"{type(value).__name__} was hashed"
    assert reason is not None and reason.startswith("not compared: ")
    return reason


# -- plain values ----------------------------------------------------------------------------


def test_plain_values_hash_by_content() -> None:
    for make in (
        lambda: 3,
        lambda: 0.1 + 0.2,
        lambda: "text",
        lambda: None,
        lambda: [1, 2.5, "x", None],
        lambda: (1, (2, (3,))),
        lambda: {"lr": 0.1, "layers": [64, 32], "tags": {"a", "b"}},
        lambda: {frozenset({1, 2}), ("a", 1)},
        lambda: [{"fold": i, "scores": [i / 10, i / 20]} for i in range(5)],
    ):
        assert hashed(make()) == hashed(make())
    assert hashed([1, 2]) != hashed([2, 1])
    assert hashed([1, 2]) != hashed((1, 2))
    assert hashed({"a": 1}) != hashed({"a": 2})
    assert hashed(1) != hashed(1.0) != hashed(True)
    # Order of insertion is not content for dicts and sets.
    assert hashed({"a": 1, "b": 2}) == hashed({"b": 2, "a": 1})
    assert hashed({"x", "y", "z"}) == hashed({"z", "y", "x"})


_CHILD = """
import json
from jupyter_mlops.values import value_hash
words = {f"word{i}" for i in range(40)}
values = {
    "words": words,
    # A dict built by iterating a set: its insertion order follows the hash seed.
    "counts": {w: len(w) for w in words},
    "pairs": {(w, i) for i, w in enumerate(sorted(words))},
    "scores": [i / 7 for i in range(20)],
    "nested": {"a": [{"b": ({"c"}, frozenset({"d", "e"}))}], "n": None},
    "text": "héllo",
}
print(json.dumps({name: value_hash(value)[0] for name, value in values.items()}))
"""


def test_plain_values_hash_the_same_in_other_processes_and_hash_seeds() -> None:
    outputs = []
    for seed in ("1", "987654"):
        outputs.append(json.loads(run_child(_CHILD, timeout=120, PYTHONHASHSEED=seed)))
    assert outputs[0] == outputs[1]
    assert all(outputs[0].values())
    namespace: dict[str, Any] = {}
    exec(_CHILD.replace("print(json.dumps(", "result = (("), namespace)
    assert namespace["result"] == outputs[0]


def test_a_value_too_large_to_hash_cheaply_is_not_compared() -> None:
    started = time.perf_counter()
    assert not_compared(list(range(MAX_ITEMS + 1))) == TOO_LARGE
    assert not_compared({i: i for i in range(MAX_ITEMS // 2 + 1)}) == TOO_LARGE
    assert not_compared([[0] * 1000 for _ in range(MAX_ITEMS // 1000 + 1)]) == TOO_LARGE
    # Bounded work: giving up is fast, not a stall.
    assert time.perf_counter() - started < 5
    assert hashed(list(range(MAX_ITEMS // 2)))
    # Arrays, frames and text are hashed whole whatever their size.
    assert hashed(np.arange(5_000_000))
    assert hashed(pd.DataFrame({"x": np.arange(MAX_ITEMS * 3)}))
    assert hashed("x" * (10 * MAX_ITEMS))


class Holder:
    """An object whose state holds a lambda: it cannot be pickled."""

    def __init__(self) -> None:
        self.scale = 2
        self.transform = lambda x: x * self.scale


class Remembers:
    """An object that keeps its own address: its pickle carries identity."""

    def __init__(self) -> None:
        self.value = 1
        self.key = id(self)


class FreshToken:
    """An object that pickles a new uuid each time: a copy of it pickles differently."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (FreshToken, (), {"token": uuid.uuid4().hex})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def a_function(x: int) -> int:
    return x


def a_generator() -> Any:
    yield 1


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: json, "a module"),
        (lambda: a_function, "a function"),
        (lambda: lambda x: x, "a function"),
        (lambda: len, "a function"),
        (lambda: [].append, "a function"),
        (lambda: Holder, "a class"),
        (lambda: a_generator(), "a generator"),
        (lambda: (i for i in range(3)), "a generator"),
        (lambda: threading.Lock(), "cannot be pickled"),
        (lambda: threading.Thread(target=print), "cannot be pickled"),
        (lambda: open(__file__), "a file object"),  # noqa: SIM115 - the test closes it
        (lambda: Holder(), "cannot be pickled"),
        (lambda: [1, Holder()], "cannot be pickled"),
        (lambda: Remembers(), "identity"),
        (lambda: FreshToken(), "identity"),
    ],
    ids=[
        "module",
        "function",
        "lambda",
        "builtin",
        "method",
        "class",
        "generator",
        "generator-expression",
        "lock",
        "thread",
        "open-file",
        "instance-holding-a-lambda",
        "list-holding-it",
        "instance-keeping-its-id",
        "fresh-uuid-when-pickled",
    ],
)
def test_values_without_stable_content_are_not_compared(
    make: Callable[[], object], reason: str
) -> None:
    value = make()
    try:
        assert reason in not_compared(value)
    finally:
        if hasattr(value, "close"):
            value.close()


def test_figures_and_their_axes_are_not_compared() -> None:
    figure_module = pytest.importorskip("matplotlib.figure")
    fig = figure_module.Figure()
    axes = fig.subplots(2, 2)
    axes[0, 0].plot([1, 2, 3])
    for value in (fig, axes, axes[0, 0], [fig, 1], {"fig": fig}):
        assert "not compared: " in not_compared(value)
    # Saying so is quick: the cycle shows as soon as the pickle recurses into it.
    started = time.perf_counter()
    not_compared(axes[1, 1])
    assert time.perf_counter() - started < 1


class Config:
    """A plain object: pickled, with its set and array hashed by content."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.names = {"b", "a", "c"}
        self.weights = np.arange(4.0)


def test_objects_that_pickle_by_content_are_compared() -> None:
    assert hashed(Config(3)) == hashed(Config(3))
    assert hashed(Config(3)) != hashed(Config(4))
    rng = np.random.default_rng(0)
    assert hashed(rng) == hashed(np.random.default_rng(0))
    rng.random()
    assert hashed(rng) != hashed(np.random.default_rng(0))
    # A path is compared as its name: the folder it names is not read in the cell.
    assert hashed(Path("a/b")) == hashed(Path("a/b")) != hashed(Path("a/c"))
    assert hashed([Path("/")]) != hashed(["/"])


# -- fitted models ---------------------------------------------------------------------------


def iris() -> tuple[Any, Any]:
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.load_iris(return_X_y=True)


def forest(seed: int | None, fit: bool = True) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=20, random_state=seed)
    return model.fit(*iris()) if fit else model


def test_a_model_hashes_by_its_learned_state() -> None:
    fitted = hashed(forest(0))
    assert hashed(forest(0, fit=False)) != fitted
    assert hashed(forest(0, fit=False)) == hashed(forest(0, fit=False))
    assert hashed(forest(0)) == fitted
    assert hashed(forest(1)) != fitted
    assert hashed(forest(None)) != hashed(forest(None))
    assert hashed(forest(0, fit=False)) != hashed(forest(1, fit=False))


def test_pipelines_and_searches_hash_by_their_models_not_their_timings() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pipeline(c: float) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(*iris())

    assert hashed(pipeline(1.0)) == hashed(pipeline(1.0))
    assert hashed(pipeline(1.0)) != hashed(pipeline(0.1))

    def search() -> Any:
        grid = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=3)
        return grid.fit(*iris())

    first, second = search(), search()
    # Wall-clock timings differ from run to run: they are not what a search learned.
    second.cv_results_["mean_fit_time"] = second.cv_results_["mean_fit_time"] + 1.0
    second.refit_time_ += 1.0
    assert hashed(first) == hashed(second)
    second.best_estimator_.coef_[0, 0] += 1.0
    assert hashed(first) != hashed(second)


_CHILD_MODEL = """
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from jupyter_mlops.values import value_hash
X, y = load_iris(return_X_y=True)
print(value_hash(RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y))[0])
"""


def test_a_seeded_model_hashes_the_same_in_another_process() -> None:
    pytest.importorskip("sklearn")
    out = run_child(_CHILD_MODEL, timeout=120, PYTHONHASHSEED="4242")
    assert out.strip() == hashed(forest(0))


# -- what a cell wrote -----------------------------------------------------------------------


def test_compare_written_splits_hashes_from_reasons() -> None:
    namespace = {"n": 3, "frame": pd.DataFrame({"x": [1, 2]}), "gen": (i for i in range(2))}
    hashes, uncompared = compare_written(namespace, ["n", "frame", "gen", "n", "deleted"])
    assert hashes is not None and set(hashes) == {"n", "frame"}
    assert uncompared == {"gen": "not compared: a generator"}
    assert compare_written(namespace, []) == (None, None)
    assert compare_written({"x": 1}, ["x"]) == ({"x": hashed(1)}, None)


def run(run_id: str, cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": run_id,
        "name": run_id,
        "params": {},
        "metrics": {},
        "metric_series": {},
        "datasets": [],
        "cells": cells,
        "environment": {},
    }


def cell(**fields: Any) -> dict[str, Any]:
    return {"seq": 1, "source": "x = f()", "source_hash": "s", "figure_hashes": [], **fields}


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[list[str], list[str]]]:
    diff = diff_runs(run("a", [a]), run("b", [b]))
    return [(d["reasons"], d["data"]) for d in diff["cells"]["differences"]]


def test_values_not_compared_on_either_side_are_not_differences() -> None:
    a = cell(data_hashes={"x": "1", "fig": "f1"}, uncompared={"big": TOO_LARGE})
    b = cell(data_hashes={"x": "1", "big": "b2"}, uncompared={"fig": "not compared: a figure"})
    assert differences(a, b) == []
    b["data_hashes"]["x"] = "2"
    assert differences(a, b) == [(["data"], ["x"])]
    # A value hashed on one side only (not marked on the other) is a difference.
    assert differences(cell(data_hashes={"y": "1"}), cell(data_hashes=None)) == [(["data"], ["y"])]


def test_figures_that_differ_are_a_cell_difference() -> None:
    a = cell(figure_hashes=["p1", "p2"])
    assert differences(a, cell(figure_hashes=["p1", "p2"])) == []
    assert differences(a, cell(figure_hashes=["p1", "p3"])) == [(["figure"], [])]
    assert differences(a, cell(figure_hashes=["p1"])) == [(["figure"], [])]
    # Unknown (null) figures: the run started in the cell, or it was recorded before figures.
    assert differences(a, cell(figure_hashes=None)) == []


def test_a_cell_recorded_before_values_were_compared_compares_what_both_hashed() -> None:
    old = cell(data_hashes={"frame": "f"}, figure_hashes=None)
    new = cell(data_hashes={"frame": "f", "n": "3"})
    assert differences(old, new) == []
    assert differences(old, cell(data_hashes={"frame": "g", "n": "3"})) == [(["data"], ["frame"])]


# -- end to end: replays in real kernels -----------------------------------------------------

FIXTURES = Path(__file__).parent / "notebooks" / "verdicts"


def replay_fixture(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run a fixture notebook as the original (hash seed random, as most runs have it) and
    replay it; returns the replay's report."""
    from jupyter_mlops.replays import replay

    from .test_replay import run_original

    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    notebook = tmp_path / f"{name}.ipynb"
    shutil.copy(FIXTURES / notebook.name, notebook)
    run_original(notebook, monkeypatch)
    return dict(replay(name, progress=False))


def cells_of(report: dict[str, Any], side: str) -> list[dict[str, Any]]:
    import jupyter_mlops as mlops

    return mlops.get_run(report[side]["id"]).cells()


@pytest.mark.slow
def test_a_seeded_notebook_keeping_its_figure_and_axes_reproduces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    report = replay_fixture("subplots_seeded", tmp_path, monkeypatch)
    assert report["verdict"] == "reproduced", report["summary"]
    assert report["comparison"]["cells"]["differences"] == []
    for side in ("original", "replay_run"):
        drawn = next(c for c in cells_of(report, side) if "plt.subplots" in c["source"])
        assert set(drawn["uncompared"]) == {"fig", "axes", "ax"}
        assert len(drawn["figure_hashes"]) == 1
        values = next(c for c in cells_of(report, side) if "summary" in c["source"])
        assert set(values["data_hashes"]) == {"rng", "samples", "summary"}
    original, replayed = (
        next(c for c in cells_of(report, side) if "plt.subplots" in c["source"])
        for side in ("original", "replay_run")
    )
    assert original["figure_hashes"] == replayed["figure_hashes"]


@pytest.mark.slow
def test_a_seeded_fitted_model_reproduces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sklearn")
    report = replay_fixture("model_seeded", tmp_path, monkeypatch)
    assert report["verdict"] == "reproduced", report["summary"]
    fits = [
        next(c for c in cells_of(report, side) if "make_pipeline(" in c["source"])
        for side in ("original", "replay_run")
    ]
    assert set(fits[0]["data_hashes"]) == {"forest", "model"}
    assert fits[0]["data_hashes"] == fits[1]["data_hashes"]
    assert not fits[0]["uncompared"]


@pytest.mark.slow
def test_random_plain_values_diverge_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = replay_fixture("plain_values_random", tmp_path, monkeypatch)
    assert report["verdict"] == "diverged"
    first = report["first_cell"]
    assert first["position"] == 3
    assert first["reasons"] == ["data"]
    assert first["data"] == ["scores"]
    assert "the data it wrote differs (scores)" in report["summary"]
    later = report["comparison"]["cells"]["differences"][1]
    # The set of labels hashes the same whatever the hash seed: only `best` follows scores.
    assert later["position"] == 4 and later["data"] == ["best"]
