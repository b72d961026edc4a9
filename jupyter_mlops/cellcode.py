"""What a cell's code reads, writes and seeds: static analysis of its source.

Pure Python over the ``ast`` module, no IPython: the run computes it when it ends (off the
per-cell hot path), and readers compute it for cells of runs still going.
"""

from __future__ import annotations

import ast
import builtins
import re
from typing import Any

__all__ = [
    "Nondeterminism",
    "Site",
    "assigned_names",
    "cell_facts",
    "cell_names",
    "literal_assignments",
    "parse_cell",
    "seeds_in",
]

_BUILTINS = frozenset(dir(builtins)) | {"get_ipython", "In", "Out", "exit", "quit", "display"}
_SEED_CALLS = frozenset(
    {"seed", "manual_seed", "set_seed", "default_rng", "RandomState", "PRNGKey"}
)
# A cheap test before walking a cell for seeding calls: most cells have none.
_SEED_HINT = re.compile(r"seed|random_state|default_rng|RandomState|PRNGKey")
# IPython syntax that is not Python: `%magic`, `!shell`, and `x = %magic` / `x = !shell`.
_IPYTHON_LINE = re.compile(r"^(\s*)(?:[%!].*|([\w.]+\s*=\s*)[%!].*)$", re.M)


def parse_cell(source: str) -> ast.Module | None:
    """The cell's Python, with IPython magics and shell lines stood in for, or None."""
    if source.startswith("%%"):
        first, _, body = source.partition("\n")
        if not first.startswith("%%track"):
            return None  # another language (%%bash, %%html ...): nothing Python to read
        source = body
    python = _IPYTHON_LINE.sub(
        lambda m: f"{m.group(1)}{m.group(2) or ''}{'None' if m.group(2) else 'pass'}", source
    )
    try:
        return ast.parse(python)
    except (SyntaxError, ValueError):
        return None


def cell_facts(source: str) -> dict[str, Any]:
    """``reads``, ``writes`` and ``seeds`` of a cell's source (None each if it does not parse)."""
    module = parse_cell(source)
    if module is None:
        return {"reads": None, "writes": None, "seeds": None}
    reads, writes = cell_names(module)
    seeds = seeds_in(module) if _SEED_HINT.search(source) else []
    return {"reads": reads, "writes": writes, "seeds": seeds}


def assigned_names(module: ast.Module) -> list[str]:
    """Names a cell binds at top level by statements (cheap: expressions are not walked)."""
    names: list[str] = []
    stack = list(reversed(module.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Assign):
            for target in node.targets:
                _target_names(target, names)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            _target_names(node.target, names)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            _target_names(node.target, names)
            stack.extend(reversed(node.body + node.orelse))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    _target_names(item.optional_vars, names)
            stack.extend(reversed(node.body))
        elif isinstance(node, (ast.If, ast.While)):
            stack.extend(reversed(node.body + node.orelse))
        elif isinstance(node, ast.Try):
            stack.extend(reversed(node.body + node.orelse + node.finalbody))
    return names


def _target_names(target: ast.AST, out: list[str]) -> None:
    if isinstance(target, ast.Name):
        out.append(target.id)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _target_names(element, out)
    elif isinstance(target, ast.Starred):
        _target_names(target.value, out)


def cell_names(module: ast.Module) -> tuple[list[str], list[str]]:
    """(names read, names written) by a cell, in order; a name bound earlier is not a read."""
    names = _CellNames()
    names.block(module.body)
    return list(names.reads), list(names.writes)


class _CellNames:
    """Walks a cell's statements in execution order, outside function and class bodies."""

    def __init__(self) -> None:
        self.reads: dict[str, None] = {}
        self.writes: dict[str, None] = {}

    def bind(self, name: str) -> None:
        self.writes[name] = None

    def load(self, node: ast.AST | None) -> None:
        """Names an expression reads, leaving out comprehension and lambda variables."""
        if node is None:
            return
        local: set[str] = set()
        found: list[ast.Name] = []
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, ast.comprehension):
                local.update(_names_in(current.target))
            elif isinstance(current, ast.Lambda):
                local.update(a.arg for a in ast.walk(current.args) if isinstance(a, ast.arg))
            elif isinstance(current, ast.Name):
                found.append(current)
            stack.extend(ast.iter_child_nodes(current))
        for name in sorted(found, key=lambda n: (n.lineno, n.col_offset)):
            if name.id in local:
                continue
            if isinstance(name.ctx, ast.Load):
                if name.id not in self.writes and name.id not in _BUILTINS:
                    self.reads[name.id] = None
            elif isinstance(name.ctx, ast.Store):
                self.bind(name.id)  # a walrus inside an expression

    def targets(self, target: ast.AST) -> None:
        """Bind assignment targets; subscripts and attributes read their base."""
        if isinstance(target, ast.Name):
            self.bind(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.targets(element)
        elif isinstance(target, ast.Starred):
            self.targets(target.value)
        else:
            self.load(target)

    def block(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                self.load(expr)
            self.bind(node.name)
        elif isinstance(node, ast.ClassDef):
            for expr in [*node.decorator_list, *node.bases]:
                self.load(expr)
            self.bind(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    self.bind(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign):
            self.load(node.value)
            for target in node.targets:
                self.targets(target)
        elif isinstance(node, ast.AugAssign):
            self.load(node.value)
            if isinstance(node.target, ast.Name):
                self.load(ast.Name(node.target.id, ast.Load(), lineno=0, col_offset=0))
            self.targets(node.target)
        elif isinstance(node, ast.AnnAssign):
            self.load(node.value)
            self.targets(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.load(node.iter)
            self.targets(node.target)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.load(item.context_expr)
                if item.optional_vars is not None:
                    self.targets(item.optional_vars)
            self.block(node.body)
        elif isinstance(node, (ast.If, ast.While)):
            self.load(node.test)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            self.block(node.body)  # type: ignore[attr-defined]
            for handler in node.handlers:  # type: ignore[attr-defined]
                self.load(handler.type)
                if handler.name:
                    self.bind(handler.name)
                self.block(handler.body)
            self.block(node.orelse)  # type: ignore[attr-defined]
            self.block(node.finalbody)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.targets(target)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            return
        else:
            self.load(node)


def _names_in(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def seeds_in(module: ast.Module) -> list[str]:
    """Seeding calls in a cell, as written (``np.random.seed(0)``, ``random_state=42`` ...)."""
    found: list[str] = []
    for node in ast.walk(module):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in _SEED_CALLS and node.args:
            found.append(ast.unparse(node))
        for keyword in node.keywords:
            if keyword.arg in ("random_state", "seed") and isinstance(keyword.value, ast.Constant):
                found.append(f"{keyword.arg}={keyword.value.value!r}")
    return found


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
            self.set_names.update(n for t in statement.targets for n in _names_in(t))
        elif isinstance(statement, ast.Assign):
            self.set_names.difference_update(n for t in statement.targets for n in _names_in(t))

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


def literal_assignments(module: ast.Module | None) -> dict[str, Any]:
    """``name = literal`` statements of a cell (Papermill's injected parameters)."""
    values: dict[str, Any] = {}
    if module is None:
        return values
    for statement in module.body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            try:
                values[statement.targets[0].id] = ast.literal_eval(statement.value)
            except (ValueError, SyntaxError, TypeError):
                continue
    return values
