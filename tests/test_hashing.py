"""Content hashes, data profiles and output sanitizing, on real arrays, frames, tables and files."""

from __future__ import annotations

import os
import pickle
import re
import threading
from collections import OrderedDict, deque, namedtuple
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from jupyter_mlops.errors import UnhashableError
from jupyter_mlops.hashing import (
    TOO_LARGE,
    content_hash,
    hash_bytes,
    hash_file,
    is_data,
)
from jupyter_mlops.profiles import describe

from .conftest import run_child

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def assert_same(make: Callable[[], object]) -> str:
    """Two separately built, equal objects hash equal; return the hash."""
    first, second = make(), make()
    assert first is not second
    digest = content_hash(first)
    assert HEX32.match(digest)
    assert content_hash(second) == digest
    return digest


def assert_all_differ(*objects: object) -> None:
    digests = [content_hash(o) for o in objects]
    assert len(set(digests)) == len(digests), digests


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.5, 2.5, np.nan, 4.0],
            "n": [1, 2, 3, 4],
            "s": ["a", "bb", None, "dddd"],
            "o": pd.Series(["p", None, "q", "r"], dtype=object),
            "c": pd.Categorical(["u", "v", "u", "w"]),
            "t": pd.date_range("2024-01-01", periods=4, freq="h", tz="Europe/Paris"),
            "d": pd.date_range("2024-01-01", periods=4, freq="D"),
            "i": pd.array([10, None, 30, 40], dtype="Int64"),
            "b": pd.array([True, False, None, True], dtype="boolean"),
        }
    )


# -- numpy -----------------------------------------------------------------------------------


def test_array_hash_depends_on_values_dtype_and_shape() -> None:
    base = assert_same(lambda: np.arange(24, dtype=np.int64).reshape(4, 6))
    changed = np.arange(24, dtype=np.int64).reshape(4, 6)
    changed[3, 5] = -1
    assert content_hash(changed) != base
    assert content_hash(np.arange(24, dtype=np.int64).reshape(6, 4)) != base
    assert content_hash(np.arange(24, dtype=np.int32).reshape(4, 6)) != base
    assert content_hash(np.arange(24, dtype=np.float64).reshape(4, 6)) != base


def test_array_is_not_its_buffer_bytes() -> None:
    values = np.arange(8, dtype=np.int64)
    assert content_hash(values) != content_hash(values.tobytes())
    assert content_hash(values) != hash_bytes(values.tobytes())


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[:, ::2],
        lambda a: a.T,
        lambda a: a[::-1],
        lambda a: np.asfortranarray(a),
        lambda a: a[1:3, 2:5],
    ],
    ids=["step", "transpose", "reversed", "fortran", "block"],
)
def test_non_contiguous_array_hashes_like_its_contiguous_copy(
    view: Callable[[np.ndarray], np.ndarray],
) -> None:
    source = np.arange(60, dtype=np.float64).reshape(6, 10)
    part = view(source)
    assert content_hash(part) == content_hash(np.ascontiguousarray(part))


def test_byte_order_is_layout_not_content() -> None:
    values = np.arange(10, dtype="<i8")
    assert content_hash(values) == content_hash(values.astype(">i8"))


def test_structured_arrays_ignore_padding() -> None:
    def make(align: bool) -> np.ndarray:
        dtype = np.dtype([("a", "u1"), ("b", "f8")], align=align)
        out = np.zeros(3, dtype=dtype)
        out["a"] = [1, 2, 3]
        out["b"] = [0.5, 1.5, 2.5]
        return out

    packed, aligned = make(False), make(True)
    assert aligned.dtype.itemsize != packed.dtype.itemsize
    assert content_hash(packed) == content_hash(aligned)
    changed = make(False)
    changed["b"][1] = 9.0
    assert content_hash(changed) != content_hash(packed)


def test_object_and_datetime_arrays() -> None:
    assert_same(lambda: np.array(["a", None, "ccc"], dtype=object))
    assert_same(lambda: np.array([1, "two", 3.0, None, (4, 5)], dtype=object))
    assert_all_differ(
        np.array(["a", "b"], dtype=object),
        np.array(["a", "c"], dtype=object),
        np.array([1, "b"], dtype=object),
        np.array(["a", "b"]),
    )
    days = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]")
    assert content_hash(days) == content_hash(days.copy())
    assert content_hash(days) != content_hash(days + 1)


