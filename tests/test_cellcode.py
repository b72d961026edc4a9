"""Static analysis of cell source: the names a cell reads and writes, and its seeds."""

from __future__ import annotations

import ast

from jupyter_mlops.cellcode import (
    Nondeterminism,
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


def sites(*cells: str, hash_seeded: bool = False) -> list[list[tuple[str, str, list[str]]]]:
    """(kind, text, names) of each cell's sites, the cells walked in order."""
    walker = Nondeterminism(hash_seeded=hash_seeded)
    return [[(s.kind, s.text, s.names) for s in walker.cell(cell)] for cell in cells]


IMPORTS = (
    "import numpy as np\nimport random\nimport time\nimport torch\n"
    "from datetime import datetime\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn import model_selection as ms\n"
    "from sklearn.model_selection import KFold, RandomizedSearchCV, train_test_split"
)


def test_estimators_and_splitters_without_random_state_are_found_from_signatures() -> None:
    found = sites(
        IMPORTS,
        "X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)",
        "forest = RandomForestClassifier(n_estimators=50)\nforest.fit(X_tr, y_tr)",
        "search = RandomizedSearchCV(model, grid, n_iter=5)",
        "cv = KFold(5, shuffle=True)\nplain = KFold(5)\nfixed = ms.KFold(5, shuffle=True, "
        "random_state=1)\nsplit = ms.ShuffleSplit(3)\nrest = train_test_split(X, shuffle=False)",
    )
    assert found == [
        [],
        [],  # one seeded call seeds that call only ...
        [("random_state", "RandomForestClassifier(n_estimators=50)", ["forest"])],  # ... not this
        [("random_state", "RandomizedSearchCV(model, grid, n_iter=5)", ["search"])],
        [
            ("random_state", "KFold(5, shuffle=True)", ["cv"]),
            ("random_state", "ms.ShuffleSplit(3)", ["split"]),
        ],
    ]
    # A name nothing imported is not guessed at.
    assert sites("model = RandomForestClassifier()") == [[]]
    # A frame's sample draws from numpy's global stream unless given random_state.
    assert sites("few = frame.sample(n=5)\nsame = frame.sample(n=5, random_state=1)") == [
        [("random_state", "frame.sample(n=5)", ["few"])]
    ]


def test_global_streams_are_covered_by_their_own_seed_from_there_on() -> None:
    found = sites(
        IMPORTS,
        "a = np.random.rand(5)\nrandom.shuffle(items)\nt = torch.randn(3)",
        "np.random.seed(0)\nb = np.random.rand(5)\nc = random.random()\n"
        "forest = RandomForestClassifier()",
        "rng = np.random.default_rng()\nfixed = np.random.default_rng(0)",
    )
    assert found == [
        [],
        [
            ("numpy", "np.random.rand(5)", ["a"]),
            ("random", "random.shuffle(items)", ["items"]),
            ("torch", "torch.randn(3)", ["t"]),
        ],
        # np.random.seed covers numpy's stream (sklearn's random_state=None draws from it),
        # not the random module's.
        [("random", "random.random()", ["c"])],
        [("fresh", "np.random.default_rng()", ["rng"])],
    ]


def test_set_order_and_hash_of_text_count_only_without_a_fixed_hash_seed() -> None:
    cell = (
        "words = text.split()\nvocab = list(set(words))\ncodes = [hash(w) for w in words]\n"
        "ordered = sorted(set(words))\nunique = set(words)\nfor w in unique:\n    print(w)"
    )
    assert sites(cell) == [
        [
            ("set", "list(set(words))", ["vocab"]),
            ("hash", "hash(w)", ["codes"]),
            ("set", "for w in unique", ["w"]),
        ]
    ]
    assert sites(cell, hash_seeded=True) == [[]]


def test_clock_reads_are_found() -> None:
    assert sites(IMPORTS, "print(time.ctime(), datetime.now())\nt0 = time.perf_counter()") == [
        [],
        [
            ("clock", "time.ctime()", []),
            ("clock", "datetime.now()", []),
            ("clock", "time.perf_counter()", ["t0"]),
        ],
    ]
