"""Hostile and huge input at the REST and command-line doors: every limit answers a 4xx (or a
one-line error and exit 2), never a 500 or a traceback, and a run of a million points stays
cheap to show.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from jupyter_mlops import run as runs
from jupyter_mlops.cli import cli
from jupyter_mlops.cli.options import MAX_LIMIT
from jupyter_mlops.errors import ExpressionError
from jupyter_mlops.jsonable import json_ready
from jupyter_mlops.kernel_env import STORE_DIR
from jupyter_mlops.query import MAX_COMPARISONS
from jupyter_mlops.server import api
from jupyter_mlops.server.handlers import KERNELS_RESOURCE
from jupyter_mlops.store import Store, open_store

from .conftest import child_env, run_child
from .server_fixtures import API, assert_error, get_json, make_run

BIG = 1_000_000
SPIKE, DIP = 123_457, 777_777


# -- numbers and text in query arguments -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("offset", str(2**63)),
        ("offset", str(api.MAX_OFFSET + 1)),
        ("offset", "-1"),
        ("limit", str(2**63)),
        ("limit", "0"),
        ("limit", "1e3"),
        ("limit", "\u0663"),  # an Arabic-Indic three: int() takes it, the API does not
        ("offset", "9" * 5_000),
        ("offset", "--5"),
        ("limit", "1_0"),
    ],
)
async def test_page_numbers_out_of_range_are_400s(
    jp_fetch: Any, server_store: Store, name: str, value: str
) -> None:
    make_run(server_store, "one")
    code, body = await get_json(jp_fetch, "runs", params={name: value})
    assert_error(code, body, 400, "invalid_value")
    assert body["message"].startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("name", "value"),
    [("notebook", "n" * 5_000), ("status", "x," * 3_000)],
)
async def test_bad_text_arguments_are_400s(
    jp_fetch: Any, server_store: Store, name: str, value: str
) -> None:
    make_run(server_store, "one")
    code, body = await get_json(jp_fetch, "runs", params={name: value})
    assert_error(code, body, 400, "invalid_value")
    assert body["message"].startswith(f"{name}: ")


async def test_a_nul_in_a_notebook_path_matches_nothing(jp_fetch: Any, server_store: Store) -> None:
    make_run(server_store, "one")
    code, body = await get_json(jp_fetch, "runs", params={"notebook": "a\x00b.ipynb"})
    assert code == 200 and body["runs"] == [] and body["total"] == 0


async def test_an_offset_past_the_end_is_an_empty_page(jp_fetch: Any, server_store: Store) -> None:
    make_run(server_store, "one")
    code, body = await get_json(jp_fetch, "runs", params={"offset": str(api.MAX_OFFSET)})
    assert code == 200 and body["runs"] == [] and body["total"] == 1


async def test_numbers_in_where_beyond_64_bits(jp_fetch: Any, server_store: Store) -> None:
    big = make_run(server_store, "big", params={"seed": 10**20}, metrics={"a": 1e30})
    make_run(server_store, "small", params={"seed": 1}, metrics={"a": 1.0})
    for where in ("metrics.a > 100000000000000000000", "params.seed >= 100000000000000000000"):
        code, body = await get_json(jp_fetch, "runs", params={"where": where})
        assert code == 200, body
        assert [r["id"] for r in body["runs"]] == [big]
    for number in ("1e999", "-" + "9" * 400):
        code, body = await get_json(jp_fetch, "runs", params={"where": f"metrics.a > {number}"})
        assert_error(code, body, 400, "bad_expression")
        assert "out of range" in body["message"]


async def test_a_where_too_long_or_too_many_comparisons(jp_fetch: Any, server_store: Store) -> None:
    make_run(server_store, "one")
    many = " or ".join(f"metrics.m{i} > {i}" for i in range(2_000))
    # As a browser sends a long filter (a GET's URL has room for it).
    code, body = await get_json(jp_fetch, "runs", params={"where": many[:3_990]})
    assert_error(code, body, 400, "bad_expression")
    assert f"more than {MAX_COMPARISONS} comparisons" in body["message"]
    code, body = await get_json(jp_fetch, "runs", params={"where": many})
    assert_error(code, body, 400, "invalid_value")  # over the text limit of any argument
    assert body["message"].startswith("where: ")


async def test_text_that_is_not_utf8_is_a_400(
    http_server_client: Any, jp_base_url: str, jp_auth_header: Any, server_store: Store
) -> None:
    run_id = make_run(server_store, "one")
    for path in ("runs?where=name%20%3D%20%ED%A0%80", f"runs/{run_id}/metrics/%FF"):
        response = await http_server_client.fetch(
            f"{jp_base_url}{API}/{path}", headers=jp_auth_header, raise_error=False
        )
        assert response.code == 400, (path, response.body)
        assert json.loads(response.body)["error"] == "http_400"


# -- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ('{"name": "a\\ud800b"}', "name"),
        ('{"tags": {"\\udfff": "x"}}', "tags"),
        ('{"tags": {"k": "\\ud83d"}}', "tags"),
        ('{"remove_tags": ["ok", "\\udc00"]}', "remove_tags"),
        ('{"note": "fine \\ud800 not"}', "note"),
    ],
)
async def test_a_lone_surrogate_in_a_body_is_a_400(
    jp_fetch: Any, server_store: Store, payload: str, field: str
) -> None:
    run_id = make_run(server_store, "keep")
    code, body = await get_json(jp_fetch, "runs", run_id, method="PATCH", body=payload)
    assert_error(code, body, 400, "invalid_value")
    assert body["message"].startswith(f"{field}: ") and "surrogate" in body["message"]
    assert runs.get_run(run_id, store=server_store).name == "keep"


async def test_tags_in_one_request_are_capped(jp_fetch: Any, server_store: Store) -> None:
    run_id = make_run(server_store, "tagged")
    at_most = {f"t{i}": "v" for i in range(api.MAX_TAGS)}
    code, body = await get_json(
        jp_fetch, "runs", run_id, method="PATCH", body=json.dumps({"tags": at_most})
    )
    assert code == 200 and len(body["tags"]) == api.MAX_TAGS

    one_more = {f"u{i}": "v" for i in range(api.MAX_TAGS + 1)}
    code, body = await get_json(
        jp_fetch, "runs", run_id, method="PATCH", body=json.dumps({"tags": one_more})
    )
    assert_error(code, body, 400, "invalid_value")
    assert body["message"].startswith("tags: at most")
    code, body = await get_json(
        jp_fetch,
        "runs",
        run_id,
        method="PATCH",
        body=json.dumps({"remove_tags": list(one_more)}),
    )
    assert_error(code, body, 400, "invalid_value")

    huge = {f"tag-{i}": f"value-{i}" for i in range(100_000)}
    code, body = await get_json(
        jp_fetch, "runs", run_id, method="PATCH", body=json.dumps({"tags": huge})
    )
    assert_error(code, body, 413, "body_too_large")
    assert len(runs.get_run(run_id, store=server_store).tags) == api.MAX_TAGS


async def test_a_deeply_nested_body_is_a_400(jp_fetch: Any, server_store: Store) -> None:
    run_id = make_run(server_store, "deep")
    payload = '{"note": ' + "[" * 100_000 + "]" * 100_000 + "}"
    code, body = await get_json(jp_fetch, "runs", run_id, method="PATCH", body=payload)
    assert_error(code, body, 400, "bad_json")


# -- series and compare ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "3", str(api.MAX_POINTS + 1), str(2**70), "-5"])
async def test_max_points_out_of_range_is_a_400(
    jp_fetch: Any, server_store: Store, value: str
) -> None:
    run_id = make_run(server_store, "m", metrics={"acc": 0.5})
    for parts in (("runs", run_id), ("runs", run_id, "metrics", "acc")):
        code, body = await get_json(jp_fetch, *parts, params={"max_points": value})
        assert_error(code, body, 400, "invalid_value")
        assert body["message"].startswith("max_points: ")


async def test_compare_ids_are_capped(
    jp_fetch: Any,
    http_server_client: Any,
    jp_base_url: str,
    jp_auth_header: Any,
    server_store: Store,
) -> None:
    ids = [make_run(server_store, f"c{i}") for i in range(api.MAX_COMPARE + 1)]
    code, body = await get_json(jp_fetch, "compare", params={"ids": ",".join(ids)})
    assert_error(code, body, 400, "invalid_value")
    # As many ids as fit in a URL the server reads: refused before any run is read.
    many = ",".join(f"{i:032x}" for i in range(1_500))
    code, body = await get_json(jp_fetch, "compare", params={"ids": many})
    assert_error(code, body, 400, "invalid_value")
    assert body["message"] == f"ids: give between 2 and {api.MAX_COMPARE} different run ids"
    # Ten thousand ids make a request line of 330 kB, past the 64 kB the HTTP server reads
    # before any handler: it answers a 4xx itself, or closes the connection, and goes on.
    url = f"{jp_base_url}{API}/compare?ids=" + ",".join(f"{i:032x}" for i in range(10_000))
    try:
        response = await http_server_client.fetch(url, headers=jp_auth_header, raise_error=False)
    except (OSError, HTTPClientError):
        pass
    else:
        assert 400 <= response.code < 500 or response.code == 599, response.code
    code, _ = await get_json(jp_fetch, "runs")
    assert code == 200


# -- a slow filter holds up nothing ------------------------------------------------------------


def _many_runs(store: Store, count: int) -> str:
    """``count`` ended runs with params, written through the store's own API; the last id."""
    run_id = ""
    now = time.time()
    for index in range(count):
        run_id = f"{index:032x}"
        store.insert_run(
            {
                "id": run_id,
                "name": f"r{index}",
                "status": "finished",
                "kind": "script",
                "start_time": now + index,
                "end_time": now + index + 1,
            },
        )
        store.set_params(run_id, {"lr": json.dumps(index / count), "model": json.dumps("rf")})
    return run_id


