"""The package's layers, read from its source: the core imports no door and no door's library,
and no import cycles.

Modules are parsed, never imported, so the check sees imports inside functions too (they run
sooner or later). Imports under ``if TYPE_CHECKING:`` are exempt: they never run.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

PACKAGE = "jupyter_mlops"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
README = ROOT.parent / "README.md"

# The doors: the public face, the notebook, the server and the shell. They may import the
# libraries of their door; every other module is core.
DOORS = (
    PACKAGE,
    f"{PACKAGE}.magics",
    f"{PACKAGE}.capture",
    f"{PACKAGE}.views",
    f"{PACKAGE}.server",
    f"{PACKAGE}.cli",
)
# Libraries of the doors: a core module that imports one cannot be used without them.
DOOR_LIBRARIES = frozenset(
    {"IPython", "ipywidgets", "plotly", "tornado", "jupyter_server", "click"}
)
# Calls that import the module their first argument names.
IMPORT_CALLS = frozenset({"import_module", "__import__"})

# An import: the module named (dotted, absolute), the line, and the names taken from it
# (`from module import names`; empty for `import module`).
Import = tuple[str, int, tuple[str, ...]]


def package_modules(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """The names a module imports: statements anywhere, and import calls with a literal name."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[Import] = []

    def _absolute(self, name: str, level: int) -> str:
        if not level:
            return name
        base = self.package.split(".")
        base = base[: len(base) - (level - 1)]
        return ".".join([*base, name] if name else base)

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.visit(node.test)
            for statement in node.body:
                self.visit(statement)
        for statement in node.orelse:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((alias.name, node.lineno, ()) for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = self._absolute(node.module or "", node.level)
        self.found.append((source, node.lineno, tuple(alias.name for alias in node.names)))

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        if name in IMPORT_CALLS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                level = len(first.value) - len(first.value.lstrip("."))
                name = self._absolute(first.value[level:], level)
                self.found.append((name, node.lineno, ()))
        self.generic_visit(node)


def _lazy_exports(tree: ast.Module, package: str) -> list[Import]:
    """The modules the face imports on first use of a name (its ``_EXPORTS`` table)."""
    edges: list[Import] = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            for value in node.value.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    edges.append((f"{package}.{value.value}", value.lineno, ()))
    return edges


def imports_of(name: str, path: Path, package: str = PACKAGE) -> list[Import]:
    """What the module imports, wherever in it, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    visitor = _Imports(name, path.name == "__init__.py")
    visitor.visit(tree)
    if name == package:
        visitor.found.extend(_lazy_exports(tree, package))
    return visitor.found


def import_graph(root: Path, package: str = PACKAGE) -> dict[str, dict[str, int]]:
    """Module -> the package modules it imports, each with the first line importing it.

    Python runs a package's ``__init__`` on the way to any module inside it; that is not
    counted (every package would otherwise knot with its own modules), only what is named.
    """
    modules = package_modules(root, package)

    def enclosing(name: str) -> str:
        # `import a.b.c` binds a module of the package or none: the nearest one enclosing it.
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        targets: dict[str, int] = {}
        for imported, line, names in imports_of(name, path, package):
            # `from a import b` imports the module a.b if there is one, else takes b from a.
            found = [f"{imported}.{n}" if f"{imported}.{n}" in modules else imported for n in names]
            for target in map(enclosing, found or [imported]):
                if target and target != name:
                    targets.setdefault(target, line)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Import cycles, as paths that end where they start: the shortest through each module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    knots: list[set[str]] = []

    def visit(node: str) -> None:
        # Tarjan's strongly connected components; the package is small enough for recursion.
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            knot = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                knot.add(member)
                if member == node:
                    break
            if len(knot) > 1:
                knots.append(knot)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found: list[list[str]] = []
    for knot in knots:
        for start in sorted(knot):
            cycle = _cycle_through(graph, knot, start)
            # The same cycle found from another of its modules: written from its first module.
            first = cycle.index(min(cycle))
            cycle = [*cycle[first:-1], *cycle[:first], cycle[first]]
            if cycle not in found:
                found.append(cycle)
    return found


def _cycle_through(graph: dict[str, dict[str, int]], knot: set[str], start: str) -> list[str]:
    """The shortest cycle from ``start`` back to itself, inside the knot."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target == start:
                    return [*paths[node], start]
                if target in knot and target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a knot of two or more always has one


def is_door(module: str) -> bool:
    """Whether the module is one of the doors (or inside a door's package)."""
    return module == PACKAGE or any(
        module == door or module.startswith(f"{door}.") for door in DOORS[1:]
    )


def door_imports_in_core(root: Path, package: str = PACKAGE) -> list[str]:
    """Each import of a door library by a core module, as ``path:line: library``."""
    found = []
    for name, path in package_modules(root, package).items():
        if is_door(name):
            continue
        for imported, line, _names in imports_of(name, path, package):
            library = imported.partition(".")[0]
            if library in DOOR_LIBRARIES:
                found.append((str(path.relative_to(root.parent)), line, imported))
    return [f"{path}:{line}: {imported}" for path, line, imported in sorted(set(found))]


def doors_imported_by_core(graph: dict[str, dict[str, int]]) -> list[str]:
    """Each import of a door by a core module (the core is below every door), with its line."""
    return [
        f"{module} imports {target} (line {line})"
        for module, targets in sorted(graph.items())
        if not is_door(module)
        for target, line in sorted(targets.items())
        if is_door(target)
    ]


def describe(cycle: list[str], graph: dict[str, dict[str, int]], root: Path) -> str:
    """A cycle as the chain of imports that make it, each with the line that imports."""
    modules = package_modules(root)
    steps = [
        f"{source} ({modules[source].relative_to(root.parent)}:{graph[source][target]})"
        for source, target in itertools.pairwise(cycle)
    ]
    return " -> ".join([*steps, cycle[-1]])


def test_core_imports_no_door_library() -> None:
    found = door_imports_in_core(ROOT)
    assert not found, "core modules import a door's library:\n" + "\n".join(found)


def test_core_imports_no_door() -> None:
    found = doors_imported_by_core(import_graph(ROOT))
    assert not found, "core modules import a door:\n" + "\n".join(found)


def test_no_import_cycle() -> None:
    graph = import_graph(ROOT)
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(c, graph, ROOT) for c in found)


