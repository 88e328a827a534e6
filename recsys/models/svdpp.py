"""SVD++ (Koren 2008): biases, latent factors and the implicit feedback of what each user rated.

The predicted rating of user ``u`` for item ``i`` is

    r̂_ui = μ + b_u + b_i + q_i · (p_u + |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j)

where ``N(u)`` is the set of items ``u`` rated in the training data. The last
term (the *implicit* user vector ``z_u``) describes a user by the items they
chose to rate, whatever the ratings were.

Training (the mini-batch loop, its sparse products and lazy Adam) is in
:mod:`recsys.models._svdpp_train`; its cost is linear in the number of ratings.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._state_spec import Array, Floats, Json, Number, Sparse, Spec
from recsys._utils.params import check_bool, check_float, check_int, check_seed
from recsys.data import IdMap, Interactions
from recsys.errors import DataError
from recsys.models._embedding import EmbeddingRecommender
from recsys.models._explain import Explanation
from recsys.models._svdpp_train import _Trainer

# Prediction and user solves work on blocks of about this many entries.
_BLOCK_ENTRIES = 1 << 22


def _rowdot(a: NDArray[Any], b: NDArray[Any]) -> NDArray[Any]:
    return np.einsum("ij,ij->i", a, b)


class SVDpp(EmbeddingRecommender):
    """SVD++ rating prediction (Koren 2008), trained with vectorised mini-batches.

    ``r̂_ui = μ + b_u + b_i + q_i · (p_u + |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j)``,
    ``N(u)`` = the items ``u`` rated in the training data. Fit on interactions
    with ratings; :meth:`predict` gives clipped ratings for RMSE,
    ``recommend`` ranks by the (unclipped) predicted rating. Fit cost is linear
    in the number of ratings (the optimiser: :mod:`recsys.models._svdpp_train`).

    Parameters
    ----------
    n_factors : int >= 1, default 20
        Dimension of ``p_u``, ``q_i`` and ``y_j``.
    n_epochs : int >= 1, default 8
        Passes over the training ratings.
    lr_user : float > 0, default 0.03
        Koren's SGD learning rate γ for the user parameters ``b_u``, ``p_u``
        (compounded over each user's ratings in a batch, so it stays stable
        for users with thousands of ratings). Must be below 1.
    lr_item : float > 0, default 0.01
        Adam step size for the item parameters ``b_i``, ``q_i``, ``y_j``.
    lr_decay : float in (0, 1], default 0.94
        Both learning rates are multiplied by this after every epoch.
    reg : float >= 0, default 0.06
        λ of ``p_u`` and ``q_i``, per rating.
    reg_bias : float >= 0, default 0.05
        λ of ``b_u`` and ``b_i``, per rating.
    reg_implicit : float >= 0, default 0.0012
        λ of the ``y_j``, per rating of each user who rated ``j``.
    init_std : float >= 0, default 0.03
        Standard deviation of the normal initial factors (biases start at 0).
    batch_size : int >= 1, default 2048
        Ratings per mini-batch (whole users: a batch closes once it holds
        ``batch_size`` ratings).
    seed : int >= 0, default 0
        Seeds the initial factors and the epoch shuffles.
    show_progress : bool, optional
        Progress bar over epochs (default: when stderr is a terminal).

    The defaults were chosen on a validation split of ML-100K's train part,
    under a fit-time budget of 1/25 of Surprise's SVDpp
    (``benchmarks/results/svdpp_tuning.md``); more epochs, factors and
    smaller batches buy a little RMSE for a slower fit.

    Attributes
    ----------
    global_mean_ : float
        μ, the mean training rating.
    rating_range_ : list of float
        ``[min, max]`` training rating; :meth:`predict` clips to it.
    user_bias_, item_bias_ : ndarray of float32
    user_factors_, item_factors_, implicit_factors_ : ndarray of float32
        ``P`` (users x n_factors), ``Q`` and ``Y`` (items x n_factors).
        Users and items without training ratings keep zeros.
    train_ratings_ : ndarray of float32
        The training ratings aligned with ``seen_.indices`` (used by
        :meth:`partial_fit_users`).
    epoch_rmse_ : list of float
        Training RMSE over each epoch's mini-batches.

    Notes
    -----
    Unknown users or items are no error for :meth:`predict`: they get the
    global mean plus the biases that are known. Fold-in
    (:meth:`recommend_history`) builds the implicit vector ``z`` from the
    history; with ratings it also solves ``b_u`` and ``p_u`` by regularised
    least squares with the item parameters fixed (the same per-rating
    penalties as training). :meth:`partial_fit_users` does the same for new
    ratings of known or new users.

    :meth:`explain` splits a score along the formula: the term ``baseline``
    (``μ + b_u + b_i``), the term ``user_factor`` (``q_i · p_u``, learned, so
    it belongs to no single item) and one part per history item,
    ``q_i · y_j / sqrt(|N(u)|)``.

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> data = tiny_interactions()
    >>> model = SVDpp(n_factors=4, n_epochs=30, batch_size=32, lr_item=0.05,
    ...               show_progress=False).fit(data)
    >>> pred = model.predict([0, 1], [0, 0])  # user 0 likes even items, user 1 odd ones
    >>> bool(pred[0] > pred[1])
    True
    """

    predicts_unknown_ids: ClassVar[bool] = True

    _state_spec: ClassVar[dict[str, Spec]] = {
        "seen_": Sparse(shape=("n_users", "n_items"), nnz="n_ratings"),
        "global_mean_": Number(),
        "rating_range_": Floats(length=2),
        "user_bias_": Array(shape=("n_users",)),
        "user_factors_": Array(shape=("n_users", "factors")),
        "item_bias_": Array(shape=("n_items",)),
        "item_factors_": Array(shape=("n_items", "factors")),
        "implicit_factors_": Array(shape=("n_items", "factors")),
        "train_ratings_": Array(shape=("n_ratings",)),
        "epoch_rmse_": Json(types=(list,)),
    }

    def __init__(
        self,
        n_factors: int = 20,
        n_epochs: int = 8,
        lr_user: float = 0.03,
        lr_item: float = 0.01,
        lr_decay: float = 0.94,
        reg: float = 0.06,
        reg_bias: float = 0.05,
        reg_implicit: float = 0.0012,
        init_std: float = 0.03,
        batch_size: int = 2048,
        seed: int = 0,
        show_progress: bool | None = None,
    ) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr_user = lr_user
        self.lr_item = lr_item
        self.lr_decay = lr_decay
        self.reg = reg
        self.reg_bias = reg_bias
        self.reg_implicit = reg_implicit
        self.init_std = init_std
        self.batch_size = batch_size
        self.seed = seed
        self.show_progress = show_progress

    def _validate_params(self) -> None:
        name = "SVDpp"
        check_int(name, "n_factors", self.n_factors, low=1)
        check_int(name, "n_epochs", self.n_epochs, low=1)
        check_float(name, "lr_user", self.lr_user, low=0.0, high=1.0, low_open=True, high_open=True)
        check_float(name, "lr_item", self.lr_item, low=0.0, low_open=True)
        check_float(name, "lr_decay", self.lr_decay, low=0.0, high=1.0, low_open=True)
        check_float(name, "reg", self.reg, low=0.0)
        check_float(name, "reg_bias", self.reg_bias, low=0.0)
        check_float(name, "reg_implicit", self.reg_implicit, low=0.0)
        check_float(name, "init_std", self.init_std, low=0.0)
        check_int(name, "batch_size", self.batch_size, low=1)
        check_seed(name, "seed", self.seed)
        check_bool(name, "show_progress", self.show_progress, optional=True)

    # -- training -----------------------------------------------------------------------

    def _fit(self, data: Interactions) -> None:
        if data.ratings is None:
            raise DataError(
                "SVDpp learns from explicit ratings; these interactions have none "
                "(pass rating_col to Interactions.from_frame)"
            )
        if data.nnz == 0:
            raise DataError("SVDpp needs at least one rating; the training interactions are empty")
        order = np.lexsort((data.item_index, data.user_index))  # = the canonical CSR order of seen_
        users = data.user_index[order]
        items = data.item_index[order].astype(np.int64)
        ratings = data.ratings[order].astype(np.float32)
        state = _Trainer(self, users, items, ratings, data.n_users, data.n_items).run()
        self.global_mean_ = float(state["mu"])
        self.rating_range_ = [float(ratings.min()), float(ratings.max())]
        self.user_bias_ = state["bu"]
        self.user_factors_ = state["P"]
        self.item_bias_ = state["bi"]
        self.item_factors_ = state["Q"]
        self.implicit_factors_ = state["Y"]
        self.train_ratings_ = ratings
        self.epoch_rmse_ = state["epoch_rmse"]

    # -- scoring --------------------------------------------------------------------------

    def _prepare(self) -> None:
        self._user_latent = self._implicit(self.seen_) + self.user_factors_
        k = self.n_factors_
        # float64 vectors: a score then rounds to the same float32 whether it comes
        # from a matrix product over many users or a vector product for one
        item_vec = np.empty((self.n_items_, k + 2), dtype=np.float64)
        item_vec[:, 0] = 1.0
        item_vec[:, 1] = self.item_bias_
        item_vec[:, 2:] = self.item_factors_
        self._item_vec = item_vec
        super()._prepare()

    @property
    def n_factors_(self) -> int:
        return int(self.item_factors_.shape[1])

    def _implicit(self, rows: sp.csr_matrix) -> NDArray[np.float32]:
        """``|N(u)|^-1/2 Σ_{j ∈ N(u)} y_j`` for each row (a binary users x items matrix)."""
        counts = np.diff(rows.indptr)
        scale = np.zeros(len(counts), dtype=np.float32)
        scale[counts > 0] = 1.0 / np.sqrt(counts[counts > 0])
        norm = sp.diags(scale) @ rows
        return np.asarray(norm @ self.implicit_factors_, dtype=np.float32)

    def _user_vectors(self, user_idx: NDArray[np.int32]) -> NDArray[np.float64]:  # type: ignore[override]
        out = np.empty((len(user_idx), self.n_factors_ + 2), dtype=np.float64)
        out[:, 0] = self.global_mean_ + self.user_bias_[user_idx].astype(np.float64)
        out[:, 1] = 1.0
        out[:, 2:] = self._user_latent[user_idx]
        return out

    def _item_vectors(self) -> NDArray[np.float64]:  # type: ignore[override]
        return self._item_vec

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        items = self._item_vec if item_idx is None else self._item_vec[item_idx]
        return (self._user_vectors(user_idx) @ items.T).astype(np.float32)

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        out = np.empty(len(user_idx), dtype=np.float32)
        step = max(1, _BLOCK_ENTRIES // (self.n_factors_ + 2))
        for start in range(0, len(user_idx), step):
            users = self._user_vectors(user_idx[start : start + step])
            out[start : start + step] = _rowdot(users, self._item_vec[item_idx[start : start + step]])
        return out

    def _predict_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        """:meth:`predict`: ratings clipped to the training rating range. Ids absent from the
        training data (-1 here) are allowed: the prediction is the global mean plus whatever biases
        are known (``μ + b_u`` for an unknown item, ``μ + b_i`` for an unknown user, ``μ`` for both).

        Examples
        --------
        >>> from recsys.testing import tiny_interactions
        >>> model = SVDpp(n_epochs=2, show_progress=False).fit(tiny_interactions())
        >>> p = model.predict([0, "new user"], [0, 0])
        >>> bool(1.0 <= p.min() and p.max() <= 5.0)
        True
        >>> bool(np.isclose(model.predict(["new user"], ["new item"])[0], model.global_mean_))
        True
        """
        out = np.empty(len(user_idx), dtype=np.float32)
        step = max(1, _BLOCK_ENTRIES // (self.n_factors_ + 2))
        for start in range(0, len(user_idx), step):
            uu, ii = user_idx[start : start + step], item_idx[start : start + step]
            ku, ki = uu >= 0, ii >= 0
            users = self._user_vectors(np.where(ku, uu, 0))
            items = self._item_vec[np.where(ki, ii, 0)]
            # an unknown side contributes nothing but its counterpart's bias (and μ)
            users[~ku, 0] = self.global_mean_
            users[~ku, 2:] = 0.0
            items[~ki, 1:] = 0.0
            out[start : start + step] = _rowdot(users, items)
        lo, hi = self.rating_range_
        return np.clip(out, lo, hi).astype(np.float32)

    # -- fold-in and incremental users -------------------------------------------------

    def _solve_users(
        self,
        indptr: NDArray[np.int64],
        items: NDArray[np.int64],
        ratings: NDArray[np.float32],
        latent_implicit: NDArray[np.float32],
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """``b_u`` and ``p_u`` minimising the training loss of each user's ratings, items fixed.

        Users are the CSR rows ``indptr`` over ``items`` / ``ratings``; their
        implicit vectors are ``latent_implicit``. A user without ratings gets zeros.
        """
        k = self.n_factors_
        n_users = len(indptr) - 1
        bias = np.zeros(n_users, dtype=np.float32)
        factors = np.zeros((n_users, k), dtype=np.float32)
        counts = np.diff(indptr)
        per_block = max(1, _BLOCK_ENTRIES // ((k + 1) * (k + 1)))
        start = 0
        while start < n_users:
            # users whose ratings fit in one block (at least one user)
            stop = int(np.searchsorted(indptr, indptr[start] + per_block, side="right")) - 1
            stop = min(max(stop, start + 1), n_users)
            r0, r1 = int(indptr[start]), int(indptr[stop])
            seg = np.repeat(np.arange(stop - start), counts[start:stop])
            it = items[r0:r1]
            x = np.empty((r1 - r0, k + 1), dtype=np.float64)
            x[:, 0] = 1.0
            x[:, 1:] = self.item_factors_[it]
            z = latent_implicit[start:stop][seg]
            target = ratings[r0:r1] - self.global_mean_ - self.item_bias_[it] - _rowdot(self.item_factors_[it], z)
            n = counts[start:stop].astype(np.float64)
            has = n > 0
            gram = np.zeros((stop - start, k + 1, k + 1), dtype=np.float64)
            rhs = np.zeros((stop - start, k + 1), dtype=np.float64)
            if has.any():
                firsts = (indptr[start:stop] - r0)[has]
                gram[has] = np.add.reduceat(x[:, :, None] * x[:, None, :], firsts, axis=0)
                rhs[has] = np.add.reduceat(x * target[:, None], firsts, axis=0)
            penalty = np.concatenate([[self.reg_bias], np.full(k, self.reg)])
            gram += (n[:, None] * penalty[None, :])[:, :, None] * np.eye(k + 1)[None]
            sol = np.zeros((stop - start, k + 1), dtype=np.float64)
            if has.any():
                # a ridge system with zero penalties can be singular: fall back to least squares
                try:
                    sol[has] = np.linalg.solve(gram[has], rhs[has][:, :, None])[:, :, 0]
                except np.linalg.LinAlgError:
                    sol[has] = np.stack([np.linalg.lstsq(g, r, rcond=None)[0] for g, r in zip(gram[has], rhs[has])])
            bias[start:stop] = sol[:, 0]
            factors[start:stop] = sol[:, 1:]
            start = stop
        return bias, factors

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float64]:
        distinct = np.unique(item_idx)
        row = sp.csr_matrix(
            (np.ones(len(distinct), dtype=np.float32), distinct, [0, len(distinct)]), shape=(1, self.n_items_)
        )
        z = self._implicit(row)
        bias = np.zeros(1, dtype=np.float32)
        factors = np.zeros((1, self.n_factors_), dtype=np.float32)
        if ratings is not None and len(item_idx):
            if not np.all(np.isfinite(ratings)):
                raise DataError("ratings of recommend_history must be finite numbers")
            bias, factors = self._solve_users(
                np.array([0, len(item_idx)], dtype=np.int64), item_idx.astype(np.int64), ratings, z
            )
        return np.concatenate([[self.global_mean_ + float(bias[0]), 1.0], (factors + z)[0]])

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        return (self._item_vec @ self._history_vector(item_idx, ratings, timestamps)).astype(np.float32)

    # -- explanations ------------------------------------------------------------------------

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        hist = self.seen_[user_idx].indices
        return self._explain_parts(hist, float(self.user_bias_[user_idx]), self.user_factors_[user_idx], item_idx)

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        vec = self._history_vector(item_idx, ratings, timestamps)
        distinct = np.unique(item_idx)
        z = self._implicit(sp.csr_matrix((np.ones(len(distinct), np.float32), distinct, [0, len(distinct)]), shape=(1, self.n_items_)))[0]
        return self._explain_parts(distinct, float(vec[0] - self.global_mean_), vec[2:] - z, target)

    def _explain_parts(self, hist: NDArray[Any], user_bias: float, user_factor: NDArray[Any], target: int) -> Explanation:
        """``μ + b_u + b_i`` (term ``baseline``) + ``q_i · p_u`` (term ``user_factor``) + one part per
        history item ``j``: ``q_i · y_j / sqrt(|N(u)|)`` (the implicit-feedback sum)."""
        idx = np.asarray(hist, dtype=np.int64)
        q = self.item_factors_[target].astype(np.float64)
        part = (np.asarray(self.implicit_factors_, dtype=np.float64)[idx] @ q) / np.sqrt(max(len(idx), 1))
        terms = {
            "baseline": float(self.global_mean_ + user_bias + float(self.item_bias_[target])),
            "user_factor": float(np.asarray(user_factor, dtype=np.float64) @ q),
        }
        score = float(part.sum()) + terms["baseline"] + terms["user_factor"]
        return Explanation("item", idx, part, score, terms=terms)

    def _interaction_values(self, data: Interactions, where: str) -> NDArray[np.float32]:
        if data.ratings is None:
            raise DataError(f"SVDpp.{where} needs ratings; these interactions have none (pass rating_col)")
        return data.ratings.astype(np.float32)

    def _stored(self) -> sp.csr_matrix:
        """The training ratings as a users x items CSR (``train_ratings_`` follows ``seen_``'s entries)."""
        return sp.csr_matrix((self.train_ratings_, self.seen_.indices, self.seen_.indptr), shape=self.seen_.shape)

    def _update_users(self, users: IdMap, stored: sp.csr_matrix, touched: NDArray[np.int64]) -> None:
        """``partial_fit_users`` (ratings needed; a new rating of a rated item replaces it): each
        touched user's ``N(u)``, ``b_u`` and ``p_u`` solved by regularised least squares with the item
        parameters fixed, as fold-in does.

        Examples
        --------
        >>> import pandas as pd
        >>> from recsys import Interactions
        >>> from recsys.testing import tiny_interactions
        >>> model = SVDpp(n_epochs=2, show_progress=False).fit(tiny_interactions())
        >>> new = Interactions.from_frame(pd.DataFrame({"user": ["ann"], "item": [3], "rating": [5.0]}),
        ...                               rating_col="rating")
        >>> model.partial_fit_users(new).recommend_one("ann", k=2)[0].shape
        (2,)
        """
        n_users, n_old = len(users), self.seen_.shape[0]
        seen = sp.csr_matrix(
            (np.ones(stored.nnz, dtype=np.float32), stored.indices, stored.indptr), shape=(n_users, self.n_items_)
        )
        sub = stored[touched]
        z = self._implicit(seen[touched])
        bias, factors = self._solve_users(
            sub.indptr.astype(np.int64), sub.indices.astype(np.int64), sub.data.astype(np.float32), z
        )
        user_bias = np.zeros(n_users, dtype=np.float32)
        user_bias[:n_old] = self.user_bias_
        user_bias[touched] = bias
        user_factors = np.zeros((n_users, self.n_factors_), dtype=np.float32)
        user_factors[:n_old] = self.user_factors_
        user_factors[touched] = factors
        latent = np.zeros((n_users, self.n_factors_), dtype=np.float32)
        latent[:n_old] = self._user_latent
        latent[touched] = factors + z
        self.seen_ = seen
        self.train_ratings_ = np.asarray(stored.data, dtype=np.float32)
        self.user_bias_ = user_bias
        self.user_factors_ = user_factors
        self._user_latent = latent


__all__ = ["SVDpp"]
