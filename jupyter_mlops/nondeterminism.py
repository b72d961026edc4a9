"""Nondeterminism in a cell's code: the call sites whose result may change from one process to
the next (unseeded draws from numpy's, the random module's, torch's or tensorflow's generators,
estimators without a ``random_state``, fresh generators, clock reads, set and hash order).

Static analysis of the source over the ``ast`` module, as ``cellcode`` is; a replay's verdict
names these sites as the likely causes of a divergence (``causes``).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from .cellcode import assigned_names, names_in, parse_cell

__all__ = ["Nondeterminism", "Site"]


# Calls of numpy's, the random module's, torch's or tensorflow's own generators that do not
# draw from them.
_NOT_DRAWS = frozenset(
    {
        "seed",
        "get_state",
        "set_state",
        "getstate",
        "setstate",
        "default_rng",
        "RandomState",
        "Generator",
        "SeedSequence",
        "manual_seed",
        "set_seed",
        "PCG64",
        "MT19937",
        "Random",
        "SystemRandom",
        "BitGenerator",
    }
)
_TORCH_DRAWS = frozenset(
    {
        "rand",
        "randn",
        "randint",
        "randperm",
        "rand_like",
        "randn_like",
        "randint_like",
        "normal",
        "bernoulli",
        "multinomial",
        "dropout",
    }
)
# Seeding calls and the global streams they seed.
_SEEDERS = {
    "numpy.random.seed": ("numpy",),
    "random.seed": ("random",),
    "torch.manual_seed": ("torch",),
    "torch.random.manual_seed": ("torch",),
    "tensorflow.random.set_seed": ("tensorflow",),
    "tensorflow.set_random_seed": ("tensorflow",),
    "tensorflow.keras.utils.set_random_seed": ("tensorflow", "numpy", "random"),
    "keras.utils.set_random_seed": ("tensorflow", "numpy", "random"),
    "lightning.seed_everything": ("torch", "numpy", "random"),
    "pytorch_lightning.seed_everything": ("torch", "numpy", "random"),
}
# Generators made on the spot: without a seed they never repeat.
_FRESH = frozenset(
    {"numpy.random.default_rng", "numpy.random.RandomState", "random.Random", "torch.Generator"}
)
_CLOCKS = frozenset(
    {
        "time.time",
        "time.time_ns",
        "time.ctime",
        "time.asctime",
        "time.localtime",
        "time.gmtime",
        "time.strftime",
        "time.perf_counter",
        "time.perf_counter_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.process_time",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "pandas.Timestamp.now",
        "pandas.Timestamp.today",
        "pandas.Timestamp.utcnow",
        "pandas.to_datetime",
    }
)
# Calls that take an iterable and keep its order (``sorted`` does not: it is left out).
_ORDER_KEEPERS = frozenset(
    {"list", "tuple", "enumerate", "iter", "next", "zip", "array", "Series", "DataFrame", "join"}
)
# Methods that change their object in place: a statement calling them writes that object.
_IN_PLACE = frozenset({"partial_fit", "shuffle", "train", "sort", "append", "extend", "update"})
_SET_OPERATORS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)
# Packages whose callables take ``random_state``: their signatures are read, never a list.
_RANDOM_STATE_PACKAGES = ("sklearn", "imblearn")
_SITE_TEXT = 70


class Site:
    """A call site whose result may change from one process to the next."""

    __slots__ = ("kind", "line", "names", "text")

    def __init__(self, kind: str, text: str, names: list[str], line: int) -> None:
        self.kind = kind  # see Nondeterminism.KINDS
        self.text = text
        self.names = names
        self.line = line

    def __repr__(self) -> str:
        return f"Site({self.kind!r}, {self.text!r}, {self.names!r})"


class Nondeterminism:
    """Walks a run's cells in the order they ran and finds, per cell, what is not repeatable:
    unseeded draws, generators and estimators without ``random_state``, set order and
    ``hash()`` of text (when ``PYTHONHASHSEED`` was not fixed), and clock reads.

    Names are resolved through the cells' imports (``from sklearn.model_selection import
    KFold`` makes ``KFold`` ``sklearn.model_selection.KFold``); a seed covers what it seeds:
    ``random_state=0`` that call only, ``np.random.seed`` numpy's global stream from there on.
    """

    KINDS: tuple[str, ...] = ("random_state", "random_state_sometimes", "numpy", "random")
    KINDS += ("torch", "tensorflow")
    KINDS += ("fresh", "hash", "set", "clock")

    def __init__(self, *, hash_seeded: bool) -> None:
        self.hash_seeded = hash_seeded
        self.imports: dict[str, str] = {}
        self.seeded: set[str] = set()
        self.set_names: set[str] = set()

    def cell(self, source: str) -> list[Site]:
        """The sites of one cell, in source order; what it seeds or imports counts from here on."""
        module = parse_cell(source)
        if module is None:
            return []
        sites: list[Site] = []
        for statement in module.body:
            self._statement(statement, source, sites)
        return sites

    def _statement(self, statement: ast.stmt, source: str, sites: list[Site]) -> None:
        names = _statement_names(statement, self.imports)
        nodes = sorted(
            (n for n in ast.walk(statement) if isinstance(n, (ast.Call, ast.For, ast.Import))),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for node in ast.walk(statement):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".")[0]
                        self.imports[root] = root
            elif isinstance(node, ast.For):
                if not self.hash_seeded and self._is_set(node.iter):
                    text = f"for {ast.unparse(node.target)} in {ast.unparse(node.iter)}"
                    sites.append(Site("set", _clip(text), names, node.lineno))
            else:
                kind = self._call(node)
                if kind is not None:
                    text = ast.get_source_segment(source, node) or ast.unparse(node)
                    sites.append(Site(kind, _clip(text), names, node.lineno))
        if isinstance(statement, ast.Assign) and self._is_set(statement.value):
            self.set_names.update(n for t in statement.targets for n in names_in(t))
        elif isinstance(statement, ast.Assign):
            self.set_names.difference_update(n for t in statement.targets for n in names_in(t))

    def qualified(self, func: ast.AST) -> str | None:
        """The dotted name a called expression resolves to through the imports, or None."""
        chain = _attribute_chain(func)
        if not chain:
            return None
        root = self.imports.get(chain[0])
        if root is None:
            return None
        return ".".join([root, *chain[1:]])

    def _call(self, node: ast.Call) -> str | None:
        if not self.hash_seeded:
            kind = self._hash_order(node)
            if kind is not None:
                return kind
        name = self.qualified(node.func)
        if name is None:
            return self._frame_sample(node)
        if name in _SEEDERS:
            if node.args or node.keywords:
                self.seeded.update(_SEEDERS[name])
            return None
        if name in _CLOCKS:
            return "clock" if name != "pandas.to_datetime" or _says_now(node) else None
        if name in _FRESH:
            return None if node.args or node.keywords else "fresh"
        module, _, last = name.rpartition(".")
        if last in _NOT_DRAWS:
            return None
        if module == "numpy.random":
            return None if "numpy" in self.seeded else "numpy"
        if module == "random":
            return None if "random" in self.seeded else "random"
        if name.startswith("torch.") and last in _TORCH_DRAWS:
            return None if "torch" in self.seeded else "torch"
        if module == "tensorflow.random":
            return None if "tensorflow" in self.seeded else "tensorflow"
        if name.split(".")[0] in _RANDOM_STATE_PACKAGES:
            kind = _unseeded(name, node)
            # random_state=None draws from numpy's global stream: np.random.seed covers it.
            return None if "numpy" in self.seeded else kind
        return None

    def _hash_order(self, node: ast.Call) -> str | None:
        """``hash()`` of a value, or a set's order kept (``list(set(words))``, ``s.pop()``)."""
        func = node.func
        if isinstance(func, ast.Name) and func.id == "hash" and "hash" not in self.imports:
            return "hash"
        if self._keeps_set_order(node):
            return "set"
        if isinstance(func, ast.Attribute) and func.attr == "pop" and not node.args:
            return "set" if self._is_set(func.value) else None
        return None

    def _frame_sample(self, node: ast.Call) -> str | None:
        """``frame.sample(n=5)`` of pandas, with no ``random_state``: numpy's global stream."""
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr != "sample":
            return None
        keywords = {k.arg for k in node.keywords}
        if None in keywords or "random_state" in keywords or "numpy" in self.seeded:
            return None
        return "random_state"

    def _is_set(self, node: ast.AST) -> bool:
        if isinstance(node, (ast.Set, ast.SetComp)):
            return True
        if isinstance(node, ast.Name):
            return node.id in self.set_names
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id in ("set", "frozenset") and node.func.id not in self.imports
        if isinstance(node, ast.BinOp) and isinstance(node.op, _SET_OPERATORS):
            return self._is_set(node.left) or self._is_set(node.right)
        return False

    def _keeps_set_order(self, node: ast.Call) -> bool:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in _ORDER_KEEPERS:
            return False
        return any(self._is_set(arg) for arg in node.args) or any(
            isinstance(c, ast.comprehension) and self._is_set(c.iter)
            for arg in node.args
            for c in ast.walk(arg)
        )


