"""The patches: scikit-learn's fits and scores (and XGBoost's and LightGBM's scikit-learn API)
report to autologging, at a cost of microseconds a call.

Nothing is imported here: an import hook on ``sys.meta_path`` patches ``sklearn.base``,
``sklearn.metrics`` and ``sklearn.model_selection`` right after the notebook imports them,
before it can bind their functions to names of its own. Every estimator class defined from
then on (XGBoost's and LightGBM's derive from ``BaseEstimator``) is patched as it is defined,
through ``BaseEstimator.__init_subclass__``. A patched call that is not the outermost one (a
pipeline's steps, a search's many fits, ``score`` calling ``accuracy_score``) passes straight
through; so does every call while autologging is off or no run is active.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from .. import hashing
from .. import run as runs

__all__ = ["Fit", "Score", "install", "pending", "switch"]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
SCORE_METHOD = "score"
CROSS_VALIDATION = ("cross_val_score", "cross_validate")
# Which results of sklearn.metrics are numbers people report (not curves, matrices, reports).
_SCORER_SUFFIXES = ("_score", "_error", "_loss")
_SCORERS_BY_NAME = frozenset({"matthews_corrcoef"})
_MARK = "__jupyter_mlops_autolog__"
# A loop of fits in one cell keeps at most this many for the cell's end; older ones are
# written then (with the names known so far), so memory stays bounded.
MAX_PENDING = 10_000


class _Switch:
    """Whether patched calls report (one attribute read on the hot path)."""

    on = False


switch = _Switch()


class Fit:
    """One outermost fit: the estimator, how long it took, what it was fitted on."""

    __slots__ = ("data", "duration", "estimator")

    def __init__(self, estimator: Any, duration: float, data: dict[str, dict[str, Any]]) -> None:
        self.estimator = estimator
        self.duration = duration
        self.data = data


class Score:
    """One outermost scoring call: the function's name and what it returned."""

    __slots__ = ("function", "value")

    def __init__(self, function: str, value: Any) -> None:
        self.function = function
        self.value = value


class _Pending:
    """What patched calls reported since the last cell ended."""

    def __init__(self) -> None:
        self.fits: list[Fit] = []
        self.scores: list[Score] = []
        # id -> hash, shape and weak reference of data fitted on in this cell.
        self.hashes: dict[int, dict[str, Any]] = {}
        self.overflow: Callable[[], None] | None = None

    def clear(self) -> None:
        self.fits = []
        self.scores = []
        self.hashes.clear()

    def add(self, item: Fit | Score) -> None:
        if isinstance(item, Fit):
            self.fits.append(item)
        else:
            self.scores.append(item)
        if len(self.fits) + len(self.scores) >= MAX_PENDING and self.overflow is not None:
            self.overflow()


pending = _Pending()
# Set while an outermost patched call runs: the calls inside it are the library's own.
_depth = [0]
_warn: list[Callable[[BaseException], None]] = []


# -- installing ---------------------------------------------------------------------------------


def install(warn: Callable[[BaseException], None]) -> None:
    """Patch what is imported already and watch for the rest (once per process)."""
    if _warn:
        return
    _warn.append(warn)
    for name, patcher in _PATCHERS.items():
        module = sys.modules.get(name)
        if module is not None:
            _patch_guarded(name, module, patcher)
    sys.meta_path.insert(0, _ImportWatcher())


