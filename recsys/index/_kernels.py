"""Top-k kernels behind :class:`recsys.index.ItemIndex`: blocked exact scoring and pair scoring.

Everything here works in a "search space": queries ``Q`` and items ``X`` already
transformed so that a larger ``Q @ X.T`` is better (see ``_index.py``). Positions
are row numbers of ``X`` (or of ``X[cols]`` when a column subset is given).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faiss as _faiss
import numpy as np
from numpy.typing import NDArray

from recsys._utils.topk import topk

# Memory bounds: at most this many float32 scores (64 MiB) in one block, and this many
# items scored against a query block at once (a block of X stays in cache-friendly sizes).
BLOCK_FLOATS = 1 << 24
ITEM_BLOCK = 32768
# Gathered float32 values (pairs x dim) in one re-scoring step.
GATHER_FLOATS = 1 << 23
# Candidate pairs ranked in one lexsort.
PAIR_BLOCK = 1 << 22
# Query blocks with at most this many scores (4 MiB) are selected by numpy, not faiss' heaps:
# the heaps open an OpenMP region, and right after a threaded OpenBLAS product its threads still
# spin, so on a 2-core machine one recommend_one waited 4-30 ms for a core (same results either way).
NUMPY_SELECT_FLOATS = 1 << 20

# faiss' partial type stubs lack most of what is used here.
faiss: Any = _faiss
F32 = np.float32
I64 = np.int64
ScoreFn = Callable[[NDArray[np.float32], NDArray[np.float32]], NDArray[np.float32]]


def empty_result(n_queries: int, k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Ids filled with -1 and scores with -inf: the padding of rows that cannot be filled."""
    return np.full((n_queries, k), -1, dtype=I64), np.full((n_queries, k), -np.inf, dtype=F32)


