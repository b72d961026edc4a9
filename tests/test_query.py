"""The filter expression language: exact trees, precedence, errors at the right spot, fuzzing."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_mlops.errors import ExpressionError, MlopsError
from jupyter_mlops.query import (
    FIELDS,
    KEYED_FIELDS,
    MAX_COMPARISONS,
    MAX_LENGTH,
    OPERATORS,
    BoolOp,
    Comparison,
    Node,
    Not,
    fields_used,
    parse_expression,
)


def cmp(field: str, op: str, value: object, position: int, key: str | None = None) -> Comparison:
    """A Comparison, written field-first as it reads in an expression."""
    return Comparison(field, key, op, value, position)  # type: ignore[arg-type]


def and_(left: Node, right: Node) -> BoolOp:
    return BoolOp("and", left, right)


def or_(left: Node, right: Node) -> BoolOp:
    return BoolOp("or", left, right)


def depth(node: Node) -> int:
    """Levels of the tree, counted without recursion."""
    deepest = 0
    pending: list[tuple[Node, int]] = [(node, 1)]
    while pending:
        current, level = pending.pop()
        deepest = max(deepest, level)
        if isinstance(current, BoolOp):
            pending += [(current.left, level + 1), (current.right, level + 1)]
        elif isinstance(current, Not):
            pending.append((current.operand, level + 1))
    return deepest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status = finished", cmp("status", "=", "finished", 0)),
        ("metrics.acc > 0.9", cmp("metrics", ">", 0.9, 0, "acc")),
        ("metrics.acc>=0.9", cmp("metrics", ">=", 0.9, 0, "acc")),
        ("  params.lr <= 0.01", cmp("params", "<=", 0.01, 2, "lr")),
        ("params.epochs = 10", cmp("params", "=", 10, 0, "epochs")),
        ("params.lr = 1e-3", cmp("params", "=", 0.001, 0, "lr")),
        ("metrics.loss < -1", cmp("metrics", "<", -1, 0, "loss")),
        ("metrics.loss < -2.5E+3", cmp("metrics", "<", -2500.0, 0, "loss")),
        ("metrics.acc > .5", cmp("metrics", ">", 0.5, 0, "acc")),
        ("metrics.acc != +3", cmp("metrics", "!=", 3, 0, "acc")),
        ("metrics.acc = null", cmp("metrics", "=", None, 0, "acc")),
        ("params.seed == 42", cmp("params", "=", 42, 0, "seed")),
        ("params.flag = true", cmp("params", "=", True, 0, "flag")),
        ("params.flag != FALSE", cmp("params", "!=", False, 0, "flag")),
        ('params.flag = "true"', cmp("params", "=", "true", 0, "flag")),
        ("params.model = rf", cmp("params", "=", "rf", 0, "model")),
        ("params.version = 1.2.3", cmp("params", "=", "1.2.3", 0, "version")),
        ("params.opt = null", cmp("params", "=", None, 0, "opt")),
        ("params.lr ~ 0.1", cmp("params", "~", "0.1", 0, "lr")),
        ("name = rf-baseline", cmp("name", "=", "rf-baseline", 0)),
        ("name ~ 'rf'", cmp("name", "~", "rf", 0)),
        ("name ~ 2024", cmp("name", "~", "2024", 0)),
        ("name != 'a b'", cmp("name", "!=", "a b", 0)),
        ("name < m", cmp("name", "<", "m", 0)),
        ("status > f", cmp("status", ">", "f", 0)),
        (r'name = "say \"hi\"\n"', cmp("name", "=", 'say "hi"\n', 0)),
        (r"name = 'it\'s'", cmp("name", "=", "it's", 0)),
        (r'notebook = "C:\data\a.ipynb"', cmp("notebook", "=", r"C:\data\a.ipynb", 0)),
        ("notebook = notebooks/a.ipynb", cmp("notebook", "=", "notebooks/a.ipynb", 0)),
        ("Status = FINISHED", cmp("status", "=", "finished", 0)),
        ("kind = replay", cmp("kind", "=", "replay", 0)),
        ("id = 12e4", cmp("id", "=", "12e4", 0)),
        ("id ~ 3f2a", cmp("id", "~", "3f2a", 0)),
        ("sweep = 0a1b", cmp("sweep", "=", "0a1b", 0)),
        ("parent = null", cmp("parent", "=", None, 0)),
        ("parent != NULL", cmp("parent", "!=", None, 0)),
        ('tags.team = "vision"', cmp("tags", "=", "vision", 0, "team")),
        ("tags.v = 1.10", cmp("tags", "=", "1.10", 0, "v")),
        ("tags.reviewed = true", cmp("tags", "=", "true", 0, "reviewed")),
        ("metrics.val/loss < 0.3", cmp("metrics", "<", 0.3, 0, "val/loss")),
        ("params.model.depth >= 4", cmp("params", ">=", 4, 0, "model.depth")),
        ("Params.LR = 1", cmp("params", "=", 1, 0, "LR")),
        ('params."my key" = 3', cmp("params", "=", 3, 0, "my key")),
        ("tags.'a=b' = x", cmp("tags", "=", "x", 0, "a=b")),
        ("params.big = " + "9" * 30, cmp("params", "=", float("9" * 30), 0, "big")),
        ("metrics.tiny > 1e-999", cmp("metrics", ">", 0.0, 0, "tiny")),
    ],
)
def test_single_comparisons(text: str, expected: Comparison) -> None:
    node = parse_expression(text)
    assert node == expected
    assert isinstance(node, Comparison)
    assert type(node.value) is type(expected.value)


def test_the_design_example() -> None:
    text = "metrics.acc > 0.9 and params.lr <= 0.01 and status = finished"
    assert parse_expression(text) == and_(
        and_(cmp("metrics", ">", 0.9, 0, "acc"), cmp("params", "<=", 0.01, 22, "lr")),
        cmp("status", "=", "finished", 44),
    )


A, B, C, D = (cmp("name", "=", letter, 0) for letter in "abcd")


def at(node: Comparison, position: int) -> Comparison:
    return Comparison(node.field, node.key, node.op, node.value, position)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = a or name = b and name = c", or_(A, and_(at(B, 12), at(C, 25)))),
        ("name = a and name = b or name = c", or_(and_(A, at(B, 13)), at(C, 25))),
        ("not name = a and name = b", and_(Not(at(A, 4)), at(B, 17))),
        ("not (name = a or name = b)", Not(or_(at(A, 5), at(B, 17)))),
        ("(name = a or name = b) and name = c", and_(or_(at(A, 1), at(B, 13)), at(C, 27))),
        ("name = a and (name = b or name = c)", and_(A, or_(at(B, 14), at(C, 26)))),
        ("not not name = a", Not(Not(at(A, 8)))),
        ("((name = a))", at(A, 2)),
        ("name = a and name = b and name = c", and_(and_(A, at(B, 13)), at(C, 26))),
        ("name = a AND name = b Or NOT name = c", or_(and_(A, at(B, 13)), Not(at(C, 29)))),
        (
            "name = a or name = b or name = c or name = d",
            or_(or_(A, at(B, 12)), or_(at(C, 24), at(D, 36))),
        ),
        ("(name=a)and(name=b)", and_(at(A, 1), at(B, 12))),
    ],
)
def test_precedence_and_parentheses(text: str, expected: Node) -> None:
    assert parse_expression(text) == expected


def test_long_chains_stay_shallow() -> None:
    text = " or ".join(f"id = r{i}" for i in range(MAX_COMPARISONS))
    assert len(text) <= MAX_LENGTH
    node = parse_expression(text)
    assert depth(node) <= 8
    assert fields_used(node) == {("id", None)}
    assert repr(node).startswith("BoolOp(op='or'")


def test_size_is_bounded_with_the_spot() -> None:
    many = " or ".join(f"id = r{i}" for i in range(MAX_COMPARISONS + 1))
    with pytest.raises(ExpressionError) as caught:
        parse_expression(many)
    assert caught.value.position == many.rindex("id = ")
    assert f"more than {MAX_COMPARISONS} comparisons" in caught.value.reason

    huge = "name = " + "x" * 100_000
    with pytest.raises(ExpressionError) as caught:
        parse_expression(huge)
    message = str(caught.value)
    assert caught.value.position == MAX_LENGTH and "100,007" in message
    assert len(message) < 300 and len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("metrics.a > 9223372036854775807", 9223372036854775807),
        ("metrics.a > -9223372036854775808", -9223372036854775808),
        ("metrics.a > 9223372036854775808", 9223372036854775808.0),
        ("params.seed = 100000000000000000000", 1e20),
        ("metrics.a < -1e308", -1e308),
    ],
)
def test_numbers_beyond_64_bits_are_floats(text: str, value: float) -> None:
    node = parse_expression(text)
    assert isinstance(node, Comparison)
    assert node.value == value and type(node.value) is type(value)


@pytest.mark.parametrize(
    "number", ["1e999", "-1e400", "9" * 400, "1" + "0" * 3_000, "0.5e99999999999999999999"]
)
def test_numbers_beyond_a_float_are_errors(number: str) -> None:
    for field in ("metrics.a", "params.b"):
        with pytest.raises(ExpressionError) as caught:
            parse_expression(f"{field} >= {number}")
        assert caught.value.position == len(field) + 4
        assert "out of range" in caught.value.reason
        assert len(str(caught.value).splitlines()) == 1


def test_a_lone_surrogate_is_an_error_at_its_spot() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("name = 'a\udcffb'")
    assert caught.value.position == 9 and "not valid Unicode" in caught.value.reason
    str(caught.value).encode("utf-8")  # the message itself can be printed anywhere


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("foo = 1", 0, "unknown field 'foo' (use name, status, notebook, kind"),
        ("status = finished and bar > 1", 22, "unknown field 'bar'"),
        ("metric.acc > 1", 0, "did you mean 'metrics'?"),
        ("0.9 < metrics.acc", 0, "unknown field '0'"),
        ("metrics.acc >", 13, "expected a value after '>'"),
        ("metrics.acc > and status = finished", 14, "expected a value after '>'"),
        ("name = = a", 7, "expected a value after '='"),
        ("name = (a)", 7, "expected a value after '='"),
        ("metrics.acc 0.9", 12, "expected an operator (= != < <= > >= ~) after 'metrics.acc'"),
        ("name", 4, "expected an operator"),
        ("(status = finished", 0, "unbalanced parenthesis: '(' is never closed"),
        ("((status = finished)", 0, "unbalanced parenthesis"),
        ("status = finished)", 17, "unbalanced parenthesis: ')' has no matching '('"),
        ("status = finished name = a", 18, "expected 'and' or 'or'"),
        ("name = 'a'b", 10, "expected 'and' or 'or'"),
        ("(status = finished name = a)", 19, "expected 'and', 'or' or ')'"),
        ("status = finished and", 21, "expected a comparison after 'and'"),
        ("status = finished or or name = a", 21, "expected a comparison after 'or'"),
        ("or status = finished", 0, "expected a comparison at the start"),
        ("not", 3, "expected a comparison after 'not'"),
        ("()", 1, "expected a comparison after '('"),
        ("name = 'abc", 7, "unterminated string"),
        ('name = "abc\\"', 7, "unterminated string"),
        ("name ! a", 5, "'!='"),
        ("= 1", 0, "expected a field before '='"),
        ("'name' = a", 0, "not a quoted string"),
        ("name.x = 1", 4, "field 'name' takes no key"),
        ("params = 1", 6, "'params' needs a key, e.g. params.lr"),
        ("params. = 1", 7, "expected a key after 'params.'"),
        ('params. "x" = 1', 7, "expected a key after 'params.'"),
        ('params."" = 1', 7, "empty key"),
        ("params.a:b = 1", 8, "':' cannot appear in a bare key"),
        ("metrics.acc ~ x", 14, "'~' compares text"),
        ("metrics.acc > high", 14, "expected a number after '>'"),
        ("metrics.acc = 'high'", 14, "expected a number after '='"),
        ("metrics.acc = true", 14, "expected a number"),
        ("params.x < null", 11, "'<' cannot compare with null"),
        ("name ~ null", 7, "'~' cannot compare with null"),
        ("params.flag > true", 14, "not a boolean"),
        ("status = finshed", 9, "unknown status 'finshed' (one of running, finished"),
        ("kind != notebook", 8, "unknown kind 'notebook'"),
        ("name = a\nfoo = b", 9, "expected 'and' or 'or'"),
        ("(" * 100 + "name = a" + ")" * 100, 64, "nested more than 64 levels"),
        ("not " * 100 + "name = a", 256, "nested more than 64 levels"),
    ],
)
def test_errors_point_at_the_spot(text: str, position: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    err = caught.value
    assert isinstance(err, MlopsError)
    assert err.expression == text
    assert err.position == position
    assert reason in err.reason
    assert len(str(err).splitlines()) == 1
    assert str(err).startswith(f"bad expression at column {position + 1}: ")


@pytest.mark.parametrize(
    "key",
    ["lr", "val/loss", "model.depth", "a-b_c", "x.y/z-1", "Ünïcode", "0", "epoch_10/acc"],
)
def test_bare_keys_round_trip(key: str) -> None:
    for field in KEYED_FIELDS:
        node = parse_expression(f"{field}.{key} = 1")
        assert isinstance(node, Comparison)
        assert (node.field, node.key) == (field, key)


def quoted(key: str, quote: str = '"') -> str:
    """key as a quoted string that parses back to key."""
    return quote + key.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


@pytest.mark.parametrize(
    "key",
    ["my key", 'with "quotes"', "it's", "back\\slash", "a=b", "(x)", "and", "tab\there", "ü ö"],
)
def test_quoted_keys_round_trip(key: str) -> None:
    for quote in "\"'":
        node = parse_expression(f"params.{quoted(key, quote)} >= 2 and status = failed")
        assert isinstance(node, BoolOp)
        assert node.left == cmp("params", ">=", 2, 0, key)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1))
def test_any_quoted_key_round_trips(key: str) -> None:
    node = parse_expression(f"metrics.{quoted(key)} < 1")
    assert isinstance(node, Comparison)
    assert node.key == key


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "_-./", min_size=1))
def test_any_bare_key_round_trips(key: str) -> None:
    node = parse_expression(f"tags.{key} ~ x")
    assert isinstance(node, Comparison)
    assert node.key == key


def test_fields_used() -> None:
    node = parse_expression(
        "metrics.acc > 0.9 and (params.lr <= 0.01 or not tags.team = a) and status = finished"
        " and metrics.acc < 1"
    )
    assert fields_used(node) == {
        ("metrics", "acc"),
        ("params", "lr"),
        ("tags", "team"),
        ("status", None),
    }
    assert fields_used(parse_expression("name ~ x")) == {("name", None)}


def check_outcome(text: str) -> None:
    """parse_expression gives a well-formed tree or a one-line ExpressionError, nothing else."""
    try:
        node = parse_expression(text)
    except ExpressionError as err:
        assert 0 <= err.position <= len(text)
        assert len(str(err).splitlines()) == 1
        return
    pending: list[Node] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, BoolOp):
            assert current.op in ("and", "or")
            pending += [current.left, current.right]
        elif isinstance(current, Not):
            pending.append(current.operand)
        else:
            assert isinstance(current, Comparison)
            assert current.field in FIELDS
            assert current.op in OPERATORS
            assert (current.key is not None) == (current.field in KEYED_FIELDS)
            assert 0 <= current.position < len(text)


PIECES = [
    "name", "status", "notebook", "kind", "id", "parent", "sweep", "params.lr", "metrics.acc",
    "tags.t", "params.", "Params", "foo", "=", "!=", "<", "<=", ">", ">=", "~", "==", "!", "and",
    "or", "not", "AND", "Or", "(", ")", "0.5", "-1e3", "7", "finished", "replay", "true", "null",
    '"x y"', "'z'", '"', "'", "\\", ".", "/", "\n", "\u2028", "\x00", "9" * 5000, "1e999",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_fuzz_any_text(text: str) -> None:
    check_outcome(text)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=25), st.sampled_from([" ", ""]))
def test_fuzz_token_soup(pieces: list[str], separator: str) -> None:
    check_outcome(separator.join(pieces))
