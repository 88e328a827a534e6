"""The evaluator: exactly defined accuracy and beyond-accuracy metrics of top-k lists.

See :class:`Evaluator` for the definitions and :mod:`recsys.evaluation` for
how they relate to Microsoft Recommenders' ``python_evaluation``. The
evaluator's inputs are read in :mod:`recsys.evaluation._frames`, its result is
:class:`EvaluationResult` and :func:`compare` tests two results; both are
importable from here as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys._utils.jsonable import json_float as _json_float  # noqa: F401  (its old import path)
from recsys.data import IdLookup, IdMap
from recsys.errors import DataError, DataTypeError, NotSupportedError, ParameterError
from recsys.evaluation import metrics as M
from recsys.evaluation._compare import compare
from recsys.evaluation._definitions import (
    DEFINITIONS_VERSION,
    KIND,
    METRICS,
    RATING_METRICS,
)
from recsys.evaluation._frames import (
    RecommendationReader,
    as_interactions,
    read_item_features,
)
from recsys.evaluation._result import EvaluationResult, ListParts, MetricParts
from recsys.types import FrameLike, InteractionsLike

__all__ = ["DEFINITIONS_VERSION", "METRICS", "EvaluationResult", "Evaluator", "MetricParts", "compare"]


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
        tr = as_interactions(train, "train")
        te = as_interactions(test, "test")
        self.train = tr
        if self.relevance_threshold is not None and te.ratings is None:
            raise DataError("relevance_threshold needs test ratings; the test interactions have none")

        # Id maps: train's, extended with test-only users and items.
        self.user_map = tr.users if te.users is tr.users else tr.users.extend(te.users.ids)
        self.item_map = tr.items if te.items is tr.items else tr.items.extend(te.items.ids)
        features = None if item_features is None else read_item_features(item_features)
        if features is not None:  # items known only from their features still have a vector
            self.item_map = self.item_map.extend(features[0])
        self._user_lookup = IdLookup(self.user_map)
        self._item_lookup = IdLookup(self.item_map)
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
        self._lists = RecommendationReader(
            self.user_map, self.item_map, self._user_lookup, self._item_lookup, self.is_test_user, self.user_pos, self.kmax
        )

    @staticmethod
    def _remap(index: NDArray[np.int32], own: IdMap, base: IdMap, lookup: IdLookup) -> NDArray[np.int64]:
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
        rating_wanted = [m for m in RATING_METRICS if m in wanted]
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
        recs, has_list = self._lists.read(frame)
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

    def _relevant_keys_of(self, rows: NDArray[np.int64]) -> NDArray[np.int64]:
        """The relevant (user, item) keys of the users at positions ``rows`` of U (ascending),
        re-keyed to rows ``0..len(rows)-1`` (still sorted)."""
        users = self.relevant_keys >> M.KEY_SHIFT
        lo = np.searchsorted(users, rows, side="left")
        n = np.searchsorted(users, rows, side="right") - lo
        take = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        items = self.relevant_keys[take] & ((1 << M.KEY_SHIFT) - 1)
        return M.pair_keys(np.repeat(np.arange(len(rows), dtype=np.int64), n), items)

    def _list_parts(
        self, recs: NDArray[np.int64], wanted: Sequence[str], rows: NDArray[np.int64] | None = None
    ) -> ListParts:
        """Per-user values, mergeable parts and slot counts of the list metrics in ``wanted``.

        ``recs`` has one row per user of U (in order), or per user at the positions
        ``rows`` of U (ascending) when given. The one place the list metrics are
        assembled: :meth:`evaluate` reduces it over U, and
        :func:`~recsys.distributed.evaluate_distributed` sums it across partitions.
        """
        ks = self.ks
        n_all = max(len(self.item_map), int(recs.max()) + 1 if recs.size else 0)
        counts = np.zeros(n_all, dtype=np.int64)
        counts[: len(self.item_train_counts)] = self.item_train_counts
        in_train = counts > 0
        if rows is None:
            n_relevant = self.n_relevant
            rel = M.relevance_matrix(recs, self.relevant_keys, self._relevant_table)
        else:
            n_relevant = self.n_relevant[rows]
            keys = self._relevant_keys_of(rows)
            rel = M.relevance_matrix(recs, keys, M.relevant_table(keys, len(rows)))
        per_user: dict[str, NDArray[np.float64]] = {}
        parts: dict[str, MetricParts] = {}

        ranking = [m for m in M.RANKING_METRICS if m in wanted]
        if ranking:
            per_user.update(M.ranking_metrics(rel, n_relevant, ks, ranking))
        if "serendipity" in wanted:
            ser = M.serendipity(recs, rel, M.popularity_rank(counts), int(in_train.sum()), ks)
            for j, k in enumerate(ks):
                per_user[f"serendipity@{k}"] = ser[:, j]
        if "novelty" in wanted:
            sums, cnts = M.novelty_sums(recs, counts, self.n_train_interactions, ks)
            for j, k in enumerate(ks):
                with np.errstate(invalid="ignore", divide="ignore"):
                    per_user[f"novelty@{k}"] = sums[:, j] / cnts[:, j]
                parts[f"novelty@{k}"] = MetricParts("U", sums[:, j], cnts[:, j])
        if "diversity" in wanted:
            if self.item_feature_matrix is not None:
                div = M.diversity_features(recs, self.item_feature_matrix, ks)
            else:
                div = M.diversity_cooccurrence(recs, self.train.matrix("csr", "binary"), ks)
            for j, k in enumerate(ks):
                valid = ~np.isnan(div[:, j])
                per_user[f"diversity@{k}"] = div[:, j]
                parts[f"diversity@{k}"] = MetricParts("U", np.where(valid, div[:, j], 0.0), valid.astype(np.float64))
        ones = np.ones(len(recs), dtype=np.float64)
        for name in wanted:
            if KIND[name] == "mean":
                for k in ks:
                    parts[f"{name}@{k}"] = MetricParts("U", per_user[f"{name}@{k}"], ones)
        slots: dict[int, NDArray[np.int64]] = {}
        if any(KIND[m] == "set" and m != "user_coverage" for m in wanted):
            slots = {k: M.slot_counts(recs, k, n_all) for k in ks}
        return ListParts(per_user, parts, slots, in_train)

    def _compute(
        self,
        recs: NDArray[np.int64],
        has_list: NDArray[np.bool_],
        wanted: list[str],
        predictions: NDArray[np.float64] | None,
        notes: list[str],
    ) -> EvaluationResult:
        ks = self.ks
        lists = self._list_parts(recs, wanted)
        per_user, parts = lists.per_user, lists.parts
        summary: dict[str, float] = {}
        for name in wanted:
            if name in RATING_METRICS:
                continue
            for k in ks:
                key = f"{name}@{k}"
                if key in parts:
                    _, num, den = parts[key]
                    tot = den.sum()
                    summary[key] = float(num.sum() / tot) if tot > 0 else float("nan")
                elif name == "user_coverage":
                    summary[key] = float(has_list.sum()) / self.n_test_users
                else:
                    summary[key] = M.set_metrics(lists.slots[k], lists.in_train)[name]

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
                parts["rmse"] = MetricParts("rated", se, n)
                summary["rmse"] = float(math.sqrt(se.sum() / n.sum()))
            if "mae" in wanted:
                parts["mae"] = MetricParts("rated", ae, n)
                summary["mae"] = float(ae.sum() / n.sum())
            rated_users = self.user_map.to_ids(rated)
            n_rating = len(users)

        # Report order: metric, then k.
        order = [f"{m}@{k}" for m in METRICS for k in ks] + list(RATING_METRICS)
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
            metrics=[m for m in METRICS if m in wanted and (m not in RATING_METRICS or m in summary)],
            n_users_evaluated=len(self.eval_users),
            n_test_users=self.n_test_users,
            relevance_threshold=self.relevance_threshold,
            parts=parts,
            rated_users=rated_users,
            n_rating_rows=n_rating,
            n_rating_rows_skipped=self._n_rating_skipped if n_rating else 0,
            notes=notes,
        )
