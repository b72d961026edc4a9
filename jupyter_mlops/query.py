"""The filter expression language (``--where``, the widgets' filter box, the sidebar's search).

An expression compares run fields with values and joins the comparisons with ``and``,
``or``, ``not`` and parentheses::

    metrics.acc > 0.9 and params.lr <= 0.01 and status = finished
    (tags.team = vision or name ~ "rf-") and not kind = replay

This module only parses: it turns the text into a tree of ``Comparison``, ``BoolOp`` and
``Not`` nodes, or raises ``ExpressionError`` pointing at the offending spot.
``store/filters.py`` compiles the tree to parameterized SQL.

Values are typed by what they are compared with:

- a quoted string is always a string; a bare ``null`` is ``None`` (missing) everywhere;
- text fields (``name``, ``status``, ``notebook``, ``kind``, ``id``, ``parent``, ``sweep``,
  ``tags.K``) take a bare word as written, so ``id = 12e4`` and ``tags.v = 1.10`` stay text;
- ``params.K`` takes numbers (``int`` or ``float``), ``true``/``false`` and bare words;
- ``metrics.K`` takes numbers only (and ``null`` with ``=``/``!=``);
- after ``~`` (substring) a bare word is taken as its text; ``~`` does not apply to metrics.

Chains of one operator (``a and b and c and d``) become a balanced tree, so the tree's depth
grows with the logarithm of its length and compiling a long generated filter cannot exhaust
the recursion limit; ``and``/``or`` are associative, so the meaning is that of the chain.

An expression is at most ``MAX_LENGTH`` characters and ``MAX_COMPARISONS`` comparisons, and a
number must fit a float: whole numbers beyond SQLite's 64-bit integers are compared as floats
(as SQLite itself holds such numbers), and beyond a float's range they are an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TypeAlias

from jupyter_mlops.errors import ExpressionError
from jupyter_mlops.vocabulary import KINDS, STATUSES

__all__ = [
    "FIELDS",
    "KEYED_FIELDS",
    "MAX_COMPARISONS",
    "MAX_LENGTH",
    "OPERATORS",
    "BoolOp",
    "Comparison",
    "Node",
    "Not",
    "fields_used",
    "parse_expression",
]

# Fields compared as text, without a key.
TEXT_FIELDS = ("name", "status", "notebook", "kind", "id", "parent", "sweep")
# Fields that need a key after a dot: tags.K, params.K, metrics.K.
KEYED_FIELDS = ("tags", "params", "metrics")
FIELDS = TEXT_FIELDS + KEYED_FIELDS
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~")

_ORDERING = frozenset({"<", "<=", ">", ">="})
_KEYWORDS = frozenset({"and", "or", "not"})
# Run statuses and kinds are fixed (DESIGN.md); a typo in an equality would silently
# match nothing, so it is an error instead.
_CHOICES = {
    "status": STATUSES,
    "kind": KINDS,
}
_FIELD_HELP = "use name, status, notebook, kind, id, parent, sweep, tags.K, params.K, metrics.K"
# Parentheses and `not` recurse; a bound keeps a pathological expression an ExpressionError
# instead of a RecursionError.
_MAX_NESTING = 64
# Every comparison is a subquery run for each run tested: bounds keep one request's filter
# from costing seconds (a filter typed or generated for people stays far below them).
MAX_LENGTH = 4_000
MAX_COMPARISONS = 100
# Whole numbers SQLite stores exactly (64-bit); beyond, a number is bound as a float.
_INT64 = (-(2**63), 2**63 - 1)
# Characters that end a bare word: they are tokens of their own.
_DELIMITERS = frozenset("()'\"=!<>~")
_EXAMPLE_KEY = {"tags": "team", "params": "lr", "metrics": "acc"}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class Comparison:
    """One comparison of a run field with a value, e.g. ``metrics.acc > 0.9``."""

    field: str
    key: str | None
    op: str
    value: str | float | int | bool | None
    position: int


@dataclass(frozen=True)
class BoolOp:
    """Two sub-expressions joined by ``and`` or ``or``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    """The negation of a sub-expression."""

    operand: Node


Node: TypeAlias = Comparison | BoolOp | Not


