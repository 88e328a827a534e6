"""SparseEASE: EASE restricted to each item's strongest co-occurring items, for catalogues beyond dense EASE."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import NDArray

from recsys._state_spec import Number, Sparse, Spec
from recsys._utils.blocks import map_blocks
from recsys._utils.params import check_choice, check_float_or_auto, check_int
from recsys._utils.progress import progress
from recsys._utils.threads import torch_threads
from recsys._utils.topk import nonzero2d
from recsys.data import Interactions
from recsys.errors import ParameterError, RecsysError
from recsys.models._similarity import sparse_product
from recsys.models.base import Recommender
from recsys.models.ease import ItemWeightsExplanations, _gram, auto_reg

Selection = Literal["cooccurrence", "cosine"]

# One dense block of Gram rows (neighbour search) or of stacked m x m systems: about this many float32 entries.
_BLOCK_ENTRIES = 1 << 24


def top_m(d: NDArray[np.float32], m: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The ``m`` largest entries of every row of ``d``, ties to the lower column, in column order.

    Returns the columns and the values, each of shape ``(n_rows, m)``. ``m`` must
    be at most ``d.shape[1]``; entries equal to ``-inf`` are only taken when a
    row has fewer than ``m`` others.

    Examples
    --------
    >>> d = np.array([[5, 1, 3, 3], [0, 2, 0, 0]], dtype=np.float32)
    >>> cols, vals = top_m(d, 2)
    >>> cols.tolist(), vals.tolist()
    ([[0, 2], [0, 1]], [[5.0, 3.0], [0.0, 2.0]])
    """
    n_rows, n_cols = d.shape
    if m == 0:
        return np.empty((n_rows, 0), np.int32), np.empty((n_rows, 0), np.float32)
    t = np.partition(d, n_cols - m, axis=1)[:, n_cols - m][:, None]  # the m-th largest of each row
    keep = d > t
    room = m - keep.sum(axis=1)
    ties = d == t
    n_ties = ties.sum(axis=1)
    fits = n_ties <= room  # always true when ties cannot overflow, i.e. n_ties == room
    keep[fits] |= ties[fits]
    over = np.flatnonzero(~fits)
    if len(over):  # rows with more ties at the m-th value than room: the lowest columns win
        sub = ties[over]
        keep[over] |= sub & (np.cumsum(sub, axis=1, dtype=np.int32) <= room[over, None])
    rows, cols = nonzero2d(keep)  # row-major: each row's columns ascending
    return cols.astype(np.int32).reshape(n_rows, m), d[rows, cols].reshape(n_rows, m)


