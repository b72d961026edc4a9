"""The exception tree: each error carries the code and status the REST API answers with."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops import errors
from jupyter_mlops.errors import (
    ApiError,
    ExpressionError,
    MlopsError,
    ModelNotFoundError,
    RunNotFoundError,
    StoreLockedError,
)
from jupyter_mlops.store import Store

from .server_fixtures import UNKNOWN_ID, assert_error, get_json, make_run

# The API's stable words (openapi.yaml): a class's code and status as the server sends them.
EXPECTED = {
    "MlopsError": ("bad_request", 400),
    "StoreNotFoundError": ("no_store", 404),
    "RunNotFoundError": ("run_not_found", 404),
    "ModelNotFoundError": ("not_found", 404),
    "AmbiguousRunError": ("ambiguous_run", 400),
    "NoActiveRunError": ("bad_request", 400),
    "InvalidValueError": ("invalid_value", 400),
    "UnhashableError": ("bad_request", 400),
    "ExpressionError": ("bad_expression", 400),
    "MagicUsageError": ("bad_request", 400),
    "ReplayNotFoundError": ("replay_not_found", 404),
    "StoreError": ("bad_request", 400),
    "StoreReadOnlyError": ("bad_request", 400),
    "StoreFullError": ("bad_request", 400),
    "StoreLockedError": ("bad_request", 400),
    "StoreCorruptError": ("bad_request", 400),
    "StoreGoneError": ("bad_request", 400),
    "RunVanishedError": ("bad_request", 400),
}


def _error_classes() -> dict[str, type[MlopsError]]:
    return {
        name: value
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, MlopsError) and value is not ApiError
    }


def test_every_class_is_exported_and_has_an_expected_code() -> None:
    classes = _error_classes()
    assert set(classes) == set(EXPECTED)
    assert set(errors.__all__) == set(EXPECTED) | {"ApiError"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_class_carries_its_code_and_status(name: str) -> None:
    cls = _error_classes()[name]
    code, status = EXPECTED[name]
    assert (cls.code, cls.http_status) == (code, status)
    # Written on the class itself, not left to a parent: a new child names its own.
    assert "code" in vars(cls) and "http_status" in vars(cls)


def test_instances_keep_their_class_fields_and_data() -> None:
    error = RunNotFoundError("abc")
    assert (error.code, error.http_status, error.ref) == ("run_not_found", 404, "abc")
    locked = StoreLockedError("/x/tracking.db", 2.5)
    assert locked.code == "bad_request" and locked.path == "/x/tracking.db"
    assert locked.waited == 2.5 and "waited 2.5 s" in str(locked)
    model = ModelNotFoundError("m@prod", "no alias prod")
    assert model.http_status == 404 and "no alias prod" in str(model)


def test_an_api_error_takes_its_status_and_code_per_instance() -> None:
    error = ApiError(429, "too_many_replays", "wait")
    assert isinstance(error, MlopsError)
    assert (error.http_status, error.code, str(error)) == (429, "too_many_replays", "wait")
    # The class's own answer is the base's: an instance's fields never leak to the class.
    assert (ApiError.code, ApiError.http_status) == ("bad_request", 400)


async def test_the_server_answers_with_the_class_fields(jp_fetch: Any, server_store: Store) -> None:
    make_run(server_store, "one")
    code, body = await get_json(jp_fetch, "runs", UNKNOWN_ID)
    assert_error(code, body, RunNotFoundError.http_status, RunNotFoundError.code)
    code, body = await get_json(jp_fetch, "runs", params={"where": "name ="})
    assert_error(code, body, ExpressionError.http_status, ExpressionError.code)
    assert body["message"].startswith("bad expression at column")


async def test_the_server_answers_a_missing_store(jp_fetch: Any, server_root: Path) -> None:
    code, body = await get_json(jp_fetch, "runs", UNKNOWN_ID)
    assert_error(code, body, errors.StoreNotFoundError.http_status, "no_store")


async def test_a_refused_method_has_the_same_shape(jp_fetch: Any, server_store: Store) -> None:
    code, body = await get_json(jp_fetch, "compare", method="DELETE")
    assert_error(code, body, 405, "http_405")