def test_numpy_scalars_masked_arrays_and_memmaps(tmp_path: Path) -> None:
    assert content_hash(np.float64(1.5)) != content_hash(1.5)
    assert content_hash(np.int64(1)) != content_hash(np.int32(1))
    hidden_a = np.ma.array([1, 2, 3], mask=[False, True, False])
    hidden_b = np.ma.array([1, 99, 3], mask=[False, True, False])
    assert content_hash(hidden_a) == content_hash(hidden_b)
    assert content_hash(hidden_a) != content_hash(np.ma.array([1, 2, 3]))
    mapped = np.memmap(tmp_path / "m.bin", dtype=np.int16, mode="w+", shape=(5,))
    mapped[:] = [1, 2, 3, 4, 5]
    assert content_hash(mapped) == content_hash(np.array([1, 2, 3, 4, 5], dtype=np.int16))


# -- pandas ----------------------------------------------------------------------------------


def test_frame_hash_is_stable_and_layout_free() -> None:
    base = assert_same(sample_frame)
    # Built column by column (separate blocks, different chunking) it is the same content.
    rebuilt = pd.DataFrame(index=pd.RangeIndex(4))
    for name, column in sample_frame().items():
        rebuilt[name] = column
    assert content_hash(rebuilt) == base
    halves = sample_frame()
    halves["s"] = pd.concat([halves["s"].iloc[:2], halves["s"].iloc[2:]])
    assert content_hash(halves) == base


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [
        ("x", 0, 1.25),
        ("n", 1, 20),
        ("s", 0, "A"),
        ("s", 2, "now here"),
        ("o", 3, "R"),
        ("c", 1, "w"),
        ("t", 2, pd.Timestamp("2030-01-01", tz="Europe/Paris")),
        ("d", 3, pd.Timestamp("1999-01-01")),
        ("i", 1, 20),
        ("b", 2, False),
    ],
)
def test_one_value_change_changes_frame_hash(column: str, row: int, value: object) -> None:
    changed = sample_frame()
    changed.loc[row, column] = value
    assert content_hash(changed) != content_hash(sample_frame())


def test_frame_index_names_and_dtypes_are_content() -> None:
    base = sample_frame()
    assert_all_differ(
        base,
        base.set_axis([0, 1, 2, 5]),
        base.set_axis(["a", "b", "c", "d"]),
        base.rename(columns={"x": "y"}),
        base.astype({"n": "float64"}),
        base.astype({"n": "Int64"}),
        base.astype({"c": "str"}),
        base.astype({"o": "str"}),
        base[list(reversed(base.columns))],
        base.iloc[:3],
    )
    timezones = sample_frame()
    timezones["t"] = timezones["t"].dt.tz_convert("UTC")
    assert content_hash(timezones) != content_hash(base)


def test_frame_ignores_values_hidden_under_a_mask() -> None:
    first = pd.arrays.IntegerArray(np.array([1, 5, 3]), np.array([False, True, False]))
    second = pd.arrays.IntegerArray(np.array([1, 7, 3]), np.array([False, True, False]))
    assert content_hash(pd.Series(first)) == content_hash(pd.Series(second))


def test_series_and_index() -> None:
    assert_same(lambda: pd.Series([1.0, 2.0], name="v", index=["a", "b"]))
    assert_all_differ(
        pd.Series([1.0, 2.0], name="v"),
        pd.Series([1.0, 2.0], name="w"),
        pd.Series([1.0, 2.0]),
        pd.Series([1.0, 2.5], name="v"),
        pd.Series([1.0, 2.0], name="v", index=[1, 0]),
        pd.Index([1.0, 2.0], name="v"),
    )
    assert_all_differ(pd.RangeIndex(5), pd.RangeIndex(6), pd.Index(["a", "b"]))
    multi = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "j"])
    assert content_hash(multi) == content_hash(multi.copy())
    assert content_hash(multi) != content_hash(multi.set_names(["k", "x"]))
    ordered = pd.Series(pd.Categorical(["a", "b"], ordered=True))
    assert content_hash(ordered) != content_hash(pd.Series(pd.Categorical(["a", "b"])))