class SparseEASE(ItemWeightsExplanations, Recommender):
    """EASE with each item's weights restricted to its ``n_neighbours`` strongest co-occurring items.

    Exact EASE (:class:`~recsys.models.EASE`) solves, for every item ``j``, the
    ridge regression of column ``j`` of ``X`` on all other columns; it does so
    for all items at once through one dense ``n_items x n_items`` inverse,
    which stops being possible around 20,000-30,000 items. SparseEASE keeps
    the same per-item regression but only on the neighbourhood ``N(j)``: the
    ``n_neighbours`` items with the largest co-occurrence ``G[j, i]`` with
    ``j`` (``G = X^T X``, ties to the lower index, ``i != j``), and solves

    ``(G[N, N] + reg I) b_j = G[N, j]``,  ``B[N(j), j] = b_j``,

    a sparse ``B`` with ``n_neighbours`` weights per item column. A user is
    scored by ``x_u B`` as in EASE. With ``n_neighbours >= n_items - 1`` every
    other item is a neighbour and ``B`` is exact EASE's ``-P_ij / P_jj``
    (``P = (G + reg I)^-1``): EASE's diagonal-constrained objective separates
    into exactly these per-column regressions.

    Parameters
    ----------
    n_neighbours : int >= 1, default 256
        ``m``, the neighbourhood size of every item (capped at ``n_items - 1``).
    reg : float > 0 or "auto", default "auto"
        L2 regularisation (lambda) of every regression, as EASE's ``reg``;
        ``"auto"`` is EASE's rule (:func:`recsys.models.ease.auto_reg`) on the
        same Gram diagonal, so both models regularise a data set alike. The
        value used is ``reg_``.
    selection : {"cooccurrence", "cosine"}, default "cooccurrence"
        How neighbours are ranked: by the co-occurrence ``G[j, i]``, or by the
        cosine ``G[j, i] / sqrt(G[i, i] G[j, j])`` (the systems are the same
        either way). Co-occurrence neighbourhoods are mostly the popular items,
        so their union stays small and one dense ``G[U, U]`` serves every item;
        cosine neighbourhoods spread over the whole catalogue, which on a large
        catalogue means one group, and one pass over ``X``, per
        ``max_dense_items`` of union; on the validation searches of
        ``benchmarks/results/ease_scale.md`` cosine was no more accurate.
    max_dense_items : int >= 2, default 16384
        Largest set of items whose Gram matrix ``G[U, U]`` is held dense at
        once (``4 * max_dense_items**2`` bytes: 1 GiB at the default). The
        systems of a group of items are gathered from the Gram matrix of the
        union ``U`` of their neighbourhoods; the items are split into as many
        groups as needed to keep every union within this size (each group one
        more pass over ``X``). Must be at least ``n_neighbours + 1`` (checked
        at fit, with ``n_neighbours`` capped at ``n_items - 1``).

    Notes
    -----
    Memory (float32), for ``n`` items, ``m`` neighbours and ``nnz`` interactions:
    the interactions twice (CSR and its transpose, ``16 nnz`` bytes), the
    neighbour lists and the weights (``16 n m`` bytes), one dense block of Gram
    rows at a time per block thread (about 64 MiB each), one dense ``G[U, U]``
    (at most ``4 max_dense_items**2`` bytes) and one batch of stacked systems
    (``O(batch m^2)``, about 64 MiB). Nothing is ``O(n^2)`` once ``n`` exceeds
    ``max_dense_items``. Measured with the defaults on synthetic data
    (``benchmarks/results/ease_scale.md``): at ML-20M size (26,744 items,
    20M interactions) the union held 2,230 items and the fit peaked at 1.9 GiB
    of process RSS, where exact EASE would need 5.6 GiB; at ML-25M size (59,047
    items, 25M interactions) 4,012 items and 2.2 GiB (exact EASE: 26.2 GiB).

    Time: the Gram rows cost what ItemKNN's similarity pass costs (a sparse
    ``X^T X`` in row blocks, about ``sum_u |x_u|^2`` multiply-adds), plus one
    ``X[:, U]^T X[:, U]`` product per group, plus ``n m^3 / 3`` flops of batched
    Cholesky factorisations (the dominant term for large ``m``: doubling
    ``n_neighbours`` costs about 8x in the solves).

    Fold-in (:meth:`recommend_history`) is ``x_history @ B``, exact for a new
    user; :meth:`similar_items` ranks the items ``j`` whose neighbourhood holds
    ``i`` by ``B_ij`` (others are never returned).

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = SparseEASE(n_neighbours=8, reg=10.0).fit(tiny_interactions())
    >>> items, scores = model.recommend_one(0, k=3)
    >>> [int(i) % 2 for i in items]
    [0, 0, 0]
    >>> int(model.weights_.getnnz(axis=0).max())  # at most n_neighbours weights per item
    8
    """

    _state_spec: ClassVar[dict[str, Spec]] = {
        "user_items_": Sparse(shape=("n_users", "n_items")),
        "weights_": Sparse(shape=("n_items", "n_items")),
        # the lambda used (``reg`` resolved); artifacts saved before ``reg="auto"`` have none
        "reg_": Number(low=0, optional=True),
    }

    # scoring is sparse products and top-k selections (GIL-free, single-threaded kernels)
    _threaded_blocks: ClassVar[bool] = True

    def __init__(
        self, n_neighbours: int = 256, reg: float | Literal["auto"] = "auto", selection: Selection = "cooccurrence", max_dense_items: int = 16_384
    ) -> None:
        self.n_neighbours = n_neighbours
        self.reg = reg
        self.selection = selection
        self.max_dense_items = max_dense_items

    def _validate_params(self) -> None:
        check_int("SparseEASE", "n_neighbours", self.n_neighbours, low=1)
        check_float_or_auto("SparseEASE", "reg", self.reg, low=0.0, low_open=True)
        check_choice("SparseEASE", "selection", self.selection, ("cooccurrence", "cosine"))
        check_int("SparseEASE", "max_dense_items", self.max_dense_items, low=2)

    def _fit(self, data: Interactions) -> None:
        x = sp.csr_matrix(data.matrix("csr", "weight"), dtype=np.float32, copy=True)
        x.sum_duplicates()
        n = x.shape[1]
        m = min(self.n_neighbours, n - 1)
        if self.max_dense_items < m + 1:
            raise ParameterError(
                f"The 'max_dense_items' parameter of SparseEASE must be an int >= {m + 1} (n_neighbours + 1, "
                f"n_neighbours={self.n_neighbours} capped at n_items - 1 = {n - 1}). Got {self.max_dense_items!r} instead."
            )
        cols, rhs = neighbours(x, m, self.selection)
        # x has no duplicates, so its squared entries sum to the Gram diagonal's: EASE's rule
        self.reg_ = auto_reg(np.square(x.data)) if self.reg == "auto" else float(self.reg)
        w = np.zeros((n, m), dtype=np.float32)
        for items, union in _groups(cols, self.max_dense_items):
            g = _gram(x[:, union])
            local = np.searchsorted(union, cols[items]).astype(np.int64)
            w[items] = _solve(g, local, rhs[items], self.reg_)
            del g
        # column j of B holds the weights of its neighbours: a CSC matrix, stored as CSR (rows are what scoring reads)
        b = sp.csc_matrix((w.ravel(), cols.ravel(), np.arange(n + 1, dtype=np.int64) * m), shape=(n, n))
        b = b.tocsr()
        b.eliminate_zeros()
        b.sort_indices()
        self.user_items_ = x
        self.weights_ = b

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        w = self.weights_ if item_idx is None else self.weights_[:, item_idx].tocsr()
        return np.asarray(sparse_product(self.user_items_[user_idx], w).toarray(), dtype=np.float32)

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        x = np.bincount(item_idx, minlength=self.n_items_).astype(np.float32)
        nz = np.flatnonzero(x)
        return np.asarray(x[nz] @ self.weights_[nz], dtype=np.float32).ravel()

    def _weights_to(self, target: int) -> NDArray[np.float64]:
        # 0 outside the target's neighbourhood: those history items contribute nothing
        return np.asarray(self.weights_[:, [target]].toarray(), dtype=np.float64).ravel()

    def _similar_items(self, item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        # Only items whose neighbourhood holds the item have a weight; the rest are never similar.
        sub = self.weights_[item_idx].tocoo()
        out = np.full(sub.shape, -np.inf, dtype=np.float32)
        out[sub.row, sub.col] = sub.data
        return out


def neighbours(
    x: sp.csr_matrix, m: int, selection: Selection = "cooccurrence"
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Every item's ``m`` strongest co-occurring items ``i != j`` (ties to the lower ``i``) and ``G[j, N(j)]``.

    ``selection="cooccurrence"`` ranks the other items by ``G[j, i]``
    (``G = X^T X``); ``"cosine"`` by ``G[j, i] / sqrt(G[i, i] G[j, j])``, which
    favours items that co-occur with ``j`` more than their popularity alone
    explains. ``G`` is computed in blocks of rows (one dense block of about
    ``_BLOCK_ENTRIES`` entries per block thread), never whole. Returns the
    neighbour indices (``n_items x m``, ascending in each row) and the
    co-occurrences ``G[j, N(j)]``.

    Examples
    --------
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float32))
    >>> cols, vals = neighbours(x, 1)
    >>> cols.ravel().tolist(), vals.ravel().tolist()
    ([1, 0, 1], [2.0, 2.0, 2.0])
    """
    n = x.shape[1]
    xt = x.T.tocsr()
    step = max(1, _BLOCK_ENTRIES // max(1, n))
    starts = range(0, n, step)
    sq = np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel()
    inv_norm = np.where(sq > 0, 1.0 / np.sqrt(np.maximum(sq, 1e-300)), 0.0).astype(np.float32)

    def one(start: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        stop = min(n, start + step)
        d = sparse_product(xt[start:stop], x).toarray()
        rank = d * inv_norm[None, :] if selection == "cosine" else d  # the row's own norm ranks nothing
        rank[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # an item is not its own neighbour
        cols, vals = top_m(rank, m)
        if selection == "cosine":
            vals = np.take_along_axis(d, cols.astype(np.int64), axis=1)
        return cols, vals

    parts = list(progress(map_blocks(one, starts), desc="SparseEASE neighbours", total=len(starts)))
    return np.concatenate([c for c, _ in parts]), np.concatenate([v for _, v in parts])


def _groups(cols: NDArray[np.int32], max_items: int) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Groups of items whose neighbourhoods' union ``U`` (sorted) has at most ``max_items`` items: (items, U).

    One group when every neighbourhood fits together (the common case: the
    neighbours are mostly the popular items); otherwise items are taken in the
    order of their neighbourhoods' smallest index so that consecutive items share
    neighbours, and a group is closed when the next item would overflow it.
    """
    n = len(cols)
    union = np.unique(cols)
    if len(union) <= max_items:
        yield np.arange(n, dtype=np.int64), union.astype(np.int64)
        return
    order = np.lexsort((np.arange(n), cols[:, :1].ravel() if cols.shape[1] else np.zeros(n)))
    mask = np.zeros(n, dtype=bool)
    size = 0
    members: list[int] = []
    for j in order.tolist():
        new = np.unique(cols[j][~mask[cols[j]]])
        if size + len(new) > max_items and members:
            yield np.asarray(members, dtype=np.int64), np.flatnonzero(mask).astype(np.int64)
            mask[:] = False
            members, size = [], 0
            new = cols[j]
        mask[new] = True
        size += len(new)
        members.append(j)
    if members:
        yield np.asarray(members, dtype=np.int64), np.flatnonzero(mask).astype(np.int64)


