"""Top-k selection with deterministic ties (lower column first) and a fast 2-d nonzero, shared by models and metrics."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def topk(scores: NDArray[np.float32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The ``k`` best columns of each row, best first; ties go to the lower column.

    Entries equal to ``-inf`` are never returned: such slots are padded with
    column ``-1`` and score ``-inf``.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_cols)
    k : int

    Returns
    -------
    columns : ndarray of int64, shape (n_rows, min(k, n_cols))
    values : ndarray of float32, same shape

    Examples
    --------
    >>> s = np.array([[0.5, 0.9, 0.5, -np.inf], [1, 1, 1, 1]], dtype=np.float32)
    >>> cols, vals = topk(s, 3)
    >>> cols.tolist()
    [[1, 0, 2], [0, 1, 2]]
    >>> topk(s, 4)[0][0].tolist()
    [1, 0, 2, -1]
    """
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    if n_rows == 0 or kk == 0:
        return np.empty((n_rows, kk), np.int64), np.empty((n_rows, kk), np.float32)
    if kk < n_cols:
        # Candidates: every entry >= a lower bound of the kk-th largest value of its row (the bound
        # keeps all ties at the boundary, so the selection below is exact).
        low = _kth_lower_bound(scores, kk)
        mask = scores >= low[:, None]
        if np.isneginf(low).any():
            mask &= scores > -np.inf
    else:
        mask = scores > -np.inf
    # row-major, columns ascending within a row (flat indices: several times faster than 2-D nonzero)
    rows, cols = np.divmod(np.flatnonzero(mask), n_cols)
    vals = scores[rows, cols]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    pos = np.arange(len(rows)) - starts[rows]
    keep = pos < kk
    out_c = np.full((n_rows, kk), -1, dtype=np.int64)
    out_v = np.full((n_rows, kk), -np.inf, dtype=np.float32)
    out_c[rows[keep], pos[keep]] = cols[keep]
    out_v[rows[keep], pos[keep]] = vals[keep]
    return out_c, out_v


# Rows sampled at this stride for the bound; the candidates are then about this many times k.
_STRIDE = 4
# Chunks per k of the chunk-maxima bound (see _kth_lower_bound).
_CHUNKS_PER_K = 32


def kth_largest(scores: NDArray[np.float32], k: int, *, positive_only: bool = False) -> NDArray[np.float32]:
    """Per row, its ``k``-th largest entry (``-inf`` when ``k`` exceeds the row length).

    Narrow rows are partitioned; wide rows go through :func:`topk`'s bounded
    selection (numpy's partition of a whole wide row is slower, and much
    slower on rows of equal values). With ``positive_only`` the caller keeps
    only positive entries: the result is exact when positive, and otherwise
    some value ``<= 0`` (the non-positive entries of narrow rows are made
    distinct before the partition, which the many zeros of sparse scores
    would otherwise slow several times).

    Examples
    --------
    >>> kth_largest(np.array([[3, 1, 2, 5], [0, 0, 1, 0]], dtype=np.float32), 2).tolist()
    [3.0, 0.0]
    >>> kth_largest(np.ones((1, 2), dtype=np.float32), 3).tolist()
    [-inf]
    """
    n_rows, n_cols = scores.shape
    if k > n_cols:
        return np.full(n_rows, -np.inf, dtype=np.float32)
    if not _narrow(n_cols, k):
        return topk(scores, k)[1][:, -1]
    if positive_only:
        scores = np.where(scores > 0, scores, -np.arange(1, n_cols + 1, dtype=np.float32)[None, :])
    return _kth_lower_bound(scores, k)  # exact on narrow rows


def _narrow(n_cols: int, k: int) -> bool:
    """Rows short enough that :func:`_kth_lower_bound` partitions them whole (its bound is then exact)."""
    return -(-n_cols // _STRIDE) < 4 * k


def _kth_lower_bound(scores: NDArray[np.float32], k: int) -> NDArray[np.float32]:
    """Per row, a value <= its ``k``-th largest entry, close to it for unordered rows.

    Wide rows: the columns are cut into ``m`` disjoint interleaved chunks (column ``c`` in chunk
    ``c % m``) and the ``k``-th largest of the chunk maxima is the bound (``k`` distinct entries reach
    it). The maxima take one pass; partitioning them instead of the row matters because numpy's
    partition is about 10x slower on rows of equal values, the usual shape of sparse scores (mostly
    zeros: ItemKNN at ML-20M size). Interleaving keeps the bound tight when the largest entries sit in
    adjacent columns. Narrower rows partition every ``_STRIDE``-th column (a lower bound for the same
    reason), short rows their own ``k``-th.
    """
    n_rows, n_cols = scores.shape
    m = _CHUNKS_PER_K * k
    if n_cols >= 4 * m:
        width = n_cols // m
        body = scores[:, : width * m].reshape(n_rows, width, m).max(axis=1)
        maxima = np.concatenate([body, scores[:, width * m :]], axis=1)  # the rest: one-column chunks
        return np.partition(maxima, maxima.shape[1] - k, axis=1)[:, maxima.shape[1] - k]
    if _narrow(n_cols, k):
        return np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]
    m = -(-n_cols // _STRIDE)
    sample = scores[:, ::_STRIDE]
    return np.partition(sample, m - k, axis=1)[:, m - k]


def nonzero2d(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``np.nonzero`` of a 2-d array (row-major order), through the flat indices: about 10x faster on
    wide rows (numpy's 2-d ``nonzero`` is slow there).

    Examples
    --------
    >>> r, c = nonzero2d(np.array([[False, True, True], [True, False, False]]))
    >>> r.tolist(), c.tolist()
    ([0, 0, 1], [1, 2, 0])
    """
    flat = np.flatnonzero(mask)
    rows, cols = np.divmod(flat, max(mask.shape[1], 1))
    return rows.astype(np.int64, copy=False), cols.astype(np.int64, copy=False)

