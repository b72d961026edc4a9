"""Data checks: new data against the recorded profile of a dataset (schema problems, drift).

A check profiles the new data on the baseline's histogram bins and categories (see
``profiles``) and compares the two profiles column by column. Schema problems: a column the
baseline had is missing (``missing_column``) or a new one appeared (``extra_column``), a dtype
changed (``dtype``), values are missing where the baseline had none or far more often
(``nulls``), numbers fall outside the baseline's range (``range``), text takes values the
baseline never had (``new_category``). Drift per column (``drift``): the population stability
index (PSI) on the baseline's bins for numbers, the Jensen-Shannon distance (base 2) between
category frequencies for text. A problem of severity ``error`` fails the check; ``warning``
is reported only. Thresholds have documented defaults and per-column overrides
(``data_thresholds``).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .data_thresholds import DEFAULT_THRESHOLDS, checked_thresholds
from .errors import InvalidValueError
from .store import Store, open_store

__all__ = [
    "PROBLEM_KINDS",
    "check_data",
    "check_serving",
    "compare_profiles",
]

PROBLEM_KINDS = (
    "missing_column",
    "extra_column",
    "dtype",
    "nulls",
    "range",
    "new_category",
    "drift",
)
# A bin or category with no values in one of the two profiles still has this share, so the
# logarithms of PSI stay finite (the usual floor).
_FLOOR = 1e-4
# An unseen category below this share, against a baseline profiled from a sample, may be one
# the sample missed: a warning, not an error.
_SAMPLED_UNSEEN = 1e-3


def check_data(
    new: Any,
    against: str,
    *,
    thresholds: Mapping[str, Any] | None = None,
    record: bool = True,
    run_id: str | None = None,
    subject: str | None = None,
    store: Store | None = None,
) -> dict[str, Any]:
    """Check new data (a frame, array, table, or a CSV/Parquet path) against ``RUN:DATASET``.

    The check is stored with ``run_id`` (default: the active run, else none) unless
    ``record=False`` or the store is read-only; ``report["passed"]`` says whether no problem
    is an error.
    """
    from .profiles import describe

    store = store or open_store(create=False)
    baseline = _baseline(store, against)
    if isinstance(new, str):
        new = Path(new)
    if isinstance(new, Path):
        new = new.expanduser()
        if not new.is_file():
            raise InvalidValueError(str(new), "no such file")
        subject = subject or str(new)
    info = describe(new, reference=baseline["profile"])
    if info.profile is None:
        what = "file" if isinstance(new, Path) else type(new).__name__
        raise InvalidValueError(
            subject or what, "is not tabular data (a frame, array, table, CSV or Parquet file)"
        )
    report = compare_profiles(baseline["profile"], info.profile, thresholds)
    report["baseline"] = {
        "run": baseline["run_id"],
        "run_name": baseline["run_name"],
        "dataset": baseline["name"],
        "hash": baseline["hash"],
    }
    report["subject"] = {"name": subject or type(new).__name__, "hash": info.hash}
    if record and not store.read_only:
        _record(store, report, run_id, "data")
    return report


def check_serving(
    run: str,
    *,
    names: Sequence[str] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    record: bool = True,
    store: Store | None = None,
) -> list[dict[str, Any]]:
    """Check each serving sample of a run (or those of ``names``) against its training
    dataset of the same name."""
    store = store or open_store(create=False)
    run_id = store.resolve_run(run)
    row = store.get_run(run_id)
    training = {d["name"]: d for d in store.datasets(run_id)}
    reports = []
    for sample in store.datasets(run_id, context="serving"):
        if names is not None and sample["name"] not in names:
            continue
        base = training.get(sample["name"])
        if base is None or not base.get("profile") or not sample.get("profile"):
            continue
        report = compare_profiles(base["profile"], sample["profile"], thresholds)
        report["baseline"] = {
            "run": run_id,
            "run_name": row["name"],
            "dataset": sample["name"],
            "hash": base["hash"],
        }
        report["subject"] = {"name": f"{sample['name']} (serving)", "hash": sample["hash"]}
        if record and not store.read_only:
            _record(store, report, run_id, "serving")
        reports.append(report)
    return reports


def compare_profiles(
    baseline: Mapping[str, Any],
    new: Mapping[str, Any],
    thresholds: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare a new profile with a baseline profile: problems and per-column drift."""
    limits = checked_thresholds(dict(thresholds or {}), "thresholds")
    overrides = limits.pop("columns", {}) or {}
    defaults = {**DEFAULT_THRESHOLDS, **limits}
    base_columns = baseline.get("columns") or {}
    new_columns = new.get("columns") or {}
    problems: list[dict[str, Any]] = []
    columns: dict[str, dict[str, Any]] = {}
    approximate = bool(baseline.get("approximate"))
    for name, base in base_columns.items():
        limit = {**defaults, **overrides.get(name, {})}
        if limit.get("ignore"):
            continue
        found = new_columns.get(name)
        if found is None:
            problems.append(_problem(name, "missing_column", "not in the new data", "error"))
            continue
        facts, found_problems = _compare_column(name, base, found, limit, approximate)
        columns[name] = facts
        problems.extend(found_problems)
    for name in new_columns:
        if name not in base_columns and not overrides.get(name, {}).get("ignore"):
            problems.append(
                _problem(name, "extra_column", "not in the baseline", "warning"),
            )
    return {
        "passed": not any(p["severity"] == "error" for p in problems),
        "rows": new.get("rows"),
        "baseline_rows": baseline.get("rows"),
        "problems": problems,
        "columns": columns,
        "thresholds": {**defaults, "columns": overrides} if overrides else defaults,
    }