class _ImportWatcher(importlib.abc.MetaPathFinder):
    """Patches a watched module the moment its own code has run, before anyone uses it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patcher = _PATCHERS.get(fullname)
        if patcher is None or fullname in _patched:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            _patch_guarded(fullname, module, patcher)

        try:
            loader.exec_module = exec_and_patch  # type: ignore[union-attr,method-assign]
        except (AttributeError, TypeError):
            return spec
        return spec


_patched: set[str] = set()


def _patch_guarded(name: str, module: ModuleType, patcher: Callable[[ModuleType], None]) -> None:
    if name in _patched:
        return
    _patched.add(name)
    try:
        patcher(module)
    except Exception as exc:  # a library version whose API changed: record less, not fail
        _warn[0](exc)


# -- what is patched ----------------------------------------------------------------------------


def _patch_base(module: ModuleType) -> None:
    base = module.BaseEstimator
    own = base.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: type, **kwargs: Any) -> None:
        if own is not None:
            own.__func__(cls, **kwargs)
        else:
            super(base, cls).__init_subclass__(**kwargs)
        try:
            _patch_class(cls)
        except Exception as exc:
            _warn[0](exc)

    base.__init_subclass__ = classmethod(__init_subclass__)
    for mixin in ("ClassifierMixin", "RegressorMixin"):
        holder = getattr(module, mixin, None)
        if holder is not None:
            _patch_class(holder)
    # Classes defined before the patch (autologging switched on after the import).
    stack = [base]
    while stack:
        cls = stack.pop()
        _patch_class(cls)
        stack.extend(cls.__subclasses__())


def _patch_class(cls: type) -> None:
    for name in (*FIT_METHODS, SCORE_METHOD):
        attribute = cls.__dict__.get(name)
        if attribute is None:
            continue
        wrap = _fit_wrapper if name != SCORE_METHOD else _score_wrapper(SCORE_METHOD)
        if _is_plain_function(attribute):
            setattr(cls, name, wrap(attribute))
        elif _is_plain_function(getattr(attribute, "fn", None)):
            # scikit-learn's `available_if` descriptor: keep it (it decides whether the
            # method exists) and wrap the function it hands out.
            attribute.fn = wrap(attribute.fn)


def _patch_metrics(module: ModuleType) -> None:
    for name in dir(module):
        if name.startswith("_") or not (
            name.endswith(_SCORER_SUFFIXES) or name in _SCORERS_BY_NAME
        ):
            continue
        function = getattr(module, name)
        if _is_plain_function(function):
            setattr(module, name, _score_wrapper(name)(function))


def _patch_model_selection(module: ModuleType) -> None:
    for name in CROSS_VALIDATION:
        function = getattr(module, name, None)
        if function is not None and _is_plain_function(function):
            setattr(module, name, _score_wrapper(name)(function))


_PATCHERS: dict[str, Callable[[ModuleType], None]] = {
    "sklearn.base": _patch_base,
    "sklearn.metrics": _patch_metrics,
    "sklearn.model_selection": _patch_model_selection,
}


def _is_plain_function(value: Any) -> bool:
    return callable(value) and hasattr(value, "__code__") and not getattr(value, _MARK, False)


# -- the wrappers (the hot path) ------------------------------------------------------------


def _fit_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    depth = _depth

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if depth[0] or not switch.on or runs.active_run() is None:
            return original(self, *args, **kwargs)
        depth[0] = 1
        started = time.perf_counter()
        try:
            result = original(self, *args, **kwargs)
        finally:
            depth[0] = 0
        duration = time.perf_counter() - started
        try:
            pending.add(Fit(self, duration, _fit_data(args, kwargs)))
        except Exception as exc:
            _warn[0](exc)
        return result

    setattr(fit, _MARK, True)
    return fit


def _score_wrapper(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    depth = _depth

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def scored(*args: Any, **kwargs: Any) -> Any:
            if depth[0] or not switch.on or runs.active_run() is None:
                return original(*args, **kwargs)
            depth[0] = 1
            try:
                result = original(*args, **kwargs)
            finally:
                depth[0] = 0
            try:
                pending.add(Score(name, result))
            except Exception as exc:
                _warn[0](exc)
            return result

        setattr(scored, _MARK, True)
        return scored

    return wrap


def _fit_data(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Content hash, shape and a weak reference of ``X`` and ``y``."""
    out: dict[str, dict[str, Any]] = {}
    count = len(args)
    for index, name in ((0, "X"), (1, "y")):
        value = args[index] if count > index else kwargs.get(name)
        if value is not None:
            out[name] = _data_info(value)
    return out


def _data_info(value: Any) -> dict[str, Any]:
    """One piece of data, hashed once a cell: the same object with the same shape again
    costs a dict lookup. The weak reference tells a reused id from the same object, and
    names the variable that holds the data when the cell ends (if it still lives)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        shape = tuple(shape)
    elif hasattr(value, "__len__"):
        shape = (len(value),)
    cached = pending.hashes.get(id(value))
    if cached is not None and cached["ref"]() is value and cached["shape"] == shape:
        return cached
    try:
        reference: Callable[[], Any] = weakref.ref(value)
    except TypeError:
        reference = _no_reference  # a list: not cached, and no variable is named for it
    info = {"hash": hashing.content_hash(value), "shape": shape, "ref": reference}
    if reference is not _no_reference:
        pending.hashes[id(value)] = info
    return info


def _no_reference() -> None:
    return None
