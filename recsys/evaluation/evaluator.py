"""The evaluator: exactly defined accuracy and beyond-accuracy metrics of top-k lists.

See :class:`Evaluator` for the definitions and :mod:`recsys.evaluation` for
how they relate to Microsoft Recommenders' ``python_evaluation``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys._utils.jsonable import json_float as _json_float
from recsys._utils.params import check_float, check_int
from recsys.data import IdMap, Interactions
from recsys.errors import (
    DataWarning,
    DataError,
    DataTypeError,
    MissingColumnError,
    NotSupportedError,
    ParameterError,
)
from recsys.evaluation import metrics as M
from recsys.types import FrameLike, InteractionsLike

__all__ = ["DEFINITIONS_VERSION", "METRICS", "EvaluationResult", "Evaluator", "compare"]

#: Bumped whenever a metric definition changes, so stored results say which definitions they used.
DEFINITIONS_VERSION = "1"

#: Every metric name the evaluator knows, in reporting order.
METRICS = (
    "precision",
    "recall",
    "f1",
    "hit_rate",
    "mrr",
    "ndcg",
    "map",
    "coverage",
    "distributional_coverage",
    "novelty",
    "diversity",
    "user_coverage",
    "gini",
    "serendipity",
    "rmse",
    "mae",
)

# How each metric aggregates, which decides its confidence interval and compare() test:
# "mean": mean over U of a per-user value; "ratio": sum of per-user numerators over sum of
# denominators (novelty: slots; diversity: users with >= 2 items; rmse/mae: rated test rows);
# "set": a property of the whole list set, no per-user decomposition.
_KIND = {
    "precision": "mean",
    "recall": "mean",
    "f1": "mean",
    "hit_rate": "mean",
    "mrr": "mean",
    "ndcg": "mean",
    "map": "mean",
    "serendipity": "mean",
    "novelty": "ratio",
    "diversity": "ratio",
    "rmse": "ratio",
    "mae": "ratio",
    "coverage": "set",
    "distributional_coverage": "set",
    "gini": "set",
    "user_coverage": "set",
}
_RATING_METRICS = ("rmse", "mae")
_MAX_SHOWN = 5


def _py(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _column(frame: Any, name: str, what: str) -> NDArray[Any]:
    """Column ``name`` of a pandas or polars frame as a numpy array."""
    if name not in frame.columns:
        cols = ", ".join(repr(c) for c in list(frame.columns)[:12])
        raise MissingColumnError(f"{what} has no column {name!r} (columns: {cols})")
    col = frame[name]
    if isinstance(col, pd.DataFrame):
        raise DataError(f"{what} has more than one column named {name!r}")
    arr = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
    return np.asarray(arr)


def _ids(values: NDArray[Any], col: str, what: str) -> NDArray[Any]:
    """Ids as int64 or object; nulls and non-integral floats are errors naming the row."""
    kind = values.dtype.kind
    if kind in "iu":
        return values.astype(np.int64, copy=False)
    if kind == "f":
        bad = ~np.isfinite(values) | (values != np.floor(values))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DataError(f"{what} column {col!r} must hold integer or string ids; got {values[r]!r} at row {r}")
        return values.astype(np.int64)
    if kind == "b":
        raise DataTypeError(f"{what} column {col!r} must hold integer or string ids; got bool")
    out = values.astype(object)
    nulls = pd.isna(out)
    if nulls.any():
        r = int(np.flatnonzero(nulls)[0])
        raise DataError(f"{what} column {col!r} has a null id at row {r}")
    return out


def _to_pandas(frame: Any) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "columns") and hasattr(frame, "get_column"):  # polars, without pyarrow
        data: dict[str, Any] = {}
        for name in frame.columns:
            s = frame.get_column(name)
            if str(s.dtype).startswith(("List", "Array")):
                data[name] = pd.Series([None if v is None else list(v) for v in s.to_list()], dtype=object)
            else:
                data[name] = s.to_numpy()
        return pd.DataFrame(data)
    raise DataTypeError(f"item_features must be a pandas or polars DataFrame; got {type(frame).__name__}")


class _Lookup:
    """External id -> index of an IdMap, -1 when absent; a dense table when int ids span a compact range."""

    def __init__(self, idmap: IdMap) -> None:
        self.idmap = idmap
        self.table: NDArray[np.int64] | None = None
        self.offset = 0
        ids = idmap.ids
        if ids.dtype.kind == "i" and len(ids):
            lo, hi = int(ids.min()), int(ids.max())
            if hi - lo < 4 * len(ids) + 1024:
                table = np.full(hi - lo + 1, -1, dtype=np.int64)
                table[ids - lo] = np.arange(len(ids), dtype=np.int64)
                self.table, self.offset = table, lo

    def __call__(self, values: NDArray[Any]) -> NDArray[np.int64]:
        if self.table is not None and values.dtype.kind == "i" and len(values):
            shifted = values - self.offset if self.offset else values
            if shifted.min() >= 0 and shifted.max() < len(self.table):
                return self.table[shifted]
            ok = (shifted >= 0) & (shifted < len(self.table))
            out = np.full(len(values), -1, dtype=np.int64)
            out[ok] = self.table[shifted[ok]]
            return out
        return self.idmap.to_index(values, missing="negative").astype(np.int64)


def _as_interactions(data: Any, name: str) -> Interactions:
    if isinstance(data, Interactions):
        return data
    if hasattr(data, "columns"):
        cols = list(data.columns)
        for c in ("user", "item"):
            if c not in cols:
                raise MissingColumnError(
                    f"the {name!r} frame has no column {c!r} (columns: {', '.join(map(repr, cols[:12]))})"
                )
        return Interactions.from_frame(data, rating_col="rating" if "rating" in cols else None)
    raise DataTypeError(
        f"The {name!r} parameter of Evaluator must be an Interactions or a DataFrame with 'user' and "
        f"'item' columns. Got {type(data).__name__} instead."
    )


def _check_ks(k: Any) -> list[int]:
    items = list(k) if isinstance(k, (list, tuple, np.ndarray, range)) else [k]
    ok = bool(items) and all(
        isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 1 for x in items
    )
    if not ok:
        raise ParameterError(
            f"The 'k' parameter of Evaluator must be an int >= 1 or a non-empty list of them. Got {k!r} instead."
        )
    return sorted({int(x) for x in items})


def _check_metrics(metrics: Any) -> list[str] | None:
    if metrics is None:
        return None
    if isinstance(metrics, str):
        metrics = [metrics]
    names = list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ParameterError(
            f"The 'metrics' parameter of Evaluator must be a non-empty list of metric names from "
            f"{', '.join(METRICS)}. Got {unknown[0] if unknown else metrics!r} instead."
        )
    return [m for m in METRICS if m in names]


def _read_item_features(item_features: Any) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Item ids and their feature vectors (one row each), validated."""
    frame = _to_pandas(item_features)
    if "item" not in frame.columns:
        raise MissingColumnError(
            f"item_features has no column 'item' (columns: {', '.join(map(repr, list(frame.columns)[:12]))})"
        )
    ids = _ids(np.asarray(frame["item"].to_numpy()), "item", "item_features")
    other = [c for c in frame.columns if c != "item"]
    if not other:
        raise DataError("item_features has no feature column besides 'item'")
    if len(other) == 1 and frame[other[0]].dtype == object:
        vals = frame[other[0]].to_list()
        try:
            mat = np.array([np.asarray(v, dtype=np.float64).ravel() for v in vals])
        except (TypeError, ValueError) as exc:
            raise DataTypeError(
                f"item_features column {other[0]!r} must hold numeric vectors of one length ({exc})"
            ) from None
        if mat.ndim != 2:
            raise DataTypeError(f"item_features column {other[0]!r} must hold numeric vectors of one length")
    else:
        bad = [c for c in other if frame[c].dtype.kind not in "iufb"]
        if bad:
            raise DataTypeError(
                f"item_features column {bad[0]!r} must be numeric; got dtype {frame[bad[0]].dtype}"
            )
        mat = frame[other].to_numpy(dtype=np.float64)
    if not np.isfinite(mat).all():
        r = int(np.flatnonzero(~np.isfinite(mat).all(axis=1))[0])
        raise DataError(f"item_features has a NaN or infinite value at row {r}")
    if pd.Index(ids).has_duplicates:
        dup = pd.Index(ids)[pd.Index(ids).duplicated()][0]
        raise DataError(f"item_features has two rows for item {_py(dup)!r}")
    return ids, mat


