"""Top-k selection with deterministic ties (lower column first), shared by models and metrics."""

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
        # the kk-th largest value per row (values only: no index array, no negated copy)
        kth = np.partition(scores, n_cols - kk, axis=1)[:, n_cols - kk]
        mask = scores >= kth[:, None]
    else:
        mask = np.ones(scores.shape, dtype=bool)
    mask &= scores > -np.inf
    rows, cols = np.nonzero(mask)  # row-major: columns ascending within a row
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
