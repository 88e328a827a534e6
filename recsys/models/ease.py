"""EASE: embarrassingly shallow autoencoder (Steck 2019), a closed-form item-item model."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import lapack

from recsys._state_spec import Array, Number, Sparse, Spec
from recsys._utils.params import check_float_or_auto, check_int
from recsys._utils.progress import progress
from recsys.data import Interactions
from recsys.errors import ParameterError, RecsysError
from recsys.models._explain import Explanation, linear_explanation
from recsys.models.base import Recommender

# Columns of the Gram matrix are built in blocks of about this many entries.
_BLOCK_ENTRIES = 1 << 24


def ease_bytes(n_items: int) -> int:
    """Estimated peak bytes of an EASE fit: two dense float32 item x item matrices
    (the Cholesky factor and the inverse) plus one column block of the Gram product."""
    return 8 * n_items * n_items + 16 * min(n_items * n_items, _BLOCK_ENTRIES)


def auto_reg(gram_diagonal: NDArray[np.floating[Any]]) -> float:
    """EASE's ``reg="auto"``: ``2 * sqrt(trace(X^T X))``, twice the Frobenius norm of the interaction matrix.

    For binary data ``trace(X^T X)`` is the number of interactions. The factor
    2 was chosen on the validation grids of ``benchmarks/results/ease_reg_rule.md``
    (ML-100K and synthetic sets from 610 x 9,742 to 138,493 x 26,744): within
    0.4% of the best ``reg`` of each set for EASE and SparseEASE.

    >>> auto_reg(np.array([4.0, 0.0, 12.0]))  # 2 * sqrt(16)
    8.0
    """
    total = float(np.asarray(gram_diagonal, dtype=np.float64).sum())
    return 2.0 * float(np.sqrt(total)) if total > 0 else 1.0


class ItemWeightsExplanations:
    """``explain`` of a model scoring ``x_u B`` (EASE, SessionEASE, SparseEASE): history item ``j``
    contributes ``x_uj B[j, i]`` (columns ``value`` = ``x_uj``, ``weight`` = ``B[j, i]``)."""

    user_items_: sp.csr_matrix

    def _weights_to(self, target: int) -> NDArray[np.float64]:
        """Column ``target`` of ``B`` (dense): every item's weight in predicting ``target``."""
        raise NotImplementedError

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        row = self.user_items_[user_idx]
        return linear_explanation(row.indices, row.data, self._weights_to(item_idx)[row.indices])

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        # fold-in scores x B with x the history's counts (a repeated item counts twice)
        return linear_explanation(item_idx, np.ones(len(item_idx)), self._weights_to(target)[item_idx])


