"""Static analysis of cell source: the names a cell reads and writes, and its seeds."""

from __future__ import annotations

import ast

from jupyter_mlops.cellcode import (
    assigned_names,
    cell_facts,
    cell_names,
    parse_cell,
    seeds_in,
)


def test_assigned_names_walks_statements_only() -> None:
    module = ast.parse(
        "a, (b, *c) = f()\nfor i in range(3):\n    d = i\nwith open(p) as fh:\n    e: int = 1\n"
        "if x:\n    g += 1\nelse:\n    h = [k for k in y]\ntry:\n    m = 1\nfinally:\n    n = 2\n"
    )
    assert assigned_names(module) == ["a", "b", "c", "i", "d", "fh", "e", "g", "h", "m", "n"]


def test_cell_names_reads_and_writes() -> None:
    module = ast.parse(
        "import pandas as pd\nfrom os import path\n"
        "df = pd.read_csv(src)\n"
        "squares = [v * v for v in df.x if v > threshold]\n"
        "def fit(model, data=train):\n    inner = model + data + hidden\n    return inner\n"
        "fn = lambda q: q + offset\n"
        "print(len(squares))\n"
        "try:\n    risky()\nexcept ValueError as err:\n    last = err\n"
    )
    reads, writes = cell_names(module)
    assert reads == ["src", "threshold", "train", "offset", "risky"]
    assert writes == ["pd", "path", "df", "squares", "fit", "fn", "err", "last"]


def test_seeds_are_noticed() -> None:
    module = ast.parse(
        "np.random.seed(42)\nrng = np.random.default_rng(7)\n"
        "clf = RF(random_state=0)\nrandom.seed()\n"
    )
    assert seeds_in(module) == ["np.random.seed(42)", "np.random.default_rng(7)", "random_state=0"]


def test_parse_cell_stands_in_for_ipython_syntax() -> None:
    module = parse_cell("%load_ext x\nfiles = !ls\nfor f in files:\n    %time g(f)\n    !echo hi\n")
    assert module is not None
    assert cell_names(module) == ([], ["files", "f"])  # magic arguments are not read
    assert parse_cell("%%bash\necho hi") is None
    assert parse_cell("def broken(:") is None
    assert cell_facts("%%track --name x\nimport numpy as np\nnp.random.seed(1)") == {
        "reads": [],
        "writes": ["np"],
        "seeds": ["np.random.seed(1)"],
    }
