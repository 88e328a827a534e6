"""Neighbourhood collaborative filtering: item-based and user-based k-nearest neighbours.

Both models build a sparse k-nearest-neighbour graph (see
:mod:`recsys.models._similarity`) in blocks, never a dense users x users or
items x items matrix. On large data UserKNN bounds its users x users work by
comparing each user with a bounded set of candidates (``max_candidates``).

Truncation rule (both models): every item (ItemKNN) or user (UserKNN) keeps
its ``k`` most similar OTHER items / users with a strictly positive
similarity; ties at the k-th similarity go to the lower internal index. The
graph is fixed at fit time (it does not depend on the user being scored).

Implicit mode (default) scores

* ItemKNN: ``score(u, j) = sum_{i in N_k(j)} x_ui sim(j, i)``: the neighbours of
  the TARGET item that the user interacted with vote with their similarity
  (Sarwar et al. 2001; RecBole's ItemKNN);
* UserKNN: ``score(u, j) = sum_{v in N_k(u)} sim(u, v) x_vj``.

Explicit mode (``feedback="explicit"``) predicts ratings as a damped bias
baseline plus the neighbours' mean-centred residuals; :meth:`ItemKNN.predict` / :meth:`UserKNN.predict` return them and
``recommend`` ranks by them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._state_spec import FLOAT_DTYPES as FLOATS
from recsys._state_spec import Array, Number, Sparse, Spec
from recsys._utils.params import check_choice, check_float, check_int
from recsys.data import Interactions
from recsys.errors import DataError, NotSupportedError, ParameterError
from recsys.models._explain import Explanation, SourceKind
from recsys.models._similarity import (
    candidate_knn_graph,
    centre_cols,
    centre_rows,
    idf_of,
    knn_graph,
    mean_length_of,
    row_ids,
    sampled_candidates,
    shrunk_cosine,
    sparse_product,
    squared_norms,
    weight_profiles,
)
from recsys.models._weighting import WEIGHTINGS, Weighting
from recsys.models.base import Recommender

Similarity = Literal["cosine", "adjusted_cosine", "pearson"]
Feedback = Literal["implicit", "explicit"]
NeighboursOf = Literal["candidate", "history"]

# Explicit-mode biases are damped means: this many pseudo-ratings at the global mean.
_DAMPING = 5.0

# Scoring keeps a dense copy of the right-hand matrix up to this many entries (64 MiB).
_DENSE_CACHE_ENTRIES = 1 << 24
# Cost of one entry of a sparse product relative to one multiply-add into a dense row.
_SPARSE_ENTRY_COST = 9

# UserKNN(max_candidates="auto") compares every pair of co-raters while that is at most this many
# multiply-adds (sum over items of raters**2; ML-1M: 7e8, ML-10M: 5.6e10), and bounds the candidates above.
_EXACT_PAIR_WORK = 1e10
# Candidates per user of the bounded search under "auto": this many times k, and at least _MIN_CANDIDATES.
_CANDIDATES_PER_NEIGHBOUR = 3
_MIN_CANDIDATES = 300
# Seed of the per-item samples of co-raters (the fit is deterministic).
_SAMPLE_SEED = 0


def _explicit(model: Any) -> bool:
    return bool(model.feedback == "explicit")


class _Neighbourhood(Recommender):
    """Parameter checks, data preparation and rating prediction shared by ItemKNN and UserKNN."""

    _state_spec: ClassVar[dict[str, Spec]] = {
        "user_items_": Sparse(shape=("n_users", "n_items")),
        # explicit feedback: the damped bias baseline
        "global_mean_": Number(when=_explicit),
        "item_bias_": Array(shape=("n_items",), when=_explicit),
        "user_bias_": Array(shape=("n_users",), when=_explicit),
        "rating_range_": Array(shape=(2,), when=_explicit),
    }

    # scoring is sparse products and top-k selections (GIL-free, single-threaded kernels)
    _threaded_blocks: ClassVar[bool] = True

    k: int
    similarity: str
    weighting: str
    shrinkage: float
    feedback: str
    bm25_k1: float
    bm25_b: float

    def _validate_params(self) -> None:
        name = type(self).__name__
        check_int(name, "k", self.k, low=1)
        check_choice(name, "similarity", self.similarity, ("cosine", "adjusted_cosine", "pearson"))
        check_choice(name, "weighting", self.weighting, WEIGHTINGS)
        check_float(name, "shrinkage", self.shrinkage, low=0.0)
        check_choice(name, "feedback", self.feedback, ("implicit", "explicit"))
        check_float(name, "bm25_k1", self.bm25_k1, low=0.0)
        check_float(name, "bm25_b", self.bm25_b, low=0.0, high=1.0)

    def _values(self, data: Interactions) -> sp.csr_matrix:
        """users x items: ratings in explicit mode, weights in implicit mode."""
        if self.feedback == "explicit":
            if data.ratings is None:
                raise DataError(
                    f"{type(self).__name__}(feedback='explicit') needs ratings; these interactions have none "
                    "(pass rating_col to Interactions.from_frame, or use feedback='implicit')"
                )
            return data.matrix("csr", "rating")
        return data.matrix("csr", "weight")

    def _fit_values(self, data: Interactions) -> sp.csr_matrix:
        """:meth:`_values` of a fit, which also stores what scoring reads (``user_items_``)."""
        values = self._values(data)
        if self.feedback == "explicit":
            self.user_items_ = self._fit_explicit_stats(values)
        else:
            self.user_items_ = sp.csr_matrix(values, dtype=np.float32, copy=True)
        return values

    def _profiles_for(self, values: sp.csr_matrix, similarity: str, weighting: str) -> sp.csr_matrix:
        """The profiles a fit with these settings compares (for advice; nothing is stored)."""
        raise NotImplementedError

    def _check_profiles(self, profiles: sp.csr_matrix, values: sp.csr_matrix) -> None:
        if profiles.nnz and np.any(profiles.data):
            return
        name = type(self).__name__
        what = "item" if name == "ItemKNN" else "user"
        # advice that works: the first change of settings that leaves something to compare
        for similarity, weighting in ((self.similarity, "none"), ("cosine", self.weighting), ("cosine", "none")):
            if (similarity, weighting) == (self.similarity, self.weighting):
                continue
            p = self._profiles_for(values, similarity, weighting)
            if p.nnz and np.any(p.data):
                change = {k: v for k, v in (("similarity", similarity), ("weighting", weighting)) if getattr(self, k) != v}
                why = []
                if "similarity" in change:
                    why.append(f"similarity={self.similarity!r} subtracts means, and the values it centres are all equal")
                if "weighting" in change:
                    other = "user" if what == "item" else "item"
                    why.append(
                        f"weighting={self.weighting!r} gives 0 weight to {'an' if other == 'item' else 'a'} {other} found in every {what} profile "
                        f"(idf = log(n/n) = 0), and here every {other} is (data of a single user or a single item)"
                    )
                raise DataError(
                    f"{name}: every {what} profile is 0, nothing to compare: {'; '.join(why)}. "
                    f"Use {name}({', '.join(f'{k}={v!r}' for k, v in change.items())}) or more varied data"
                )
        raise DataError(
            f"{name}: every {what} profile is 0, nothing to compare: every interaction "
            f"{'rating' if self.feedback == 'explicit' else 'weight'} is 0; "
            "give interactions non-zero weights"
        )

    def _fit_explicit_stats(self, values: sp.csr_matrix) -> sp.csr_matrix:
        """Baseline ``mean + b_u + b_i`` (damped), rating range and the residuals (explicit mode)."""
        r = values.data.astype(np.float64)
        users, items = row_ids(values), values.indices
        mu = float(r.mean())
        n_i = np.bincount(items, minlength=values.shape[1])
        b_i = np.bincount(items, weights=r - mu, minlength=values.shape[1]) / (n_i + _DAMPING)
        n_u = np.diff(values.indptr)
        b_u = np.bincount(users, weights=r - mu - b_i[items], minlength=values.shape[0]) / (n_u + _DAMPING)
        self.global_mean_ = mu
        self.item_bias_ = b_i.astype(np.float32)
        self.user_bias_ = b_u.astype(np.float32)
        self.rating_range_ = np.array([r.min(), r.max()], dtype=np.float32)
        residuals = sp.csr_matrix(values, dtype=np.float32, copy=True)
        residuals.data = (r - mu - b_u[users] - b_i[items]).astype(np.float32)
        return residuals

    def _baseline(self, user_bias: NDArray[np.float32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        """``mean + b_u + b_i`` for the given users' biases (rows) and items (columns)."""
        b_i = self.item_bias_ if item_idx is None else self.item_bias_[item_idx]
        return (np.float32(self.global_mean_) + user_bias[:, None] + b_i[None, :]).astype(np.float32)

    def _predict_from(
        self, num: NDArray[np.float32], den: NDArray[np.float32], base: NDArray[np.float32] | np.float32
    ) -> NDArray[np.float32]:
        """``base + num / den`` where some neighbour contributed (``den > 0``), else ``base``; clipped."""
        out = np.broadcast_to(base, num.shape).astype(np.float32, copy=True)
        ok = den > 0
        out[ok] += num[ok] / den[ok]
        return np.clip(out, self.rating_range_[0], self.rating_range_[1]).astype(np.float32)

    def _check_predict(self) -> None:
        if self.feedback != "explicit":
            raise NotSupportedError(
                f"{type(self).__name__}.predict needs feedback='explicit' (ratings); this model is implicit: "
                "use recommend() or score()"
            )

    def _predict_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        """:meth:`predict` (explicit mode only; ids must be known): the baseline ``mean + b_u + b_i``
        (damped user and item biases) plus the similarity-weighted mean of the neighbours' residuals
        from their own baselines, clipped to the training rating range; a pair no neighbour applies
        to gets the baseline. These are the model's scores (:meth:`score`)."""
        return self._score_pairs(user_idx, item_idx)

    def _explicit_explanation(
        self,
        kind: SourceKind,
        sources: NDArray[np.int64],
        parts: NDArray[np.float64],
        den: float,
        user_bias: float,
        target: int,
        columns: dict[str, NDArray[Any]],
    ) -> Explanation:
        """An explicit-mode prediction in parts: the term ``baseline`` (``mean + b_u + b_i``), each
        source's ``similarity x residual / den`` and, where the prediction was clipped to the
        rating range, the term ``clip``."""
        base = float(self.global_mean_ + user_bias + self.item_bias_[target])
        contrib = parts / den if den > 0 else np.zeros_like(parts)
        raw = base + float(contrib.sum())
        score = float(np.clip(raw, self.rating_range_[0], self.rating_range_[1]))
        terms = {"baseline": base}
        if score != raw:
            terms["clip"] = score - raw
        return Explanation(kind, sources, contrib, score, terms=terms, columns=columns)

    def _product(self, left: sp.csr_matrix, right: sp.csr_matrix, dense: NDArray[np.float32] | None, item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        """``left @ right[:, item_idx]`` as a dense float32 array (via ``dense``, the cached dense ``right``, when given)."""
        # The dense copy costs a row of ``right`` per stored entry of ``left``; the sparse product only the
        # stored entries of those rows, at about 9x the cost per entry (measured on ML-100K and ML-1M sizes).
        # Both add the same products in the same order, so the choice never changes a score.
        if dense is not None and (
            item_idx is not None or left.nnz * right.shape[1] <= _SPARSE_ENTRY_COST * np.diff(right.indptr)[left.indices].sum()
        ):
            d = dense if item_idx is None else dense[:, item_idx]
            return np.asarray(left @ d, dtype=np.float32)
        r = right if item_idx is None else right[:, item_idx]
        if r.format != "csr":
            r = r.tocsr()
        return np.asarray(sparse_product(sp.csr_matrix(left), r).toarray(), dtype=np.float32)

    def _history_row(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, NDArray[np.float32]]:
        """A new user's history as a 1 x n_items row (duplicates summed), its residual row and
        its user bias (explicit mode; the row itself and 0 in implicit mode)."""
        if self.feedback == "explicit":
            if ratings is None:
                raise DataError(f"{type(self).__name__}(feedback='explicit').recommend_history needs ratings")
            vals = ratings.astype(np.float32)
        else:
            vals = np.ones(len(item_idx), dtype=np.float32)
        row = sp.csr_matrix(
            (vals, (np.zeros(len(item_idx), dtype=np.int32), item_idx)), shape=(1, self.n_items_), dtype=np.float32
        )
        row.sum_duplicates()
        if self.feedback == "implicit":
            return row, row, np.zeros(1, np.float32)
        dev = row.data.astype(np.float64) - self.global_mean_ - self.item_bias_[row.indices]
        bias = dev.sum() / (row.nnz + _DAMPING)
        residuals = row.copy()
        residuals.data = (dev - bias).astype(np.float32)
        return row, residuals, np.array([bias], np.float32)


class ItemKNN(_Neighbourhood):
    """Item-based k-nearest-neighbour collaborative filtering.

    Every item keeps its ``k`` most similar other items (positive similarity
    only, ties to the lower index). By default (``neighbours_of="candidate"``)
    the score of item ``j`` for user ``u`` sums ``x_ui * sim(j, i)`` over the
    neighbours ``i`` of ``j`` that ``u`` interacted with (``x`` = interaction
    weight); with ``neighbours_of="history"`` it sums ``x_ui * sim(i, j)`` over
    the items ``i`` of the history that have ``j`` among their neighbours.
    Similarities are computed on item profiles (one value per user), in sparse
    blocks.

    Parameters
    ----------
    k : int, default 200
        Neighbours kept per item. The defaults (k=200, tfidf, shrinkage 50)
        were chosen on a validation split of ML-100K and checked on synthetic
        data (``benchmarks/tune_neighbourhood.py``).
    similarity : {"cosine", "adjusted_cosine", "pearson"}, default "cosine"
        Cosine of the item profiles; ``adjusted_cosine`` first subtracts each
        user's mean value (Sarwar et al. 2001), ``pearson`` each item's mean
        value (over the stored entries). Centring needs varying values
        (ratings, or non-constant weights).
    weighting : {"none", "tfidf", "bm25"}, default "tfidf"
        Re-weights each item profile's users by inverse user activity before
        the cosine (``idf = log(n_items / items of the user)``), ``bm25`` also
        saturates values and normalises by item popularity.
    shrinkage : float >= 0, default 50.0
        ``sim = <a, b> / (|a| |b| + shrinkage)``: damps pairs of rarely seen
        items, whose cosine rests on few users.
    feedback : {"implicit", "explicit"}, default "implicit"
        ``explicit`` learns from ratings: similarities on ratings, and
        ``predict`` gives ``b_uj + sum sim(j, i) (r_ui - b_ui) / sum |sim(j, i)|``
        over the neighbours ``i`` of ``j`` the user rated, with the baseline
        ``b_ui = mean + b_u + b_i`` (damped biases); ``b_uj`` alone when none.
    bm25_k1 : float >= 0, default 1.2
    bm25_b : float in [0, 1], default 0.75
        BM25 saturation and length normalisation.
    neighbours_of : {"candidate", "history"}, default "candidate"
        Whose neighbour lists a score reads. ``candidate``: each candidate
        item is scored from its own ``k`` neighbours found in the history
        (Sarwar et al. 2001's prediction; the more accurate on MovieLens).
        ``history``: each history item passes its similarity to its own ``k``
        neighbours (Deshpande & Karypis 2004, implicit's item-item models).
        ``history`` bounds the work per user at ``len(history) * k``; with
        ``candidate`` it is the sum, over the history, of how many items list
        each history item as a neighbour, which popular items inflate (about
        5x at MovieLens-20M size: ``benchmarks/knn_scale.py``).

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = ItemKNN(k=10).fit(tiny_interactions())
    >>> items, scores = model.recommend_one(0, k=3)
    >>> [int(i) % 2 for i in items]
    [0, 0, 0]
    """

    _state_spec: ClassVar[dict[str, Spec]] = {"neighbours_": Sparse(shape=("n_items", "n_items"))}

    def __init__(
        self,
        k: int = 200,
        similarity: Similarity = "cosine",
        weighting: Weighting = "tfidf",
        shrinkage: float = 50.0,
        feedback: Feedback = "implicit",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        neighbours_of: NeighboursOf = "candidate",
    ) -> None:
        self.k = k
        self.similarity = similarity
        self.weighting = weighting
        self.shrinkage = shrinkage
        self.feedback = feedback
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.neighbours_of = neighbours_of

    @classmethod
    def _upgrade_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        # saved before `neighbours_of` existed: every earlier version scored candidates from their own lists
        return params if "neighbours_of" in params else {**params, "neighbours_of": "candidate"}

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice(type(self).__name__, "neighbours_of", self.neighbours_of, ("candidate", "history"))

    def _fit(self, data: Interactions) -> None:
        values = self._fit_values(data)
        profiles = self._profiles_for(values, self.similarity, self.weighting)
        self._check_profiles(profiles, values)
        self.neighbours_ = knn_graph(profiles, self.k, self.shrinkage, desc="ItemKNN similarity")

    def _profiles_for(self, values: sp.csr_matrix, similarity: str, weighting: str) -> sp.csr_matrix:
        profiles = values.T.tocsr()  # items x users
        if similarity == "adjusted_cosine":
            profiles, _ = centre_cols(profiles)  # subtract user means
        elif similarity == "pearson":
            profiles, _ = centre_rows(profiles)  # subtract item means
        profiles.eliminate_zeros()
        return weight_profiles(
            profiles, weighting, idf_of(profiles), mean_length_of(profiles), self.bm25_k1, self.bm25_b  # type: ignore[arg-type]
        )

    def _prepare(self) -> None:
        super()._prepare()
        # Scores are user rows @ W, W[i, j] = the weight history item i gives item j:
        # N.T when candidates read their own neighbour lists, N when history items spread theirs.
        self._w = (self.neighbours_.T if self.neighbours_of == "candidate" else self.neighbours_).tocsr()
        self._w.sort_indices()
        self._w_abs = abs(self._w).tocsr() if self.feedback == "explicit" else None
        # Small catalogues: a dense copy makes scoring contiguous row updates (several times faster).
        small = self.n_items_ * self.n_items_ <= _DENSE_CACHE_ENTRIES
        self._w_dense = self._w.toarray() if small else None
        self._w_abs_dense = self._w_abs.toarray() if small and self._w_abs is not None else None

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        num = self._product(self.user_items_[user_idx], self._w, self._w_dense, item_idx)
        if self.feedback == "implicit":
            return num
        assert self._w_abs is not None
        den = self._product(self.seen_[user_idx], self._w_abs, self._w_abs_dense, item_idx)
        return self._predict_from(num, den, self._baseline(self.user_bias_[user_idx], item_idx))

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        row, residuals, bias = self._history_row(item_idx, ratings)
        if self.feedback == "implicit":
            return self._product(row, self._w, self._w_dense, None)[0]
        assert self._w_abs is not None
        binary = row.copy()
        binary.data[:] = 1.0
        num = self._product(residuals, self._w, self._w_dense, None)
        den = self._product(binary, self._w_abs, self._w_abs_dense, None)
        return self._predict_from(num, den, self._baseline(bias, None))[0]

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        return self._explain_row(self.user_items_[user_idx], self.seen_[user_idx], self.user_bias_[user_idx] if self.feedback == "explicit" else 0.0, item_idx)

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        row, residuals, bias = self._history_row(item_idx, ratings)
        binary = row.copy()
        binary.data[:] = 1.0
        return self._explain_row(residuals, binary, float(bias[0]), target)

    def _explain_row(self, values: sp.csr_matrix, seen: sp.csr_matrix, user_bias: float, target: int) -> Explanation:
        """Score of ``target`` = sum over the history item j of value_j x similarity(j, target)
        (implicit); explicit: baseline + that sum over residuals / sum of |similarity|, clipped."""
        col = self._w[:, target].toarray().ravel().astype(np.float64)
        src = values.indices.astype(np.int64)
        sim = col[src]
        part = values.data.astype(np.float64) * sim
        keep = sim != 0  # history items that are not the target's neighbours contribute nothing
        src, sim, part, vals = src[keep], sim[keep], part[keep], values.data[keep]
        if self.feedback == "implicit":
            score = float(part.sum())
            return Explanation("item", src, part, score, columns={"similarity": sim, "value": vals})
        den = float((np.abs(col[seen.indices]) * seen.data).sum())
        return self._explicit_explanation("item", src, part, den, user_bias, target, {"similarity": sim, "residual": vals})

    def _similar_items(self, item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        # Only the kept neighbours are similar items; the rest can never be returned.
        sub = self.neighbours_[item_idx].tocoo()
        out = np.full(sub.shape, -np.inf, dtype=np.float32)
        out[sub.row, sub.col] = sub.data
        return out


class UserKNN(_Neighbourhood):
    """User-based k-nearest-neighbour collaborative filtering.

    Every user keeps their ``k`` most similar other users (positive similarity
    only, ties to the lower index). The score of item ``j`` for user ``u`` sums
    ``sim(u, v) * x_vj`` over the neighbours ``v`` of ``u``. Similarities are
    computed on user profiles (one value per item), in sparse blocks.

    Parameters
    ----------
    k : int, default 100
        Neighbours kept per user. The defaults (k=100, tfidf, no shrinkage)
        were chosen on a validation split of ML-100K and checked on synthetic
        data (``benchmarks/tune_neighbourhood.py``).
    similarity : {"cosine", "adjusted_cosine", "pearson"}, default "cosine"
        Cosine of the user profiles; ``pearson`` first subtracts each user's
        mean value, ``adjusted_cosine`` each item's mean value (over the
        stored entries).
    weighting : {"none", "tfidf", "bm25"}, default "tfidf"
        Re-weights each user profile's items by inverse item popularity
        (``idf = log(n_users / users of the item)``) before the cosine.
    shrinkage : float >= 0, default 0.0
        ``sim = <a, b> / (|a| |b| + shrinkage)``.
    feedback : {"implicit", "explicit"}, default "implicit"
        ``explicit``: similarities on ratings, and ``predict`` gives
        ``b_uj + sum sim(u, v) (r_vj - b_vj) / sum |sim(u, v)|`` over the
        neighbours who rated ``j``, with the baseline ``b_uj = mean + b_u + b_j``
        (damped biases); ``b_uj`` alone when none did.
    bm25_k1 : float >= 0, default 1.2
    bm25_b : float in [0, 1], default 0.75
    max_candidates : "auto", None or int >= k, default "auto"
        Bound of the users x users work. ``None``: every user is compared with
        every user sharing an item (exact). An int ``C``: each user is compared
        exactly with at most ``C`` candidate users (see Notes), an
        approximation whenever ``C < n_users - 1``. ``"auto"``: exact while
        comparing every pair of co-raters costs at most 1e10 multiply-adds
        (``sum_i users(i)**2``: ML-100K and ML-1M-sized data are exact), else
        ``C = max(3 * k, 300)``.
    neighbour_sample : int >= 1, default 256
        With bounded candidates: co-raters each item contributes to the
        candidate search (a seeded random sample of its users when it has
        more).

    Notes
    -----
    Cost of the users x users work, ``P`` the user profiles (``n`` users,
    ``nnz`` interactions), ``users(i)`` the number of users of item ``i``.

    Exact (``max_candidates=None``, and ``"auto"`` on data up to the
    threshold): the similarity product ``P @ P.T`` is computed in blocks of
    consecutive users, each sized so that its part of the product holds about
    2**24 entries (64 MiB of float32; one block per CPU thread at once) and
    reduced at once to every row's ``k`` best. Time
    ``O(sum_i users(i)**2)`` multiply-adds plus ``O(n**2)`` for the selection
    (with popular items nearly every pair shares an item: at ML-20M size,
    138,493 users, 1.7e11 multiply-adds and 1.9e10 pairs); memory
    ``O(nnz + n * k)`` plus the blocks, never ``n**2``.

    Bounded (``C = max_candidates`` below ``n - 1``, ``M = neighbour_sample``):
    each item keeps a seeded sample of at most ``M`` of its users; a user's
    candidates are the ``C`` users of largest cosine over the items' sampled
    co-raters (items with at most ``M`` users count in full, so the rare items
    that make two users similar weigh fully in the search), and the similarity to
    each candidate is then computed exactly: the neighbours are the exact
    ``k`` best among the candidates, with the same similarity, positivity
    and tie rules as the exact fit. Time
    ``O(sum_i users(i) * min(users(i), M))`` (at most ``nnz * M``) for the
    candidate search plus ``O(n * C * L)`` for the exact similarities, ``L``
    the mean profile length of a candidate; memory ``O(nnz + n * C)`` plus
    blocks. At ML-20M size (C=300, M=256) that is 5.0e9 multiply-adds for the
    search and about 1.1e10 for the exact similarities, against 1.7e11 for the
    exact product; measured there (``benchmarks/results/knn_scale_ml20m.md``):
    162 CPU seconds for the fit, 144 for top-10 for all users, peak 2.2 GB
    above the data. Accuracy (``benchmarks/knn_scale.py --accuracy``): with
    ``max_candidates=300`` forced, NDCG@10 0.4468 against 0.4467 exact on
    ML-100K, and on synthetic data of ML-1M size 94% of the exact neighbours
    kept and NDCG@10 0.5435 against 0.5454.

    Top-k for all users scores blocks of ``2**24 // n_items`` users, ``k``
    neighbour rows each: time ``O(n * k * L + n * n_items)``, memory
    ``O(2**24)`` floats per block.

    ``recommend_history`` folds a new user in by computing the similarity of
    the history's profile (weighted with the training statistics) to every
    training user and keeping the ``k`` best.

    :meth:`explain` lists the neighbours who have the item (kind ``"user"``),
    each contributing ``sim(u, v) x_vj`` (explicit: its share of the
    residual mean, plus the terms ``baseline`` and ``clip``).

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = UserKNN(k=5).fit(tiny_interactions())
    >>> items, scores = model.recommend_one(1, k=3)
    >>> [int(i) % 2 for i in items]  # mostly the user's own (odd) group
    [1, 0, 1]
    """

    _state_spec: ClassVar[dict[str, Spec]] = {
        "item_means_": Array(shape=("n_items",)),
        "idf_": Array(shape=("n_items",), dtype=FLOATS),
        "mean_length_": Number(low=0),
        "profiles_": Sparse(shape=("n_users", "n_items")),
        "neighbours_": Sparse(shape=("n_users", "n_users")),
    }

    def __init__(
        self,
        k: int = 100,
        similarity: Similarity = "cosine",
        weighting: Weighting = "tfidf",
        shrinkage: float = 0.0,
        feedback: Feedback = "implicit",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        max_candidates: int | Literal["auto"] | None = "auto",
        neighbour_sample: int = 256,
    ) -> None:
        self.k = k
        self.similarity = similarity
        self.weighting = weighting
        self.shrinkage = shrinkage
        self.feedback = feedback
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.max_candidates = max_candidates
        self.neighbour_sample = neighbour_sample

    def _validate_params(self) -> None:
        super()._validate_params()
        name = type(self).__name__
        c = self.max_candidates
        if not (c is None or (isinstance(c, str) and c == "auto")):
            ok = isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) and c >= self.k
            if not ok:
                raise ParameterError(
                    f"The 'max_candidates' parameter of {name} must be 'auto', None or an int >= k ({self.k}). "
                    f"Got {c!r} instead."
                )
        check_int(name, "neighbour_sample", self.neighbour_sample, low=1)

    def _n_candidates(self, profiles: sp.csr_matrix) -> int | None:
        """The candidates per user a fit on these user profiles compares exactly (None: every user).

        ``max_candidates`` itself when it is an int below ``n_users - 1``; under
        ``"auto"``, ``max(3 * k, 300)`` once comparing every pair of co-raters
        would cost more than 1e10 multiply-adds (``sum_i users(i)**2``), else None.
        """
        n = profiles.shape[0]
        if self.max_candidates is None:
            return None
        if self.max_candidates == "auto":
            raters = np.bincount(profiles.indices, minlength=profiles.shape[1]).astype(np.float64)
            if float(raters @ raters) <= _EXACT_PAIR_WORK:
                return None
            c = max(_CANDIDATES_PER_NEIGHBOUR * self.k, _MIN_CANDIDATES)
        else:
            c = int(self.max_candidates)
        return c if c < n - 1 else None

    @staticmethod
    def _centred(values: sp.csr_matrix, similarity: str) -> sp.csr_matrix:
        """A copy of ``values`` centred as ``similarity`` asks, explicit zeros dropped."""
        centred = values.copy()  # eliminate_zeros below must not touch the data's cached matrix
        if similarity == "pearson":
            centred, _ = centre_rows(values)
        elif similarity == "adjusted_cosine":
            centred, _ = centre_cols(values)
        centred.eliminate_zeros()
        return centred

    def _profiles_for(self, values: sp.csr_matrix, similarity: str, weighting: str) -> sp.csr_matrix:
        centred = self._centred(values, similarity)
        return weight_profiles(
            centred, weighting, idf_of(centred), mean_length_of(centred), self.bm25_k1, self.bm25_b  # type: ignore[arg-type]
        )

    def _profiles(self, values: sp.csr_matrix) -> sp.csr_matrix:
        """Users' raw rows -> the profiles compared, with the training statistics."""
        if self.similarity == "pearson":
            values, _ = centre_rows(values)
        elif self.similarity == "adjusted_cosine":
            values = sp.csr_matrix(values, dtype=np.float32, copy=True)
            values.data -= self.item_means_[values.indices]
        values.eliminate_zeros()
        return weight_profiles(
            values, self.weighting, self.idf_, float(self.mean_length_), self.bm25_k1, self.bm25_b  # type: ignore[arg-type]
        )

    def _fit(self, data: Interactions) -> None:
        values = self._fit_values(data)
        _, item_means = centre_cols(values)
        self.item_means_ = item_means.astype(np.float32)
        centred = self._centred(values, self.similarity)
        self.idf_ = idf_of(centred)
        self.mean_length_ = mean_length_of(centred)
        profiles = self._profiles(values)
        self._check_profiles(profiles, values)
        self.profiles_ = profiles
        c = self._n_candidates(profiles)
        if c is None:
            self.neighbours_ = knn_graph(profiles, self.k, self.shrinkage, desc="UserKNN similarity")
        else:
            cand = sampled_candidates(profiles, c, self.neighbour_sample, seed=_SAMPLE_SEED, desc="UserKNN candidates")
            self.neighbours_ = candidate_knn_graph(profiles, cand, self.k, self.shrinkage, desc="UserKNN similarity")

    def _prepare(self) -> None:
        super()._prepare()
        self._sq_norms = squared_norms(self.profiles_)
        self._profiles_t = self.profiles_.T.tocsr()
        if self.feedback == "explicit":
            self._n_abs = abs(self.neighbours_).tocsr()
        small = self.user_items_.shape[0] * self.n_items_ <= _DENSE_CACHE_ENTRIES
        self._x_dense = self.user_items_.toarray() if small else None
        self._seen_dense = self.seen_.toarray() if small and self.feedback == "explicit" else None

    def _score_rows(
        self,
        nbr: sp.csr_matrix,
        nbr_abs: sp.csr_matrix | None,
        base: NDArray[np.float32] | np.float32,
        item_idx: NDArray[np.int32] | None,
    ) -> NDArray[np.float32]:
        num = self._product(nbr, self.user_items_, self._x_dense, item_idx)
        if self.feedback == "implicit":
            return num
        assert nbr_abs is not None
        den = self._product(nbr_abs, self.seen_, self._seen_dense, item_idx)
        return self._predict_from(num, den, base)

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        nbr_abs = self._n_abs[user_idx] if self.feedback == "explicit" else None
        base = self._baseline(self.user_bias_[user_idx], item_idx) if self.feedback == "explicit" else np.float32(0)
        return self._score_rows(self.neighbours_[user_idx], nbr_abs, base, item_idx)

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        nbr, bias = self._history_neighbours(item_idx, ratings)
        nbr_abs = abs(nbr).tocsr() if self.feedback == "explicit" else None
        base = self._baseline(bias, None) if self.feedback == "explicit" else np.float32(0)
        return self._score_rows(nbr, nbr_abs, base, None)[0]

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        bias = float(self.user_bias_[user_idx]) if self.feedback == "explicit" else 0.0
        return self._explain_neighbours(self.neighbours_[user_idx], bias, item_idx)

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        nbr, bias = self._history_neighbours(item_idx, ratings)
        return self._explain_neighbours(nbr, float(bias[0]), target)

    def _explain_neighbours(self, nbr: sp.csr_matrix, user_bias: float, target: int) -> Explanation:
        """Score of ``target`` by the neighbours ``v`` (kind ``"user"``): implicit, the sum of
        sim(u, v) x x_vj; explicit, the baseline plus sim(u, v) x residual_vj / sum of |sim| over
        the neighbours who rated the item, clipped (terms ``baseline`` and ``clip``)."""
        users = nbr.indices.astype(np.int64)
        sim = nbr.data.astype(np.float64)
        col = np.asarray(self.user_items_[users][:, [target]].toarray(), dtype=np.float64).ravel()
        rated = np.asarray(self.seen_[users][:, [target]].toarray(), dtype=np.float64).ravel() > 0
        keep = rated & (sim != 0)  # neighbours who never saw the item say nothing about it
        users, sim, col = users[keep], sim[keep], col[keep]
        part = sim * col
        if self.feedback == "implicit":
            return Explanation("user", users, part, float(part.sum()), columns={"similarity": sim, "value": col})
        return self._explicit_explanation("user", users, part, float(np.abs(sim).sum()), user_bias, target, {"similarity": sim, "residual": col})

    def _history_neighbours(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None
    ) -> tuple[sp.csr_matrix, NDArray[np.float32]]:
        """A folded-in history's neighbour row (1 x n_users similarities) and its user bias (explicit mode)."""
        row, _, bias = self._history_row(item_idx, ratings)
        prof = self._profiles(row)
        dots = (prof @ self._profiles_t).toarray()[0]
        # the same similarity as the graph's (a training user's own history finds the same neighbours)
        sims = shrunk_cosine(dots, squared_norms(prof), self._sq_norms, self.shrinkage)
        sims[sims <= 0] = 0.0
        keep = np.flatnonzero(sims)
        if len(keep) > self.k:
            # k best, ties to the lower user index
            order = np.lexsort((keep, -sims[keep]))
            keep = np.sort(keep[order[: self.k]])
        nbr = sp.csr_matrix((sims[keep], keep, [0, len(keep)]), shape=(1, len(sims)), dtype=np.float32)
        return nbr, bias