def test_other_extension_dtypes_hash() -> None:
    assert_same(lambda: pd.Series(pd.period_range("2024-01", periods=3, freq="M")))
    assert_same(lambda: pd.Series(pd.interval_range(0, 3)))
    assert_same(lambda: pd.Series(pd.arrays.SparseArray([0, 0, 1])))
    assert_same(lambda: pd.Series([1.5, None], dtype="float64[pyarrow]"))


# -- polars and pyarrow ----------------------------------------------------------------------


def test_polars_frames_and_series() -> None:
    def make() -> pl.DataFrame:
        return pl.DataFrame(
            {
                "a": [1, 2, 3],
                "s": ["x", None, "z"],
                "c": pl.Series(["u", "v", "u"], dtype=pl.Categorical),
            }
        )

    base = assert_same(make)
    assert content_hash(make().with_columns(pl.lit(9).alias("a"))) != base
    assert content_hash(make().rename({"a": "b"})) != base
    assert content_hash(make().with_columns(pl.col("a").cast(pl.Float64))) != base
    assert_same(lambda: pl.Series("v", [1.0, None]))
    # An Object column's Arrow form is a column of addresses: its values must be hashed instead.
    assert_same(lambda: pl.DataFrame({"o": pl.Series([1.5, "x", None], dtype=pl.Object)}))
    assert content_hash(pl.Series([1.5, "x"], dtype=pl.Object)) != content_hash(
        pl.Series([1.5, "y"], dtype=pl.Object)
    )
    assert content_hash(pl.Series("v", [1.0, None])) != content_hash(pl.Series("w", [1.0, None]))


def test_arrow_hash_ignores_chunking_slicing_and_offset_width() -> None:
    text = pa.array(["aa", None, "b", "", "cccc", "d"])
    chunked = pa.chunked_array([text[:2], text[2:4], text[4:]])
    assert content_hash(chunked) == content_hash(pa.chunked_array([text]))
    assert content_hash(text[1:]) == content_hash(pa.array(text[1:].to_pylist()))
    assert content_hash(text) == content_hash(text.cast(pa.large_string()))
    numbers = pa.array([1, None, 3, 4])
    assert content_hash(numbers[1:]) == content_hash(pa.array([None, 3, 4]))
    nested = pa.array([[1, 2], None, [3]])
    assert content_hash(nested[1:]) == content_hash(pa.array([None, [3]]))
    assert_all_differ(text, pa.array(["aa", None, "b", "", "cccc", "e"]), numbers, nested)


def test_arrow_tables_and_batches() -> None:
    def make() -> pa.Table:
        return pa.table({"a": [1, 2], "s": ["x", "y"]})

    base = assert_same(make)
    assert content_hash(pa.concat_tables([make().slice(0, 1), make().slice(1)])) == base
    assert_all_differ(
        make(),
        make().rename_columns(["a", "t"]),
        pa.table({"a": [1, 3], "s": ["x", "y"]}),
        make().to_batches()[0],
        make().column("a"),
    )


# -- builtins and containers -----------------------------------------------------------------


def test_scalars_text_and_bytes() -> None:
    assert_all_differ(1, 1.0, True, "1", b"1", None, 0, False, 2**100, -(2**100), 1 + 0j)
    assert content_hash(b"ab") == content_hash(bytearray(b"ab")) == content_hash(memoryview(b"ab"))
    assert content_hash("ab") != content_hash("ac")
    assert content_hash(float("nan")) == content_hash(float("nan"))
    assert hash_bytes("héllo") == hash_bytes("héllo".encode())
    assert HEX32.match(hash_bytes(b""))


def test_containers_nested_and_order() -> None:
    def make() -> dict[str, object]:
        return {"lr": 0.1, "layers": [64, 32], "tags": {"a", "b"}, "extra": {"x": (1, None)}}

    base = assert_same(make)
    reordered = {"extra": {"x": (1, None)}, "tags": {"b", "a"}, "layers": [64, 32], "lr": 0.1}
    assert content_hash(reordered) == base
    changed = make()
    changed["extra"] = {"x": (2, None)}
    assert content_hash(changed) != base
    assert_all_differ([1, 2], [2, 1], (1, 2), {1, 2}, frozenset({1, 2}), {1: 2})
    point = namedtuple("point", "x y")
    assert content_hash(point(1, 2)) != content_hash((1, 2))
    assert content_hash(OrderedDict(a=1)) != content_hash({"a": 1})
    assert content_hash([np.arange(3), pd.Series([1])]) == content_hash(
        [np.arange(3), pd.Series([1])]
    )


