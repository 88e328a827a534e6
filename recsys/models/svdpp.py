"""SVD++ (Koren 2008): biases, latent factors and the implicit feedback of what each user rated.

The predicted rating of user ``u`` for item ``i`` is

    r̂_ui = μ + b_u + b_i + q_i · (p_u + |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j)

where ``N(u)`` is the set of items ``u`` rated in the training data. The last
term (the *implicit* user vector ``z_u``) describes a user by the items they
chose to rate, whatever the ratings were.

Training cost is linear in the number of ratings. Every mini-batch holds
whole users (about ``batch_size`` ratings), so each user's implicit vector is
computed once per epoch, as a segment sum over the user's ratings, and its
gradient flows back to every ``y_j`` through the same sums per item. (Peers
that update rating by rating, as Surprise does, recompute ``z_u`` for every
rating: their cost grows with the sum of squared history lengths.)

Because a batch contains all ratings of its users, a plain summed SGD step
would overshoot for users with many ratings. User parameters (``b_u``,
``p_u``) therefore take Koren's per-rating SGD step compounded over the user's
``n`` ratings: the summed gradient is scaled by ``(1 - (1 - γ)^n) / n``, which
is ``γ`` for one rating and tends to an averaged step for heavy users. Item
parameters (``b_i``, ``q_i``, ``y_j``) are updated with Adam, lazily (only the
rows a batch touches), which reaches a lower validation error in far fewer
epochs than SGD. Regularisation is Koren's: each rating contributes
``λ (b_u² + b_i²)`` (``reg_bias``), ``λ (|p_u|² + |q_i|²)`` (``reg``) and
``λ Σ_{j ∈ N(u)} |y_j|²`` (``reg_implicit``) to the loss.

The batch step is numpy and scipy.sparse on one thread. Its arrays are a few
thousand rows wide, where per-call costs dominate: at 2,048 x 21, torch's
index_select measured about 6x slower than numpy's take and index_add_ about
3x slower than a scipy CSR product, and two torch threads were slower still
on a loaded machine. A batch's sums over users and items are products with
the batch's (users x items) matrix (see ``_UserItem``). One thread also makes
a fit deterministic for a seed; the ML-100K fit is about 30x faster than
Surprise's SVDpp (``benchmarks/results/svdpp.md``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._state_spec import Array, Floats, Json, Number, Sparse, Spec
from recsys._utils.params import check_float, check_int, check_seed
from recsys._utils.progress import progress_bar
from recsys.data import IdMap, Interactions
from recsys.errors import DataError, ParameterError
from recsys.models._embedding import EmbeddingRecommender

# The per-epoch bookkeeping (row order, per-batch item groups) is built for
# about this many ratings at a time, so its memory does not grow with the data.
_CHUNK_RATINGS = 1 << 20
# Prediction and user solves work on blocks of about this many entries.
_BLOCK_ENTRIES = 1 << 22
_ADAM_BETA1 = 0.9
_ADAM_BETA2 = 0.999
_ADAM_EPS = 1e-8


def _rowdot(a: NDArray[Any], b: NDArray[Any]) -> NDArray[Any]:
    return np.einsum("ij,ij->i", a, b)


class SVDpp(EmbeddingRecommender):
    """SVD++ rating prediction (Koren 2008), trained with vectorised mini-batches.

    ``r̂_ui = μ + b_u + b_i + q_i · (p_u + |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j)``,
    ``N(u)`` = the items ``u`` rated in the training data. Fit on interactions
    with ratings; :meth:`predict` gives clipped ratings for RMSE,
    ``recommend`` ranks by the (unclipped) predicted rating. Fit cost is linear
    in the number of ratings (see the module docstring for the optimiser).

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
        if self.show_progress is not None and not isinstance(self.show_progress, bool):
            raise ParameterError(
                f"The 'show_progress' parameter of SVDpp must be a bool or None. Got {self.show_progress!r} instead."
            )

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