# -- comparing one column -------------------------------------------------------------------


def _compare_column(
    name: str,
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    limit: Mapping[str, Any],
    approximate: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One column's facts (drift, missing, means) and problems: its dtype, nulls, range, and
    drift of its numbers or categories."""
    problems: list[dict[str, Any]] = []
    base_kind, new_kind = _dtype_kind(base.get("dtype")), _dtype_kind(new.get("dtype"))
    if base_kind != new_kind:
        widened = (base_kind, new_kind) == ("integer", "float")
        detail = f"{base.get('dtype')} in the baseline, {new.get('dtype')} now"
        if widened:
            detail += " (integers become floats when values go missing)"
        problems.append(_problem(name, "dtype", detail, "warning" if widened else "error"))
    base_missing, new_missing = _missing_rate(base), _missing_rate(new)
    facts: dict[str, Any] = {
        "drift": False,
        "psi": None,
        "distance": None,
        "threshold": None,
        "missing": new_missing,
        "baseline_missing": base_missing,
    }
    problems.extend(_null_problems(name, base, new, limit))
    if base_kind in ("integer", "float") and new_kind in ("integer", "float"):
        facts.update(mean=new.get("mean"), baseline_mean=base.get("mean"))
        problems.extend(_range_problems(name, base, new, limit))
        problems.extend(_number_drift(name, base, new, limit, facts))
    base_top = (base.get("categories") or {}).get("top")
    if base_top is not None and (new.get("categories") or {}).get("top") is not None:
        problems.extend(_category_drift(name, base, new, limit, approximate, facts))
    return facts, problems


def _null_problems(
    name: str, base: Mapping[str, Any], new: Mapping[str, Any], limit: Mapping[str, Any]
) -> list[dict[str, Any]]:
    base_missing, new_missing = _missing_rate(base), _missing_rate(new)
    if new.get("missing") and not base.get("missing"):
        detail = f"{new['missing']} missing value(s) ({_pct(new_missing)}); none in the baseline"
        return [_problem(name, "nulls", detail, "error")]
    if new_missing - base_missing > limit["missing"]:
        detail = (
            f"{_pct(new_missing)} missing, baseline {_pct(base_missing)} "
            f"(more than {_pct(limit['missing'])} above)"
        )
        return [_problem(name, "nulls", detail, "error")]
    return []


def _number_drift(
    name: str,
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    limit: Mapping[str, Any],
    facts: dict[str, Any],
) -> list[dict[str, Any]]:
    """Drift of a numeric column by PSI on the baseline's bins (noted in ``facts``)."""
    base_hist, new_hist = base.get("histogram"), new.get("histogram")
    if not (base_hist and new_hist):
        return []
    psi = _psi(base_hist, new_hist)
    facts.update(psi=psi, threshold=limit["psi"], drift=psi > limit["psi"])
    if not facts["drift"]:
        return []
    detail = f"PSI {psi:.3f} above {limit['psi']:g}"
    if _is_number(base.get("mean")) and _is_number(new.get("mean")):
        detail += f" (mean {base['mean']:.4g} in the baseline, {new['mean']:.4g} now)"
    return [_problem(name, "drift", detail, "error")]


def _category_drift(
    name: str,
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    limit: Mapping[str, Any],
    approximate: bool,
    facts: dict[str, Any],
) -> list[dict[str, Any]]:
    """Categories the baseline never had, and drift of the category frequencies by their
    distance (noted in ``facts``)."""
    problems = []
    distance, unseen, share = _category_shift(base["categories"], new["categories"])
    limit_distance = limit["category_distance"]
    facts.update(distance=distance, threshold=limit_distance, drift=distance > limit_distance)
    if unseen or share:
        facts["new_categories"] = [v for v, _ in unseen[:10]]
        shown = ", ".join(repr(v) for v, _ in unseen[:5]) or "values beyond the top ones"
        severity = "error" if share > limit["new_category"] else "warning"
        if approximate and share < _SAMPLED_UNSEEN:
            severity = "warning"
        detail = f"{_pct(share)} of values in categories the baseline never had: {shown}"
        problems.append(_problem(name, "new_category", detail, severity))
    if facts["drift"]:
        detail = f"category distance {distance:.3f} above {limit_distance:g}"
        problems.append(_problem(name, "drift", detail, "error"))
    return problems


def _range_problems(
    name: str, base: Mapping[str, Any], new: Mapping[str, Any], limit: Mapping[str, Any]
) -> list[dict[str, Any]]:
    if not all(_is_number(c.get(k)) for c in (base, new) for k in ("min", "max")):
        return []
    low, high, new_low, new_high = base["min"], base["max"], new["min"], new["max"]
    if new_low >= low and new_high <= high:
        return []
    outside, sampled = new.get("outside"), new.get("sampled")
    share = outside / sampled if outside is not None and sampled else None
    severity = "error" if share is None or share > limit["out_of_range"] else "warning"
    detail = f"values from {new_low:.6g} to {new_high:.6g}; the baseline's range is "
    detail += f"{low:.6g} to {high:.6g}"
    if share is not None:
        detail += f" ({_pct(share)} outside)"
    return [_problem(name, "range", detail, severity)]


def _psi(base: Mapping[str, Any], new: Mapping[str, Any]) -> float:
    """Population stability index of the new histogram against the baseline's bins."""
    import numpy as np

    expected = np.asarray(base["counts"], dtype=np.float64)
    if list(new["edges"]) == list(base["edges"]):
        actual = np.asarray(new["counts"], dtype=np.float64)
    else:
        actual = _rebinned(new["edges"], new["counts"], base["edges"])
    if expected.sum() == 0 or actual.sum() == 0:
        return 0.0
    p = np.maximum(expected / expected.sum(), _FLOOR)
    q = np.maximum(actual / actual.sum(), _FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def _rebinned(edges: Sequence[float], counts: Sequence[int], onto: Sequence[float]) -> Any:
    """Counts of a histogram moved onto other bins, each bin's values spread evenly across
    it; values outside the target's range go to its first and last bins."""
    import numpy as np

    source = np.asarray(edges, dtype=np.float64)
    target = np.asarray(onto, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(counts, dtype=np.float64))])
    if len(source) < 2 or source[-1] == source[0]:
        # All values at one point: a step in the cumulative count there.
        at = np.where(target >= source[0], cumulative[-1], 0.0)
    else:
        at = np.interp(target, source, cumulative)
    moved = np.diff(at)
    moved[0] += at[0]
    moved[-1] += cumulative[-1] - at[-1]
    return moved