class Model:
    """A plain object: it goes through pickle, with its set and array hashed by content."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.vocabulary = {"alpha", "beta", "gamma", "delta"}
        self.weights = np.arange(4.0)


def test_plain_objects_hash_by_pickled_content() -> None:
    assert content_hash(Model(1.0)) == content_hash(Model(1.0))
    assert content_hash(Model(1.0)) != content_hash(Model(2.0))
    other = Model(1.0)
    other.weights[0] = 5.0
    assert content_hash(other) != content_hash(Model(1.0))


@pytest.mark.parametrize(
    ("make", "type_name"),
    [
        (lambda: lambda x: x, "function"),
        (lambda: (i for i in range(3)), "generator"),
        (lambda: threading.Lock(), "lock"),
    ],
    ids=["lambda", "generator", "lock"],
)
def test_unpicklable_objects_raise_a_clear_error(
    make: Callable[[], object], type_name: str
) -> None:
    with pytest.raises(UnhashableError, match="cannot be pickled") as caught:
        content_hash(make())
    assert type_name in caught.value.type_name
    assert str(caught.value).startswith(f"cannot hash a {caught.value.type_name}: ")


class Pair:
    """Two values: shared or not, equal content must hash the same."""

    def __init__(self, first: object, second: object) -> None:
        self.first = first
        self.second = second


class KeepsItsAddress:
    def __init__(self) -> None:
        self.key = id(self)


def test_shared_references_are_not_content() -> None:
    text = "".join(["sha", "red"])
    assert content_hash(Pair(text, text)) == content_hash(Pair("shared", "".join(["sh", "ared"])))
    inner = (1, 2)
    assert content_hash(Pair(inner, inner)) == content_hash(Pair((1, 2), (1, 2)))
    # A pickled copy (other objects, other sharing) hashes as the original.
    forest = Pair([Model(1.0), Model(1.0)], {"a": np.arange(3)})
    assert content_hash(pickle.loads(pickle.dumps(forest))) == content_hash(forest)


def test_a_pickle_holding_identity_raises() -> None:
    with pytest.raises(UnhashableError, match="identity"):
        content_hash(KeepsItsAddress())
    with pytest.raises(UnhashableError, match="identity"):
        content_hash([1, KeepsItsAddress()])
    # An int that happens to be large is content.
    assert content_hash(Pair(2**40 + 16, 1)) == content_hash(Pair(2**40 + 16, 1))


def test_work_can_be_bounded_and_paths_taken_as_names(tmp_path: Path) -> None:
    with pytest.raises(UnhashableError, match=TOO_LARGE):
        content_hash(list(range(1001)), max_items=1000)
    with pytest.raises(UnhashableError, match=TOO_LARGE):
        content_hash({"a": [0] * 600, "b": [0] * 600}, max_items=1000)
    with pytest.raises(UnhashableError, match=TOO_LARGE):
        content_hash(deque([b"x" * 10_000]), max_pickle_bytes=1000)
    assert content_hash(list(range(1000)), max_items=1000) == content_hash(list(range(1000)))
    # Arrays are not counted item by item.
    assert content_hash(np.arange(10**6), max_items=10) == content_hash(np.arange(10**6))
    missing = tmp_path / "not-yet.csv"
    assert content_hash(missing, read_paths=False) != content_hash(str(missing))
    with pytest.raises(UnhashableError, match="does not exist"):
        content_hash(missing)


def test_self_containing_list_raises() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(UnhashableError, match="contains itself"):
        content_hash(loop)


def test_huge_string_hashes() -> None:
    text = "x" * (50 * 1024 * 1024)
    digest = content_hash(text)
    assert HEX32.match(digest)
    assert content_hash(text[:-1] + "y") != digest


# -- files and folders -----------------------------------------------------------------------


def test_file_hash_is_its_content_not_its_path_or_mtime(tmp_path: Path) -> None:
    first = tmp_path / "a.bin"
    second = tmp_path / "elsewhere" / "b.bin"
    second.parent.mkdir()
    payload = os.urandom(3 * 1024 * 1024 + 17)  # spans several 1 MiB reads
    first.write_bytes(payload)
    second.write_bytes(payload)
    assert content_hash(first) == content_hash(second)
    assert hash_file(first) == hash_bytes(payload)
    before = content_hash(first)
    os.utime(first, (1_000_000_000, 1_000_000_000))
    assert content_hash(first) == before
    first.write_bytes(payload[:-1] + b"\0")
    assert content_hash(first) != before
    assert content_hash(first) != content_hash(first.read_bytes())


def test_a_str_is_text_not_a_path(tmp_path: Path) -> None:
    file = tmp_path / "data.txt"
    file.write_text("content")
    assert content_hash(str(file)) != content_hash(file)
    assert content_hash(str(file)) == content_hash(str(file))
    assert describe(str(file)).kind == "text"


def test_folder_hash_follows_names_and_contents(tmp_path: Path) -> None:
    def build(root: Path) -> Path:
        (root / "sub").mkdir(parents=True)
        (root / "a.txt").write_text("alpha")
        (root / "sub" / "b.txt").write_text("beta")
        return root

    base = content_hash(build(tmp_path / "one"))
    assert content_hash(build(tmp_path / "two")) == base
    folder = tmp_path / "one"
    os.utime(folder / "a.txt", (1_000_000_000, 1_000_000_000))
    assert content_hash(folder) == base
    (folder / "a.txt").rename(folder / "c.txt")
    renamed = content_hash(folder)
    assert renamed != base
    (folder / "c.txt").write_text("alpha!")
    assert content_hash(folder) != renamed
    (folder / "empty").mkdir()
    assert content_hash(tmp_path / "two") == base


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(UnhashableError, match="does not exist"):
        content_hash(tmp_path / "nope.csv")


# -- across processes ------------------------------------------------------------------------

_CHILD = """
import numpy as np, pandas as pd
from jupyter_mlops.hashing import content_hash
frame = pd.DataFrame({
    "x": np.linspace(0, 1, 50),
    "s": [f"user_{i % 7}" for i in range(50)],
    "c": pd.Categorical([("a", "b")[i % 2] for i in range(50)]),
    "t": pd.date_range("2024-01-01", periods=50, freq="h", tz="UTC"),
})
params = {"words": {"alpha", "beta", "gamma", "delta"}, "n": [1, 2.5, None]}
print(content_hash(frame), content_hash(np.arange(100).reshape(10, 10).T), content_hash(params))
"""
# A plain object pickles its set in hash-seed order unless hashed by content.
_CHILD_OBJECT = """
class Vocabulary:
    def __init__(self):
        self.words = {f"word{i}" for i in range(50)}
        # Built by iterating the set: its insertion order follows the hash seed.
        self.counts = {w: len(w) for w in self.words}
