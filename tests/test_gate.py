"""The CI gate: check NOTEBOOK in real kernels runs the saved notebook with its own parameters
and compares with the newest earlier run made with the same params (replay names never nest);
thresholds, absolute and relative to history, trends, data checks, and JUnit."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import InvalidValueError
from jupyter_mlops.gate import (
    Trend,
    check,
    history_cases,
    notebook_parameters,
    parse_threshold,
    write_junit,
)
from jupyter_mlops.replays import replay
from jupyter_mlops.store import open_store
from jupyter_mlops.sweeps import sweep

from .test_replay import START, run_original, write_notebook
from .test_sweep import mlops_cli

# A notebook that never mentions the tracker but for the metric it logs.
SCALED = ["import jupyter_mlops as mlops\nscore = alpha * 2\nmlops.log_metric('score', score)"]


@pytest.mark.slow
def test_check_runs_the_saved_notebook_against_the_run_with_the_same_params(
    tmp_path: Path,
) -> None:
    notebook = write_notebook(tmp_path / "scaled.ipynb", SCALED, parameters="alpha = 0.5")
    assert notebook_parameters(notebook) == {"alpha": 0.5}
    first = check(str(notebook), progress=False)
    assert first["replay"] is None and first["passed"], first["checks"]
    plain = first["run"]
    assert mlops.get_run(plain).metrics == {"score": 1.0}
    tuned = check(str(notebook), progress=False, parameters={"alpha": 1.0})
    assert tuned["replay"] is None, "no earlier run had alpha 1.0"
    assert mlops.get_run(tuned["run"]).params == {"alpha": 1.0}
    sweep(notebook, {"alpha": [2.0, 3.0]}, progress=False)

    # Newer runs (the sweep, the -p run) have other params: the plain run is the one to match.
    again = mlops_cli("check", str(notebook), "--no-progress", "--format", "json")
    assert again.returncode == 0, again.stdout + again.stderr
    report = json.loads(again.stdout)["replay"]
    assert report["original"]["id"] == plain
    assert report["verdict"] == "reproduced", report["summary"]
    rerun = mlops.get_run(report["replay_run"]["id"])
    assert rerun.params == {} and rerun.metrics == {"score": 1.0}
    assert rerun.name == "replay of scaled"

    with_p = check(str(notebook), ["score==2"], progress=False, parameters={"alpha": 1.0})
    assert with_p["passed"], with_p["checks"]
    assert with_p["replay"]["original"]["id"] == tuned["run"]

    # Checked again: still compared with the plain run, never with a replay of it.
    third = check(str(notebook), progress=False)
    assert third["replay"]["original"]["id"] == plain
    # A replay of a replay is named after the run they all come from.
    nested = replay(third["replay"]["replay_run"]["id"], progress=False)
    assert mlops.get_run(nested["replay_run"]["id"]).name == "replay of scaled"
    names = {run for run in mlops.runs()["name"]}
    assert not any("replay of replay" in name for name in names), names


@pytest.mark.slow
def test_params_are_for_notebooks_not_runs(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "scaled.ipynb", SCALED, parameters="alpha = 0.5")
    ran = check(str(notebook), progress=False)
    result = mlops_cli("check", ran["run"], "-p", "alpha", "2")
    assert result.returncode == 2
    assert "params are given to a notebook" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- metrics against history, trends, data ----------------------------------------------------


def history(notebook: Path, values: list[float], key: str = "acc") -> list[str]:
    """Finished runs of a notebook, oldest first, each logging one value of ``key``."""
    ids = []
    for value in values:
        with mlops.start_run(notebook.stem, notebook=notebook) as run:
            mlops.log_metric(key, value)
        ids.append(run.id)
    return ids


def judged(run_id: str, *texts: str, trends: tuple[Trend, ...] = (), **kwargs: object) -> dict:
    limits = [parse_threshold(text) for text in texts]
    cases = history_cases(run_id, limits, trends, store=open_store(), **kwargs)  # type: ignore[arg-type]
    return {case["name"]: case for case in cases}


def test_relative_thresholds_parse() -> None:
    best = parse_threshold("acc>=best-0.01")
    assert (best.key, best.op, best.value, best.reference) == ("acc", ">=", -0.01, "best")
    assert str(best) == "acc >= best-0.01"
    assert str(parse_threshold("acc >= previous")) == "acc >= previous"
    assert parse_threshold("loss <= baseline + 0.1").value == 0.1
    for bad in ["acc>=best-x", "acc>=bestish", "acc>=newest"]:
        with pytest.raises(InvalidValueError):
            parse_threshold(bad)


@pytest.mark.slow
def test_best_previous_and_baseline(tmp_path: Path) -> None:
    notebook = tmp_path / "train.ipynb"
    first, best, previous = history(notebook, [0.90, 0.93, 0.92])
    with mlops.start_run("crashed", notebook=notebook) as failed:
        mlops.log_metric("acc", 0.99)
        failed.end("failed")
    history(tmp_path / "other.ipynb", [0.99])
    [new] = history(notebook, [0.915])

    cases = judged(new, "acc>=best-0.01", "acc>=previous", "acc>=previous-0.01", "acc>=0.9")
    assert cases["metric acc >= best-0.01"]["passed"] is False
    message = cases["metric acc >= best-0.01"]["message"]
    assert "best 0.93" in message and best[:12] in message and "needs acc >= 0.92" in message
    assert cases["metric acc >= previous"]["passed"] is False
    assert previous[:12] in cases["metric acc >= previous"]["message"]
    assert cases["metric acc >= previous-0.01"]["passed"] is True
    assert cases["metric acc >= 0.9"]["passed"] is True

    against_first = judged(new, "acc>=baseline", baseline=first)
    assert against_first["metric acc >= baseline"]["passed"] is True
    assert "baseline 0.9" in against_first["metric acc >= baseline"]["message"]

    # The first run of a notebook has nothing to be relative to; lower is better for a loss.
    assert judged(first, "acc>=best")["metric acc >= best"]["passed"] is True
    losses = tmp_path / "losses.ipynb"
    *_, last = history(losses, [0.30, 0.20, 0.25, 0.24], key="val_loss")
    case = judged(last, "val_loss<=best+0.03")["metric val_loss <= best+0.03"]
    assert case["passed"] is False and "best 0.2" in case["message"]


@pytest.mark.slow
def test_a_slow_slide_fails_the_trend_though_no_step_is_large(tmp_path: Path) -> None:
    notebook = tmp_path / "train.ipynb"
    noise = [0.001, -0.002, 0.0015, -0.001, 0.002, -0.0015, 0.001, -0.001, 0.0005, 0.0]
    sliding = [0.95 - 0.0035 * i + noise[i] for i in range(10)]
    assert max(a - b for a, b in itertools.pairwise(sliding)) < 0.01
    ids = history(notebook, [0.5, *sliding])  # an old run outside the window
    case = judged(ids[-1], trends=(Trend("acc", 10, 0.02),))["trend acc over 10 runs"]
    assert case["passed"] is False
    assert "fell by 0.03" in case["message"] and "more than 0.02" in case["message"]
    assert judged(ids[-1], trends=(Trend("acc", 10, 0.05),))["trend acc over 10 runs"]["passed"]
    steady = history(tmp_path / "steady.ipynb", [0.93 + n for n in noise])
    assert judged(steady[-1], trends=(Trend("acc"),))["trend acc over 10 runs"]["passed"]
    # A loss that creeps up is the same slide.
    creeping = history(tmp_path / "loss.ipynb", [0.2 + 0.004 * i for i in range(8)], "loss")
    assert not judged(creeping[-1], trends=(Trend("loss"),))["trend loss over 10 runs"]["passed"]
    short = history(tmp_path / "short.ipynb", [0.9, 0.5])
    assert (
        "too few" in judged(short[-1], trends=(Trend("acc"),))["trend acc over 10 runs"]["message"]
    )
    with pytest.raises(InvalidValueError):
        Trend("acc", window=2)


@pytest.mark.slow
def test_the_gate_checks_data_serving_samples_and_history_with_junit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)

    def frame(rows: int, shift: float = 0.0) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": rng.normal(shift, 1, rows),
                "colour": rng.choice(["red", "green", "blue"], rows),
            }
        )

    frame(5_000).to_csv(tmp_path / "train.csv", index=False)
    frame(1_000).to_csv(tmp_path / "serving.csv", index=False)
    frame(1_000).to_csv(tmp_path / "fresh.csv", index=False)
    frame(1_000, shift=1.0).to_csv(tmp_path / "shifted.csv", index=False)
    notebook = write_notebook(
        tmp_path / "model.ipynb",
        [
            "import pandas as pd\nimport jupyter_mlops as mlops\n"
            "train = pd.read_csv('train.csv')\nmlops.log_data('train', train);",
            "mlops.log_data('train', pd.read_csv('serving.csv'), context='serving');\n"
            "acc = 0.9 + train['x'].abs().mean() / 100\nmlops.log_metric('acc', acc)",
        ],
    )
    first = check(str(notebook), progress=False)
    assert first["passed"], first["checks"]
    names = [case["name"] for case in first["checks"]]
    assert "data train (serving) against model:train" in names

    junit = tmp_path / "reports" / "gate.xml"
    args = ["check", str(notebook), "--no-progress", "--metric", "acc>=best-0.01"]
    args += ["--metric", "acc>=previous", "--trend", "acc", "--junit", str(junit)]
    passed = mlops_cli(*args, "--data", f"fresh.csv={first['run']}:train")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = mlops_cli(*args, "--data", f"shifted.csv={first['run']}:train", "--format", "json")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    result = json.loads(failed.stdout)
    verdicts = {case["name"]: case["passed"] for case in result["checks"]}
    assert verdicts["data shifted.csv against model:train"] is False
    assert verdicts["metric acc >= best-0.01"] and verdicts["metric acc >= previous"]
    assert verdicts["trend acc over 10 runs"]
    message = next(c["message"] for c in result["checks"] if c["name"].startswith("data shifted"))
    assert message.startswith("x: drift: PSI")
    tree = ElementTree.parse(junit)
    failures = [
        case.get("name") for case in tree.iter("testcase") if case.find("failure") is not None
    ]
    assert failures == ["data shifted.csv against model:train"]
    # The check is stored with the run the gate made.
    stored = mlops.get_run(result["run"]).data_checks()
    assert {c["subject"] for c in stored} >= {"shifted.csv", "train (serving)"}
    usage = mlops_cli("check", str(notebook), "--metric", "acc>=baseline")
    assert usage.returncode == 2 and "needs --baseline RUN" in usage.stderr


# -- thresholds and the gate's verdict, through the command line and JUnit ---------------------


def test_thresholds_parse_and_judge() -> None:
    assert str(parse_threshold("acc>=0.9")) == "acc >= 0.9"
    assert parse_threshold(" loss < 0.5 ").passes(0.4)
    assert not parse_threshold("acc>=0.9").passes(float("nan"))
    assert parse_threshold("metrics.f1!=0").op == "!="
    for bad in ["acc", "acc>=high", ">=0.9", "acc=>0.9"]:
        with pytest.raises(InvalidValueError):
            parse_threshold(bad)


@pytest.mark.slow
def test_the_gate_passes_and_fails_on_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "gate.ipynb",
        [START.format(name="gate"), "acc = 0.93\n%track metric acc"],
    )
    run_original(notebook, monkeypatch)
    passed = mlops_cli(
        "check",
        "gate",
        "--metric",
        "acc>=0.9",
        "--junit",
        str(tmp_path / "ok.xml"),
        "--no-progress",
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASS  metric acc >= 0.9: acc = 0.93" in passed.stdout
    assert "all checks passed" in passed.stdout

    failed = mlops_cli(
        "check",
        "gate",
        "--metric",
        "acc>=0.95",
        "--metric",
        "f1>0.5",
        "--junit",
        str(tmp_path / "bad.xml"),
        "--no-progress",
    )
    assert failed.returncode == 1
    assert "FAIL  metric acc >= 0.95: acc = 0.93, needs acc >= 0.95" in failed.stdout
    assert "FAIL  metric f1 > 0.5: metric 'f1' was not logged" in failed.stdout
    suite = ElementTree.parse(tmp_path / "bad.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == ["reproduces: gate", "metric acc >= 0.95", "metric f1 > 0.5"]


@pytest.mark.slow
def test_the_gate_runs_a_notebook_against_its_newest_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "nb.ipynb", [START.format(name="nb"), "value = 2\n%track metric value"]
    )
    first = check(str(notebook), ["value==2"], progress=False)
    assert first["passed"], first["checks"]
    assert [c["name"] for c in first["checks"]] == ["runs: nb.ipynb", "metric value == 2"]
    second = check(str(notebook), ["value==2"], progress=False)
    assert second["passed"], second["checks"]
    assert second["replay"]["mode"] == "file"
    assert second["replay"]["verdict"] == "reproduced"
    notebook.write_text(notebook.read_text().replace("value = 2", "value = 3"))
    third = check(str(notebook), ["value==2"], progress=False)
    assert not third["passed"]
    assert third["replay"]["verdict"] == "diverged"
    write_junit(third, tmp_path / "junit.xml")
    assert (tmp_path / "junit.xml").read_text().count("<failure") == 2
