"""Nothing recorded is lost to a bad value: each is refused with one line where it is logged,
a row that still cannot be stored is set aside, and everything logged after it is stored."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

import jupyter_mlops as mlops
from jupyter_mlops import run as runs
from jupyter_mlops.errors import InvalidValueError, MlopsError
from jupyter_mlops.store import Store

LONE_SURROGATE = "\udcff"  # what os.listdir gives for a file name that is not UTF-8


def _self_containing() -> list[Any]:
    items: list[Any] = [1]
    items.append(items)
    return items


POISONED_CALLS = {
    "step 2**63": lambda: mlops.log_metric("x", 1.0, step=2**63),
    "step below -2**63": lambda: mlops.log_metric("x", 1.0, step=-(2**63) - 1),
    "value 10**400": lambda: mlops.log_metric("x", 10**400),
    "step inf": lambda: mlops.log_metric("x", 1.0, step=float("inf")),
    "step NaN": lambda: mlops.log_metric("x", 1.0, step=float("nan")),
    "surrogate metric key": lambda: mlops.log_metric(f"loss{LONE_SURROGATE}", 1.0),
    "surrogate param key": lambda: mlops.log_param(f"lr{LONE_SURROGATE}", 0.1),
    "surrogate tag key": lambda: mlops.active_run().set_tags({LONE_SURROGATE: "x"}),  # type: ignore[union-attr]
    "self-containing list": lambda: mlops.log_param("p", _self_containing()),
    "param 10**5000": lambda: mlops.log_param("p", 10**5000),
    "artifact named x*5000": lambda: mlops.log_artifact("x" * 5000),
    "data named x*5000": lambda: mlops.log_data("x" * 5000, [1, 2]),
    "surrogate run name": lambda: mlops.start_run(name=LONE_SURROGATE),
}


@pytest.mark.parametrize("case", sorted(POISONED_CALLS))
def test_a_poisoned_value_is_one_line_and_later_writes_are_stored(case: str) -> None:
    run = mlops.start_run(name="poisoned")
    with pytest.raises(InvalidValueError) as caught:
        POISONED_CALLS[case]()
    assert "\n" not in str(caught.value)
    mlops.log_metric("after", 1.0)
    mlops.log_metric("after", 2.0)
    mlops.log_param("kept", 1)
    run.end()
    record = mlops.get_run("poisoned")
    assert record.status == "finished"
    assert [p["value"] for p in record.metric_series("after")] == [1.0, 2.0]
    assert record.params == {"kept": 1}
    assert not run.store.rejected


def test_surrogates_in_free_text_are_stored_and_read_back() -> None:
    run = mlops.start_run(name="texts", tags={"origin": f"a{LONE_SURROGATE}b"})
    mlops.log_param("path", f"data/{LONE_SURROGATE}.csv")
    run.end()
    record = mlops.get_run("texts")
    assert record.params == {"path": f"data/{LONE_SURROGATE}.csv"}  # JSON escapes it exactly
    assert record.tags == {"origin": "a\\udcffb"}


def test_a_row_the_store_refuses_is_set_aside_and_the_writer_goes_on(store: Store) -> None:
    run = mlops.start_run(name="aside", store=store)
    # Rows that skipped the checks (as a newer caller might): the writer must not stall on them.
    store.enqueue_metric(run.id, "bad-step", 2**64, 1.0, 0.0, None)
    store.enqueue_metric(run.id, f"bad{LONE_SURROGATE}", 1, 1.0, 0.0, None)
    for step in range(5):
        mlops.log_metric("good", float(step))
    run.record_cell({"seq": 1, "source": "x = 1", "execution_count": 1})
    with pytest.warns(RuntimeWarning, match="set aside") as seen:
        store.flush()
    assert len(seen) == 1
    assert len(store.rejected) == 2
    assert {entry["kind"] for entry in store.rejected} == {"metric"}
    mlops.log_metric("good", 5.0)
    run.end()
    record = mlops.get_run("aside")
    assert [p["value"] for p in record.metric_series("good")] == [0, 1, 2, 3, 4, 5]
    assert [c["source"] for c in record.cells()] == ["x = 1"]
    assert record.status == "finished"


def test_a_cell_with_surrogates_in_its_source_and_error_is_kept(shell: Any) -> None:
    shell.run_cell("%track start --name cells")
    try:
        shell.run_cell(f"name = 'bad {LONE_SURROGATE}'")  # Python cannot even compile it
        ran = [None, "UnicodeEncodeError"]
    except UnicodeEncodeError:
        # IPython 8 (the last for Python 3.10) raises before the cell starts: nothing ran.
        ran = [None]
    shell.run_cell("raise ValueError('bad name: ' + chr(0xdcff))")
    shell.run_cell("y = 2")
    shell.run_cell("%track end")
    record = mlops.get_run("cells")
    cells = record.cells()
    assert record.status == "finished"
    assert [c["error"] for c in cells] == [*ran, "ValueError", None, None]
    if len(ran) == 2:
        assert cells[1]["source"] == "name = 'bad \\udcff'"
    assert cells[len(ran)]["error_value"] == "bad name: \\udcff"
    assert not runs.active_run()


POISONED_LINES = [
    "metric x=1 --step 2**63",
    "metric x=10**400",
    "metric x=1 --step float('inf')",
    "metric x=1 --step float('nan')",
    "params p=10**5000",
    "params p=selfish",
    "metric bad_key",
    "artifact " + "x" * 5000,
    "show " + LONE_SURROGATE,
]


@pytest.mark.parametrize("line", POISONED_LINES, ids=range(len(POISONED_LINES)))
def test_a_poisoned_track_line_is_one_line_and_the_run_goes_on(shell: Any, line: str) -> None:
    shell.user_ns["selfish"] = _self_containing()
    shell.user_ns["bad_key"] = "text"
    shell.run_line_magic("track", "start --name lines")
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("track", line)
    assert str(caught.value).startswith("%track: ")
    assert "\n" not in str(caught.value)
    shell.run_line_magic("track", "metric ok=1")
    shell.run_line_magic("track", "status")
    shell.run_line_magic("track", "end")
    record = mlops.get_run("lines")
    assert record.status == "finished"
    assert record.metrics == {"ok": 1.0}


# -- fuzzing: only the documented one-line errors, and nothing held up ----------------------

_WORDS = [
    "start", "params", "metric", "data", "artifact", "end", "status", "runs", "show",
    "compare", "plot", "--name", "--tag", "--step", "--status", "--where", "--limit",
    "=", "x", "'q'", '"', "'", "(", ")", "[", "]", "2**63", "10**400", "1e999",
    "float('nan')", "-1", "0", "k=v", "a=1", LONE_SURROGATE, "é", "\\", "/", "..",
    "metrics.a > 1", "and", "key=", "=x", "--", "1/0", "k==1", "a.b=2", "tags.x",
]  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.sampled_from(_WORDS), max_size=6), st.booleans())
def test_fuzzed_track_lines_fail_only_with_one_line(
    shell: Any, words: list[str], glued: bool
) -> None:
    shell.user_ns["x"] = 1
    line = ("" if glued else " ").join(words)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            shell.run_line_magic("track", line)
        except UsageError as exc:
            assert "\n" not in str(exc).strip()
        active = runs.active_run()
        if active is not None:
            active.store.flush()
            assert not active.store.rejected


_COMMANDS = ["start", "params", "metric", "data", "artifact", "end", "status", "runs", "show"]
_CHARS = "abxyz019 =-_.,:;'\"()[]{}*/+<>!~%$#@&|\\\t\n\x00é" + LONE_SURROGATE


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.sampled_from([*_COMMANDS, "compare", "plot", ""]), st.text(_CHARS, max_size=25))
def test_fuzzed_characters_after_a_command_fail_only_with_one_line(
    shell: Any, command: str, rest: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            shell.run_line_magic("track", f"{command} {rest}")
        except UsageError as exc:
            assert "\n" not in str(exc).strip()


_keys = st.text(max_size=12)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(_keys, _values, st.one_of(st.none(), st.integers(), st.floats()))
def test_fuzzed_api_values_are_stored_or_refused_in_one_line(
    key: str, value: Any, step: Any
) -> None:
    run = runs.active_run() or mlops.start_run(name="fuzz")
    for call in (
        lambda: run.log_metric(key, value, step=step),
        lambda: run.log_param(key, value),
        lambda: run.set_tags({key: value}),
    ):
        try:
            call()
        except MlopsError as exc:
            assert "\n" not in str(exc)
    run.store.flush()
    assert not run.store.rejected
    if isinstance(value, float) and math.isfinite(value) and key == "ok":
        assert run.record().metrics["ok"] == value