def _statement_names(statement: ast.stmt, modules: dict[str, str]) -> list[str]:
    """Names a statement binds, and the objects it fits or changes in place (``model.fit``)."""
    names = assigned_names(ast.Module(body=[statement], type_ignores=[]))
    for node in ast.walk(statement):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            chain = _attribute_chain(node.func)
            if not chain:
                continue  # a method of a call's result: no name to write
            changes = chain[-1].startswith("fit") or chain[-1] in _IN_PLACE
            if len(chain) == 2 and changes and chain[0] not in names and chain[0] not in modules:
                names.append(chain[0])
            first = node.args[0] if node.args else None
            if chain[-1] == "shuffle" and isinstance(first, ast.Name) and first.id not in names:
                names.append(first.id)  # random.shuffle(items) shuffles items in place
    return names


def _says_now(node: ast.Call) -> bool:
    return any(isinstance(a, ast.Constant) and a.value in ("now", "today") for a in node.args)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SITE_TEXT else text[: _SITE_TEXT - 3] + "..."


def _unseeded(name: str, node: ast.Call) -> str | None:
    """``random_state`` when a call of a callable with that parameter leaves it None (and,
    for one with ``shuffle``, shuffles); ``random_state_sometimes`` when its documentation
    says it is used only in some settings (a solver, ``probability=True``); else None."""
    found = _parameters(name)
    if found is None or "random_state" not in found[0]:
        return None
    parameters, sometimes = found
    given: dict[str, ast.AST] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None  # **options: what they hold is not known here
        given[keyword.arg] = keyword.value
    state = given.get("random_state")
    if state is not None and not (isinstance(state, ast.Constant) and state.value is None):
        return None
    if "shuffle" in parameters:
        shuffle = given.get("shuffle")
        if shuffle is None:
            shuffles = bool(parameters["shuffle"])
        else:
            shuffles = not (isinstance(shuffle, ast.Constant) and not shuffle.value)
        return "random_state" if shuffles else None
    return "random_state_sometimes" if sometimes else "random_state"


