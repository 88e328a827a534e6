"""Hyper-parameter search on a validation split carved out of the training data.

:func:`search` tries settings of a model's hyper-parameters, each fitted on
one part of ``train`` and scored with :class:`~recsys.evaluation.Evaluator` on
the other part (:func:`~recsys.split.train_validation_split`), keeps the
setting with the best validation score and refits it on all of ``train``.
The test split is never looked at: evaluate the returned model on it once,
after the search.

Search methods:

- ``"grid"``: every combination of the listed values, in order.
- ``"random"``: ``n_trials`` settings drawn with a seeded generator (without
  repeats; a finite space no larger than ``n_trials`` is run whole).
- ``"optuna"``: optuna's TPE sampler, seeded (``pip install optuna``, or the
  ``recsys[tune]`` extra; imported only when used).
- ``"auto"``: grid when the space is finite and fits in ``n_trials`` (or
  ``n_trials`` is None), else optuna when installed, else random.

A search space maps parameter names to a list of values, :class:`Int` or
:class:`Float` ranges. Names of nested components use dots: ``"cf.k"`` is
the ``k`` of a :class:`~recsys.models.Hybrid`'s ``cf`` model,
``"encoder.vector_size"`` that of a ContentBased model's encoder. Settings
are applied to the model's config (:meth:`Recommender.get_config`) and the
model is rebuilt with :meth:`Recommender.from_config`, so any Recommender
works and the given model is never changed.

The result (:class:`TuningResult`) holds the space, every trial's validation
score, fit and evaluation time (or the error of a failed trial), the winner
and the refitted model; :meth:`TuningResult.save` writes it as JSON.

Examples
--------
>>> from recsys.models import EASE
>>> from recsys.datasets import synthetic
>>> data = synthetic(n_users=200, n_items=100, n_interactions=3000, seed=1)
>>> res = search(EASE(), {"reg": [10.0, 100.0]}, data, metric="ndcg@10", show_progress=False)
>>> [t.params for t in res.trials]
[{'reg': 10.0}, {'reg': 100.0}]
>>> res.best_params in [t.params for t in res.trials], res.model.is_fitted
(True, True)
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recsys._utils.fs import read_json_file, write_text_atomic
from recsys._utils.jsonable import json_float, to_jsonable
from recsys._utils.params import check_int
from recsys._utils.progress import progress_bar
from recsys._utils.registry import class_path, resolve
from recsys._version import __version__
from recsys.data import Interactions
from recsys.errors import DataTypeError, ParameterError, RecsysError
from recsys.models.base import Recommender

__all__ = ["Float", "Int", "Trial", "TuningResult", "apply_params", "search", "space_from_json"]

Method = Literal["auto", "grid", "random", "optuna"]

#: Metrics where lower is better; every other Evaluator metric is maximised.
LOWER_IS_BETTER = frozenset({"rmse", "mae", "gini"})

FORMAT = "recsys-tuning"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Int:
    """An integer range ``[low, high]`` (both included), optionally log-uniform, for random/optuna search.

    Examples
    --------
    >>> Int(10, 400, log=True)
    Int(low=10, high=400, log=True)
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            check_int("Int", name, getattr(self, name))
        if self.low > self.high or (self.log and self.low < 1):
            raise ParameterError(f"Int range needs low <= high (and low >= 1 with log=True); got {self}")