def parse_expression(text: str) -> Node:
    """Parse a filter expression into a tree, or raise ExpressionError at the bad spot."""
    if len(text) > MAX_LENGTH:
        # The message shows the start only: the whole text would make a line of any length.
        raise ExpressionError(
            text[:60] + "...",
            MAX_LENGTH,
            f"longer than {MAX_LENGTH:,} characters ({len(text):,})",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ExpressionError(
            text.encode("utf-8", "backslashreplace").decode("utf-8"),
            exc.start,
            f"{text[exc.start]!r} is not valid Unicode (a lone surrogate)",
        ) from None
    return _Parser(text).parse()


def fields_used(node: Node) -> set[tuple[str, str | None]]:
    """The (field, key) pairs an expression compares, e.g. {("metrics", "acc")}."""
    used: set[tuple[str, str | None]] = set()
    pending: list[Node] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Comparison):
            used.add((current.field, current.key))
        elif isinstance(current, BoolOp):
            pending.extend((current.left, current.right))
        else:
            pending.append(current.operand)
    return used


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "op", "(", ")" or "end"
    text: str  # as written (a string's decoded value for kind "string")
    start: int
    end: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    length = len(text)
    while i < length:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(_Token(char, char, i, i + 1))
            i += 1
        elif char in "'\"":
            value, end = _read_string(text, i)
            tokens.append(_Token("string", value, i, end))
            i = end
        elif char in "=!<>~":
            two = text[i : i + 2]
            if two in ("!=", "<=", ">=", "=="):
                tokens.append(_Token("op", "=" if two == "==" else two, i, i + 2))
                i += 2
            elif char == "!":
                raise ExpressionError(text, i, "unexpected '!' (did you mean '!='?)")
            else:
                tokens.append(_Token("op", char, i, i + 1))
                i += 1
        else:
            start = i
            while i < length and not text[i].isspace() and text[i] not in _DELIMITERS:
                i += 1
            tokens.append(_Token("word", text[start:i], start, i))
    tokens.append(_Token("end", "", length, length))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    parts: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(parts), i + 1
        if char == "\\" and i + 1 < len(text):
            following = text[i + 1]
            # An unknown escape keeps its backslash, so "C:\data" means what it shows.
            parts.append(_ESCAPES.get(following, "\\" + following))
            i += 2
        else:
            parts.append(char)
            i += 1
    raise ExpressionError(text, start, f"unterminated string: no closing {quote}")


def _number(word: str) -> int | float | None:
    """The number a bare word spells (``3``, ``-0.5``, ``1e-4``), or None."""
    if _INTEGER.fullmatch(word):
        try:
            return int(word)
        except ValueError:
            # Past Python's digit limit for int(); such a number is only ever compared.
            return float(word)
    if _NUMBER.fullmatch(word):
        return float(word)
    return None


def _balanced(op: str, operands: list[Node]) -> Node:
    """Join operands with op as a balanced tree (left-leaning, so three read ((a b) c))."""
    if len(operands) == 1:
        return operands[0]
    middle = (len(operands) + 1) // 2
    return BoolOp(op, _balanced(op, operands[:middle]), _balanced(op, operands[middle:]))


