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
    "assigned_names",
    "cell_facts",
    "cell_names",
    "fill_cell_facts",
    "literal_assignments",
    "names_in",
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


def fill_cell_facts(cells: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Work out reads, writes and seeds of cells that lack them; returns what it filled in."""
    filled = []
    for cell in cells:
        if cell.get("reads") is None and cell.get("writes") is None:
            facts = cell_facts(cell.get("source") or "")
            if facts["reads"] is not None:
                cell.update(facts)
                filled.append((cell["seq"], facts))
    return filled


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
                local.update(names_in(current.target))
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


def names_in(target: ast.AST) -> set[str]:
    """The names in an assignment's target (``a, (b, c)``: a, b and c)."""
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