class EvaluationResult:
    """Metric values of one evaluation, per user and overall, with bootstrap confidence intervals.

    Attributes
    ----------
    summary : dict
        ``"ndcg@10"`` -> value (``"rmse"`` / ``"mae"`` have no ``@k``).
    per_user : pandas.DataFrame
        One row per evaluated user (``user`` column, external ids) with the
        per-user value of every per-user metric (``novelty@k``: the mean over
        the user's own slots; ``diversity@k``: NaN below 2 items), plus
        ``n_relevant`` and ``n_recommended``.
    ks : list of int
    n_users_evaluated, n_test_users, n_test_users_skipped : int
    n_rating_rows, n_rating_rows_skipped : int
        Test ratings used by rmse/mae and those skipped (user or item without
        train interactions); 0 when rmse/mae were not computed.
    notes : list of str
        Metrics that were left out and why.
    """

    def __init__(
        self,
        *,
        summary: dict[str, float],
        per_user: pd.DataFrame,
        ks: list[int],
        metrics: list[str],
        n_users_evaluated: int,
        n_test_users: int,
        relevance_threshold: float | None,
        parts: dict[str, tuple[str, NDArray[np.float64], NDArray[np.float64]]],
        rated_users: NDArray[Any] | None = None,
        n_rating_rows: int = 0,
        n_rating_rows_skipped: int = 0,
        notes: list[str] | None = None,
    ) -> None:
        self.summary = summary
        self.per_user = per_user
        self.ks = ks
        self.metrics = metrics
        self.n_users_evaluated = n_users_evaluated
        self.n_test_users = n_test_users
        self.n_test_users_skipped = n_test_users - n_users_evaluated
        self.relevance_threshold = relevance_threshold
        self.n_rating_rows = n_rating_rows
        self.n_rating_rows_skipped = n_rating_rows_skipped
        self.notes = list(notes or [])
        # name -> (population "U" | "rated", per-user numerators, denominators); see _KIND.
        self._parts = parts
        self._rated_users = rated_users
        self._ci_cache: dict[tuple[int, float, int], dict[str, tuple[float, float] | None]] = {}

    @property
    def users(self) -> NDArray[Any]:
        """External ids of the evaluated users U, in the row order of :attr:`per_user`."""
        return self.per_user["user"].to_numpy()  # type: ignore[no-any-return]

    def confidence_intervals(
        self, n_boot: int = 1000, level: float = 0.95, seed: int = 0
    ) -> dict[str, tuple[float, float] | None]:
        """Percentile bootstrap intervals, resampling users (seeded, so reproducible).

        Per-user means and ratio metrics are re-estimated on ``n_boot``
        resamples of the users (rmse/mae: of the users with rated test rows).
        Set-level metrics (coverage, distributional_coverage, gini,
        user_coverage) get ``None``: they are not means over users, and their
        user-resampled replicates are biased (a resample has fewer distinct
        users), so a percentile interval would mislead.

        Examples
        --------
        >>> ev = Evaluator(pd.DataFrame({"user": [1, 2], "item": [1, 2]}),
        ...                pd.DataFrame({"user": [1, 2], "item": [2, 1]}), k=1, metrics=["hit_rate"])
        >>> res = ev.evaluate(pd.DataFrame({"user": [1, 2], "item": [2, 2], "rank": [1, 1]}))
        >>> res.confidence_intervals(n_boot=200)["hit_rate@1"]
        (0.0, 1.0)
        """
        check_int("confidence_intervals", "n_boot", n_boot, low=2)
        check_float("confidence_intervals", "level", level, low=0.0, high=1.0, low_open=True, high_open=True)
        key = (int(n_boot), float(level), int(seed))
        if key in self._ci_cache:
            return self._ci_cache[key]
        out: dict[str, tuple[float, float] | None] = {name: None for name in self.summary}
        for pop in ("U", "rated"):
            names = [n for n, (p, _, _) in self._parts.items() if p == pop]
            if not names:
                continue
            num = np.stack([self._parts[n][1] for n in names], axis=1)
            den = np.stack([self._parts[n][2] for n in names], axis=1)
            est = M.bootstrap_estimates(num, den, int(n_boot), int(seed))
            for j, name in enumerate(names):
                col = est[:, j]
                if name == "rmse":
                    col = np.sqrt(col)
                out[name] = _percentiles(col, level)
        self._ci_cache[key] = out
        return out

    @property
    def ci(self) -> dict[str, tuple[float, float] | None]:
        """95% confidence intervals with the default 1000 resamples and seed 0."""
        return self.confidence_intervals()

    def to_dict(self, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
        """Everything as plain Python values (JSON-serialisable; NaN becomes None).

        Examples
        --------
        >>> ev = Evaluator(pd.DataFrame({"user": [1], "item": [1]}),
        ...                pd.DataFrame({"user": [1], "item": [2]}), k=2, metrics=["recall"])
        >>> d = ev.evaluate(pd.DataFrame({"user": [1, 1], "item": [3, 2], "rank": [1, 2]})).to_dict()
        >>> d["summary"], d["n_users_evaluated"], d["k"]
        ({'recall@2': 1.0}, 1, [2])
        """
        ci = self.confidence_intervals(n_boot=n_boot, seed=seed)
        return {
            "definitions_version": DEFINITIONS_VERSION,
            "k": list(self.ks),
            "metrics": list(self.metrics),
            "summary": {k: _json_float(v) for k, v in self.summary.items()},
            "confidence_intervals": {
                k: None if v is None else [_json_float(v[0]), _json_float(v[1])] for k, v in ci.items()
            },
            "confidence_level": 0.95,
            "n_bootstrap": int(n_boot),
            "bootstrap_seed": int(seed),
            "n_users_evaluated": int(self.n_users_evaluated),
            "n_test_users": int(self.n_test_users),
            "n_test_users_skipped": int(self.n_test_users_skipped),
            "n_rating_rows": int(self.n_rating_rows),
            "n_rating_rows_skipped": int(self.n_rating_rows_skipped),
            "relevance_threshold": self.relevance_threshold,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string (strict JSON: no NaN)."""
        return json.dumps(self.to_dict(**kwargs), indent=indent, allow_nan=False)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v:.4f}" for k, v in list(self.summary.items())[:8])
        more = ", ..." if len(self.summary) > 8 else ""
        return f"EvaluationResult({self.n_users_evaluated} users: {body}{more})"


def _percentiles(samples: NDArray[np.float64], level: float) -> tuple[float, float] | None:
    ok = samples[np.isfinite(samples)]
    if len(ok) == 0:
        return None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ok, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


class Evaluator:
    r"""Evaluate top-k recommendations against held-out test interactions.

    Build it once per train/test split, then :meth:`evaluate` any number of
    fitted models or recommendation frames; every number is computed the
    same way, independent of batch sizes or chunking.

    Parameters
    ----------
    train, test : Interactions or DataFrame
        As the splits return them, or frames with ``user``, ``item`` (and
        ``rating``) columns in external ids. Test users and items absent from
        train are allowed.
    k : int or list of int, default 10
        Cut-offs; every metric is reported at each.
    metrics : list of str, optional
        Names from :data:`METRICS`; default all (rmse/mae only when they
        apply: a model with ``predict`` and ratings in train and test).
    relevance_threshold : float, optional
        Test interactions with ``rating >= relevance_threshold`` are relevant;
        default all test interactions.
    item_features : DataFrame, optional
        An ``item`` column plus numeric columns (multi-hot genres,
        embedding dimensions) or one column of numeric vectors. When given,
        diversity uses the cosine of these vectors.

    Notes
    -----
    **Definitions** (version :data:`DEFINITIONS_VERSION`).
    Evaluated users U = users with at least one relevant test item who have at
    least one train interaction (``n_test_users_skipped`` reports how many test
    users were skipped). For user u: R_u = the top-k list (may be shorter than
    k; a user in U with no list counts as an empty list), T_u = relevant test
    items (all test interactions, or those with rating >= relevance_threshold;
    items absent from train still count), rel_r = 1 if the item at rank r is in
    T_u, hits@r = Σ_{s<=r} rel_s. Every metric below is computed over U only.

    - ``precision@k`` = mean over U of hits@k / k
    - ``recall@k`` = mean over U of hits@k / |T_u|
    - ``f1@k`` = mean over U of 2·P_u·R_u / (P_u + R_u), P_u = hits@k / k,
      R_u = hits@k / |T_u| (0 when both are 0); equivalently
      2·hits@k / (k + |T_u|). This is the mean of per-user F1 scores, not
      the F1 of ``precision@k`` and ``recall@k``, which is a different
      number (see the second example)
    - ``hit_rate@k`` = mean over U of [hits@k > 0]
    - ``mrr@k`` = mean over U of 1 / (rank of the first relevant item), 0 if none
    - ``ndcg@k`` = mean over U of DCG / IDCG, DCG = Σ_{r<=k} rel_r / log2(r+1),
      IDCG = Σ_{r<=min(|T_u|,k)} 1 / log2(r+1)
    - ``map@k`` = mean over U of (1 / min(|T_u|, k)) Σ_{r<=k} rel_r · hits@r / r
    - ``coverage@k`` = |∪_{u∈U} R_u| / |I_train ∪ (∪_u R_u)|, I_train = items with
      at least one train interaction (equal to Microsoft Recommenders' catalog
      coverage whenever only train items are recommended, and never above 1)
    - ``distributional_coverage@k`` = −Σ_i p_i log2 p_i, p_i = share of all
      recommendation slots of U given to item i (0 when there is no slot)
    - ``novelty@k`` = mean over all recommendation slots of U of
      −log2(max(n_i, 1) / N), n_i = train interactions of item i, N = all train
      interactions (Castells et al.'s item-choice model, as in Microsoft
      Recommenders' ``novelty``, except that an item absent from train counts
      as n_i = 1 instead of adding 0); NaN when there is no slot
    - ``diversity@k`` = mean over users of U with |R_u| >= 2 of
      1 − (mean over unordered pairs i<j in R_u of sim(i, j)), where by default
      sim(i, j) = |U_i ∩ U_j| / sqrt(|U_i|·|U_j|) over train users (0 if either
      is empty; pairs that never co-occur count as 0), or the cosine of
      ``item_features`` vectors (0 for an item without a vector) when given;
      NaN when no user has 2 items
    - ``user_coverage@k`` = (test users with a non-empty top-k list) / (all
      distinct test users, including cold users and users without relevant
      items). A model is asked for every test user's list for this reason.
    - ``gini@k`` = Gini index of the recommendation counts c_i (slots of U given
      to item i) over the catalogue C = I_train ∪ (∪_u R_u):
      Σ_j (2j − |C| − 1) c_(j) / (|C| Σ_i c_i) with c_(1) <= ... <= c_(|C|);
      0 = every item equally recommended, near 1 = all slots on one item;
      NaN when there is no slot
    - ``serendipity@k`` = mean over U of (1/|R_u|) Σ_{r<=|R_u|} max(p(r) − pu(i_r), 0)·rel_r
      (0 for an empty list), RecTools' ``Serendipity``: p(r) = (n + 1 − r) / n,
      pu(i) = (n + 1 − popularity rank of i) / n (0 for an item absent from
      train), n = |I_train|, popularity rank = dense rank of n_i, 1 for the most
      interacted item. It rewards relevant items ranked above their global
      popularity rank.
    - ``rmse`` = sqrt(mean of (clip(pred) − rating)²), ``mae`` = mean of
      |clip(pred) − rating|, over the test ratings whose user and item have
      train interactions (the others are counted in ``n_rating_rows_skipped``),
      predictions clipped to the training rating range.

    Lists: with a ``rank`` column a user's rows are ordered by rank (two rows
    with the same rank are an error), else by ``score`` descending with ties
    kept in row order; the list is the first k rows in that order (gaps in
    ranks are closed). A user's duplicate items are an error. Rows of users
    who are not test users are ignored.

    Examples
    --------
    >>> train = pd.DataFrame({"user": [1, 1, 2, 2], "item": [10, 11, 10, 12]})
    >>> test = pd.DataFrame({"user": [1, 2, 2], "item": [12, 11, 13]})
    >>> recs = pd.DataFrame({"user": [1, 1, 2, 2], "item": [12, 10, 13, 14], "rank": [1, 2, 1, 2]})
    >>> res = Evaluator(train, test, k=2, metrics=["precision", "recall", "ndcg"]).evaluate(recs)
    >>> {name: round(v, 4) for name, v in res.summary.items()}
    {'precision@2': 0.5, 'recall@2': 0.75, 'ndcg@2': 0.8066}

    F1 is averaged per user. At k = 2, user 1 has one relevant item and hits
    it (P = 1/2, R = 1, F1 = 2/3); user 2 has four and hits two (P = 1,
    R = 1/2, F1 = 2/3). ``f1@2`` = 2/3, while the F1 of the mean precision
    and recall (3/4 and 3/4) is 3/4:

    >>> test = pd.DataFrame({"user": [1, 2, 2, 2, 2], "item": [12, 11, 13, 14, 15]})
    >>> recs = pd.DataFrame({"user": [1, 1, 2, 2], "item": [12, 10, 13, 14], "rank": [1, 2, 1, 2]})
    >>> s = Evaluator(train, test, k=2, metrics=["precision", "recall", "f1"]).evaluate(recs).summary
    >>> round(s["f1@2"], 4), round(2 * s["precision@2"] * s["recall@2"] / (s["precision@2"] + s["recall@2"]), 4)
    (0.6667, 0.75)
    """

    def __init__(
        self,
        train: InteractionsLike,
        test: InteractionsLike,
        k: int | Sequence[int] = 10,
        metrics: Sequence[str] | None = None,
        relevance_threshold: float | None = None,
        item_features: FrameLike | None = None,
    ) -> None:
        self.ks = _check_ks(k)
        self.kmax = self.ks[-1]
        self.requested = _check_metrics(metrics)
        if relevance_threshold is not None and not (
            isinstance(relevance_threshold, (int, float, np.integer, np.floating))
            and not isinstance(relevance_threshold, bool)
            and math.isfinite(float(relevance_threshold))
        ):
            raise ParameterError(
                "The 'relevance_threshold' parameter of Evaluator must be a finite number or None. "
                f"Got {relevance_threshold!r} instead."
            )
        self.relevance_threshold = None if relevance_threshold is None else float(relevance_threshold)
        tr = _as_interactions(train, "train")
        te = _as_interactions(test, "test")
        self.train = tr
        if self.relevance_threshold is not None and te.ratings is None:
            raise DataError("relevance_threshold needs test ratings; the test interactions have none")

        # Id maps: train's, extended with test-only users and items.
        self.user_map = tr.users if te.users is tr.users else tr.users.extend(te.users.ids)
        self.item_map = tr.items if te.items is tr.items else tr.items.extend(te.items.ids)
        features = None if item_features is None else _read_item_features(item_features)
        if features is not None:  # items known only from their features still have a vector
            self.item_map = self.item_map.extend(features[0])
        self._user_lookup = _Lookup(self.user_map)
        self._item_lookup = _Lookup(self.item_map)
        tu = self._remap(te.user_index, te.users, tr.users, self._user_lookup)
        ti = self._remap(te.item_index, te.items, tr.items, self._item_lookup)
        n_users, n_items = len(self.user_map), len(self.item_map)

        self.user_train_counts = np.zeros(n_users, dtype=np.int64)
        self.user_train_counts[: tr.n_users] = tr.user_counts
        self.item_train_counts = np.zeros(n_items, dtype=np.int64)
        self.item_train_counts[: tr.n_items] = tr.item_counts
        self.n_train_interactions = int(tr.nnz)

        relevant = np.ones(te.nnz, dtype=bool)
        if self.relevance_threshold is not None:
            assert te.ratings is not None
            relevant = te.ratings >= self.relevance_threshold
        self.is_test_user = np.zeros(n_users, dtype=bool)
        self.is_test_user[tu] = True
        self.n_test_users = int(self.is_test_user.sum())
        n_rel_all = np.bincount(tu[relevant], minlength=n_users)
        in_u = (n_rel_all > 0) & (self.user_train_counts > 0)
        self.eval_users = np.flatnonzero(in_u)  # internal indices of U, ascending
        if len(self.eval_users) == 0:
            raise DataError(
                f"no test user can be evaluated: none of the {self.n_test_users} test users has both a "
                "relevant test item and a train interaction"
            )
        self.user_pos = np.full(n_users, -1, dtype=np.int64)
        self.user_pos[self.eval_users] = np.arange(len(self.eval_users))
        self.n_relevant = n_rel_all[self.eval_users].astype(np.int64)
        rows = relevant & in_u[tu]
        self.relevant_keys = np.sort(M.pair_keys(self.user_pos[tu[rows]], ti[rows]))
        self._relevant_table = M.relevant_table(self.relevant_keys, len(self.eval_users))

        # Test ratings usable by rmse/mae: user and item with train interactions.
        self._rating_rows: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]] | None = None
        self._n_rating_skipped = 0
        if te.ratings is not None:
            ok = (self.user_train_counts[tu] > 0) & (self.item_train_counts[ti] > 0)
            self._rating_rows = (tu[ok], ti[ok], te.ratings[ok].astype(np.float64))
            self._n_rating_skipped = int((~ok).sum())

        self.item_feature_matrix: NDArray[np.float64] | None = None
        if features is not None:
            self.item_feature_matrix = np.zeros((n_items, features[1].shape[1]), dtype=np.float64)
            self.item_feature_matrix[self._item_lookup(features[0])] = features[1]

    @staticmethod
    def _remap(index: NDArray[np.int32], own: IdMap, base: IdMap, lookup: _Lookup) -> NDArray[np.int64]:
        if own is base:
            return index.astype(np.int64)
        return lookup(own.ids)[index]

    @property
    def n_users_evaluated(self) -> int:
        """|U|."""
        return len(self.eval_users)

    @property
    def test_users(self) -> NDArray[Any]:
        """External ids of all distinct test users (in index order)."""
        return self.user_map.to_ids(np.flatnonzero(self.is_test_user))

    # -- evaluation -----------------------------------------------------------------

    def evaluate(
        self, model_or_recommendations: Any, *, on_unknown: Literal["skip", "popular", "error"] = "skip"
    ) -> EvaluationResult:
        """Compute the metrics of a fitted model or of a recommendation frame.

        Parameters
        ----------
        model_or_recommendations : fitted model or DataFrame
            A model is asked once, ``recommend(test_users, k=max(k),
            exclude_seen=True, on_unknown=on_unknown)``, for every test user
            (the lists of users outside U only count for user_coverage), and,
            when it has ``predict`` and rmse/mae apply, once for the test
            ratings. A frame has ``user``, ``item`` and ``rank`` or ``score``
            columns in external ids, from any source.
        on_unknown : {"skip", "popular", "error"}
            Passed to the model's ``recommend`` for test users it does not know.

        Returns
        -------
        EvaluationResult

        Raises
        ------
        MissingColumnError
            The frame lacks ``user``, ``item``, or both ``rank`` and ``score``.
        DataError
            Null ids, NaN ranks or scores, a user's duplicate item or rank.
        NotSupportedError
            rmse/mae were requested but cannot be computed.
        """
        if on_unknown not in ("skip", "popular", "error"):
            raise ParameterError(
                f"The 'on_unknown' parameter of evaluate must be 'skip', 'popular' or 'error'. Got {on_unknown!r} instead."
            )
        obj = model_or_recommendations
        notes: list[str] = []
        predictions: NDArray[np.float64] | None = None
        wanted = list(self.requested) if self.requested is not None else list(METRICS)
        rating_wanted = [m for m in _RATING_METRICS if m in wanted]
        if hasattr(obj, "columns"):
            frame = obj
            reason = "recommendations were given as a frame (rmse/mae need a model with predict)"
        elif hasattr(obj, "recommend"):
            frame = obj.recommend(self.test_users, k=self.kmax, exclude_seen=True, on_unknown=on_unknown)
            if not hasattr(frame, "columns"):
                raise DataTypeError(
                    f"recommend() must return a DataFrame with user, item, score, rank columns; got {type(frame).__name__}"
                )
            reason = self._rating_unsupported(obj)
            if rating_wanted and not reason:
                try:
                    predictions = self._predict(obj)
                except NotSupportedError as e:  # e.g. an implicit-feedback k-NN: predict exists but refuses
                    reason = f"{type(obj).__name__}.predict is not supported: {e}"
        else:
            raise DataTypeError(
                "evaluate() takes a fitted model with a recommend() method or a DataFrame with user, item "
                f"and rank or score columns. Got {type(obj).__name__} instead."
            )
        if rating_wanted and predictions is None:
            if self.requested is not None:
                raise NotSupportedError(f"cannot compute {', '.join(rating_wanted)}: {reason}")
            notes.append(f"rmse, mae not computed: {reason}")
        recs, has_list = self._ingest(frame)
        return self._compute(recs, has_list, wanted, predictions, notes)

    def _rating_unsupported(self, model: Any) -> str:
        if not callable(getattr(model, "predict", None)):
            return f"{type(model).__name__} has no predict() method"
        if self._rating_rows is None:
            return "the test interactions have no ratings"
        if self.train.ratings is None:
            return "the train interactions have no ratings (needed for the clipping range)"
        if len(self._rating_rows[0]) == 0:
            return "no test rating has both its user and its item in train"
        return ""

    def _predict(self, model: Any) -> NDArray[np.float64]:
        assert self._rating_rows is not None and self.train.ratings is not None
        users, items, _ = self._rating_rows
        pred = np.asarray(model.predict(self.user_map.to_ids(users), self.item_map.to_ids(items)))
        if pred.shape != (len(users),):
            raise DataError(f"predict() returned shape {pred.shape}; expected ({len(users)},)")
        pred = pred.astype(np.float64)
        if not np.isfinite(pred).all():
            r = int(np.flatnonzero(~np.isfinite(pred))[0])
            raise DataError(f"predict() returned a non-finite value {pred[r]!r} at position {r}")
        lo, hi = float(self.train.ratings.min()), float(self.train.ratings.max())
        return np.clip(pred, lo, hi)

    def _ingest(self, frame: Any) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The (|U|, kmax) item matrix padded with -1, and which test users have a list."""
        users_raw = _ids(_column(frame, "user", "recommendations"), "user", "recommendations")
        items_raw = _ids(_column(frame, "item", "recommendations"), "item", "recommendations")
        cols = list(frame.columns)
        if "rank" in cols:
            key = _numeric(_column(frame, "rank", "recommendations"), "rank")
            by_rank = True
        elif "score" in cols:
            key = -_numeric(_column(frame, "score", "recommendations"), "score")
            by_rank = False
        else:
            raise MissingColumnError(
                "recommendations need a 'rank' or a 'score' column to order each user's items "
                f"(columns: {', '.join(map(repr, cols[:12]))})"
            )
        _warn_id_type(users_raw, self.user_map, "user")
        _warn_id_type(items_raw, self.item_map, "item")
        n_users = len(self.user_map)
        uidx = self._user_lookup(users_raw)
        fast = self._ingest_regular(uidx, items_raw, key, by_rank)
        if fast is not None:
            return fast
        keep = uidx >= 0
        keep[keep] = self.is_test_user[uidx[keep]]
        rows = np.flatnonzero(keep)
        has_list = np.zeros(n_users, dtype=bool)
        kmax = self.kmax
        recs = np.full((len(self.eval_users), kmax), -1, dtype=np.int64)
        if len(rows) == 0:
            return recs, has_list[self.is_test_user]
        u = uidx[rows]
        key = key[rows]
        item = self._item_lookup(items_raw[rows])
        unknown = item < 0
        if unknown.any():  # items in neither train nor test: new indices after the map
            codes, _ = pd.factorize(items_raw[rows][unknown])
            item[unknown] = len(self.item_map) + codes
        # Order rows by (user, key, row); the common already-sorted case skips the sort.
        du = np.diff(u)
        if not ((du >= 0).all() and (np.diff(key)[du == 0] >= 0).all()):
            order = np.lexsort((key, u))  # lexsort is stable: ties keep row order
            u, key, item, rows = u[order], key[order], item[order], rows[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = u[1:] != u[:-1]
        if by_rank:
            same = ~first[1:] & (key[1:] == key[:-1])
            if same.any():
                j = int(np.flatnonzero(same)[0]) + 1
                raise DataError(
                    f"recommendations: user {_py(users_raw[rows[j]])!r} has two rows with rank "
                    f"{_py(key[j])!r} (rows {int(rows[j - 1])} and {int(rows[j])})"
                )
        starts = np.flatnonzero(first)
        lengths = np.diff(np.append(starts, len(u)))
        pos = np.arange(len(u)) - np.repeat(starts, lengths)
        self._check_duplicates(u, item, pos, lengths, users_raw, items_raw, rows)
        has_list[u] = True
        up = self.user_pos[u]
        sel = (up >= 0) & (pos < kmax)
        recs[up[sel], pos[sel]] = item[sel]
        return recs, has_list[self.is_test_user]

    def _ingest_regular(
        self, uidx: NDArray[np.int64], items_raw: NDArray[Any], key: NDArray[np.float64], by_rank: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]] | None:
        """Fast path for the usual layout: every user's rows contiguous, in list order, all lists
        of one length L, no duplicates. Returns None (use the general path) otherwise."""
        n = len(uidx)
        if n == 0:
            return None
        change = np.flatnonzero(uidx[1:] != uidx[0])
        width = int(change[0]) + 1 if len(change) else n
        if n % width or width > 64:
            return None
        u2 = uidx.reshape(-1, width)
        group = u2[:, 0]
        if not (u2 == group[:, None]).all():
            return None
        k2 = key.reshape(-1, width)
        if not ((k2[:, 1:] > k2[:, :-1]).all() if by_rank else (k2[:, 1:] >= k2[:, :-1]).all()):
            return None
        keep = group >= 0
        keep[keep] = self.is_test_user[group[keep]]
        group = group[keep]
        if np.bincount(group, minlength=1).max(initial=0) > 1:
            return None  # a user's rows are split in several places
        kept_raw = items_raw if keep.all() else items_raw[keep.repeat(width)]
        item = self._item_lookup(kept_raw)
        unknown = item < 0
        if unknown.any():  # items in neither train nor test: new indices after the map
            codes, _ = pd.factorize(kept_raw[unknown])
            item[unknown] = len(self.item_map) + codes
        i2 = item.reshape(-1, width)
        if width > 1:
            srt = np.sort(i2, axis=1)
            if (srt[:, 1:] == srt[:, :-1]).any():
                return None  # duplicate items: the general path reports where
        has_list = np.zeros(len(self.user_map), dtype=bool)
        has_list[group] = True
        recs = np.full((len(self.eval_users), self.kmax), -1, dtype=np.int64)
        up = self.user_pos[group]
        sel = up >= 0
        cut = min(width, self.kmax)
        recs[up[sel], :cut] = i2[sel, :cut]
        return recs, has_list[self.is_test_user]

    @staticmethod
    def _check_duplicates(
        u: NDArray[np.int64],
        item: NDArray[np.int64],
        pos: NDArray[np.int64],
        lengths: NDArray[np.int64],
        users_raw: NDArray[Any],
        items_raw: NDArray[Any],
        rows: NDArray[np.int64],
    ) -> None:
        width = int(lengths.max())
        if width <= 64:  # short lists: sort each list in a dense matrix
            group = np.repeat(np.arange(len(lengths)), lengths)
            dense = np.full((len(lengths), width), -1, dtype=np.int64)
            dense[group, pos] = item
            dense.sort(axis=1)
            dup = (dense[:, 1:] == dense[:, :-1]) & (dense[:, 1:] >= 0)
            if not dup.any():
                return
        keys = M.pair_keys(u, item)
        order = np.argsort(keys, kind="stable")
        ks = keys[order]
        same = np.flatnonzero(ks[1:] == ks[:-1])
        if len(same):
            a, b = order[same[0]], order[same[0] + 1]
            raise DataError(
                f"recommendations: user {_py(users_raw[rows[b]])!r} has item {_py(items_raw[rows[b]])!r} "
                f"twice (rows {int(min(rows[a], rows[b]))} and {int(max(rows[a], rows[b]))}); "
                f"{len(same)} duplicate (user, item) rows in all"
            )

    def _compute(
        self,
        recs: NDArray[np.int64],
        has_list: NDArray[np.bool_],
        wanted: list[str],
        predictions: NDArray[np.float64] | None,
        notes: list[str],
    ) -> EvaluationResult:
        ks = self.ks
        n_all = max(len(self.item_map), int(recs.max()) + 1 if recs.size else 0)
        counts = np.zeros(n_all, dtype=np.int64)
        counts[: len(self.item_train_counts)] = self.item_train_counts
        in_train = counts > 0
        rel = M.relevance_matrix(recs, self.relevant_keys, self._relevant_table)
        per_user: dict[str, NDArray[np.float64]] = {}
        summary: dict[str, float] = {}
        parts: dict[str, tuple[str, NDArray[np.float64], NDArray[np.float64]]] = {}
        ones = np.ones(len(recs), dtype=np.float64)

        ranking = [m for m in M.RANKING_METRICS if m in wanted]
        if ranking:
            per_user.update(M.ranking_metrics(rel, self.n_relevant, ks, ranking))
        if "serendipity" in wanted:
            ser = M.serendipity(recs, rel, M.popularity_rank(counts), int(in_train.sum()), ks)
            for j, k in enumerate(ks):
                per_user[f"serendipity@{k}"] = ser[:, j]
        if "novelty" in wanted:
            sums, cnts = M.novelty_sums(recs, counts, self.n_train_interactions, ks)
            for j, k in enumerate(ks):
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_user[f"novelty@{k}"] = sums[:, j] / cnts[:, j]
                parts[f"novelty@{k}"] = ("U", sums[:, j], cnts[:, j])
        if "diversity" in wanted:
            if self.item_feature_matrix is not None:
                div = M.diversity_features(recs, self.item_feature_matrix, ks)
            else:
                div = M.diversity_cooccurrence(recs, self.train.matrix("csr", "binary"), ks)
            for j, k in enumerate(ks):
                valid = ~np.isnan(div[:, j])
                per_user[f"diversity@{k}"] = div[:, j]
                parts[f"diversity@{k}"] = ("U", np.where(valid, div[:, j], 0.0), valid.astype(np.float64))

        for name in wanted:
            if name in _RATING_METRICS:
                continue
            for k in ks:
                key = f"{name}@{k}"
                if _KIND[name] == "mean":
                    parts[key] = ("U", per_user[key], ones)
                if key in parts:
                    _, num, den = parts[key]
                    tot = den.sum()
                    summary[key] = float(num.sum() / tot) if tot > 0 else float("nan")
                elif name == "user_coverage":
                    summary[key] = float(has_list.sum()) / self.n_test_users
                else:
                    sm = M.set_metrics(M.slot_counts(recs, k, n_all), in_train)
                    summary[key] = sm[name]

        rated_users = None
        n_rating = 0
        if predictions is not None and self._rating_rows is not None:
            users, _, ratings = self._rating_rows
            err = predictions - ratings
            rated, inverse = np.unique(users, return_inverse=True)
            n = np.bincount(inverse, minlength=len(rated)).astype(np.float64)
            se = np.bincount(inverse, weights=err * err, minlength=len(rated)).astype(np.float64)
            ae = np.bincount(inverse, weights=np.abs(err), minlength=len(rated)).astype(np.float64)
            if "rmse" in wanted:
                parts["rmse"] = ("rated", se, n)
                summary["rmse"] = float(math.sqrt(se.sum() / n.sum()))
            if "mae" in wanted:
                parts["mae"] = ("rated", ae, n)
                summary["mae"] = float(ae.sum() / n.sum())
            rated_users = self.user_map.to_ids(rated)
            n_rating = len(users)

        # Report order: metric, then k.
        order = [f"{m}@{k}" for m in METRICS for k in ks] + list(_RATING_METRICS)
        summary = {key: summary[key] for key in order if key in summary}
        frame = pd.DataFrame({"user": self.user_map.to_ids(self.eval_users)})
        for key in order:
            if key in per_user:
                frame[key] = per_user[key]
        frame["n_relevant"] = self.n_relevant
        frame["n_recommended"] = (recs >= 0).sum(axis=1)
        return EvaluationResult(
            summary=summary,
            per_user=frame,
            ks=list(ks),
            metrics=[m for m in METRICS if m in wanted and (m not in _RATING_METRICS or m in summary)],
            n_users_evaluated=len(self.eval_users),
            n_test_users=self.n_test_users,
            relevance_threshold=self.relevance_threshold,
            parts=parts,
            rated_users=rated_users,
            n_rating_rows=n_rating,
            n_rating_rows_skipped=self._n_rating_skipped if n_rating else 0,
            notes=notes,
        )


def _warn_id_type(raw: NDArray[Any], idmap: IdMap, what: str) -> None:
    """Warn when recommendation ids are ints and the data's are not (or the reverse) and none match."""
    if len(raw) == 0 or len(idmap) == 0:
        return
    raw_int = raw.dtype.kind == "i"
    if raw_int == (idmap.ids.dtype.kind == "i"):
        return
    if (idmap.to_index(raw[:1000], missing="negative") >= 0).any():
        return
    warnings.warn(
        f"recommendation {what} ids are {'integers' if raw_int else 'not integers'} but the train/test "
        f"{what} ids are {'not integers' if raw_int else 'integers'}, and none matches (e.g. "
        f"{_py(raw[0])!r} vs {_py(idmap.ids[0])!r}): convert the ids to one type",
        DataWarning,
        stacklevel=4,
    )


def _numeric(values: NDArray[Any], name: str) -> NDArray[np.float64]:
    if values.dtype.kind not in "iufb":
        conv = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(conv)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DataTypeError(f"recommendations column {name!r} must be numeric; got {values[r]!r} at row {r}")
        values = conv
    out = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DataError(f"recommendations column {name!r} must be finite; got {out[r]!r} at row {r}")
    return out


def compare(
    a: EvaluationResult, b: EvaluationResult, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Paired per-metric difference ``a − b`` with a bootstrap CI and paired significance tests.

    Both results must come from the same evaluation setup (same evaluated
    users, same k list, same relevance threshold). Users are resampled
    jointly, so the interval is that of the paired difference.

    - Per-user means (precision, recall, f1, hit_rate, mrr, ndcg, map,
      serendipity): ``p_ttest`` is :func:`scipy.stats.ttest_rel` and
      ``p_wilcoxon`` :func:`scipy.stats.wilcoxon` on the per-user values
      (1.0 when every paired difference is 0).
    - Ratio metrics (novelty, diversity, rmse, mae): the difference of the
      two ratio estimates and its paired bootstrap interval; the tests are
      run on the per-user values (user's mean slot novelty, user's diversity,
      user's mean squared / absolute error) of users defined in both.
    - Set-level metrics (coverage, distributional_coverage, gini,
      user_coverage): the difference only.

    Returns
    -------
    pandas.DataFrame
        Indexed by metric name, columns ``a``, ``b``, ``diff``, ``ci_low``,
        ``ci_high``, ``p_ttest``, ``p_wilcoxon``, ``n_users``.

    Raises
    ------
    ParameterError
        The results have different users, k lists, thresholds or no metric in common.

    Examples
    --------
    >>> ev = Evaluator(pd.DataFrame({"user": [1, 2, 3], "item": [9, 9, 9]}),
    ...                pd.DataFrame({"user": [1, 2, 3], "item": [1, 2, 3]}), k=1, metrics=["hit_rate"])
    >>> good = ev.evaluate(pd.DataFrame({"user": [1, 2, 3], "item": [1, 2, 4], "rank": 1}))
    >>> bad = ev.evaluate(pd.DataFrame({"user": [1, 2, 3], "item": [5, 5, 5], "rank": 1}))
    >>> row = compare(good, bad).loc["hit_rate@1"]
    >>> round(float(row["diff"]), 4), int(row["n_users"])
    (0.6667, 3)
    """
    if not (isinstance(a, EvaluationResult) and isinstance(b, EvaluationResult)):
        raise DataTypeError("compare() takes two EvaluationResult objects")
    if a.ks != b.ks:
        raise ParameterError(f"compare() needs results at the same k; got {a.ks} and {b.ks}")
    if a.relevance_threshold != b.relevance_threshold:
        raise ParameterError(
            f"compare() needs results with the same relevance_threshold; got {a.relevance_threshold} and "
            f"{b.relevance_threshold}"
        )
    ua, ub = a.users, b.users
    if len(ua) != len(ub) or not np.array_equal(ua, ub):
        raise ParameterError(
            f"compare() needs results over the same evaluated users; got {len(ua)} and {len(ub)} users "
            "(evaluate both with the same Evaluator)"
        )
    names = [n for n in a.summary if n in b.summary]
    if not names:
        raise ParameterError("compare(): the two results have no metric in common")
    if ("rmse" in names or "mae" in names) and not (
        a._rated_users is not None
        and b._rated_users is not None
        and np.array_equal(a._rated_users, b._rated_users)
    ):
        raise ParameterError("compare(): rmse/mae were computed over different test ratings")
    from scipy import stats

    rows: dict[str, dict[str, float]] = {}
    boot: dict[str, tuple[float, float] | None] = {}
    for pop in ("U", "rated"):
        group = [n for n in names if n in a._parts and n in b._parts and a._parts[n][0] == pop]
        if not group:
            continue
        num = np.stack([a._parts[n][1] for n in group] + [b._parts[n][1] for n in group], axis=1)
        den = np.stack([a._parts[n][2] for n in group] + [b._parts[n][2] for n in group], axis=1)
        est = M.bootstrap_estimates(num, den, n_boot, seed)
        m = len(group)
        for j, name in enumerate(group):
            ea, eb = est[:, j], est[:, m + j]
            if name == "rmse":
                ea, eb = np.sqrt(ea), np.sqrt(eb)
            boot[name] = _percentiles(ea - eb, level)
    for name in names:
        va, vb = a.summary[name], b.summary[name]
        ci = boot.get(name)
        p_t = p_w = float("nan")
        n_users = float("nan")
        if name in a._parts and name in b._parts:
            _, na, da = a._parts[name]
            _, nb, db = b._parts[name]
            ok = (da > 0) & (db > 0)
            xa, xb = na[ok] / da[ok], nb[ok] / db[ok]
            n_users = float(ok.sum())
            p_t, p_w = _paired_tests(xa, xb, stats)
        rows[name] = {
            "a": va,
            "b": vb,
            "diff": va - vb,
            "ci_low": ci[0] if ci else float("nan"),
            "ci_high": ci[1] if ci else float("nan"),
            "p_ttest": p_t,
            "p_wilcoxon": p_w,
            "n_users": n_users,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _paired_tests(xa: NDArray[np.float64], xb: NDArray[np.float64], stats: Any) -> tuple[float, float]:
    d = xa - xb
    if len(d) == 0:
        return float("nan"), float("nan")
    if np.all(d == 0):
        return 1.0, 1.0
    if len(d) < 2:
        return float("nan"), float("nan")
    with np.errstate(all="ignore"):
        p_t = float(stats.ttest_rel(xa, xb).pvalue)
        try:
            p_w = float(stats.wilcoxon(d).pvalue)
        except ValueError:
            p_w = float("nan")
    return p_t, p_w