_SIGNATURES: dict[str, tuple[dict[str, Any], bool] | None] = {}
# How a numpydoc ``random_state`` entry says that it only matters in some settings.
_SOMETIMES = re.compile(
    r"\b(only used|used when|used for `|ignored when|ignored if|ignored unless|has no effect)",
    re.I,
)
_RANDOM_STATE_DOC = re.compile(r"^random_state\s*:.*\n((?:[ \t]+.*\n?|\n)+?)(?=^\S)", re.M)


def _parameters(name: str) -> tuple[dict[str, Any], bool] | None:
    """A callable's parameters with their defaults, by its dotted name, and whether its
    documentation says ``random_state`` matters only sometimes (None if not found)."""
    if name not in _SIGNATURES:
        _SIGNATURES[name] = _read_parameters(name)
    return _SIGNATURES[name]


def _read_parameters(name: str) -> tuple[dict[str, Any], bool] | None:
    import importlib
    import inspect

    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except Exception:
            continue
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
            signature = inspect.signature(target)
        except (AttributeError, TypeError, ValueError):
            return None
        parameters = {
            p.name: None if p.default is inspect.Parameter.empty else p.default
            for p in signature.parameters.values()
        }
        entry = _RANDOM_STATE_DOC.search(inspect.getdoc(target) or "")
        return parameters, bool(entry and _SOMETIMES.search(entry.group(1)))
    return None


def _attribute_chain(node: ast.AST) -> list[str]:
    """``np.random.rand`` as ``["np", "random", "rand"]`` (empty for other callables)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return []