async def test_a_slow_filter_stops_and_other_requests_answer(
    jp_fetch: Any, server_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = _many_runs(server_store, 3_000)
    # A hundred comparisons that match nothing: each is tested on every run (the count
    # reads the whole store); with a short bound, the filter is stopped midway.
    slow = " or ".join(f'params.model ~ "nothing-{i}"' for i in range(MAX_COMPARISONS))
    monkeypatch.setattr(api, "FILTER_SECONDS", 0.02)
    filtered = get_json(jp_fetch, "runs", params={"where": slow})
    simple = get_json(jp_fetch, "runs", last)
    (code, body), (simple_code, simple_body) = await asyncio.gather(filtered, simple)
    assert_error(code, body, 400, "filter_too_slow")
    assert body["message"].startswith("where: the filter took too long")
    assert simple_code == 200 and simple_body["id"] == last
    # The bound is lifted after the request: the next ones run to their end.
    monkeypatch.setattr(api, "FILTER_SECONDS", 60.0)
    code, body = await get_json(jp_fetch, "runs", params={"where": slow})
    assert code == 200 and body["total"] == 0


# -- replays -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        '{"rtol": NaN}',
        '{"atol": Infinity}',
        '{"timeout": 1e999}',
        '{"timeout": 1' + "0" * 400 + "}",
    ],
)
async def test_replay_numbers_must_be_finite(
    jp_fetch: Any, server_store: Store, payload: str
) -> None:
    run_id = make_run(server_store, "r")
    code, body = await get_json(jp_fetch, "runs", run_id, "replay", method="POST", body=payload)
    assert_error(code, body, 400, "invalid_value")
    assert "finite" in body["message"]
    assert server_store.replays(original_id=run_id) == []