class EASE(ItemWeightsExplanations, Recommender):
    """Embarrassingly Shallow AutoEncoder: item-item weights in closed form.

    ``B = argmin ||X - X B||^2 + reg ||B||^2`` subject to ``diag(B) = 0``, i.e.
    with ``P = (X^T X + reg I)^-1``, ``B_ij = -P_ij / P_jj`` and ``B_jj = 0``.
    The score of item ``j`` for user ``u`` is ``(x_u B)_j``. The inverse comes
    from a float32 Cholesky factorisation (LAPACK ``potrf``, in place) and
    triangular solves against the identity (``potrs``), so the fit holds two
    dense ``n_items x n_items`` float32 matrices.

    Parameters
    ----------
    reg : float > 0 or "auto", default "auto"
        L2 regularisation (lambda) added to the diagonal of ``X^T X``. The
        best value grows with the data (the Gram matrix does), so the default
        ``"auto"`` sets it to ``2 * sqrt(trace(X^T X))`` (:func:`auto_reg`;
        for binary data twice the square root of the number of interactions):
        within 0.4% of the best value of a validation grid on ML-100K and on
        synthetic data of ML-1M size at three densities, of ml-latest-small's
        shape (610 x 9,742) and of 20,000 x 8,000, where a fixed 300 (the
        default until this version, ML-100K's best) was up to 6.5% below
        (``benchmarks/results/defaults.md``).
        The value used is ``reg_``.
    max_items : int >= 1, default 20000
        Memory guard: a catalogue larger than this raises ParameterError
        before anything is allocated. At 20,000 items the dense matrix is
        1.6 GB of float32 (the fit peaks near 3.3 GB); raise it if the memory
        is there (about ``8 * n_items**2`` bytes).

    Attributes
    ----------
    reg_ : float
        The lambda of the fit (``reg``, or the value ``"auto"`` chose; absent
        on models saved before ``reg="auto"`` became the default).
    weights_ : ndarray of shape (n_items, n_items)
        ``B``, float32.

    Notes
    -----
    Fold-in (:meth:`recommend_history`) is ``x_history @ B``, exact for a new
    user. :meth:`similar_items` ranks items ``j`` by ``B_ij``, the weight of
    item ``i`` in predicting ``j``. :meth:`explain` splits a score into the
    history items' parts ``x_uj B_ji`` (columns ``value`` = ``x_uj`` and
    ``weight`` = ``B_ji``); they sum to the score.

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = EASE(reg=10.0).fit(tiny_interactions())
    >>> items, scores = model.recommend_one(0, k=3)
    >>> [int(i) % 2 for i in items]
    [0, 0, 0]
    """

    _state_spec: ClassVar[dict[str, Spec]] = {
        "user_items_": Sparse(shape=("n_users", "n_items")),
        "weights_": Array(shape=("n_items", "n_items")),
        # the lambda used (``reg`` resolved); artifacts saved before ``reg="auto"`` have none
        "reg_": Number(low=0, optional=True),
    }

    def __init__(self, reg: float | Literal["auto"] = "auto", max_items: int = 20_000) -> None:
        self.reg = reg
        self.max_items = max_items

    def _validate_params(self) -> None:
        check_float_or_auto("EASE", "reg", self.reg, low=0.0, low_open=True)
        check_int("EASE", "max_items", self.max_items, low=1)

    def _fit(self, data: Interactions) -> None:
        n = data.n_items
        if n > self.max_items:
            raise ParameterError(
                f"EASE needs a dense {n:,} x {n:,} item matrix (about {ease_bytes(n) / 2**30:.1f} GiB) but "
                f"max_items={self.max_items:,}: raise max_items if that much memory is free, use SparseEASE "
                "(EASE on each item's strongest neighbours, memory far below the dense matrix), or drop rare "
                "items first (Interactions.filter(min_item=...))"
            )
        x = data.matrix("csr", "weight")
        self.user_items_ = sp.csr_matrix(x, dtype=np.float32, copy=True)
        g = _gram(x)
        self.reg_ = auto_reg(g.diagonal()) if self.reg == "auto" else float(self.reg)
        g[np.diag_indices(n)] += np.float32(self.reg_)
        # g is symmetric, so its Fortran view is the same matrix: LAPACK works in place.
        c, info = lapack.spotrf(g.T, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise RecsysError(f"EASE: X^T X + reg I is not positive definite (LAPACK potrf info={info})")
        # potrs against the identity (BLAS-3 triangular solves) is faster and steadier than potri here.
        p, info = lapack.spotrs(c, np.eye(n, dtype=np.float32, order="F"), lower=False, overwrite_b=True)
        if info != 0:
            raise RecsysError(f"EASE: solving with X^T X + reg I failed (LAPACK potrs info={info})")
        del c, g
        p = np.ascontiguousarray(p.T)  # P is symmetric up to rounding; keep C order for row access
        d = np.diagonal(p).copy()
        p /= -d[None, :]
        p[np.diag_indices(n)] = 0.0
        self.weights_ = np.ascontiguousarray(p, dtype=np.float32)

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        w = self.weights_ if item_idx is None else self.weights_[:, item_idx]
        x = self.user_items_[user_idx]
        return np.asarray(x @ w, dtype=np.float32)

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        x = np.bincount(item_idx, minlength=self.n_items_).astype(np.float32)
        nz = np.flatnonzero(x)
        return np.asarray(x[nz] @ self.weights_[nz], dtype=np.float32)

    def _similar_items(self, item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return np.asarray(self.weights_[item_idx], dtype=np.float32)

    def _weights_to(self, target: int) -> NDArray[np.float64]:
        return np.asarray(self.weights_[:, target], dtype=np.float64)


def _gram(x: sp.csr_matrix) -> NDArray[np.float32]:
    """Dense ``X^T X`` (float32), built in column blocks so no sparse n x n product is held."""
    n = x.shape[1]
    g = np.empty((n, n), dtype=np.float32)
    xt = x.T.tocsr()
    xc = x.tocsc()
    step = max(1, _BLOCK_ENTRIES // max(1, n))
    for s in progress(range(0, n, step), desc="EASE gram", total=(n + step - 1) // step):
        e = min(n, s + step)
        g[:, s:e] = (xt @ xc[:, s:e]).toarray()
    return g
