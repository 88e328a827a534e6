"""Matrix factorisation for implicit feedback: ALS (Hu, Koren & Volinsky 2008) and BPR (Rendle et al. 2009).

Both models end in one vector per user and per item; the score is their dot
product and retrieval goes through the shared :class:`~recsys.index.ItemIndex`.
Both fold in new users (:meth:`~recsys.models.base.Recommender.recommend_history`)
and take online updates without a refit: :meth:`ALS.partial_fit_users` /
:meth:`BPR.partial_fit_users` re-solve the vectors of the given users with the
item vectors fixed, :meth:`ALS.partial_fit_items` / :meth:`BPR.partial_fit_items`
solve the vectors of new (or updated) catalogue items with the user vectors
fixed. Nothing else changes in either case.

``ALS`` fits with implicit's ``AlternatingLeastSquares`` (conjugate-gradient
or Cholesky solver, native code); its user solves for fold-in and partial fits
are implicit's own least-squares solves (``recalculate_user`` /
``recalculate_item``). ``BPR`` fits with a vectorised torch solver of this
project (:mod:`recsys.models._bpr_torch`): implicit's BPR samples negatives in
proportion to item popularity and cannot be told otherwise, which caps its
top-N accuracy on MovieLens-like data (tuned NDCG@10 0.366 on ML-100K, against
0.405 for Cornac's uniform sampling); this one samples negatives uniformly.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from typing import Any, Literal, NamedTuple, TypeVar, overload, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from recsys._state_spec import Array, Number, Sparse, FLOAT_DTYPES as FLOATS, Spec
from recsys._utils.params import check_choice, check_float, check_int, check_seed
from recsys._utils.threads import limit_threads, torch_threads
from recsys.data import IdMap, Interactions, as_id_array
from recsys.errors import DataError, DataTypeError, ParameterError
from recsys.models._embedding import EmbeddingRecommender
from recsys.models._similarity import idf_of, mean_length_of, weight_profiles
from recsys.models._weighting import VALUES, WEIGHTINGS, Values, Weighting
from recsys.models.base import merged_csr

Self = TypeVar("Self", bound="_Factorization")

# BPR fixed-side solves: the negatives pool (every warm item up to this many) and the sample of
# training interactions an item solve uses as the pairs it is a negative in.
_BPR_POOL = 2048
_BPR_ITEM_PAIRS = 2048


class FactorVectors(NamedTuple):
    """External ids and the vectors of a factor model, row ``r`` belonging to ``ids[r]``."""

    ids: NDArray[Any]
    vectors: NDArray[np.float32]

    def to_frame(self, name: str = "id") -> pd.DataFrame:
        """A DataFrame indexed by id (index named ``name``), columns ``f0 ... f{d-1}``."""
        cols = [f"f{j}" for j in range(self.vectors.shape[1])]
        return pd.DataFrame(self.vectors, index=pd.Index(self.ids, name=name), columns=cols)


def _check_bool_or_none(owner: str, name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise ParameterError(f"The {name!r} parameter of {owner} must be a bool or None. Got {value!r} instead.")


class _Factorization(EmbeddingRecommender):
    """User and item factor matrices, public vectors, and the bookkeeping of partial fits."""

    _state_spec: ClassVar[dict[str, Spec]] = {
        "user_factors_": Array(shape=("n_users", "factors")),
        "item_factors_": Array(shape=("n_items", "factors")),
    }

    user_factors_: NDArray[np.float32]
    item_factors_: NDArray[np.float32]
    seed: int

    # -- vectors ----------------------------------------------------------------------

    def _user_vectors(self, user_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return self.user_factors_[user_idx]

    def _item_vectors(self) -> NDArray[np.float32]:
        return self.item_factors_

    @overload
    def user_vectors(self, users: ArrayLike | None = ..., *, as_frame: Literal[False] = ...) -> FactorVectors: ...
    @overload
    def user_vectors(self, users: ArrayLike | None = ..., *, as_frame: Literal[True]) -> pd.DataFrame: ...

    def user_vectors(self, users: ArrayLike | None = None, *, as_frame: bool = False) -> FactorVectors | pd.DataFrame:
        """The users' vectors with their external ids.

        ``user_vectors().vectors @ item_vectors().vectors.T`` are the model's
        scores. Users without interactions have a vector that scores every
        item alike (ALS: zeros; BPR: zeros but the constant 1 of the bias column).

        Parameters
        ----------
        users : sequence of ids, optional
            Only these users, in this order (unknown ids raise
            :class:`~recsys.errors.UnknownIdError`); default every user.
        as_frame : bool, default False
            Return a DataFrame indexed by user id, columns ``f0 ... f{d-1}``.

        Returns
        -------
        FactorVectors or pandas.DataFrame
            ``(ids, vectors)``: ids (n,) and float32 vectors (n, d), a copy.
        """
        self._check_fitted()
        idx, ids = self._select(self.users_, users, "users")
        out = FactorVectors(ids, np.array(self.user_factors_[idx], dtype=np.float32))
        return out.to_frame("user") if as_frame else out

    @overload
    def item_vectors(self, items: ArrayLike | None = ..., *, as_frame: Literal[False] = ...) -> FactorVectors: ...
    @overload
    def item_vectors(self, items: ArrayLike | None = ..., *, as_frame: Literal[True]) -> pd.DataFrame: ...

    def item_vectors(self, items: ArrayLike | None = None, *, as_frame: bool = False) -> FactorVectors | pd.DataFrame:
        """The items' vectors with their external ids (items without interactions: zeros).

        Parameters
        ----------
        items : sequence of ids, optional
            Only these items, in this order; default every item.
        as_frame : bool, default False
            Return a DataFrame indexed by item id, columns ``f0 ... f{d-1}``.

        Returns
        -------
        FactorVectors or pandas.DataFrame
        """
        self._check_fitted()
        idx, ids = self._select(self.items_, items, "items")
        out = FactorVectors(ids, np.array(self.item_factors_[idx], dtype=np.float32))
        return out.to_frame("item") if as_frame else out

    @staticmethod
    def _select(idmap: IdMap, values: ArrayLike | None, what: str) -> tuple[NDArray[np.int64], NDArray[Any]]:
        if values is None:
            return np.arange(len(idmap), dtype=np.int64), idmap.ids.copy()
        query = as_id_array(values, what)
        return idmap.to_index(query).astype(np.int64), query

    # -- hooks of the concrete models -------------------------------------------------

    @abstractmethod
    def _interaction_values(self, data: Interactions, where: str) -> NDArray[np.float32]:
        """The value stored for each row of ``data`` (weights, ratings or ones)."""

    @abstractmethod
    def _stored(self) -> sp.csr_matrix:
        """The users x items matrix of stored values the solves read."""

    @abstractmethod
    def _store(self, matrix: sp.csr_matrix) -> None:
        """Replace the stored values (and ``seen_``) with ``matrix``."""

    @abstractmethod
    def _solve_users(self, rows: sp.csr_matrix, current: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """Vectors of users given their stored-value rows (n x n_items), items fixed.

        ``current``: the users' present vectors (a new user's: the empty vector), where an
        iterative solver may start.
        """

    @abstractmethod
    def _solve_items(self, touched: NDArray[np.int64], stored: sp.csr_matrix) -> NDArray[np.float32]:
        """Vectors of the items ``touched`` given every stored value (``stored``, updated), users fixed.

        Runs before ``_store``: ``seen_`` and ``item_factors_`` still describe the model before the update.
        """

    @abstractmethod
    def _empty_user_vector(self) -> NDArray[np.float32]:
        """The vector of a user without interactions, shape (d,)."""

    def _items_added(self, n_new: int, stored: sp.csr_matrix) -> None:
        """Extend per-item statistics for ``n_new`` new items (hook)."""

    # -- online updates -------------------------------------------------------------------

    def _check_partial(self, data: Any, method: str) -> None:
        self._check_fitted()
        if not isinstance(data, Interactions):
            raise DataTypeError(
                f"{type(self).__name__}.{method} expects recsys.Interactions; got {type(data).__name__} "
                "(build one with Interactions.from_frame)"
            )

    def _update_users(self, users: IdMap, stored: sp.csr_matrix, touched: NDArray[np.int64]) -> None:
        """``partial_fit_users``: the touched users' vectors re-solved with the item vectors fixed,
        exactly as fold-in solves a history (see the class notes); new users start empty."""
        n_old = len(self.users_)
        factors = np.empty((len(users), self.user_factors_.shape[1]), dtype=np.float32)
        factors[:n_old] = self.user_factors_
        factors[n_old:] = self._empty_user_vector()
        factors[touched] = np.asarray(self._solve_users(stored[touched], factors[touched]), dtype=np.float32)
        self._store(stored)
        self.user_factors_ = factors

    def partial_fit_items(self: Self, data: Interactions) -> Self:
        """Add new catalogue items (or new interactions of known items), with every user vector fixed.

        Each item in ``data`` gets the union of its stored interactions and
        the new ones; its vector is then solved with the user vectors fixed
        (see the class notes). Items absent from the model are added; the new
        interactions also count as seen for their users (never recommended to
        them). Nothing else changes: user vectors and other items' vectors
        stay as they are. The retrieval index is rebuilt with its kind and
        parameters.

        Parameters
        ----------
        data : Interactions
            Interactions of the items to add or update; every user must be
            known to the model (add new users with :meth:`partial_fit_users`
            after the items they use exist).

        Returns
        -------
        self

        Raises
        ------
        DataTypeError
            ``data`` is not an Interactions.
        UnknownIdError
            A user is not known to the model.
        """
        self._check_partial(data, "partial_fit_items")
        vals = self._interaction_values(data, "partial_fit_items")
        ext_users = data.users.ids[data.user_index]
        user_idx = self.users_.to_index(ext_users, missing="negative")
        if (user_idx < 0).any():
            raise self.users_.unknown_error(ext_users[user_idx < 0])
        ext_items = data.items.ids[data.item_index]
        items = self.items_.extend(ext_items)
        item_idx = items.to_index(ext_items).astype(np.int64)
        n_old, n_new = self.n_items_, len(items)
        stored = merged_csr(self._stored(), user_idx.astype(np.int64), item_idx, vals, (len(self.users_), n_new))
        self._items_added(n_new - n_old, stored)
        touched = np.unique(item_idx)
        solved = np.asarray(self._solve_items(touched, stored), dtype=np.float32)
        factors = np.zeros((n_new, self.item_factors_.shape[1]), dtype=np.float32)
        factors[:n_old] = self.item_factors_
        factors[touched] = solved
        popularity = np.zeros(n_new, dtype=np.float32)
        popularity[:n_old] = self.item_popularity_
        counts = np.diff(stored.tocsc().indptr)
        popularity[touched] = counts[touched]
        self.items_ = items
        self.n_items_ = n_new
        self.item_factors_ = factors
        self.item_popularity_ = popularity
        # solved items are warm (when they have interactions); other cold items stay cold (no vector)
        cold = np.zeros(n_new, dtype=bool)
        cold[self.cold_items_] = True
        cold[n_old:] = True
        cold[touched] = counts[touched] == 0
        self.cold_items_ = np.flatnonzero(cold).astype(np.int32)
        self._store(stored)
        self._rebuild_index()
        return self


# -- ALS -----------------------------------------------------------------------------------


class ALS(_Factorization):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008), fit by implicit's ``AlternatingLeastSquares``.

    Every stored interaction ``(u, i)`` has preference 1 and confidence
    ``c_ui = 1 + alpha * w_ui``; every other pair preference 0 and confidence
    1. The factors minimise
    ``sum_{u,i} c_ui (p_ui - x_u · y_i)² + reg (|x_u|² + |y_i|²)``.
    The value ``w_ui`` is an interaction's value (``values``) re-weighted
    (``weighting``). ``values`` says where it comes from:

    * ``"binary"``: 1;
    * ``"weight"``: the interaction weight (e.g. a play count);
    * ``"rating"``: the explicit rating (the interactions must have ratings).

    ``weighting`` re-weights it as in text retrieval, users as documents and
    items as terms (the same helpers and meaning as ItemKNN's ``weighting``):

    * ``"none"``: ``w`` as it is;
    * ``"tfidf"``: ``sqrt(w) idf_i``;
    * ``"bm25"``: ``w (k1 + 1) / (k1 L_u + w) idf_i``,

    with ``idf_i = log(n_users / n_i)`` and the user length norm
    ``L_u = 1 - b + b |u| / mean |u|``: rare items and short histories weigh
    more.

    The defaults come from the search in ``benchmarks/tune_mf.py`` (the most
    robust values over ML-100K and a synthetic dataset, validation splits
    only; ``benchmarks/results/mf_tuning.md``): strong regularisation and
    few factors. Scale ``reg`` with the data: it is not scaled by counts.

    Parameters
    ----------
    n_factors : int >= 1, default 16
        Dimension of the vectors (implicit's ``factors``).
    reg : float >= 0, default 30.0
        L2 penalty (implicit's ``regularization``; not scaled by counts).
    alpha : float >= 0, default 1.0
        Confidence slope. implicit's ``alpha=a`` on binary data is
        ``alpha=a - 1`` here (implicit uses ``c = a * w``).
    n_iterations : int >= 1, default 15
        ALS sweeps (implicit's ``iterations``).
    weighting : {"none", "tfidf", "bm25"}, default "tfidf"
        Re-weighting of the values (above). The former spellings
        ``weighting="binary"|"weight"|"rating"`` are now
        ``values=...``, ``weighting="none"``.
    values : {"binary", "weight", "rating"}, default "weight"
        Where an interaction's value comes from (above).
    bm25_k1 : float >= 0, default 1.2
    bm25_b : float in [0, 1], default 0.75
    use_cg : bool, default True
        implicit's conjugate-gradient solver (3 CG steps per sweep); False
        solves each least-squares system exactly (Cholesky), slower.
    seed : int >= 0, default 0
        Seeds implicit's initial factors.
    num_threads : int >= 1, optional
        Threads of implicit's solver; None uses every core. Fits are
        deterministic for a seed (each user's and item's solve is independent);
        with ``num_threads=1`` the arithmetic is also single-threaded.
    show_progress : bool, optional
        Progress bar over sweeps (default: when stderr is a terminal).

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of float32
        ``(n_users, n_factors)`` and ``(n_items, n_factors)``; users and items
        without interactions get zeros.
    user_items_ : scipy.sparse.csr_matrix
        The stored values ``w`` before weighting (the partial fits and
        fold-in add to them).
    idf_ : ndarray of float64
        Per-item idf of the fit (bm25/tfidf), extended for items added later.
    mean_length_ : float
        Mean user length of the fit (bm25).

    Notes
    -----
    Fold-in (:meth:`recommend_history`) and :meth:`partial_fit_users` solve
    the user's least-squares system exactly with the item factors fixed:
    ``x_u = (YᵀY + Yᵀ(C_u - I)Y + reg I)⁻¹ Yᵀ C_u p_u``, implicit's
    ``recalculate_user`` (the same system the fit's last user sweep
    approximates by 3 CG steps). A history's values are 1, or its ratings
    with ``values="rating"``; bm25/tfidf use the fit's idf and mean length.
    :meth:`partial_fit_items` solves item systems the same way with the user
    factors fixed (``recalculate_item``); new items get
    ``idf = log(n_users / n_i)`` from their own interactions.

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> # 20 users: far less regularisation than the default's (tuned on ~1,000 users)
    >>> model = ALS(n_factors=2, reg=1.0, num_threads=1, show_progress=False).fit(tiny_interactions())
    >>> ids, scores = model.recommend_history([0, 2, 4], k=3)  # a new user who likes even items
    >>> [int(i) % 2 for i in ids]
    [0, 0, 0]
    >>> model.user_vectors().vectors.shape
    (20, 2)
    """

    _state_spec: ClassVar[dict[str, Spec]] = {
        "user_items_": Sparse(shape=("n_users", "n_items")),
        "idf_": Array(shape=("n_items",), dtype=FLOATS),
        "mean_length_": Number(low=0),
    }

    def __init__(
        self,
        n_factors: int = 16,
        reg: float = 30.0,
        alpha: float = 1.0,
        n_iterations: int = 15,
        weighting: Weighting = "tfidf",
        values: Values = "weight",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        use_cg: bool = True,
        seed: int = 0,
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.n_factors = n_factors
        self.reg = reg
        self.alpha = alpha
        self.n_iterations = n_iterations
        self.weighting = weighting
        self.values = values
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.use_cg = use_cg
        self.seed = seed
        self.num_threads = num_threads
        self.show_progress = show_progress

    @classmethod
    def _upgrade_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        # saved before `values` existed: weighting="binary"|"weight"|"rating" named the values, unweighted
        if "values" in params:
            return params
        old = params.get("weighting")
        if isinstance(old, str) and old in VALUES:
            return {**params, "values": old, "weighting": "none"}
        return {**params, "values": "weight"}

    def _validate_params(self) -> None:
        name = "ALS"
        check_int(name, "n_factors", self.n_factors, low=1)
        check_float(name, "reg", self.reg, low=0.0)
        check_float(name, "alpha", self.alpha, low=0.0)
        check_int(name, "n_iterations", self.n_iterations, low=1)
        if isinstance(self.weighting, str) and self.weighting in VALUES:
            raise ParameterError(
                f"ALS(weighting={self.weighting!r}) is the old spelling: where values come from is now its own "
                f"parameter; use values={self.weighting!r}, weighting='none'."
            )
        check_choice(name, "weighting", self.weighting, WEIGHTINGS)
        check_choice(name, "values", self.values, VALUES)
        check_float(name, "bm25_k1", self.bm25_k1, low=0.0)
        check_float(name, "bm25_b", self.bm25_b, low=0.0, high=1.0)
        if not isinstance(self.use_cg, bool):
            raise ParameterError(f"The 'use_cg' parameter of ALS must be a bool. Got {self.use_cg!r} instead.")
        check_seed(name, "seed", self.seed)
        if self.num_threads is not None:
            check_int(name, "num_threads", self.num_threads, low=1)
        _check_bool_or_none(name, "show_progress", self.show_progress)

    # -- values and confidences ------------------------------------------------------------

    def _interaction_values(self, data: Interactions, where: str) -> NDArray[np.float32]:
        if self.values == "rating":
            if data.ratings is None:
                raise DataError(
                    f"ALS(values='rating').{where} needs ratings; these interactions have none "
                    "(pass rating_col to Interactions.from_frame, or choose other values)"
                )
            vals = np.asarray(data.ratings, dtype=np.float32)
        elif self.values == "binary":
            vals = np.ones(data.nnz, dtype=np.float32)
        else:
            vals = np.asarray(data.weights, dtype=np.float32)
        if len(vals) and not (np.all(np.isfinite(vals)) and vals.min() >= 0):
            col = "rating" if self.values == "rating" else "weight"
            raise DataError(f"ALS needs finite, non-negative values; the {col} column has {vals.min()!r}")
        return vals

    def _confidence(self, values: sp.csr_matrix) -> sp.csr_matrix:
        """``1 + alpha * w`` on the pattern of ``values`` (users x items, stored values)."""
        if self.weighting in ("bm25", "tfidf"):
            w = weight_profiles(values, self.weighting, self.idf_, float(self.mean_length_), self.bm25_k1, self.bm25_b)  # type: ignore[arg-type]
            ones = sp.csr_matrix((np.ones(values.nnz, np.float32), values.indices, values.indptr), shape=values.shape)
            conf = (ones + float(self.alpha) * w).tocsr()  # w may drop entries (idf 0): the pattern stays
        else:
            data = values.data if self.values != "binary" else np.ones(values.nnz, np.float32)
            conf = sp.csr_matrix(
                ((1.0 + float(self.alpha) * data).astype(np.float32), values.indices, values.indptr), shape=values.shape
            )
        conf.sort_indices()
        return conf.astype(np.float32)

    # -- fit ---------------------------------------------------------------------------------

    def _implicit_model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        with limit_threads(1, blas=True):  # implicit warns about threaded BLAS once, on construction
            return AlternatingLeastSquares(
                factors=int(self.n_factors),
                regularization=float(self.reg),
                alpha=1.0,  # confidences are passed in already
                dtype=np.float32,
                use_cg=bool(self.use_cg),
                iterations=int(self.n_iterations),
                num_threads=0 if self.num_threads is None else int(self.num_threads),
                random_state=int(self.seed),
            )

    def _fit(self, data: Interactions) -> None:
        from recsys._utils.progress import progress_enabled
        vals = self._interaction_values(data, "fit")
        raw = sp.csr_matrix((vals, (data.user_index, data.item_index)), shape=(data.n_users, data.n_items), dtype=np.float32)
        raw.sort_indices()
        self.user_items_ = raw
        self.idf_ = idf_of(raw)
        self.mean_length_ = mean_length_of(raw)
        conf = self._confidence(raw)
        model = self._implicit_model()
        # implicit's solver threads do the work; a threaded BLAS underneath only slows it down
        with limit_threads(1, blas=True):
            model.fit(conf, show_progress=progress_enabled(self.show_progress))
        users = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        items = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        users[np.diff(raw.indptr) == 0] = 0.0
        items[np.bincount(raw.indices, minlength=data.n_items) == 0] = 0.0
        self.user_factors_ = users
        self.item_factors_ = items

    def _prepare(self) -> None:
        super()._prepare()
        self._solver: Any = None  # built on the first fold-in (caches YᵀY)

    def _user_solver(self) -> Any:
        if self._solver is None:
            solver = self._implicit_model()
            # implicit's native solve wants writable arrays (a loaded model's are read-only maps)
            solver.item_factors = np.array(self.item_factors_, dtype=np.float32, copy=True)
            self._solver = solver
        return self._solver

    # -- fold-in and partial fits ----------------------------------------------------------

    def _stored(self) -> sp.csr_matrix:
        return self.user_items_

    def _store(self, matrix: sp.csr_matrix) -> None:
        self.user_items_ = matrix
        self.seen_ = sp.csr_matrix(
            (np.ones(matrix.nnz, np.float32), matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape
        )

    def _empty_user_vector(self) -> NDArray[np.float32]:
        return np.zeros(self.user_factors_.shape[1], dtype=np.float32)

    def _items_added(self, n_new: int, stored: sp.csr_matrix) -> None:
        if n_new <= 0:
            return
        df = np.bincount(stored.indices, minlength=stored.shape[1])[-n_new:]
        n_users = stored.shape[0]
        new_idf = np.where(df > 0, np.log(n_users / np.maximum(df, 1)), 0.0)
        self.idf_ = np.concatenate([np.asarray(self.idf_, dtype=np.float64), new_idf])

    def _solve_users(self, rows: sp.csr_matrix, current: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        conf = self._confidence(rows)
        # many users: implicit's parallel solves want a single-threaded BLAS; a few (fold-in):
        # switching OpenBLAS' pool off and on again would cost more than the solve
        solver = self._user_solver()
        # a few users: one thread (waking a pool costs more than the solves, a lot on a busy machine)
        solver.num_threads = 0 if self.num_threads is None else int(self.num_threads)
        if conf.shape[0] <= 64:
            solver.num_threads = 1
        with limit_threads(1, blas=True) if conf.shape[0] > 64 else contextlib.nullcontext():
            out = solver.recalculate_user(np.arange(conf.shape[0]), conf)
        out = np.asarray(out, dtype=np.float32).reshape(conf.shape[0], -1)
        out[np.diff(conf.indptr) == 0] = 0.0
        return out

    def _solve_items(self, touched: NDArray[np.int64], stored: sp.csr_matrix) -> NDArray[np.float32]:
        # a confidence depends on the user's whole row (bm25 length): weight the rows of the
        # items' users, then take the items' columns, users re-indexed to the model's
        sub = stored.tocsc()[:, touched]
        users = np.unique(sub.indices).astype(np.int64)
        conf = self._confidence(stored[users])[:, touched].T.tocsr()
        conf.sort_indices()
        conf = sp.csr_matrix((conf.data, users[conf.indices], conf.indptr), shape=(len(touched), stored.shape[0]))
        solver = self._implicit_model()
        solver.user_factors = np.array(self.user_factors_, dtype=np.float32, copy=True)
        with limit_threads(1, blas=True):
            out = solver.recalculate_item(np.arange(len(touched)), conf)
        out = np.asarray(out, dtype=np.float32).reshape(len(touched), -1)
        out[np.diff(conf.indptr) == 0] = 0.0
        return out

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        row = self._history_row(item_idx, ratings, "ALS")
        if self.values != "rating":
            row.data[:] = 1.0
        return self._solve_users(row)[0]

    def _history_row(self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, owner: str) -> sp.csr_matrix:
        if self.values == "rating" and ratings is None and len(item_idx):
            raise DataError(f"{owner}(values='rating') folds in a history with its ratings: pass ratings=")
        vals = np.ones(len(item_idx), np.float32) if ratings is None else np.asarray(ratings, dtype=np.float32)
        if len(vals) and not (np.all(np.isfinite(vals)) and vals.min() >= 0):
            raise DataError("ratings of recommend_history must be finite and non-negative")
        row = sp.csr_matrix(
            (vals, (np.zeros(len(item_idx), np.int64), item_idx.astype(np.int64))), shape=(1, self.n_items_), dtype=np.float32
        )
        row.sum_duplicates()
        row.sort_indices()
        return row


# -- BPR -----------------------------------------------------------------------------------


class BPR(_Factorization):
    """Bayesian Personalised Ranking (Rendle et al. 2009) with uniform negatives, fit by a vectorised torch solver.

    Every interaction is a positive (weights and ratings are ignored). The
    model maximises ``sum log σ(x_ui - x_uj)`` over (user, positive ``i``,
    negative ``j``) triples with ``x_ui = p_u · q_i + b_i``, by SGD over
    mini-batches: each epoch visits every interaction once in random order
    with one negative drawn uniformly among the items that have interactions
    (a negative the user has seen is skipped). The learning rate decays
    linearly to zero. See :mod:`recsys.models._bpr_torch`.

    Why a solver of our own: implicit's ``BayesianPersonalizedRanking`` draws
    negatives in proportion to item popularity (the item of a random
    interaction) with no option to change it, which pushes popular items
    down; on ML-100K its tuned NDCG@10 is 0.366 against 0.405 for Cornac's
    uniform sampling. This solver samples uniformly, as the paper and Cornac
    do, and vectorises the updates (the sum of a mini-batch's per-sample
    steps), which is what makes it usable from Python.

    The defaults come from the search in ``benchmarks/tune_mf.py``
    (``benchmarks/results/mf_tuning.md``).

    Parameters
    ----------
    n_factors : int >= 1, default 64
        Dimension of ``p_u`` and ``q_i``; vectors have one more column (the
        bias ``b_i`` for items, the constant 1 for users).
    n_epochs : int >= 1, default 100
        Passes over the interactions.
    lr : float > 0, default 0.1
        Initial SGD learning rate (decays linearly to 0 over the epochs).
    reg : float >= 0, default 0.03
        L2 penalty per sample on the rows it touches (``p_u``, ``q_i``,
        ``q_j``, ``b_i``, ``b_j``).
    batch_size : int >= 1, default 1024
        Samples per vectorised step.
    init_std : float >= 0, default 0.01
        Standard deviation of the normal initial factors (biases start at 0).
    seed : int >= 0, default 0
        Seeds the initial factors, the sampling, and the fixed negatives of
        fold-in.
    num_threads : int >= 1, optional
        Torch threads of the fixed-side solves (fold-in, partial fits); None
        keeps torch's setting. The SGD loop of :meth:`fit` always runs on one
        thread (its per-batch ops are too small to split), so a fit is
        deterministic for a seed.
    show_progress : bool, optional
        Progress bar over epochs (default: when stderr is a terminal).

    Attributes
    ----------
    user_factors_ : ndarray of float32, (n_users, n_factors + 1)
        Rows ``[p_u, 1]``.
    item_factors_ : ndarray of float32, (n_items, n_factors + 1)
        Rows ``[q_i, b_i]``; items without interactions get zeros.

    Notes
    -----
    Fold-in (:meth:`recommend_history`) and :meth:`partial_fit_users` solve a
    user's vector with the item vectors fixed: they minimise the user's
    expected training objective, the mean over history items ``i`` and
    negatives ``j`` of ``-log σ(x_ui - x_uj)`` plus ``reg/2 |p_u|²`` (the
    per-sample penalty averaged per sample). It is strictly convex in
    ``p_u``; damped Newton steps from zero reach its minimum (to float
    precision, in a handful of steps). The negatives are every item with
    interactions (catalogues up to 2,048 such items) or a fixed sample of
    2,048 of them (stable: adding an item changes at most one member), the
    same for every user, so the result depends on the history only
    (:meth:`partial_fit_users` starts from the user's current vector: the
    same minimum in fewer steps, equal to fold-in up to the solver's
    tolerance). :meth:`partial_fit_items` does the same for item rows
    ``[q_i, b_i]`` with the user vectors fixed: the item is the positive of
    each of its users and, as in training, the negative of about
    ``interactions / items`` random interactions per epoch (a fixed sample of
    2,048 training interactions stands for them).

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = BPR(n_factors=8, n_epochs=40, lr=0.1, num_threads=1, show_progress=False)
    >>> model = model.fit(tiny_interactions())
    >>> ids, scores = model.recommend_history([1, 3, 5], k=3)  # a new user who likes odd items
    >>> [int(i) % 2 for i in ids]
    [1, 1, 1]
    >>> model.item_vectors().vectors.shape
    (32, 9)
    """

    _state_spec: ClassVar[dict[str, Spec]] = {}  # nothing beyond its base's state

    def __init__(
        self,
        n_factors: int = 64,
        n_epochs: int = 100,
        lr: float = 0.1,
        reg: float = 0.03,
        batch_size: int = 1024,
        init_std: float = 0.01,
        seed: int = 0,
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.batch_size = batch_size
        self.init_std = init_std
        self.seed = seed
        self.num_threads = num_threads
        self.show_progress = show_progress

    def _validate_params(self) -> None:
        name = "BPR"
        check_int(name, "n_factors", self.n_factors, low=1)
        check_int(name, "n_epochs", self.n_epochs, low=1)
        check_float(name, "lr", self.lr, low=0.0, low_open=True)
        check_float(name, "reg", self.reg, low=0.0)
        check_int(name, "batch_size", self.batch_size, low=1)
        check_float(name, "init_std", self.init_std, low=0.0)
        check_seed(name, "seed", self.seed)
        if self.num_threads is not None:
            check_int(name, "num_threads", self.num_threads, low=1)
        _check_bool_or_none(name, "show_progress", self.show_progress)

    def _fit(self, data: Interactions) -> None:
        from recsys.models._bpr_torch import fit_bpr

        # one thread: the per-batch ops are small; splitting them costs more than it gains (and
        # oversubscribed machines make OpenMP barriers very slow: 40x slower with 2 threads measured)
        with torch_threads(1):
            users, items = fit_bpr(
                self.seen_,
                factors=int(self.n_factors),
                learning_rate=float(self.lr),
                regularization=float(self.reg),
                epochs=int(self.n_epochs),
                batch_size=int(self.batch_size),
                init_std=float(self.init_std),
                seed=int(self.seed),
                show_progress=self.show_progress,
            )
        self.user_factors_ = users
        self.item_factors_ = items

    # -- fold-in and partial fits ----------------------------------------------------------

    def _interaction_values(self, data: Interactions, where: str) -> NDArray[np.float32]:
        return np.ones(data.nnz, dtype=np.float32)

    def _stored(self) -> sp.csr_matrix:
        return self.seen_

    def _store(self, matrix: sp.csr_matrix) -> None:
        self.seen_ = sp.csr_matrix(
            (np.ones(matrix.nnz, np.float32), matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape
        )

    def _empty_user_vector(self) -> NDArray[np.float32]:
        out = np.zeros(self.user_factors_.shape[1], dtype=np.float32)
        out[-1] = 1.0
        return out

    def _prepare(self) -> None:
        from recsys.models._bpr_torch import negative_pool

        super()._prepare()
        # the negatives of the solves: items that have vectors (warm at fit or added by partial_fit_items)
        warm = np.flatnonzero(~self._never).astype(np.int64)
        self._negatives = negative_pool(warm, _BPR_POOL, int(self.seed))

    def _pool(self) -> NDArray[np.int64]:
        return self._negatives

    def _solve_users(self, rows: sp.csr_matrix, current: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        from recsys.models._bpr_torch import solve_users

        rows = sp.csr_matrix((np.ones(rows.nnz, np.float32), rows.indices, rows.indptr), shape=rows.shape)
        with torch_threads(self.num_threads):
            return solve_users(
                rows,
                np.asarray(self.item_factors_, dtype=np.float32),
                self._pool(),
                regularization=float(self.reg),
                init=current,
            )

    def _solve_items(self, touched: NDArray[np.int64], stored: sp.csr_matrix) -> NDArray[np.float32]:
        from recsys.models._bpr_torch import solve_items, stable_sample

        seen = self.seen_  # before the update: the pairs and the pool use items that have vectors
        keys = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr)) * seen.shape[1] + seen.indices
        pick = stable_sample(keys, _BPR_ITEM_PAIRS, int(self.seed))
        pairs = (pick // seen.shape[1], pick % seen.shape[1])
        warm = int((np.diff(seen.tocsc().indptr) > 0).sum())
        binary = sp.csr_matrix((np.ones(stored.nnz, np.float32), stored.indices, stored.indptr), shape=stored.shape)
        item_users = binary.T.tocsr()[touched]
        with torch_threads(self.num_threads):
            return solve_items(
                item_users,
                np.asarray(self.user_factors_, dtype=np.float32),
                np.asarray(self.item_factors_, dtype=np.float32),
                binary,
                self._pool(),
                pairs,
                seen.nnz / max(1, warm),
                regularization=float(self.reg),
            )

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        distinct = np.unique(item_idx).astype(np.int32)
        row = sp.csr_matrix(
            (np.ones(len(distinct), np.float32), distinct, [0, len(distinct)]), shape=(1, self.n_items_)
        )
        return self._solve_users(row)[0]


__all__ = ["ALS", "BPR", "FactorVectors"]