def _solve(g: NDArray[np.float32], local: NDArray[np.int64], rhs: NDArray[np.float32], reg: float) -> NDArray[np.float32]:
    """``(g[N, N] + reg I)^-1 g[N, j]`` for every row ``N`` of ``local`` (right-hand sides ``rhs``), in batches.

    Batched Cholesky in float32 (torch); a system whose float32 factorisation
    fails is solved again in float64.
    """
    n, m = local.shape
    out = np.zeros((n, m), dtype=np.float32)
    if m == 0 or n == 0:
        return out
    batch = max(1, _BLOCK_ENTRIES // (m * m))
    eye = torch.eye(m, dtype=torch.float32) * reg
    gt = torch.from_numpy(g)

    def one(s: int) -> None:
        idx = torch.from_numpy(local[s : s + batch])
        a = gt[idx[:, :, None], idx[:, None, :]]
        a += eye
        r = torch.from_numpy(rhs[s : s + batch])[:, :, None]
        chol, info = torch.linalg.cholesky_ex(a)
        sol = torch.cholesky_solve(r, chol)[:, :, 0]
        bad = torch.nonzero(info).ravel()
        if len(bad):  # float32 rounding broke positive definiteness: those systems again in float64
            chol64, info64 = torch.linalg.cholesky_ex(a[bad].double())
            if bool(info64.any()):
                raise RecsysError(f"SparseEASE: G[N, N] + reg I is not positive definite for some item; raise reg (now {reg})")
            sol[bad] = torch.cholesky_solve(r[bad].double(), chol64)[:, :, 0].float()
        out[s : s + batch] = sol.numpy()

    # Many small factorisations: one thread each (torch's own threads oversubscribe a shared machine on
    # 256 x 256 systems), batches side by side on the block threads.
    starts = range(0, n, batch)
    with torch_threads(1):
        for _ in progress(map_blocks(one, starts), desc="SparseEASE solve", total=len(starts)):
            pass
    return out