@dataclass(frozen=True)
class Float:
    """A float range ``[low, high]``, optionally log-uniform, for random/optuna search.

    Examples
    --------
    >>> Float(1.0, 1000.0, log=True).log
    True
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (self.low, self.high))
        if not ok or self.low > self.high or (self.log and self.low <= 0):
            raise ParameterError(f"Float range needs finite low <= high (and low > 0 with log=True); got {self}")


Dimension = Sequence[Any] | Int | Float


@dataclass
class Trial:
    """One tried setting: its parameters, validation score, timings, or the error that stopped it."""

    number: int
    params: dict[str, Any]
    score: float | None
    fit_seconds: float
    evaluate_seconds: float
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "params": self.params,
            "score": json_float(self.score),
            "fit_seconds": round(self.fit_seconds, 4),
            "evaluate_seconds": round(self.evaluate_seconds, 4),
            "status": self.status,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trial:
        """The inverse of :meth:`to_dict` (``error`` may be missing)."""
        required = ("number", "params", "score", "fit_seconds", "evaluate_seconds", "status")
        return cls(**{name: d[name] for name in required}, error=d.get("error"))


def check_result_path(path: str | os.PathLike[str]) -> None:
    """Refuse ``path`` unless it is missing or holds a tuning result (which a save replaces).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_result_path(d / "search.json")
    >>> _ = (d / "ratings.csv").write_text("user,item\\n1,2\\n")
    >>> check_result_path(d / "ratings.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    recsys.errors.ParameterError: refusing to write the tuning result to .../ratings.csv: it exists and is not a tuning result ...
    """
    target = Path(path)
    if not os.path.lexists(target):
        return
    existing = read_json_file(target)
    if not (isinstance(existing, dict) and existing.get("format") == FORMAT):
        raise ParameterError(
            f"refusing to write the tuning result to {target}: it exists and is not a tuning result "
            f"(JSON with format {FORMAT!r}); only such a file is replaced, so choose a new path or remove it"
        )


# The fields of TuningResult that its JSON stores under their own names.
_SAVED_AS_IS = ("model_class", "base_config", "space", "method", "metric", "direction", "validation", "search_seconds")


@dataclass
class TuningResult:
    """What :func:`search` did and found.

    Attributes
    ----------
    model_class : str
        Class path of the tuned model.
    base_config : dict
        Config of the model the settings were applied to.
    space : dict
        The search space, JSON form (lists, or ``{"type": "int"|"float", ...}``).
    method : str
        The method actually used (``"grid"``, ``"random"`` or ``"optuna"``).
    metric : str
        E.g. ``"ndcg@10"``; ``direction`` says whether it was maximised.
    trials : list of Trial
    best_params : dict
        The winning setting (first best on ties, in trial order).
    best_score : float
    best_config : dict
        ``base_config`` with ``best_params`` applied: ``Recommender.from_config(best_config)``
        rebuilds the winner.
    validation : dict
        How the validation split was made and its size.
    model : Recommender or None
        The winner refitted on all of ``train`` (None when ``refit=False`` or
        for a result read back with :meth:`load`).
    """

    model_class: str
    base_config: dict[str, Any]
    space: dict[str, Any]
    method: str
    metric: str
    direction: Literal["maximize", "minimize"]
    trials: list[Trial]
    best_params: dict[str, Any]
    best_score: float
    best_config: dict[str, Any]
    validation: dict[str, Any]
    search_seconds: float
    refit_seconds: float | None = None
    model: Recommender | None = field(default=None, repr=False)

    @property
    def n_failed(self) -> int:
        return sum(t.status == "failed" for t in self.trials)

    def best_model(self) -> Recommender:
        """A fresh, unfitted model with the winning setting."""
        return Recommender.from_config(self.best_config)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the fitted model, as JSON values."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "model_class": self.model_class,
            "base_config": self.base_config,
            "space": self.space,
            "method": self.method,
            "metric": self.metric,
            "direction": self.direction,
            "validation": self.validation,
            "n_trials": len(self.trials),
            "n_failed": self.n_failed,
            "best": {"params": self.best_params, "score": json_float(self.best_score), "config": self.best_config},
            "search_seconds": round(self.search_seconds, 3),
            "refit_seconds": None if self.refit_seconds is None else round(self.refit_seconds, 3),
            "trials": [t.to_dict() for t in self.trials],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically); returns the path.

        An existing file at ``path`` is replaced only when it is a tuning result
        (JSON with ``"format": "recsys-tuning"``); anything else there is refused
        with :class:`~recsys.errors.ParameterError`, so a save never destroys a
        file it did not write.
        """
        check_result_path(path)
        return write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TuningResult:
        """Read a result written by :meth:`save` (without the fitted model)."""
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except json.JSONDecodeError as e:
            raise ParameterError(f"{path} is not a tuning result: invalid JSON ({e})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ParameterError(f"{path} is not a tuning result written by recsys.tuning (no format {FORMAT!r})")
        best = d["best"]
        return cls(
            **{name: d[name] for name in _SAVED_AS_IS},
            trials=[Trial.from_dict(t) for t in d["trials"]],
            best_params=best["params"],
            best_score=best["score"],
            best_config=best["config"],
            refit_seconds=d.get("refit_seconds"),
        )


# -- configs with dotted parameter names -----------------------------------------------


def _param_names(class_name: str) -> list[str]:
    cls = resolve(class_name)
    names = getattr(cls, "_param_names", None)
    return list(names()) if callable(names) else []


def _check_name(config: dict[str, Any], name: str) -> None:
    """Raise ParameterError unless the dotted ``name`` is a parameter reachable in ``config``."""
    parts = name.split(".")
    cfg = config
    for depth, part in enumerate(parts):
        owner = str(cfg["class"]).rsplit(".", 1)[-1]
        valid = _param_names(cfg["class"])
        if part not in valid:
            raise ParameterError(f"{owner} has no parameter {part!r} (in {name!r}); valid parameters: {', '.join(valid)}")
        if depth == len(parts) - 1:
            return
        value = (cfg.get("params") or {}).get(part)
        if not (isinstance(value, dict) and "__config__" in value):
            raise ParameterError(
                f"cannot set {name!r}: {owner}'s {part!r} is {value!r}, not a component; give the model an explicit "
                f"{part} (e.g. {owner}({part}=...)) to tune its parameters"
            )
        cfg = value["__config__"]


def apply_params(config: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a model config with parameters replaced; dotted names reach nested components.

    Parameters
    ----------
    config : dict
        From :meth:`Recommender.get_config`.
    params : mapping
        ``{"reg": 500.0}`` or ``{"cf.k": 50, "weight": 0.7}``.

    Raises
    ------
    ParameterError
        A name is not a parameter of the model (or of the nested component).

    Examples
    --------
    >>> from recsys.models import EASE
    >>> apply_params(EASE().get_config(), {"reg": 50.0})["params"]["reg"]
    50.0
    """
    out = json.loads(json.dumps(config))
    for name, value in params.items():
        _check_name(out, name)
        parts = name.split(".")
        cfg = out
        for part in parts[:-1]:
            cfg = cfg["params"][part]["__config__"]
        cfg.setdefault("params", {})[parts[-1]] = to_jsonable(value, nonfinite="keep", what=f"the value of {name!r}")
    return out  # type: ignore[no-any-return]


# -- the space -------------------------------------------------------------------


def _space_json(space: Mapping[str, Dimension]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, Int):
            out[name] = {"type": "int", "low": dim.low, "high": dim.high, "log": dim.log}
        elif isinstance(dim, Float):
            out[name] = {"type": "float", "low": float(dim.low), "high": float(dim.high), "log": dim.log}
        else:
            out[name] = [to_jsonable(v, nonfinite="keep", what=f"a value of {name!r}") for v in dim]
    return out


def space_from_json(space: Mapping[str, Any]) -> dict[str, Dimension]:
    """The inverse of the JSON form stored in results (lists stay lists).

    Examples
    --------
    >>> space_from_json({"k": [10, 20], "reg": {"type": "float", "low": 1, "high": 10, "log": True}})
    {'k': [10, 20], 'reg': Float(low=1, high=10, log=True)}
    """
    out: dict[str, Dimension] = {}
    for name, dim in space.items():
        if isinstance(dim, dict):
            kind = dim.get("type")
            if kind not in ("int", "float"):
                raise ParameterError(f"search space entry {name!r}: type must be 'int' or 'float'; got {kind!r}")
            ctor = Int if kind == "int" else Float
            out[name] = ctor(dim["low"], dim["high"], bool(dim.get("log", False)))
        elif isinstance(dim, (list, tuple)):
            out[name] = list(dim)
        else:
            raise ParameterError(f"search space entry {name!r} must be a list of values or a range; got {dim!r}")
    return out


def _check_space(space: Any) -> dict[str, Dimension]:
    if not isinstance(space, Mapping) or not space:
        raise ParameterError(f"the search space must be a non-empty mapping of parameter name -> values; got {space!r}")
    out: dict[str, Dimension] = {}
    for name, dim in space.items():
        if not isinstance(name, str):
            raise ParameterError(f"search space keys must be parameter names (str); got {name!r}")
        if isinstance(dim, (Int, Float)):
            out[name] = dim
        elif isinstance(dim, (str, bytes)) or not isinstance(dim, Sequence) or len(dim) == 0:
            raise ParameterError(
                f"search space entry {name!r} must be a non-empty list of values, Int(...) or Float(...); got {dim!r}"
            )
        else:
            out[name] = list(dim)
    return out


def _finite(space: Mapping[str, Dimension]) -> bool:
    return all(isinstance(d, list) for d in space.values())


def _grid_size(space: Mapping[str, Dimension]) -> int:
    return math.prod(len(d) for d in space.values() if isinstance(d, list))


def _grid(space: Mapping[str, Dimension]) -> Iterator[dict[str, Any]]:
    names = list(space)
    lists = [d for d in (space[n] for n in names) if isinstance(d, list)]
    for values in itertools.product(*lists):
        yield dict(zip(names, values))


def _draw(dim: Dimension, rng: np.random.Generator) -> Any:
    if isinstance(dim, Int):
        if dim.log:
            v = math.exp(rng.uniform(math.log(dim.low), math.log(dim.high + 1)))
            return int(min(dim.high, max(dim.low, math.floor(v))))
        return int(rng.integers(dim.low, dim.high + 1))
    if isinstance(dim, Float):
        if dim.log:
            return float(math.exp(rng.uniform(math.log(dim.low), math.log(dim.high))))
        return float(rng.uniform(dim.low, dim.high))
    return dim[int(rng.integers(len(dim)))]  # type: ignore[index]


def _random(space: Mapping[str, Dimension], n_trials: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    if _finite(space) and _grid_size(space) <= n_trials:
        grid = list(_grid(space))
        for i in rng.permutation(len(grid)):
            yield grid[int(i)]
        return
    if _finite(space):  # sample grid positions without replacement
        grid = list(_grid(space))
        for i in rng.choice(len(grid), size=n_trials, replace=False):
            yield grid[int(i)]
        return
    seen: set[str] = set()
    made = attempts = 0
    while made < n_trials and attempts < 50 * n_trials:
        attempts += 1
        params = {name: _draw(dim, rng) for name, dim in space.items()}
        key = json.dumps(params, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        made += 1
        yield params


# -- search ---------------------------------------------------------------------------


def _metric(metric: str, k: int) -> tuple[str, int, str]:
    """(evaluator metric name, k, summary key) from "ndcg", "ndcg@10" or "rmse"."""
    from recsys.evaluation import METRICS

    if not isinstance(metric, str):
        raise ParameterError(f"The 'metric' parameter of search must be a str such as 'ndcg@10'. Got {metric!r} instead.")
    name, _, at = metric.partition("@")
    if name not in METRICS:
        raise ParameterError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)} (optionally with @k)")
    if at:
        try:
            k = int(at)
        except ValueError:
            raise ParameterError(f"metric {metric!r}: the cut-off after '@' must be an int") from None
    k = check_int("search", "k", k, low=1)
    key = name if name in ("rmse", "mae") else f"{name}@{k}"
    return name, k, key


def search(
    model: Recommender | type[Recommender],
    space: Mapping[str, Dimension],
    train: Interactions,
    *,
    method: Method = "auto",
    n_trials: int | None = None,
    metric: str = "ndcg",
    k: int = 10,
    validation_ratio: float = 0.75,
    validation_by: Literal["user", "item"] = "user",
    seed: int = 1234,
    validation: tuple[Interactions, Interactions] | None = None,
    refit: bool = True,
    timeout: float | None = None,
    path: str | os.PathLike[str] | None = None,
    show_progress: bool | None = None,
) -> TuningResult:
    """Search hyper-parameters on a validation split of ``train``, then refit the winner on all of ``train``.

    Parameters
    ----------
    model : Recommender or Recommender subclass
        The model whose config the settings are applied to (a class means its defaults).
    space : mapping
        Parameter name (dotted for nested components) -> list of values,
        :class:`Int` or :class:`Float`.
    train : Interactions
        The training data (the train side of a train/test split).
    method : {"auto", "grid", "random", "optuna"}
        See the module docstring.
    n_trials : int, optional
        Settings to try (random/optuna: default 20; grid: every combination).
    metric : str, default "ndcg"
        An :data:`~recsys.evaluation.METRICS` name, optionally with ``@k``;
        ``rmse``, ``mae`` and ``gini`` are minimised, the others maximised.
    k : int, default 10
        Cut-off when ``metric`` has no ``@k``.
    validation_ratio, validation_by, seed
        Passed to :func:`~recsys.split.train_validation_split` (the seed also
        drives random and optuna sampling).
    validation : (fit, validation) pair of Interactions, optional
        Use this split instead (e.g. a temporal one); ``train`` is still what
        the winner is refitted on.
    refit : bool, default True
        Refit the winner on all of ``train`` (``result.model``).
    timeout : float, optional
        Seconds after which no new trial starts (the running one finishes;
        the first trial always runs).
    path : str or path, optional
        Also write the result as JSON there (:meth:`TuningResult.save`: an existing
        file is replaced only when it is a tuning result; checked before the search).
    show_progress : bool, optional
        A progress bar over trials (default: when stderr is a terminal).

    Returns
    -------
    TuningResult

    Raises
    ------
    ParameterError
        Unknown parameter names, a bad space or method, or a grid over ranges.
    RecsysError
        Every trial failed (the message quotes the first error).
    """
    from recsys.evaluation import Evaluator
    from recsys.split import train_validation_split

    if isinstance(model, type):
        if not issubclass(model, Recommender):
            raise DataTypeError(f"search() takes a Recommender or Recommender subclass; got {model.__name__}")
        model = model()
    if not isinstance(model, Recommender):
        raise DataTypeError(f"search() takes a Recommender or Recommender subclass; got {type(model).__name__}")
    if not isinstance(train, Interactions):
        raise DataTypeError(f"search() needs train as Interactions; got {type(train).__name__}")
    space = _check_space(space)
    base = model.get_config()
    for name in space:
        _check_name(base, name)
    if method not in ("auto", "grid", "random", "optuna"):
        raise ParameterError(f"The 'method' parameter of search must be 'auto', 'grid', 'random' or 'optuna'. Got {method!r} instead.")
    if n_trials is not None:
        n_trials = check_int("search", "n_trials", n_trials, low=1)
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ParameterError(f"The 'timeout' parameter of search must be a number > 0 or None. Got {timeout!r} instead.")
    if path is not None:
        check_result_path(path)  # before the search, not after it
    name, k, key = _metric(metric, k)
    direction: Literal["maximize", "minimize"] = "minimize" if name in LOWER_IS_BETTER else "maximize"

    if method == "auto":
        if _finite(space) and (n_trials is None or _grid_size(space) <= n_trials):
            method = "grid"
        else:
            method = "optuna" if _optuna_available() else "random"
    if method == "grid" and not _finite(space):
        ranges = [n for n, d in space.items() if not isinstance(d, list)]
        raise ParameterError(f"grid search needs lists of values; {', '.join(map(repr, ranges))} is a range (use method='random' or 'optuna')")

    if validation is None:
        fit_part, valid_part = train_validation_split(train, ratio=validation_ratio, by=validation_by, seed=seed)
        vinfo: dict[str, Any] = {"split": "train_validation_split", "ratio": validation_ratio, "by": validation_by, "seed": seed}
    else:
        fit_part, valid_part = validation
        vinfo = {"split": "given"}
    evaluator = Evaluator(fit_part, valid_part, k=k, metrics=[name])
    vinfo.update(
        {"n_fit": int(fit_part.nnz), "n_validation": int(valid_part.nnz), "n_users_evaluated": evaluator.n_users_evaluated}
    )

    trials: list[Trial] = []
    start = time.perf_counter()

    def run(params: dict[str, Any]) -> float | None:
        number = len(trials)
        t0 = time.perf_counter()
        fit_s = ev_s = 0.0
        try:
            candidate = Recommender.from_config(apply_params(base, params))
            candidate.fit(fit_part)
            fit_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            value = float(evaluator.evaluate(candidate).summary[key])
            ev_s = time.perf_counter() - t1
        except Exception as e:  # a bad setting (memory guard, invalid combination) must not end the search
            if fit_s == 0.0:
                fit_s = time.perf_counter() - t0
            message = " ".join(f"{type(e).__name__}: {e}".split())[:500]
            trials.append(Trial(number, dict(params), None, fit_s, ev_s, "failed", message))
            return None
        if not math.isfinite(value):
            trials.append(Trial(number, dict(params), None, fit_s, ev_s, "failed", f"{key} is not finite ({value})"))
            return None
        trials.append(Trial(number, dict(params), value, fit_s, ev_s))
        return value

    def out_of_time() -> bool:  # the first trial always runs, so there is a result
        return bool(trials) and timeout is not None and time.perf_counter() - start >= timeout

    owner = type(model).__name__
    if method == "optuna":
        _run_optuna(space, run, n_trials or 20, seed, direction, timeout, owner, show_progress)
    else:
        settings = list(_grid(space)) if method == "grid" else list(_random(space, n_trials or 20, seed))
        bar = progress_bar(desc=f"tune {owner}", total=len(settings), show=show_progress)
        try:
            for params in settings:
                if out_of_time():
                    break
                run(params)
                bar.update(1)
                _postfix(bar, trials, direction)
        finally:
            bar.close()
    search_seconds = time.perf_counter() - start

    done = [t for t in trials if t.status == "ok" and t.score is not None]
    if not done:
        first = trials[0].error if trials else "no trial ran (timeout too short?)"
        raise RecsysError(f"every trial of the {owner} search failed; first error: {first}")
    sign = 1.0 if direction == "maximize" else -1.0
    best = max(done, key=lambda t: (sign * float(t.score), -t.number))  # type: ignore[arg-type]
    best_config = apply_params(base, best.params)
    result = TuningResult(
        model_class=class_path(type(model)),
        base_config=base,
        space=_space_json(space),
        method=method,
        metric=key,
        direction=direction,
        trials=trials,
        best_params=dict(best.params),
        best_score=float(best.score),  # type: ignore[arg-type]
        best_config=best_config,
        validation=vinfo,
        search_seconds=search_seconds,
    )
    if refit:
        t0 = time.perf_counter()
        result.model = Recommender.from_config(best_config).fit(train)
        result.refit_seconds = time.perf_counter() - t0
    if path is not None:
        result.save(path)
    return result


def _postfix(bar: Any, trials: list[Trial], direction: str) -> None:
    scores = [t.score for t in trials if t.score is not None]
    if scores:
        best = max(scores) if direction == "maximize" else min(scores)
        bar.set_postfix_str(f"best {best:.4f}")


def _optuna_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("optuna") is not None


def _run_optuna(
    space: Mapping[str, Dimension],
    run: Any,
    n_trials: int,
    seed: int,
    direction: Literal["maximize", "minimize"],
    timeout: float | None,
    owner: str,
    show_progress: bool | None,
) -> None:
    try:
        import optuna
    except ImportError:
        from recsys.errors import MissingDependencyError

        raise MissingDependencyError(
            "method='optuna' needs optuna: pip install optuna (or pip install 'recsys[tune]'), or use method='random'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))
    bar = progress_bar(desc=f"tune {owner}", total=n_trials, show=show_progress)

    def objective(trial: Any) -> float:
        params: dict[str, Any] = {}
        for name, dim in space.items():
            if isinstance(dim, Int):
                params[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
            elif isinstance(dim, Float):
                params[name] = trial.suggest_float(name, float(dim.low), float(dim.high), log=dim.log)
            else:
                params[name] = trial.suggest_categorical(name, list(dim))  # type: ignore[arg-type]
        value = run(params)
        bar.update(1)
        return float("nan") if value is None else float(value)  # NaN: optuna records the trial as failed

    try:
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=())
    finally:
        bar.close()