def sort_rows(ids: NDArray[np.int64], scores: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Order each row by score (descending), then id (ascending); padding (-inf) goes last."""
    if ids.size == 0:
        return ids, scores
    order = np.lexsort((ids, -scores), axis=-1)
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)


def exact_topk(
    Q: NDArray[np.float32],
    X: NDArray[np.float32],
    k: int,
    *,
    excl_indptr: NDArray[np.int64] | None = None,
    excl_pos: NDArray[np.int64] | None = None,
    cols: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Exact top-``k`` of ``Q @ W.T`` per row, where ``W = X`` or ``X[cols]``.

    Queries are processed in blocks and items in blocks: each score block is a BLAS
    ``sgemm``, excluded positions of that block are set to -inf and the block is pushed
    into faiss' per-row heaps. Exclusion is therefore exact for any history length,
    with no over-fetch. Ties keep the lower position: blocks arrive in increasing
    position order and faiss' heap only admits strictly better values, and positions
    are handed to the heap reversed (``n - pos``) because among equal values the heap
    evicts the smaller id first.

    Returns ``(pos, scores)`` of shape ``(len(Q), k)``; ``pos`` are positions in ``W``,
    best first, padded with -1 / -inf when fewer than ``k`` positions are allowed.
    ``excl_indptr`` / ``excl_pos`` are a CSR (one row per query) of positions in ``W``.
    """
    nq = Q.shape[0]
    n = X.shape[0] if cols is None else cols.shape[0]
    out_pos, out_sc = empty_result(nq, k)
    if nq == 0 or n == 0:
        return out_pos, out_sc
    kk = min(k, n)
    ib = min(n, ITEM_BLOCK)
    qb = int(max(1, min(nq, BLOCK_FLOATS // max(ib, kk))))
    rev = n - np.arange(n, dtype=I64)  # id handed to the heap for position p is n - p
    starts = np.arange(0, n + ib, ib, dtype=I64)
    for s in range(0, nq, qb):
        e = min(nq, s + qb)
        m = e - s
        qc = np.ascontiguousarray(Q[s:e])
        if m * n <= NUMPY_SELECT_FLOATS:
            out_pos[s:e, :kk], out_sc[s:e, :kk] = _numpy_block_topk(
                qc, X, kk, ib, excl_indptr[s : e + 1] if excl_indptr is not None else None, excl_pos, cols
            )
            continue
        D = np.empty((m, kk), dtype=F32)
        ids = np.empty((m, kk), dtype=I64)
        heap = faiss.float_minheap_array_t()
        heap.k = kk
        heap.nh = m
        heap.val = faiss.swig_ptr(D)
        heap.ids = faiss.swig_ptr(ids)
        heap.heapify()
        pr: NDArray[np.int64] | None = None
        if excl_indptr is not None and excl_pos is not None:
            a, b = int(excl_indptr[s]), int(excl_indptr[e])
            if b > a:
                pp = excl_pos[a:b]
                rr = np.repeat(np.arange(m, dtype=I64), np.diff(excl_indptr[s : e + 1]))
                order = np.argsort(pp, kind="stable")
                pp, rr = pp[order], rr[order]
                bounds = np.searchsorted(pp, starts)
                pr = rr
        for bi, j in enumerate(range(0, n, ib)):
            je = min(n, j + ib)
            xb = X[j:je] if cols is None else X[cols[j:je]]
            S = qc @ xb.T
            if pr is not None:
                lo, hi = bounds[bi], bounds[bi + 1]
                if hi > lo:
                    S[pr[lo:hi], pp[lo:hi] - j] = -np.inf
            heap.addn_with_ids(je - j, faiss.swig_ptr(S), faiss.swig_ptr(rev[j:je]), 0)
        heap.reorder()
        ok = ids >= 0
        out_pos[s:e, :kk] = np.where(ok, n - ids, -1)
        out_sc[s:e, :kk] = np.where(ok, D, -np.inf)
    return out_pos, out_sc


def _numpy_block_topk(
    qc: NDArray[np.float32],
    X: NDArray[np.float32],
    kk: int,
    ib: int,
    indptr: NDArray[np.int64] | None,
    excl_pos: NDArray[np.int64] | None,
    cols: NDArray[np.int64] | None,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """:func:`exact_topk` of one small query block, selected by numpy (no OpenMP region).

    The scores are float32 products item block by item block as in the heap path
    (one query: numpy's einsum instead of BLAS), and :func:`~recsys._utils.topk.topk`
    keeps the lower position on ties and never returns -inf, so both paths select
    the same positions up to float32 rounding, which the caller's float64 re-scoring
    of ``k + RESCORE_MARGIN`` candidates absorbs.
    """
    m = qc.shape[0]
    n = X.shape[0] if cols is None else cols.shape[0]
    S = np.empty((m, n), dtype=F32)
    for j in range(0, n, ib):
        je = min(n, j + ib)
        xb = X[j:je] if cols is None else X[cols[j:je]]
        if m == 1:
            # One query: numpy's own loop, not BLAS. A threaded OpenBLAS gemv (e.g. 1 x 1024 by
            # 1682 items) waits for its worker threads, 20 ms p50 when other processes hold the
            # cores, against 0.4 ms here; the float64 re-scoring absorbs the rounding difference.
            S[:, j:je] = np.einsum("ij,kj->ik", qc, xb)
        else:
            S[:, j:je] = qc @ xb.T
    if indptr is not None and excl_pos is not None and indptr[-1] > indptr[0]:
        a, b = int(indptr[0]), int(indptr[-1])
        rows = np.repeat(np.arange(m, dtype=I64), np.diff(indptr))
        S[rows, excl_pos[a:b]] = -np.inf
    return topk(S, kk)


def score_pairs(
    Q: NDArray[np.float32], X: NDArray[np.float32], rows: NDArray[np.int64], items: NDArray[np.int64], fn: ScoreFn
) -> NDArray[np.float32]:
    """``fn(Q[rows], X[items])`` computed in gathered chunks that stay within GATHER_FLOATS."""
    out = np.empty(rows.shape[0], dtype=F32)
    step = max(1, GATHER_FLOATS // max(1, X.shape[1]))
    for s in range(0, rows.shape[0], step):
        e = min(rows.shape[0], s + step)
        out[s:e] = fn(Q[rows[s:e]], X[items[s:e]])
    return out


def pairs_topk(
    indptr: NDArray[np.int64],
    items: NDArray[np.int64],
    scores: NDArray[np.float32],
    k: int,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Per-row top-``k`` of scored (row, item) pairs given as a CSR (``indptr``, ``items``, ``scores``).

    Rows are ranked by score descending then item ascending; rows with fewer than ``k``
    pairs are padded with -1 / -inf. Rows are handled in groups of at most PAIR_BLOCK pairs.
    """
    nq = indptr.shape[0] - 1
    out_ids, out_sc = empty_result(nq, k)
    s = 0
    while s < nq:
        # Largest e with indptr[e] - indptr[s] <= PAIR_BLOCK (at least one row).
        e = int(np.searchsorted(indptr, indptr[s] + PAIR_BLOCK, side="right")) - 1
        e = min(nq, max(e, s + 1))
        a, b = int(indptr[s]), int(indptr[e])
        if b > a:
            counts = np.diff(indptr[s : e + 1])
            rows = np.repeat(np.arange(s, e, dtype=I64), counts)
            it, sc = items[a:b], scores[a:b]
            order = np.lexsort((it, -sc, rows))
            rows, it, sc = rows[order], it[order], sc[order]
            rank = np.arange(a, b, dtype=I64) - indptr[rows]
            keep = rank < k
            out_ids[rows[keep], rank[keep]] = it[keep]
            out_sc[rows[keep], rank[keep]] = sc[keep]
        s = e
    return out_ids, out_sc