def _category_shift(
    base: Mapping[str, Any], new: Mapping[str, Any]
) -> tuple[float, list[tuple[Any, int]], float]:
    """The Jensen-Shannon distance between category frequencies (the baseline's categories
    and one bucket for all others), the unseen categories and their share of the new data."""
    import numpy as np

    base_counts = {_category_key(v): n for v, n in base["top"]}
    new_counts = {_category_key(v): n for v, n in new["top"]}
    base_total = sum(base_counts.values()) + int(base.get("other") or 0)
    new_total = sum(new_counts.values()) + int(new.get("other") or 0)
    if not base_total or not new_total:
        return 0.0, [], 0.0
    keys = list(base_counts)
    p = np.array([base_counts[k] for k in keys] + [int(base.get("other") or 0)], dtype=float)
    q_known = [new_counts.get(k, 0) for k in keys]
    q = np.array([*q_known, new_total - sum(q_known)], dtype=float)
    distance = _jensen_shannon(p / p.sum(), q / q.sum())
    unseen: list[tuple[Any, int]] = []
    share = 0.0
    if base.get("complete"):
        unseen = [(v, n) for v, n in new["top"] if _category_key(v) not in base_counts]
        share = (new_total - sum(q_known)) / new_total
    return distance, unseen, share


def _jensen_shannon(p: Any, q: Any) -> float:
    """Jensen-Shannon distance in base 2 (the square root of the divergence), in [0, 1]."""
    import numpy as np

    m = (p + q) / 2

    def kl(a: Any) -> float:
        present = a > 0
        return float(np.sum(a[present] * np.log2(a[present] / m[present])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))


