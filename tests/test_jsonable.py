"""JSON coercion: NaN and the infinities as text (or NaN as null), everything else untouched."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from jupyter_mlops.jsonable import NAN_TEXT, json_float, json_ready, json_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, 1.5), (-0.0, -0.0), (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan")],
)
def test_a_float_as_text_when_not_finite(value: float, expected: object) -> None:
    assert json_float(value) == expected
    assert NAN_TEXT == "nan"


def test_nan_follows_the_policy_infinities_do_not() -> None:
    assert json_float(math.nan, nan=None) is None
    assert json_float(math.inf, nan=None) == "inf"
    assert json_float(2.0, nan=None) == 2.0


def test_numpy_floats_are_floats() -> None:
    assert json_float(np.float64("nan")) == "nan"
    assert json_float(np.float64(3.0)) == 3.0


def test_json_ready_walks_mappings_and_sequences() -> None:
    value = {1: [math.nan, (math.inf, 2)], "b": {"c": -math.inf}, "d": None, "e": "x"}
    assert json_ready(value) == {"1": ["nan", ["inf", 2]], "b": {"c": "-inf"}, "d": None, "e": "x"}
    assert json_ready([math.nan], nan=None) == [None]
    assert json_ready(True) is True and json_ready(3) == 3


def test_json_ready_leaves_the_input_alone() -> None:
    value = {"a": [math.nan]}
    json_ready(value)
    assert math.isnan(value["a"][0])


def test_json_text_is_strict_json() -> None:
    text = json_text({"a": math.nan, "p": Path("x/y"), "n": [math.inf]})
    assert json.loads(text) == {"a": "nan", "p": "x/y", "n": ["inf"]}
    assert "NaN" not in text and "Infinity" not in text
    assert json_text({"a": 1}, indent=2) == '{\n  "a": 1\n}'
