"""Static analysis of cell source for nondeterminism: unseeded draws, estimators without a
random_state, fresh generators, clock reads, set and hash order."""

from __future__ import annotations

from jupyter_mlops.nondeterminism import Nondeterminism


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
