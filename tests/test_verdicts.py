"""Verdicts on real notebooks: a cause for every divergence, the line that explains it, and a
second replay that tells a nondeterministic cell from a world that changed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.replays import replay

from .conftest import PYTHON, child_env
from .test_replay import run_original

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "notebooks" / "verdicts"


@pytest.fixture(autouse=True)
def _hash_seed_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Originals run as most do, with PYTHONHASHSEED unset (random in every process)."""
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)


def run_fixture(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Copy a fixture notebook into the test's folder and run it as the original."""
    notebook = tmp_path / f"{name}.ipynb"
    shutil.copy(FIXTURES / notebook.name, notebook)
    run_original(notebook, monkeypatch)
    return notebook


def cli(*args: str) -> dict[str, Any]:
    """A ``jupyter mlops`` command's JSON output."""
    done = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", *args, "--no-progress", "--format", "json"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=600,
    )
    assert done.stdout, done.stderr
    return dict(json.loads(done.stdout))


def write_sales(folder: Path, amounts: dict[str, list[int]]) -> None:
    (folder / "data").mkdir(exist_ok=True)
    for name, values in amounts.items():
        rows = "".join(f"{name}-{i},{v}\n" for i, v in enumerate(values))
        (folder / "data" / f"{name}.csv").write_text("item,amount\n" + rows)


def run_and_edit_sales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the three-files notebook, then edit one value of the second file."""
    write_sales(tmp_path, {"a": [3, 5, 8], "b": [13, 21, 34], "c": [55, 89, 144]})
    run_fixture("three_csvs", tmp_path, monkeypatch)
    write_sales(tmp_path, {"b": [13, 21, 35]})


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        (
            "search_unseeded",
            "cell 4 [4]: `RandomizedSearchCV(forest, grid, n_iter=5, cv=3)` has no random_state",
        ),
        # Before the scaled logistic regression whose solver may not draw at all.
        ("kfold_shuffle", "cell 4 [4]: `KFold(n_splits=5, shuffle=True)` has no random_state"),
        # After a seeded split: one seeded call seeds that call only, and is no cause itself.
        (
            "forest_after_seeded_split",
            "cell 4 [4]: `RandomForestClassifier(n_estimators=25)` has no random_state",
        ),
    ],
)
def test_an_unseeded_estimator_splitter_or_search_is_named_by_its_line(
    name: str, cause: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_fixture(name, tmp_path, monkeypatch)
    report = replay(name, progress=False)
    assert report["verdict"] == "diverged"
    assert report["first_cell"]["position"] == 4
    assert report["causes"][0] == cause
    assert f"Likely cause: {cause}." in report["summary"]
    assert not any("train_test_split" in c for c in report["causes"])


@pytest.mark.parametrize(
    ("name", "position", "line"),
    [("set_order", 3, "list(set(words))"), ("text_hash", 3, "hash(w)")],
)
def test_set_order_and_text_hashes_are_named_when_no_hash_seed_was_fixed(
    name: str, position: int, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_fixture(name, tmp_path, monkeypatch)
    report = replay(name, progress=False)
    assert report["verdict"] == "diverged"
    assert report["first_cell"]["position"] == position
    cause = report["causes"][0]
    assert cause.startswith(f"{report['first_cell']['label']}: `{line}` ")
    assert report["first_cell"]["label"].startswith(f"cell {position} ")
    assert "PYTHONHASHSEED was not fixed in the original run" in cause
    # The replay's hash seed was as random as the original's: no variable changed.
    assert not any(c.startswith("PYTHONHASHSEED changed") for c in report["causes"])


def test_a_fixed_hash_seed_makes_set_order_reproduce(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    run_fixture("set_order", tmp_path, monkeypatch)
    monkeypatch.setenv("PYTHONHASHSEED", "8")  # the replay takes the original's, not this
    report = replay("set_order", progress=False)
    assert report["verdict"] == "reproduced", report["summary"]


def test_a_hash_seed_the_original_left_unset_stays_random_whatever_the_launcher_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_fixture("set_order", tmp_path, monkeypatch)
    # Were this fixed seed passed on, both replays would agree with each other.
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    report = replay("set_order", confirm=True, progress=False)
    assert report["verdict"] == "diverged"
    assert report["nondeterministic"] is True


def test_the_one_edited_csv_of_three_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_and_edit_sales(tmp_path, monkeypatch)
    report = replay("three_csvs", progress=False)
    assert report["verdict"] == "diverged"
    assert report["first_cell"]["position"] == 3
    first = report["causes"][0]
    assert first.startswith("the input file data/b.csv changed since the original run (")
    assert first.endswith("; cell 3 [3] reads it")
    assert not any("a.csv" in c or "c.csv" in c for c in report["causes"])


def test_a_file_the_run_wrote_itself_is_no_changed_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_fixture("scratch_file", tmp_path, monkeypatch)
    report = replay("scratch_file", progress=False)
    assert report["verdict"] == "diverged"
    assert report["first_cell"]["position"] == 4
    # The file differs because the cell that wrote it draws unseeded numbers: that is the cause.
    assert report["causes"][0].startswith("cell 3 [3]: `np.random.rand(5)` draws from numpy's")
    assert not any("scratch.csv" in cause for cause in report["causes"])


def test_a_cell_that_prints_the_clock_reproduces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_fixture("clock_print", tmp_path, monkeypatch)
    report = replay("clock_print", progress=False)
    assert report["verdict"] == "reproduced", report["summary"]
    assert report["comparison"]["cells"]["differences"][0]["position"] == 3
    assert report["expected"] == [
        {"position": 3, "clock": ["time.ctime()", "time.time()", "datetime.now()"]}
    ]
    assert "only because they read the clock (`time.ctime()`), as expected" in report["summary"]


def test_values_read_from_the_clock_are_expected_to_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_fixture("clock_values", tmp_path, monkeypatch)
    report = replay("clock_values", progress=False)
    assert report["verdict"] == "reproduced", report["summary"]
    difference = report["comparison"]["cells"]["differences"][0]
    assert difference["position"] == 3
    assert set(difference["data"]) == {"start", "elapsed"}
    assert report["expected"] == [{"position": 3, "clock": ["time.time()", "time.time()"]}]


def test_confirm_tells_a_nondeterministic_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_fixture("forest_after_seeded_split", tmp_path, monkeypatch)
    report = cli("replay", "forest_after_seeded_split", "--confirm")
    assert report["verdict"] == "diverged"
    assert report["nondeterministic"] is True
    assert report["confirmation"]["agree"] is False
    assert report["summary"].endswith(
        "A second replay differs from the first at cell 4 [4] too: "
        "the cell is nondeterministic in itself."
    )


def test_check_confirm_tells_an_edited_input_from_nondeterminism(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_and_edit_sales(tmp_path, monkeypatch)
    result = cli("check", "three_csvs", "--confirm")
    assert result["passed"] is False
    report = result["replay"]
    assert report["nondeterministic"] is False
    assert report["confirmation"]["agree"] is True
    assert report["causes"][0].startswith("the input file data/b.csv changed")
    assert (
        "something changed since the original run (its environment or inputs)"
        in (report["summary"])
    )


def test_a_divergence_with_no_cause_in_the_code_is_replayed_again_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_fixture("urandom_token", tmp_path, monkeypatch)
    report = replay("urandom_token", progress=False)
    assert report["verdict"] == "diverged"
    assert report["nondeterministic"] is True
    assert report["causes"] == [
        "cell 3 [3] gives a different result in every process (two replays differ there), "
        "from a source its code does not show"
    ]
    assert "No likely cause was found" not in report["summary"]