class _Parser:
    """Recursive descent over the tokens: or_expr := and_expr ('or' and_expr)* and so on."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.comparisons = 0

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error(0, "empty expression (e.g. metrics.acc > 0.9 and status = finished)")
        node = self.parse_or(after=None)
        token = self.peek()
        if token.kind == ")":
            raise self.error(token.start, "unbalanced parenthesis: ')' has no matching '('")
        if token.kind != "end":
            raise self.error(token.start, f"expected 'and' or 'or' before {self.shown(token)}")
        return node

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self) -> str | None:
        token = self.peek()
        if token.kind == "word" and token.text.lower() in _KEYWORDS:
            return token.text.lower()
        return None

    def error(self, position: int, reason: str) -> ExpressionError:
        return ExpressionError(self.text, position, reason)

    def shown(self, token: _Token) -> str:
        if token.kind == "end":
            return "the end"
        return repr(self.text[token.start : token.end])

    def parse_or(self, after: str | None) -> Node:
        operands = [self.parse_and(after)]
        while self.keyword() == "or":
            self.advance()
            operands.append(self.parse_and("or"))
        return _balanced("or", operands)

    def parse_and(self, after: str | None) -> Node:
        operands = [self.parse_not(after)]
        while self.keyword() == "and":
            self.advance()
            operands.append(self.parse_not("and"))
        return _balanced("and", operands)

    def parse_not(self, after: str | None) -> Node:
        if self.keyword() != "not":
            return self.parse_primary(after)
        token = self.advance()
        self.enter(token)
        operand = self.parse_not("not")
        self.depth -= 1
        return Not(operand)

    def parse_primary(self, after: str | None) -> Node:
        token = self.peek()
        if token.kind == "(":
            self.advance()
            self.enter(token)
            node = self.parse_or(after="(")
            closing = self.peek()
            if closing.kind == "end":
                raise self.error(token.start, "unbalanced parenthesis: '(' is never closed")
            if closing.kind != ")":
                raise self.error(
                    closing.start, f"expected 'and', 'or' or ')' before {self.shown(closing)}"
                )
            self.advance()
            self.depth -= 1
            return node
        return self.parse_comparison(after)

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise self.error(token.start, f"nested more than {_MAX_NESTING} levels deep")

    def parse_comparison(self, after: str | None) -> Comparison:
        token = self.peek()
        if token.kind != "word" or self.keyword() is not None:
            raise self.error(token.start, self.missing_comparison(token, after))
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise self.error(token.start, f"more than {MAX_COMPARISONS} comparisons")
        field, key, written = self.parse_field()
        op_token = self.advance()
        if op_token.kind != "op":
            raise self.error(
                op_token.start,
                f"expected an operator (= != < <= > >= ~) after {written!r}, "
                f"not {self.shown(op_token)}",
            )
        value_token = self.advance()
        if value_token.kind not in ("word", "string") or (
            value_token.kind == "word" and value_token.text.lower() in _KEYWORDS
        ):
            raise self.error(value_token.start, f"expected a value after {op_token.text!r}")
        value = self.typed_value(field, written, op_token.text, value_token)
        return Comparison(field, key, op_token.text, value, token.start)

    def missing_comparison(self, token: _Token, after: str | None) -> str:
        if token.kind == "string":
            return 'expected a field, not a quoted string (quote only a key: params."a b")'
        if token.kind == "op":
            return f"expected a field before {token.text!r}"
        where = f"after {after!r}" if after else "at the start"
        if token.kind == ")":
            return f"expected a comparison {where}, not ')'"
        if token.kind == "end":
            return f"expected a comparison {where}"
        return f"expected a comparison {where}, not {token.text.lower()!r}"

    def parse_field(self) -> tuple[str, str | None, str]:
        """The field, its key and the field as written, e.g. ("params", "lr", "params.lr")."""
        token = self.advance()
        name, dot, key = token.text.partition(".")
        field = name.lower()
        if field in TEXT_FIELDS:
            if dot:
                raise self.error(
                    token.start + len(name), f"field {field!r} takes no key (remove {dot + key!r})"
                )
            return field, None, token.text
        if field not in KEYED_FIELDS:
            raise self.error(token.start, self.unknown_field(name))
        key_start = token.start + len(name) + len(dot)
        if not dot:
            raise self.error(
                token.end, f"{field!r} needs a key, e.g. {field}.{_EXAMPLE_KEY[field]}"
            )
        if key:
            for offset, char in enumerate(key):
                if not (char.isalnum() or char in "_-./"):
                    raise self.error(
                        key_start + offset,
                        f'{char!r} cannot appear in a bare key; quote the key: {field}."..."',
                    )
            return field, key, token.text
        quoted = self.peek()
        if quoted.kind != "string" or quoted.start != token.end:
            raise self.error(key_start, f"expected a key after '{name}.'")
        self.advance()
        if not quoted.text:
            raise self.error(quoted.start, f"empty key after '{name}.'")
        return field, quoted.text, self.text[token.start : quoted.end]

    def unknown_field(self, name: str) -> str:
        import difflib

        guess = difflib.get_close_matches(name.lower(), FIELDS, n=1, cutoff=0.6)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        return f"unknown field {name!r} ({hint}{_FIELD_HELP})"

    def typed_value(
        self, field: str, written: str, op: str, token: _Token
    ) -> str | float | int | bool | None:
        if token.kind == "string":
            value: str | float | int | bool | None = token.text
        else:
            value = self.bare_value(field, op, token.text)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = self.in_range(value, token)
        if field == "metrics":
            if op == "~":
                raise self.error(token.start, f"'~' compares text, and {written!r} is a number")
            if isinstance(value, (str, bool)):
                raise self.error(
                    token.start, f"expected a number after {op!r} ({written!r} is a number)"
                )
        if value is None and (op in _ORDERING or op == "~"):
            raise self.error(token.start, f"{op!r} cannot compare with null (use = or !=)")
        if isinstance(value, bool) and op in _ORDERING:
            raise self.error(token.start, f"{op!r} needs a number or a string, not a boolean")
        choices = _CHOICES.get(field)
        if choices and op in ("=", "!=") and isinstance(value, str):
            if value.lower() not in choices:
                raise self.error(
                    token.start, f"unknown {field} {value!r} (one of {', '.join(choices)})"
                )
            value = value.lower()
        return value

    def in_range(self, number: int | float, token: _Token) -> int | float:
        """The number as SQLite can bind it, or an error when no float holds it."""
        if isinstance(number, int) and _INT64[0] <= number <= _INT64[1]:
            return number
        try:
            as_float = float(number)
        except OverflowError:
            as_float = math.inf
        if not math.isfinite(as_float):
            shown = token.text if len(token.text) <= 24 else token.text[:20] + "..."
            raise self.error(
                token.start, f"the number {shown} is out of range (at most about 1.8e308)"
            )
        return as_float

    def bare_value(self, field: str, op: str, word: str) -> str | float | int | bool | None:
        lowered = word.lower()
        if lowered == "null":
            return None
        if op == "~" or field in TEXT_FIELDS or field == "tags":
            return word
        if field == "params" and lowered in ("true", "false"):
            return lowered == "true"
        number = _number(word)
        return word if number is None else number