def _category_key(value: Any) -> Any:
    return value if isinstance(value, (str, bool, int, float)) or value is None else str(value)


_KINDS = (
    ("bool", "boolean"),
    ("uint", "integer"),
    ("int", "integer"),
    ("float", "float"),
    ("double", "float"),
    ("halffloat", "float"),
    ("decimal", "float"),
    ("datetime", "datetime"),
    ("timestamp", "datetime"),
    ("date", "datetime"),
    ("timedelta", "duration"),
    ("duration", "duration"),
)
_TEXT = ("object", "str", "string", "large_string", "utf8", "string_view", "category", "enum")


def _dtype_kind(dtype: Any) -> str:
    """The family of a dtype as pandas, numpy, Arrow or polars name it: a CSV read by Arrow
    and the frame it was written from agree (``object``/``str`` and ``string`` are text)."""
    text = str(dtype).lower()
    if text.startswith(_TEXT) or text.startswith("dictionary<") or text == "categorical":
        return "text"
    for prefix, kind in _KINDS:
        if text.startswith(prefix):
            return kind
    return text


def _missing_rate(column: Mapping[str, Any]) -> float:
    missing = int(column.get("missing") or 0)
    total = int(column.get("count") or 0) + missing
    return missing / total if total else 0.0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _pct(share: float) -> str:
    return f"{share * 100:.3g}%"


def _problem(column: str, kind: str, detail: str, severity: str) -> dict[str, Any]:
    return {"column": column, "kind": kind, "detail": detail, "severity": severity}


# -- the baseline and the record -------------------------------------------------------------


def _baseline(store: Store, against: str) -> dict[str, Any]:
    """The recorded dataset ``RUN:DATASET`` names (``RUN`` alone: its only dataset)."""
    ref, sep, name = against.rpartition(":")
    if not sep:
        ref, name = against, ""
    if not ref:
        raise InvalidValueError(against, "name the baseline as RUN:DATASET")
    run_id = store.resolve_run(ref)
    run = store.get_run(run_id)
    datasets = store.datasets(run_id)
    known = ", ".join(d["name"] for d in datasets) or "none"
    if not name:
        if len(datasets) != 1:
            raise InvalidValueError(
                against, f"name the dataset as RUN:DATASET (the run has {known})"
            )
        chosen = datasets[0]
    else:
        matches = [d for d in datasets if d["name"] == name]
        if not matches:
            raise InvalidValueError(
                against, f"run {run['name']!r} has no dataset {name!r} ({known})"
            )
        chosen = matches[0]
    if not chosen.get("profile"):
        raise InvalidValueError(
            against, f"dataset {chosen['name']!r} is a {chosen['kind']} with no profile to check"
        )
    return {**chosen, "run_id": run_id, "run_name": run["name"]}


def _record(store: Store, report: dict[str, Any], run_id: str | None, context: str) -> None:
    if run_id is None:
        from .liveness import active_run_id

        run_id = active_run_id()
    check_id = uuid.uuid4().hex
    base = report["baseline"]
    store.add_data_check(
        {
            "id": check_id,
            "run_id": run_id,
            "time": time.time(),
            "subject": report["subject"]["name"],
            "subject_hash": report["subject"]["hash"],
            "context": context,
            "baseline_run": base["run"],
            "baseline_dataset": base["dataset"],
            "baseline_hash": base["hash"],
            "passed": int(report["passed"]),
            "problems": len(report["problems"]),
            "report": report,
        }
    )
    report["id"] = check_id
    report["run"] = run_id