class _Trainer:
    """One SVD++ fit: the mini-batch loop over user-grouped batches (see the module docstring)."""

    def __init__(
        self,
        model: SVDpp,
        users: NDArray[np.int32],
        items: NDArray[np.int64],
        ratings: NDArray[np.float32],
        n_users: int,
        n_items: int,
    ) -> None:
        self.m = model
        self.items = items
        self.ratings = ratings
        self.n_users, self.n_items = n_users, n_items
        self.counts = np.bincount(users, minlength=n_users).astype(np.int64)
        self.indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(self.counts, out=self.indptr[1:])
        self.mu = float(ratings.astype(np.float64).mean())
        k = int(model.n_factors)
        self.k, self.width = k, 1 + 2 * k  # item row: [b_i | q_i | y_i]
        self.reg_user = np.array([float(model.reg_bias)] + [float(model.reg)] * k, dtype=np.float32)

    def run(self, initial: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None) -> dict[str, Any]:
        """Train; ``initial`` = ([b_u | p_u], [b_i | q_i | y_i]) replaces the random start (for tests)."""
        m, k, width = self.m, self.k, self.width
        rng = np.random.default_rng(int(m.seed))
        # item state: [b_i | q_i | y_i | Adam's first moments | second moments], one row per item
        # so that a batch gathers and scatters its items once
        state = np.zeros((self.n_items, 3 * width), dtype=np.float32)
        params = state[:, :width]
        user = np.zeros((self.n_users, 1 + k), dtype=np.float32)  # [b_u | p_u]
        if initial is None:
            std = np.float32(m.init_std)
            params[:, 1:] = rng.standard_normal((self.n_items, 2 * k), dtype=np.float32) * std
            user[:, 1:] = rng.standard_normal((self.n_users, k), dtype=np.float32) * std
        else:
            user[:], params[:] = initial
        params[np.bincount(self.items, minlength=self.n_items) == 0] = 0.0
        user[self.counts == 0] = 0.0
        self.state, self.user = state, user
        self.steps = np.zeros(self.n_items, dtype=np.int64)
        # Adam's bias correction sqrt(1 - β2^t) / (1 - β1^t) by step count t: an item takes at
        # most one step per batch, so per epoch at most min(batches, its ratings) steps
        per_epoch = min(len(self.ratings) // int(m.batch_size) + 2, int(np.bincount(self.items).max()))
        t = np.arange(1, int(m.n_epochs) * per_epoch + 2, dtype=np.float64)
        table = np.sqrt(1.0 - _ADAM_BETA2**t) / (1.0 - _ADAM_BETA1**t)
        self.corr_table = np.concatenate([[0.0], table]).astype(np.float32)
        active = np.flatnonzero(self.counts > 0)
        history: list[float] = []
        with progress_bar(desc="SVDpp", total=int(m.n_epochs), show=m.show_progress) as bar:
            for epoch in range(int(m.n_epochs)):
                decay = float(m.lr_decay) ** epoch
                perm = active[rng.permutation(len(active))]
                sq = self._epoch(perm, float(m.lr_user) * decay, float(m.lr_item) * decay)
                history.append(float(np.sqrt(sq / len(self.ratings))))
                bar.set_postfix(rmse=f"{history[-1]:.4f}")
                bar.update(1)
        return {
            "mu": self.mu,
            "bu": np.ascontiguousarray(user[:, 0]),
            "P": np.ascontiguousarray(user[:, 1:]),
            "bi": np.ascontiguousarray(params[:, 0]),
            "Q": np.ascontiguousarray(params[:, 1 : 1 + k]),
            "Y": np.ascontiguousarray(params[:, 1 + k :]),
            "epoch_rmse": history,
        }

    def _epoch(self, perm: NDArray[np.int64], lr_user: float, lr_item: float) -> float:
        """One pass over the users in ``perm`` order; returns the sum of squared errors."""
        c = self.counts[perm]
        cs = np.cumsum(c)
        size = int(self.m.batch_size)
        # a batch closes after the user whose ratings reach the next multiple of batch_size
        cuts = np.searchsorted(cs, np.arange(size, cs[-1], size), side="left") + 1
        bounds = np.unique(np.concatenate([[0], cuts, [len(perm)]]))
        ends = np.concatenate([[0], cs])
        sq = 0.0
        b = 0
        while b < len(bounds) - 1:
            # a chunk of consecutive batches holding about _CHUNK_RATINGS ratings
            stop = int(np.searchsorted(ends[bounds], ends[bounds[b]] + _CHUNK_RATINGS, side="right")) - 1
            stop = min(max(stop, b + 1), len(bounds) - 1)
            sq += self._chunk(perm, bounds[b : stop + 1], lr_user, lr_item)
            b = stop
        return sq

    def _chunk(self, perm: NDArray[np.int64], ubounds: NDArray[np.int64], lr_user: float, lr_item: float) -> float:
        """Consecutive batches of users ``perm[ubounds[s]:ubounds[s + 1]]``; returns the sum of squared errors."""
        m, k, width = self.m, self.k, self.width
        users = perm[ubounds[0] : ubounds[-1]]
        c = self.counts[users]
        cs = np.cumsum(c)
        n_rows = int(cs[-1])
        user_start = cs - c  # first row of each user within the chunk
        rows = np.arange(n_rows, dtype=np.int64) + np.repeat(self.indptr[users] - user_start, c)
        items = self.items[rows]
        ubounds = ubounds - ubounds[0]
        rbounds = np.concatenate([[0], cs])[ubounds]
        n_batches = len(ubounds) - 1
        batch_of_user = np.repeat(np.arange(n_batches, dtype=np.int64), np.diff(ubounds))
        batch_of_row = np.repeat(np.arange(n_batches, dtype=np.int64), np.diff(rbounds))
        # group each batch's rows by item: sorted (batch, item) keys
        keys = batch_of_row * self.n_items + items
        by_item = np.argsort(keys)  # ties (an item rated by several users) need no order
        sorted_keys = keys[by_item]
        first = np.ones(n_rows, dtype=bool)
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        group_start = np.flatnonzero(first)  # in by_item order
        uniq_items = sorted_keys[group_start] % self.n_items
        batch_of_group = batch_of_row[by_item][group_start]
        qbounds = np.concatenate([[0], np.cumsum(np.bincount(batch_of_group, minlength=n_batches))])
        group = np.empty(n_rows, dtype=np.int64)
        group[by_item] = np.cumsum(first) - 1
        # batch-local indices, and the CSR row pointers (user x item) of every batch in one
        # array: batch s's pointers are row_ptr[ubounds[s] + s : ubounds[s + 1] + s + 1]
        local_group = (group - qbounds[batch_of_row]).astype(np.int32)
        local_user = np.repeat(np.arange(len(users), dtype=np.int64), c) - ubounds[batch_of_row]
        row_ptr = _batch_pointers(user_start - rbounds[batch_of_user], ubounds, np.diff(rbounds))
        ones = np.ones(int(np.diff(rbounds).max()), dtype=np.float32)
        n_u = c.astype(np.float32)
        w_user = (1.0 / np.sqrt(n_u))[:, None]  # |N(u)|^-1/2
        group_count = np.bincount(group, minlength=len(group_start)).astype(np.float32)[:, None]
        group_nsum = np.bincount(group, weights=np.repeat(n_u, c), minlength=len(group_start)).astype(np.float32)[:, None]
        # user step: Koren's per-rating step compounded over the user's n ratings
        user_step = ((1.0 - (1.0 - lr_user) ** n_u.astype(np.float64)) / n_u).astype(np.float32)[:, None]
        user_reg = n_u[:, None] * self.reg_user[None, :]
        target = self.ratings[rows] - np.float32(self.mu)
        reg_item = self.reg_user  # b_i and q_i take the same penalties as b_u and p_u
        reg_y = np.float32(m.reg_implicit)
        state, user, steps, corr_table = self.state, self.user, self.steps, self.corr_table
        sq = 0.0
        for s in range(n_batches):
            u0, u1 = int(ubounds[s]), int(ubounds[s + 1])
            r0, r1 = int(rbounds[s]), int(rbounds[s + 1])
            q0, q1 = int(qbounds[s]), int(qbounds[s + 1])
            nb_u, nb_r, nb_q = u1 - u0, r1 - r0, q1 - q0
            ub, ui = users[u0:u1], uniq_items[q0:q1]
            lu, li = local_user[r0:r1], local_group[r0:r1]
            # the batch's user x item matrix: data 1 sums over N(u) (or, transposed, over an
            # item's raters); data e gives the error-weighted sums of the gradients
            rated = _UserItem(row_ptr[u0 + s : u1 + s + 1], li, ones[:nb_r].copy(), nb_u, nb_q)
            data = rated.data
            w = w_user[u0:u1]
            xs = state.take(ui, axis=0)  # the batch's item rows (take: much faster than fancy indexing)
            x = xs[:, :width]  # [b_i | q_i | y_i]
            ub_rows = user.take(ub, axis=0)  # [b_u | p_u]
            v = ub_rows.copy()
            v[:, 1:] += rated.dot(x[:, k + 1 :]) * w  # [b_u | p_u + z_u]
            v_r = v.take(lu, axis=0)
            bq_r = x[:, : k + 1].take(li, axis=0)  # [b_i | q_i] per rating
            err = target[r0:r1] - v_r[:, 0] - bq_r[:, 0] - np.einsum("ij,ij->i", v_r[:, 1:], bq_r[:, 1:])
            sq += float(np.dot(err, err))
            # gradients (descent directions): users [Σ e | Σ e q_i]; items [Σ e | Σ e (p_u + z_u)]
            # and, for y_j, Σ over the users who rated j of |N(u)|^-1/2 Σ_i e q_i
            data[:] = err
            one_q = x[:, : k + 1].copy()
            one_q[:, 0] = 1.0
            g_user = rated.dot(one_q)
            user[ub] = ub_rows + user_step[u0:u1] * (g_user - user_reg[u0:u1] * ub_rows)
            v[:, 0] = 1.0
            grad = np.empty((nb_q, width), dtype=np.float32)
            grad[:, : k + 1] = rated.tdot(v)
            data[:] = 1.0
            grad[:, k + 1 :] = rated.tdot(g_user[:, 1:] * w)
            grad[:, : k + 1] -= (group_count[q0:q1] * reg_item) * x[:, : k + 1]
            grad[:, k + 1 :] -= (group_nsum[q0:q1] * reg_y) * x[:, k + 1 :]
            # lazy Adam on the touched item rows (ascent along the descent direction)
            st = steps.take(ui) + 1
            steps[ui] = st
            _adam_rows(xs, grad, corr_table.take(st) * np.float32(lr_item))
            state[ui] = xs
        return sq


def _adam_rows(rows: NDArray[np.float32], grad: NDArray[np.float32], rate: NDArray[np.float32]) -> None:
    """One Adam step, in place, on item rows ``[params | first moments | second moments]``, along
    ``grad`` (a descent direction: the step adds to the parameters; ``grad`` is overwritten).

    ``rate`` is each row's ``lr * sqrt(1 - β2^t) / (1 - β1^t)`` for its own step count ``t``: the
    Adam paper's form, with ``ε`` added to ``sqrt(v)`` before the bias correction (torch.optim.Adam
    adds it after; the two differ by that rescaling of ``ε`` only).

    Why not torch.optim.Adam: SVD++ trains in numpy (torch is an optional extra), and the update is
    lazy, touching only a batch's items with per-row step counts, where torch's dense Adam would
    step every item of every batch; the per-rating SGD reference it replaces is timed against
    Surprise in benchmarks/results/svdpp.md. tests/models/test_svdpp.py checks it against
    torch.optim.Adam on the same parameters and gradients.
    """
    width = rows.shape[1] // 3
    b1, b2, eps = np.float32(_ADAM_BETA1), np.float32(_ADAM_BETA2), np.float32(_ADAM_EPS)
    x = rows[:, :width]
    m1 = rows[:, width : 2 * width]
    m1 *= b1
    m1 += (1.0 - b1) * grad
    m2 = rows[:, 2 * width :]
    m2 *= b2
    grad *= grad
    grad *= 1.0 - b2
    m2 += grad
    step = np.sqrt(m2)
    step += eps
    np.divide(m1, step, out=step)
    step *= rate[:, None]
    x += step


class _UserItem:
    """A batch's (users x items) CSR matrix, multiplied with dense float32 blocks.

    scipy's public sparse constructors validate their arrays on every call,
    which at a batch's size costs about as much as the product itself; the
    products therefore call scipy's compiled CSR/CSC kernels directly when
    they are importable (private, but unchanged for many releases), else go
    through ``scipy.sparse`` (same results). Assigning to ``data`` changes
    the values of both products.
    """

    def __init__(self, indptr: NDArray[np.int32], indices: NDArray[np.int32], data: NDArray[np.float32], n_rows: int, n_cols: int) -> None:
        self.indptr, self.indices, self.data = indptr, indices, data
        self.n_rows, self.n_cols = n_rows, n_cols

    def dot(self, x: NDArray[Any]) -> NDArray[np.float32]:
        """``A @ x``, shape (n_rows, x.shape[1])."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if _matvecs is None:
            a = sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_cols))
            return np.asarray(a @ x, dtype=np.float32)
        out = np.zeros((self.n_rows, x.shape[1]), dtype=np.float32)
        _matvecs[0](self.n_rows, self.n_cols, x.shape[1], self.indptr, self.indices, self.data, x.ravel(), out.ravel())
        return out

    def tdot(self, x: NDArray[Any]) -> NDArray[np.float32]:
        """``A.T @ x``, shape (n_cols, x.shape[1])."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if _matvecs is None:
            a = sp.csc_matrix((self.data, self.indices, self.indptr), shape=(self.n_cols, self.n_rows))
            return np.asarray(a @ x, dtype=np.float32)
        out = np.zeros((self.n_cols, x.shape[1]), dtype=np.float32)
        _matvecs[1](self.n_cols, self.n_rows, x.shape[1], self.indptr, self.indices, self.data, x.ravel(), out.ravel())
        return out


def _load_matvecs() -> tuple[Any, Any] | None:
    # Measured by timing one batch's two products (``dot`` and ``tdot``) with these kernels and with
    # ``_matvecs = None``: the public path is several times slower at the default batch size (its
    # array checks dominate) and still slower at the largest batches; the whole fit that this feeds
    # is timed in benchmarks/results/svdpp.md. tests/models/test_fast_paths.py checks both paths
    # against scipy.sparse products.
    try:
        from scipy.sparse._sparsetools import csc_matvecs, csr_matvecs  # type: ignore[attr-defined]
    except ImportError:
        return None
    return csr_matvecs, csc_matvecs


_matvecs = _load_matvecs()


def _batch_pointers(local_starts: NDArray[np.int64], bounds: NDArray[np.int64], sizes: NDArray[np.int64]) -> NDArray[np.int32]:
    """CSR row pointers of every batch in one array: batch ``s`` (rows ``bounds[s]:bounds[s + 1]``
    starting at ``local_starts``, ``sizes[s]`` columns) at ``[bounds[s] + s : bounds[s + 1] + s + 1]``."""
    n_batches = len(bounds) - 1
    out = np.empty(len(local_starts) + n_batches, dtype=np.int32)
    batch = np.repeat(np.arange(n_batches), np.diff(bounds))
    out[np.arange(len(local_starts)) + batch] = local_starts
    out[bounds[1:] + np.arange(n_batches)] = sizes
    return out


__all__ = ["SVDpp"]
