"""ALS for implicit feedback (Hu, Koren & Volinsky 2008), fit by implicit's ``AlternatingLeastSquares``.

implicit's native code (conjugate-gradient or Cholesky solver) fits the
factors; fold-in and the partial fits use implicit's own exact least-squares
solves (``recalculate_user`` / ``recalculate_item``). The vectors, their
accessors and the partial-fit bookkeeping are shared with BPR
(:mod:`recsys.models._factorization`).
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._state_spec import FLOAT_DTYPES as FLOATS
from recsys._state_spec import Array, Number, Sparse, Spec
from recsys._utils.params import check_bool, check_choice, check_float, check_float_or_auto, check_int, check_seed
from recsys._utils.registry import stored_as
from recsys._utils.threads import limit_threads
from recsys.data import Interactions
from recsys.errors import DataError, ParameterError
from recsys.models._explain import Explanation
from recsys.models._factorization import _Factorization
from recsys.models._similarity import idf_of, mean_length_of, weight_profiles
from recsys.models._weighting import VALUES, WEIGHTINGS, Values, Weighting

AUTO_REG_FRACTION = 0.1


def top_singular_value(matrix: sp.csr_matrix, rtol: float = 1e-4, max_iter: int = 300) -> float:
    """The largest singular value of a sparse matrix, by power iteration on ``MᵀM`` from the all-ones vector.

    Deterministic (no random start); for a non-negative matrix the all-ones
    vector is never orthogonal to the top singular vector.

    >>> import scipy.sparse as sp
    >>> round(top_singular_value(sp.csr_matrix(np.array([[3.0, 0.0], [0.0, 4.0]]))), 6)
    4.0
    """
    m = matrix.tocsr().astype(np.float32, copy=False)
    if m.nnz == 0:
        return 0.0
    x = np.ones(m.shape[1], dtype=np.float32)
    sigma = 0.0
    for _ in range(max_iter):
        y = m @ (x / np.linalg.norm(x))
        previous, sigma = sigma, float(np.linalg.norm(y))
        x = m.T @ y
        if abs(sigma - previous) <= rtol * sigma:
            break
    return sigma


def auto_reg(confidence: sp.csr_matrix) -> float:
    """ALS's ``reg="auto"``: a tenth of the largest singular value of the confidence matrix ``M``.

    ``M`` holds ``c_ui = 1 + alpha * w_ui`` on the stored pairs and 0
    elsewhere. Near zero factors the objective is
    ``const - 2 tr(Xᵀ M Y) + reg (|X|² + |Y|²)`` plus fourth-order terms, so
    every factor collapses to zero once ``reg >= σ₁(M)``, and in general only
    directions whose singular value exceeds ``reg`` survive: the penalty is a
    spectral cut-off, and its right value moves with ``σ₁`` (the data's size
    and density, the weighting, ``alpha``). A tenth of ``σ₁`` is the fraction
    that a validation grid over seven data sets supports at 16 factors
    (``benchmarks/als_reg_rule.py``, ``benchmarks/results/als_reg_rule.md``).

    >>> import scipy.sparse as sp
    >>> round(auto_reg(sp.csr_matrix(np.array([[3.0, 0.0], [0.0, 4.0]]))), 6)
    0.4
    """
    return AUTO_REG_FRACTION * top_singular_value(confidence)


# artifacts and configs name it by the module it was first saved from
@stored_as("recsys.models.mf.ALS")
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

    The best ``reg`` grows with the data (about 30 on ML-100K, 300 on
    ML-20M-sized data), so the default ``reg="auto"`` sets it from the data's
    shape: a tenth of the largest singular value of the confidence matrix
    (:func:`auto_reg`). With it, 16 factors come within 1.5% of the best
    validation NDCG@10 of a reg grid on each of eight data sets from
    ML-100K to ML-20M size (``benchmarks/results/defaults.md``).

    Parameters
    ----------
    n_factors : int >= 1, default 16
        Dimension of the vectors (implicit's ``factors``).
    reg : float >= 0 or "auto", default "auto"
        L2 penalty (implicit's ``regularization``; not scaled by counts).
        ``"auto"``: ``0.1 σ₁`` of the fit's confidences (:func:`auto_reg`);
        more factors want a little more (about ``0.12 σ₁`` at 64 factors).
        The value used is ``reg_``.
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
    reg_ : float
        The penalty of the fit, fold-in and partial fits (``reg`` resolved;
        absent on models saved before ``reg="auto"``, whose ``reg`` is it).

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

    :meth:`explain` follows the paper's section 5: with
    ``W_u = (YᵀC_uY + reg I)⁻¹``, the score is ``sum_j c_uj s_ij`` over the
    history, ``s_ij = y_iᵀ W_u y_j`` (columns ``confidence`` and
    ``similarity``). A known user's fitted vector is not exactly that solve
    (CG steps, and the items were updated after it); the difference is the
    term ``residual``, so the parts always sum to the reported score.

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
        # the penalty used (``reg`` resolved); artifacts saved before ``reg="auto"`` have none
        "reg_": Number(low=0, optional=True),
    }

    def __init__(
        self,
        n_factors: int = 16,
        reg: float | Literal["auto"] = "auto",
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
        check_float_or_auto(name, "reg", self.reg, low=0.0)
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
        check_bool(name, "use_cg", self.use_cg)
        check_seed(name, "seed", self.seed)
        if self.num_threads is not None:
            check_int(name, "num_threads", self.num_threads, low=1)
        check_bool(name, "show_progress", self.show_progress, optional=True)

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
        return conf.astype(np.float32, copy=False)

    # -- fit ---------------------------------------------------------------------------------

    def _implicit_model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        with limit_threads(1, blas=True):  # implicit warns about threaded BLAS once, on construction
            return AlternatingLeastSquares(
                factors=int(self.n_factors),
                regularization=self._penalty(),
                alpha=1.0,  # confidences are passed in already
                dtype=np.float32,
                use_cg=bool(self.use_cg),
                iterations=int(self.n_iterations),
                num_threads=0 if self.num_threads is None else int(self.num_threads),
                random_state=int(self.seed),
            )

    def _fit(self, data: Interactions) -> None:
        from recsys._utils.progress import progress_enabled
        self._interaction_values(data, "fit")  # checks the values
        # the data's own cached matrix (read-only, canonical): no copy of the interactions beyond the confidences
        raw = data.matrix("csr", self.values)
        self.user_items_ = raw
        self.idf_ = idf_of(raw)
        self.mean_length_ = mean_length_of(raw)
        conf = self._confidence(raw)
        self.reg_ = auto_reg(conf) if self.reg == "auto" else float(self.reg)
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

    def _penalty(self) -> float:
        """The L2 penalty of the fit, fold-in and partial fits: ``reg_``, or ``reg`` for a model saved
        before ``reg="auto"`` (no ``reg_``: its state is left as it was, so it saves again unchanged)."""
        reg = getattr(self, "reg_", None)
        return float(self.reg if reg is None else reg)

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
        super()._store(matrix)

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

    def _history_values(self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None) -> sp.csr_matrix:
        """A folded-in history's row of stored values: 1 per item, or its ratings with ``values="rating"``."""
        row = self._history_row(item_idx, ratings, "ALS")
        if self.values != "rating":
            row.data[:] = 1.0
        return row

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        return self._solve_users(self._history_values(item_idx, ratings))[0]

    # -- explanations ------------------------------------------------------------------------

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        return self._explain_solve(self.user_items_[user_idx], self.user_factors_[user_idx], item_idx)

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        row = self._history_values(item_idx, ratings)
        return self._explain_solve(row, self._solve_users(row)[0], target)

    def _explain_solve(self, row: sp.csr_matrix, vector: NDArray[np.float32], target: int) -> Explanation:
        """Hu, Koren & Volinsky's decomposition of ``y_i · x_u`` through the user's least-squares system.

        With ``W_u = (YᵀC_uY + reg I)⁻¹`` the exact user vector is
        ``x_u = W_u Yᵀ C_u p_u = sum_j c_uj W_u y_j`` (``p_uj = 1`` on the
        history), so ``y_i · x_u = sum_j c_uj s_ij`` with the weighted
        similarity ``s_ij = y_iᵀ W_u y_j``. The stored vector of a known user
        is the fit's (CG steps, solved before the last item sweep), not
        exactly this solve: the difference is the term ``residual``.
        """
        conf = self._confidence(row)  # the confidences the fit and fold-in solve with
        idx = conf.indices.astype(np.int64)
        c = conf.data.astype(np.float64)
        y = np.asarray(self.item_factors_, dtype=np.float64)
        yj = y[idx]
        a = y.T @ y + (yj.T * (c - 1.0)) @ yj + self._penalty() * np.eye(y.shape[1])
        weighted = np.linalg.solve(a, y[target])  # W_u y_i (W_u is symmetric)
        sim = yj @ weighted
        part = c * sim
        score = float(np.asarray(vector, dtype=np.float64) @ y[target])  # what recommend and score report
        gap = score - float(part.sum())
        # the fold-in's vector is this very solve (in float32): only a fitted vector leaves a real residual
        terms = {"residual": gap} if abs(gap) > 1e-6 * max(1.0, abs(score)) else {}
        return Explanation("item", idx, part, score, terms=terms, columns={"confidence": c, "similarity": sim})

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


__all__ = ["ALS", "auto_reg", "top_singular_value"]