print(content_hash(Vocabulary()))
"""


def test_hashes_are_equal_across_processes() -> None:
    outputs = []
    for seed in ("1", "12345"):
        outputs.append(run_child(_CHILD + _CHILD_OBJECT, timeout=120, PYTHONHASHSEED=seed).split())
    namespace: dict[str, object] = {}
    exec(_CHILD.replace("print(", "result = ("), namespace)
    here = namespace["result"]
    assert isinstance(here, tuple)
    assert outputs[0] == outputs[1]
    assert outputs[0][:3] == list(here)


def test_import_loads_no_data_library() -> None:
    code = (
        "import sys, jupyter_mlops.hashing\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'polars') if m in sys.modules))"
    )
    assert run_child(code).strip() == "[]"


# -- is_data ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        np.arange(3),
        np.ma.array([1]),
        pd.DataFrame({"a": [1]}),
        pd.Series([1]),
        pd.Index([1]),
        pd.RangeIndex(3),
        pl.DataFrame({"a": [1]}),
        pl.Series([1]),
        pa.table({"a": [1]}),
        pa.record_batch({"a": [1]}),
        pa.array([1]),
        pa.array(["x"]),
        pa.chunked_array([[1]]),
    ],
)
def test_is_data_true(obj: object) -> None:
    assert is_data(obj)


@pytest.mark.parametrize(
    "obj",
    [1, 1.5, "text", b"raw", [1, 2], {"a": 1}, None, np.int64(3), Path("x.csv"), Model(1.0)],
)
def test_is_data_false(obj: object) -> None:
    assert not is_data(obj)