class NoKernels(Authorizer):
    """Allows everything but kernels (a user who may read and tag runs, not run code)."""

    asked: ClassVar[list[tuple[str, str]]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        """Refuse the kernels resource, noting what was asked."""
        NoKernels.asked.append((action, resource))
        return resource != KERNELS_RESOURCE


@pytest.mark.parametrize(
    "jp_server_config",
    [
        Config(
            {
                "ServerApp": {
                    "jpserver_extensions": {"jupyter_mlops.server": True},
                    "authorizer_class": NoKernels,
                }
            }
        )
    ],
)
async def test_a_replay_needs_the_permission_to_run_kernels(
    jp_fetch: Any, server_store: Store
) -> None:
    run_id = make_run(server_store, "r")
    NoKernels.asked.clear()
    code, body = await get_json(jp_fetch, "runs", run_id, "replay", method="POST", body="{}")
    assert code == 403 and body["error"] == "forbidden"
    assert ("write", "jupyter_mlops") in NoKernels.asked
    assert any(resource == KERNELS_RESOURCE for _, resource in NoKernels.asked)
    assert server_store.replays(original_id=run_id) == []
    code, _ = await get_json(jp_fetch, "runs", run_id)
    assert code == 200  # reading is still allowed


async def test_a_replay_of_a_notebook_outside_the_root_is_refused(
    jp_fetch: Any, server_store: Store, server_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.ipynb"
    outside.write_text("TOP-SECRET-BYTES " * 20)
    run_id = make_run(server_store, "outside", notebook=outside)
    # A link inside the root to a file outside it is outside too.
    (server_root / "link.ipynb").symlink_to(outside)
    linked = make_run(server_store, "linked", notebook=server_root / "link.ipynb")
    for target in (run_id, linked):
        for mode in ("file", "recorded"):
            code, body = await get_json(
                jp_fetch, "runs", target, "replay", method="POST", body=json.dumps({"mode": mode})
            )
            assert_error(code, body, 403, "outside_root")
            assert "SECRET" not in json.dumps(body)
    assert server_store.replays(original_id=run_id) == []


def _sleeping_run(store: Store, seconds: float) -> str:
    """An ended run whose one recorded cell sleeps: its replay keeps a kernel busy."""
    run = runs.start_run(name="sleeper", store=store)
    store.enqueue_cell(
        {
            "run_id": run.id,
            "seq": 1,
            "execution_count": 1,
            "start_time": time.time(),
            "source": f"import time\ntime.sleep({seconds})",
            "duration": seconds,
        }
    )
    run.end()
    return run.id


@pytest.mark.slow
async def test_replays_at_a_time_are_capped(jp_fetch: Any, server_store: Store) -> None:
    run_id = _sleeping_run(server_store, 3)
    started = []
    for _ in range(api.MAX_REPLAYS):
        code, body = await get_json(jp_fetch, "runs", run_id, "replay", method="POST", body="{}")
        assert code == 202, body
        started.append(body["id"])
    response = await jp_fetch(
        API, "runs", run_id, "replay", method="POST", body="{}", raise_error=False
    )
    assert response.code == 429 and response.headers["Retry-After"]
    body = json.loads(response.body)
    assert body["error"] == "too_many_replays" and f"at most {api.MAX_REPLAYS}" in body["message"]
    # Once their processes have ended, a replay may start again.
    await _until_ended(server_store, started)
    code, body = await get_json(jp_fetch, "runs", run_id, "replay", method="POST", body="{}")
    assert code == 202, body
    await _until_ended(server_store, [body["id"]])


async def _until_ended(store: Store, replay_ids: list[str]) -> None:
    """Wait (at most two minutes) until the processes of these replays have ended."""
    deadline = time.monotonic() + 120
    pids = [int(row["pid"]) for row in (store.get_replay(i) for i in replay_ids) if row]
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"replay processes {pids} still running")


# -- a run of a million points ---------------------------------------------------------------


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A store whose run ``big`` logged a million points of ``loss`` (one spike, one dip)."""
    folder = tmp_path_factory.mktemp("big") / ".mlops"
    store = open_store(folder)
    run = runs.start_run(name="big", store=store)
    now = time.time()
    for step in range(BIG):
        value = 50.0 if step == SPIKE else -3.0 if step == DIP else 1.0 / (step + 1)
        store.enqueue_metric(run.id, "loss", step, value, now, None)
    run.log_metric("acc", 0.5)
    run.end()
    small = runs.start_run(name="small", store=store)
    small.log_metric("loss", 0.25)
    small.end()
    yield folder, run.id


def _check_thinned(points: list[dict[str, Any]], cap: int) -> None:
    assert len(points) <= cap
    steps = [p["step"] for p in points]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == BIG - 1
    values = {p["step"]: p["value"] for p in points}
    assert values[SPIKE] == 50.0 and values[DIP] == -3.0


async def test_a_million_points_are_thinned_in_every_view(
    jp_fetch: Any, big_store: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, run_id = big_store
    monkeypatch.setenv(STORE_DIR, str(folder))
    code, body = await get_json(jp_fetch, "runs", run_id)
    assert code == 200
    assert body["metric_series_length"] == {"acc": 1, "loss": BIG}
    _check_thinned(body["metric_series"]["loss"], api.DEFAULT_POINTS)

    code, body = await get_json(
        jp_fetch, "runs", run_id, "metrics", "loss", params={"max_points": "100"}
    )
    assert code == 200 and body["length"] == BIG and body["downsampled"]
    _check_thinned(body["points"], 100)

    small = runs.list_runs(where="name = small", store=open_store(folder))[0]["id"]
    code, body = await get_json(jp_fetch, "compare", params={"ids": f"{run_id},{small}"})
    assert code == 200, body
    assert body["runs"][0]["metric_series_length"]["loss"] == BIG
    assert body["diffs"][0]["metrics"]["loss"]["a"] == pytest.approx(1.0 / BIG)

    result = CliRunner().invoke(cli, ["--store", str(folder), "show", "big", "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["metric_series_length"]["loss"] == BIG
    _check_thinned(shown["metric_series"]["loss"], api.DEFAULT_POINTS)


# Each step in a child process, its peak memory measured after warming up on a small run, so
# imports and caches are not counted. The peak is the process's own high-water mark (VmHWM):
# getrusage's ru_maxrss of a child starts at its parent's size when it was forked, and this
# test process holds a million points' worth by then.
_MEMORY_SCRIPT = textwrap.dedent(
    """
    import contextlib, json, os, sys
    from pathlib import Path
    from jupyter_mlops.cli import cli
    from jupyter_mlops.server import api

    folder, run_id, small, step = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    root = folder.parent

    def show(ref, *more):
        # The command ends the process with its exit status, as the script does.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            try:
                cli.main(["--store", str(folder), "show", ref, "--format", "json", *more])
            except SystemExit as exit:
                assert exit.code == 0, exit.code

    def detail(ref):
        json.dumps(api.run_detail(root, ref), default=str)

    def compare(a, b):
        json.dumps(api.compare_runs(root, [a, b]), default=str)

    def full(ref):
        from jupyter_mlops.run import get_run
        get_run(ref).to_dict(full=True)

    steps = {
        "detail": lambda ref: detail(ref),
        "compare": lambda ref: compare(ref, small if ref != small else run_id),
        "show": lambda ref: show(ref),
        "all-points": lambda ref: show(ref, "--all-points"),
        "full": lambda ref: full(ref),
    }
    def peak_kb():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    steps[step](small)
    before = peak_kb()
    steps[step](run_id)
    print(json.dumps({"grew_mb": (peak_kb() - before) / 1024}))
    """
)


def _memory_growth(folder: Path, run_id: str, step: str) -> float:
    small = runs.list_runs(where="name = small", store=open_store(folder))[0]["id"]
    out = run_child(
        _MEMORY_SCRIPT, str(folder), run_id, small, step, timeout=300, **{STORE_DIR: str(folder)}
    )
    return float(json.loads(out.splitlines()[-1])["grew_mb"])


NO_PROC = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")


@pytest.mark.slow
@NO_PROC
@pytest.mark.parametrize("step", ["detail", "compare", "show", "all-points"])
def test_memory_does_not_grow_with_the_series(big_store: tuple[Path, str], step: str) -> None:
    folder, run_id = big_store
    assert _memory_growth(folder, run_id, step) < 50


@pytest.mark.slow
@NO_PROC
def test_the_memory_bound_would_catch_a_full_load(big_store: tuple[Path, str]) -> None:
    # The bound above is sound: reading the whole series as ``to_dict(full=True)`` does
    # grows memory far past it.
    folder, run_id = big_store
    assert _memory_growth(folder, run_id, "full") > 200


def test_all_points_stream_as_the_same_json() -> None:
    store = open_store()
    run = runs.start_run(name="streamed", store=store)
    for step in range(5_000):
        run.log_metric("loss", float("nan") if step == 7 else 1.0 / (step + 1), step=step)
    run.log_metrics({"acc": 0.5, "f1": float("inf")})
    run.end()
    result = CliRunner().invoke(cli, ["show", run.id, "--format", "json", "--all-points"])
    assert result.exit_code == 0, result.output
    streamed = json.loads(result.output)
    whole = json.loads(json.dumps(json_ready(runs.get_run(run.id, store=store).to_dict(full=True))))
    assert streamed.pop("metric_series_length") == {"acc": 1, "f1": 1, "loss": 5_000}
    assert streamed == whole
    assert streamed["metric_series"]["loss"][7]["value"] == "nan"

    thinned = json.loads(CliRunner().invoke(cli, ["show", run.id, "--format", "json"]).output)
    assert len(thinned["metric_series"]["loss"]) <= api.DEFAULT_POINTS
    assert thinned["metric_series_length"]["loss"] == 5_000


# -- the command line --------------------------------------------------------------------------


def test_arguments_that_are_not_utf8_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["show", "caf\udce9"])
    assert result.exit_code == 2
    assert result.output == "Error: argument 2 (b'caf\\xe9') is not valid UTF-8\n"
    # A lone surrogate no byte decodes to (from Python, not a shell) is escaped as it is.
    result = CliRunner().invoke(cli, ["show", "\udd00"])
    assert result.exit_code == 2
    assert result.output == "Error: argument 2 (b'\\\\udd00') is not valid UTF-8\n"
    # Through a real process, as a shell passes bytes.
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "runs", "--where", b"name = \xff\xfe"],
        env=child_env(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "Error: argument 3 (b'name = \\xff\\xfe') is not valid UTF-8"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "--limit", str(10**30)], "Invalid value for '--limit'"),
        (["runs", "--limit", "0"], "Invalid value for '--limit'"),
        (["runs", "--where", "metrics.a > 1e999"], "out of range"),
        (["runs", "--where", " or ".join(["name = a"] * 200)], "comparisons"),
        (["runs", "--where", "name = " + "x" * 10_000], "longer than 4,000 characters"),
    ],
)
def test_bad_numbers_and_sizes_are_clear(args: list[str], message: str) -> None:
    make_run(open_store(), "one")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_huge_whole_number_in_where_is_compared() -> None:
    store = open_store()
    make_run(store, "huge", metrics={"a": 1e25})
    make_run(store, "tiny", metrics={"a": 1.0})
    result = CliRunner().invoke(
        cli, ["runs", "--where", "metrics.a > 100000000000000000000", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.output)["runs"]] == ["huge"]
    result = CliRunner().invoke(cli, ["runs", "--limit", str(MAX_LIMIT)])
    assert result.exit_code == 0


# Any text an argument can hold: no NUL (argv cannot carry one), lone surrogates included.
ARGUMENT = st.text(
    st.characters(exclude_categories=(), exclude_characters="\x00"), max_size=40
) | st.sampled_from(["metrics.a > " + "9" * 30, "params.x = 1e999", "name ~ ''", "-1", str(2**64)])
WHERE_PIECES = [
    "metrics.acc", "params.lr", "tags.t", "name", "status", "=", ">", "<=", "~", "and", "or",
    "not", "(", ")", "9" * 25, "-" + "9" * 400, "1e308", "1e309", "0.5", "'x'", "\udcff", "null",
]  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(
        [["show"], ["diff", "lr"], ["runs", "--where"], ["runs", "--notebook"], ["runs", "--limit"]]
    ),
    ARGUMENT,
)
def test_fuzz_arguments_never_give_a_traceback(command: list[str], argument: str) -> None:
    store = open_store()
    if not store.list_runs(limit=1):
        make_run(store, "lr", metrics={"acc": 0.5})
    result = CliRunner().invoke(cli, [*command, argument])
    assert result.exit_code in (0, 2), (command, argument, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 2:
        assert "Error" in result.output and "Traceback" not in result.output


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(WHERE_PIECES), min_size=1, max_size=12))
def test_fuzz_where_runs_or_is_one_line(pieces: list[str]) -> None:
    store = open_store()
    if not store.list_runs(limit=1):
        make_run(store, "one", params={"lr": 0.1}, metrics={"acc": 0.5})
    text = " ".join(pieces)
    try:
        runs.list_runs(where=text, store=store)
        runs.count_runs(where=text, store=store)
    except ExpressionError as exc:
        assert len(str(exc).splitlines()) == 1