def readme_layers(readme: str) -> list[tuple[str, list[str]]]:
    """The README's table of layers, top to bottom: each layer's name and its modules."""
    start = readme.index("| layer | modules |")
    table = readme[start : readme.index("\n\n", start)]
    return [
        (row.split("|")[1].strip(), re.findall(r"`([a-z_]+)(?:\.py|/)`", row.split("|")[2]))
        for row in table.splitlines()[2:]
    ]


def upward_imports(
    graph: dict[str, dict[str, int]], layers: list[tuple[str, list[str]]]
) -> list[str]:
    """Each import of a module in a higher layer than the importer's, with its line."""
    rank = {module: i for i, (_name, modules) in enumerate(layers) for module in modules}

    def layer(module: str) -> int:
        top = module.split(".")[1] if "." in module else "__init__"
        return rank[top]

    return [
        f"{module} ({layers[layer(module)][0]}) imports {target} ({layers[layer(target)][0]}, "
        f"line {line})"
        for module, targets in sorted(graph.items())
        for target, line in sorted(targets.items())
        if layer(target) < layer(module)
    ]


def test_no_import_goes_up_the_readmes_layers() -> None:
    found = upward_imports(import_graph(ROOT), readme_layers(README.read_text(encoding="utf-8")))
    assert not found, "imports that go up a layer:\n" + "\n".join(found)


# The check itself, on small packages written for it.


def _write(root: Path, files: dict[str, str]) -> Path:
    package = root / PACKAGE
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


@pytest.mark.parametrize(
    ("db", "run"),
    [
        ("from ..run import Run\n", "def f():\n    from .store import db\n"),
        ("import jupyter_mlops.run\n", "from jupyter_mlops.store.db import Store\n"),
        (
            "from .. import run\n",
            "def f():\n    import importlib\n"
            "    return importlib.import_module('.store.db', __name__)\n",
        ),
    ],
    ids=["relative, inside a function", "absolute", "from a parent, by import_module"],
)
def test_a_cycle_is_found_and_named(tmp_path: Path, db: str, run: str) -> None:
    root = _write(
        tmp_path,
        {"__init__.py": "", "store/__init__.py": "", "store/db.py": db, "run.py": run},
    )
    graph = import_graph(root)
    found = cycles(graph)
    assert found == [["jupyter_mlops.run", "jupyter_mlops.store.db", "jupyter_mlops.run"]]
    assert describe(found[0], graph, root).startswith("jupyter_mlops.run (jupyter_mlops/run.py:")


def test_type_checking_imports_and_package_parents_make_no_cycle(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "__init__.py": "_EXPORTS = {'Run': 'run'}\n",
            "store/__init__.py": "from .db import Store\n",
            "store/db.py": "from . import schema\nfrom .schema import TABLES\n",
            "store/schema.py": "TABLES = ()\n",
            "run.py": (
                "from typing import TYPE_CHECKING\nfrom .store import Store\n"
                "if TYPE_CHECKING:\n    from .views import card\n"
            ),
            "views/__init__.py": "",
            "views/card.py": "from jupyter_mlops.run import Run\n",
        },
    )
    graph = import_graph(root)
    assert graph["jupyter_mlops"] == {"jupyter_mlops.run": 1}
    assert graph["jupyter_mlops.store.db"] == {"jupyter_mlops.store.schema": 1}
    assert cycles(graph) == []


def test_a_door_imported_by_the_core_is_found(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "__init__.py": "def load():\n    from .magics import Magics\n",
            "magics.py": "from .records import get_run\n",
            "records.py": "def card():\n    from .views.card import render\n",
            "views/__init__.py": "",
            "views/card.py": "from ..records import get_run\n",
        },
    )
    graph = import_graph(root)
    assert doors_imported_by_core(graph) == [
        "jupyter_mlops.records imports jupyter_mlops.views.card (line 2)"
    ]


def test_a_door_library_in_the_core_is_found_wherever_imported(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "magics.py": "from IPython.core.magic import Magics\n",
            "views/__init__.py": "import ipywidgets\n",
            "run.py": "def shell():\n    from IPython import get_ipython\n",
            "store.py": "import sys\nIN_IPYTHON = 'IPython' in sys.modules\n",
            "plots.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    import plotly\nelse:\n    import tornado.web\n"
            ),
        },
    )
    assert door_imports_in_core(root) == [
        "jupyter_mlops/plots.py:5: tornado.web",
        "jupyter_mlops/run.py:2: IPython",
    ]


def test_an_import_up_a_layer_is_found(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "run.py": "from .hashing import digest\n",
            "hashing.py": "def f():\n    from .run import Run\n",
        },
    )
    readme = "| layer | modules |\n| --- | --- |\n| runs | `run.py` |\n| facts | `hashing.py` |\n\n"
    assert upward_imports(import_graph(root), readme_layers(readme)) == [
        "jupyter_mlops.hashing (facts) imports jupyter_mlops.run (runs, line 2)"
    ]
