"""Sparse, blocked k-nearest-neighbour graphs shared by ItemKNN and UserKNN.

A "profile" matrix ``M`` has one row per entity compared (items for ItemKNN,
users for UserKNN) and one column per feature (the other side). The graph
keeps, for every row, its ``k`` most similar OTHER rows:

* similarity ``sim(a, b) = <m_a, m_b> / (|m_a| |m_b| + shrinkage)`` (cosine,
  shrunk towards 0 for pairs with small norms, as in Dacrema et al. 2019);
* only strictly positive similarities are kept (a negative or zero similarity
  is never a neighbour);
* truncation: the ``k`` largest per row; ties at the k-th value go to the
  lower column index, so the graph is deterministic.

Mathematically equal similarities are computed equal (:func:`shrunk_cosine`),
so the tie rule sees the ties: without shrinkage the cosine is
``sqrt(<m_a, m_b>^2 / (|m_a|^2 |m_b|^2))`` in float64, and for integer-valued
profiles (binary or rated interactions, ``weighting='none'``) the dot products
and squared norms are exact integers, so equal ratios give the same correctly
rounded quotient. (Normalising rows first, as before, made two equal cosines
such as ``2/sqrt(4*6)`` and ``2/sqrt(3*8)`` differ by one float32 step and the
higher index won.)

The products ``M[block] @ M.T`` are computed in blocks of rows sized by their
estimated output, so memory is ``O(nnz(M) + n * k)`` plus one block (about
``_BLOCK_ENTRIES`` entries), never a dense ``n x n`` matrix.

Selection computes the exact similarity on few entries: a dense block keeps,
per row, the entries within a relative ``_KEY_MARGIN`` of the row's k-th
largest float32 approximation (:func:`_dense_candidates`), and the exact
float64 cosine then ranks only rows left with more than ``k``; a sparse
block's rows much longer than ``k`` first drop the entries below a bound of
their k-th value (:func:`_select_sparse`). Both are exact: an entry dropped
has ``k`` entries strictly above it. (At 59,047 items the former float64
cosine over every block and sorts of whole rows took a third of the fit.)

Their time is ``sum_f df(f)**2`` multiply-adds (``df(f)`` the rows holding
feature ``f``), which popular features make nearly ``n**2``. The bounded
alternative compares each row with a few candidates only:
:func:`sampled_candidates` finds them over a per-feature sample of at most
``sample`` rows (at most ``nnz * sample`` multiply-adds), and
:func:`candidate_knn_graph` keeps the ``k`` best of them by the exact
similarity, with the rules above.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._utils.blocks import map_blocks
from recsys._utils.progress import progress
from recsys._utils.topk import kth_largest, nonzero2d
from recsys.models._weighting import Weighting

try:  # scipy's sparse kernels, called without their checks and counting pass (see sparse_product)
    from scipy.sparse._sparsetools import csr_matmat as _csr_matmat
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - a scipy that moved them: the public products
    _csr_matmat = None
    _csr_matvec = None

# Entries of one block of the similarity product (dense or sparse): 16 Mi, ~64 MiB of float32.
_BLOCK_ENTRIES = 1 << 24

# Rows of a sparse block with more than this many times k entries are pruned by a bound before sorting.
_HEAVY_ROW = 4

# Relative slack below a row's k-th approximate cosine within which candidates are kept (float32
# keys err by a few 1e-7).
_KEY_MARGIN = 1e-4

# Dense profile entries of one block of :func:`candidate_knn_graph` (4 MiB of float32).
_RERANK_DENSE = 1 << 20


def row_ids(m: sp.csr_matrix) -> NDArray[np.int64]:
    """The row of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))


def centre_rows(m: sp.csr_matrix) -> tuple[sp.csr_matrix, NDArray[np.float64]]:
    """Subtract from every stored entry the mean of the stored entries of its row.

    Returns the centred copy (float32, explicit zeros kept so the sparsity
    pattern is unchanged) and the row means (0 for empty rows).
    """
    counts = np.diff(m.indptr)
    sums = np.bincount(row_ids(m), weights=m.data.astype(np.float64), minlength=m.shape[0])
    means = np.divide(sums, counts, out=np.zeros(m.shape[0]), where=counts > 0)
    out = m.astype(np.float32, copy=True)
    out.data = (m.data - means[row_ids(m)]).astype(np.float32)
    return out, means


def centre_cols(m: sp.csr_matrix) -> tuple[sp.csr_matrix, NDArray[np.float64]]:
    """Subtract from every stored entry the mean of the stored entries of its column."""
    counts = np.bincount(m.indices, minlength=m.shape[1])
    sums = np.bincount(m.indices, weights=m.data.astype(np.float64), minlength=m.shape[1])
    means = np.divide(sums, counts, out=np.zeros(m.shape[1]), where=counts > 0)
    out = m.astype(np.float32, copy=True)
    out.data = (m.data - means[m.indices]).astype(np.float32)
    return out, means


def idf_of(m: sp.csr_matrix) -> NDArray[np.float64]:
    """``log(n_rows / df(f))`` per feature (column), ``df`` the number of rows holding it (0 when none)."""
    df = np.bincount(m.indices, minlength=m.shape[1])
    return np.where(df > 0, np.log(m.shape[0] / np.maximum(df, 1)), 0.0)


def mean_length_of(m: sp.csr_matrix) -> float:
    """Mean over non-empty rows of the row's sum of absolute values (the BM25 average length)."""
    lengths = abs(m).sum(axis=1).A1
    return float(lengths[lengths > 0].mean()) if (lengths > 0).any() else 1.0


def weight_profiles(
    m: sp.csr_matrix,
    weighting: Weighting,
    idf: NDArray[np.float64],
    mean_length: float,
    k1: float = 1.2,
    b: float = 0.75,
) -> sp.csr_matrix:
    """Re-weight profile rows (documents) by their features (terms), as in text retrieval.

    ``tfidf``: ``sign(x) sqrt(|x|) idf``; ``bm25``: ``x (k1 + 1) / (k1 L + |x|) idf`` with
    the row length norm ``L = 1 - b + b |row| / mean_length``. ``idf`` comes from
    :func:`idf_of` on the training profiles (so a feature held by every row weighs 0).

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[1, 1], [1, 0]], dtype=np.float32))
    >>> weight_profiles(m, "tfidf", idf_of(m), 1.5).toarray().round(3).tolist()
    [[0.0, 0.693], [0.0, 0.0]]
    """
    if weighting == "none":
        return sp.csr_matrix(m, dtype=np.float32, copy=True)
    x = m.data.astype(np.float64)
    if weighting == "tfidf":
        data = np.sign(x) * np.sqrt(np.abs(x)) * idf[m.indices]
    else:
        norm = (1.0 - b) + b * abs(m).sum(axis=1).A1 / mean_length
        data = x * (k1 + 1.0) / (k1 * norm[row_ids(m)] + np.abs(x)) * idf[m.indices]
    out = sp.csr_matrix((data.astype(np.float32), m.indices.copy(), m.indptr.copy()), shape=m.shape)
    out.eliminate_zeros()
    return out


def squared_norms(m: sp.csr_matrix) -> NDArray[np.float64]:
    """Each row's sum of squares in float64 (exact for integer-valued rows)."""
    x = m.data.astype(np.float64)
    return np.bincount(row_ids(m), weights=x * x, minlength=m.shape[0]).astype(np.float64)


def shrunk_cosine(
    dots: NDArray[np.floating], sq_a: NDArray[np.float64], sq_b: NDArray[np.float64], shrinkage: float
) -> NDArray[np.float32]:
    """``dots / (sqrt(sq_a sq_b) + shrinkage)`` rounded once to float32; 0 where a norm is 0.

    ``sq_a`` and ``sq_b`` are squared norms broadcasting against ``dots``. Without
    shrinkage the value is ``sign(dot) sqrt(dot^2 / (sq_a sq_b))``: one correctly
    rounded division of exact integers for integer-valued profiles, so
    mathematically equal cosines come out bitwise equal and ties are broken by
    index, never by rounding.

    Examples
    --------
    >>> d = np.array([2.0, 2.0, 3.0], dtype=np.float32)
    >>> v = shrunk_cosine(d, np.array([4.0, 3.0, 6.0]), np.array([6.0, 8.0, 9.0]), 0.0)
    >>> bool(v[0] == v[1]), round(float(v[0]), 6)       # 2/sqrt(24) twice, then 3/sqrt(54)
    (True, 0.408248)
    >>> bool(v[0] == v[2])
    True
    """
    out = np.array(dots, dtype=np.float64)  # a copy, worked on in place (dense blocks are large)
    den = np.asarray(sq_a * sq_b, dtype=np.float64)
    zero = den <= 0
    if shrinkage == 0:
        negative = out < 0
        out *= out
        np.divide(out, den, out=out, where=~zero)
        np.sqrt(out, out=out)
        np.negative(out, out=out, where=negative)
    else:
        np.sqrt(den, out=den)
        den += shrinkage
        np.divide(out, den, out=out, where=~zero)
    out[np.broadcast_to(zero, out.shape)] = 0.0
    return out.astype(np.float32)


def product_bound(a: sp.csr_matrix, b: sp.csr_matrix) -> NDArray[np.float64]:
    """Per row of ``a @ b``, an upper bound of its stored entries: ``min(n_cols, sum of the b rows it touches)``."""
    touched = np.bincount(row_ids(a), weights=np.diff(b.indptr)[a.indices].astype(np.float64), minlength=a.shape[0])
    return np.minimum(touched, b.shape[1])


def sparse_product(a: sp.csr_matrix, b: sp.csr_matrix, max_nnz: int | None = None) -> sp.csr_matrix:
    """``a @ b`` for two CSR matrices, in one pass of scipy's kernel.

    scipy's ``a @ b`` first runs a whole counting pass (as long as a third of the
    product) to size its output; this allocates ``max_nnz`` entries instead (by
    default the sum of :func:`product_bound`, which callers keep small by
    blocking rows of ``a``). The result is the same matrix, entry for entry and
    in the same order (unsorted indices, as scipy's).

    Examples
    --------
    >>> a = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32))
    >>> b = sp.csr_matrix(np.array([[1, 1], [0, 2], [4, 0]], dtype=np.float32))
    >>> sparse_product(a, b).toarray().tolist()
    [[9.0, 1.0], [0.0, 6.0]]
    """
    if _csr_matmat is None or a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        return sp.csr_matrix(a @ b)
    # The kernel writes without bounds checks: never hand it a buffer below the true upper bound.
    bound = int(product_bound(a, b).sum())
    max_nnz = bound if max_nnz is None else max(int(max_nnz), bound)
    n_rows, n_cols = a.shape[0], b.shape[1]
    big = max(max_nnz, a.nnz, b.nnz, n_rows, n_cols, a.shape[1]) >= 2**31 - 1
    idx = np.int64 if big else np.int32
    indptr = np.empty(n_rows + 1, dtype=idx)
    indices = np.empty(max_nnz, dtype=idx)
    data = np.empty(max_nnz, dtype=a.dtype)
    _csr_matmat(
        n_rows, n_cols,
        np.asarray(a.indptr, dtype=idx), np.asarray(a.indices, dtype=idx), a.data,
        np.asarray(b.indptr, dtype=idx), np.asarray(b.indices, dtype=idx), b.data,
        indptr, indices, data,
    )  # fmt: skip
    nnz = int(indptr[-1])
    return sp.csr_matrix((data[:nnz], indices[:nnz], indptr), shape=(n_rows, n_cols), copy=False)


def _blocks(cost: NDArray[np.float64], budget: float) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges whose summed cost stays within ``budget`` (at least one row each)."""
    n = len(cost)
    cum = np.cumsum(cost)
    start = 0
    while start < n:
        base = cum[start - 1] if start else 0.0
        stop = int(np.searchsorted(cum, base + budget, side="right"))
        stop = min(n, max(stop, start + 1))
        yield start, stop
        start = stop


def _dense_candidates(
    d: NDArray[np.float32], k: int, sq_rows: NDArray[np.float64], sq_cols: NDArray[np.float64], shrinkage: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Entries of a dense block of dot products that may be among a row's k largest positive cosines.

    The cosine is ranked within a row by a float32 key (``dot / sqrt(sq_col)``
    without shrinkage, the shrunk cosine with it) a few ulps from the exact
    value; an entry whose key is more than a relative ``_KEY_MARGIN`` below the
    row's k-th largest key has k entries strictly above it, also after
    rounding, so it can be dropped. The exact cosine is then computed on the
    survivors only, instead of in float64 over the whole block.
    """
    n_rows, n_cols = d.shape
    norm_cols = np.sqrt(sq_cols).astype(np.float32)
    inv_cols = np.divide(np.float32(1), norm_cols, out=np.zeros_like(norm_cols), where=norm_cols > 0)
    step = max(1, (1 << 20) // max(n_cols, 1))
    rows_out: list[NDArray[np.int64]] = []
    cols_out: list[NDArray[np.int64]] = []
    for a in range(0, n_rows, step):
        b = min(n_rows, a + step)
        if shrinkage == 0:
            key = d[a:b] * inv_cols[None, :]
        else:
            key = d[a:b] / (np.sqrt(sq_rows[a:b]).astype(np.float32)[:, None] * norm_cols[None, :] + np.float32(shrinkage))
        keep = key > 0
        if k < n_cols:
            kth = kth_largest(key, k, positive_only=True)  # only positive keys are kept
            keep &= key >= (kth * np.float32(1.0 - _KEY_MARGIN))[:, None]
        r, c = nonzero2d(keep)  # row-major: rows in order
        rows_out.append(r + a)
        cols_out.append(c)
    return np.concatenate(rows_out), np.concatenate(cols_out)


def _select_sparse(
    rows: NDArray[np.int64], cols: NDArray[np.int64], vals: NDArray[np.float32], k: int, n_rows: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """The k largest positive entries per row of a COO block, ties to the lower column.

    The entries must come sorted by (row, col), and leave in that order. Rows
    with at most k positive entries keep them as they are; only longer rows
    are ranked.
    """
    pos = vals > 0
    if not pos.all():
        rows, cols, vals = rows[pos], cols[pos], vals[pos]
    counts = np.bincount(rows, minlength=n_rows)
    long_rows = counts > k
    if not long_rows.any():
        return rows, cols, vals
    sel = long_rows[rows]
    lr, lc, lv = rows[sel], cols[sel], vals[sel]
    heavy = np.flatnonzero(counts > _HEAVY_ROW * k)
    if len(heavy):
        # Rows far longer than k: drop the entries below a lower bound of the row's k-th largest value,
        # the smallest of the maxima of k consecutive chunks (k entries reach it), before sorting.
        # Sorting whole long rows took most of the fit on catalogues of ~60k items.
        starts = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.where(long_rows, counts, 0), out=starts[1:])
        edges = starts[heavy, None] + (np.arange(k + 1)[None, :] * counts[heavy, None]) // k
        maxima = np.maximum.reduceat(np.append(lv, np.float32(0)), edges.ravel()).reshape(len(heavy), k + 1)
        bound = np.full(n_rows, -np.inf, dtype=np.float32)
        bound[heavy] = maxima[:, :k].min(axis=1)  # column k spans the gap to the next heavy row: not this row's
        keep = lv >= bound[lr]
        lr, lc, lv = lr[keep], lc[keep], lv[keep]
    order = np.lexsort((lc, -lv, lr))
    lr, lc, lv = lr[order], lc[order], lv[order]
    first = np.searchsorted(lr, np.arange(n_rows))
    keep = (np.arange(len(lr)) - first[lr]) < k
    lr, lc, lv = lr[keep], lc[keep], lv[keep]
    order = np.lexsort((lc, lr))
    rows = np.concatenate([rows[~sel], lr[order]])
    cols = np.concatenate([cols[~sel], lc[order]])
    vals = np.concatenate([vals[~sel], lv[order]])
    order = np.argsort(rows, kind="stable")  # two runs sorted by (row, col) over disjoint rows: a merge
    return rows[order], cols[order], vals[order]


def knn_graph(
    profiles: sp.csr_matrix,
    k: int,
    shrinkage: float = 0.0,
    *,
    desc: str = "similarity",
    block_entries: int = _BLOCK_ENTRIES,
) -> sp.csr_matrix:
    """Each row's ``k`` most similar other rows (shrunk cosine), as an ``n x n`` CSR matrix.

    Parameters
    ----------
    profiles : scipy.sparse.csr_matrix, shape (n, d)
    k : int >= 1
    shrinkage : float >= 0
        Added to the product of the norms in the cosine's denominator.
    desc : str
        Progress-bar label.
    block_entries : int
        Target size of one block of the product (entries).

    Returns
    -------
    scipy.sparse.csr_matrix, float32, shape (n, n)
        Row ``a`` holds ``sim(a, b)`` for the neighbours ``b`` of ``a``
        (sorted column indices; int64 index arrays when nnz >= 2**31).

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32))
    >>> g = knn_graph(m, k=1)
    >>> g.indices.tolist(), np.round(g.data, 3).tolist()
    ([1, 0, 3, 2], [1.0, 1.0, 0.707, 0.707])
    """
    m = sp.csr_matrix(profiles, dtype=np.float32, copy=True)
    m.sum_duplicates()
    n = m.shape[0]
    sq = squared_norms(m)
    mt = m.T.tocsr()
    # Output nnz of a row is at most min(n, sum of its features' degrees): size blocks by that.
    feat_deg = np.diff(mt.indptr).astype(np.float64)
    work = np.asarray(sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape) @ feat_deg).ravel()
    cost = np.minimum(work, n) + 1.0
    all_r: list[NDArray[np.int64]] = []
    all_c: list[NDArray[np.int64]] = []
    all_v: list[NDArray[np.float32]] = []
    # Small, dense-ish products run faster against a dense right-hand side (contiguous
    # row updates) than as sparse x sparse products: use it while it costs at most
    # ~16x the sparse multiply-adds and the dense copy of M.T stays small.
    dense_rhs = m.shape[1] * n <= 2 * block_entries and float(m.nnz) * n <= 16.0 * float(work.sum())
    if dense_rhs:
        mt_dense = mt.toarray()
        blocks = list(_blocks(np.full(n, float(n)), float(block_entries)))
    else:
        blocks = list(_blocks(cost, float(block_entries)))
    def one(block: tuple[int, int]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
        start, stop = block
        n_rows = stop - start
        p = None
        if not dense_rhs:
            p = sparse_product(m[start:stop], mt, int(np.minimum(work[start:stop], n).sum()))
        if dense_rhs or (p is not None and p.nnz * 4 >= n_rows * n and n_rows * n <= 2 * block_entries):
            d = np.asarray(m[start:stop] @ mt_dense, dtype=np.float32) if p is None else p.toarray()
            d[np.arange(n_rows), np.arange(start, stop)] = 0.0
            r, c = _dense_candidates(d, k, sq[start:stop], sq, shrinkage)
            v = shrunk_cosine(d[r, c], sq[start + r], sq[c], shrinkage)
            r, c, v = _select_sparse(r, c, v, k, n_rows)  # ranks only rows with near-ties at the k-th key
        else:
            assert p is not None
            p.sort_indices()  # (row, col) order, as _select_sparse needs
            p = p.tocoo()
            r, c = p.row.astype(np.int64), p.col.astype(np.int64)
            v = shrunk_cosine(p.data, sq[start + r], sq[c], shrinkage)
            v[c == start + r] = 0.0
            r, c, v = _select_sparse(r, c, v, k, n_rows)
        return r + start, c, v.astype(np.float32)

    # Blocks are independent (each a few threads' worth of memory at once); results come back in order.
    for r, c, v in progress(map_blocks(one, blocks), desc=desc, total=len(blocks)):
        all_r.append(r)
        all_c.append(c)
        all_v.append(v)
    rows = np.concatenate(all_r) if all_r else np.empty(0, np.int64)
    cols = np.concatenate(all_c) if all_c else np.empty(0, np.int64)
    vals = np.concatenate(all_v) if all_v else np.empty(0, np.float32)
    return csr_from_sorted(rows, cols, vals, (n, n))


def csr_from_sorted(
    rows: NDArray[np.int64], cols: NDArray[np.int64], vals: NDArray[np.float32], shape: tuple[int, int]
) -> sp.csr_matrix:
    """A CSR matrix from entries already sorted by (row, col); int64 indptr only when needed."""
    idx_dtype = np.int64 if len(vals) >= 2**31 - 1 or max(shape) >= 2**31 - 1 else np.int32
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    out = sp.csr_matrix(
        (vals.astype(np.float32), cols.astype(idx_dtype), indptr.astype(idx_dtype)), shape=shape, copy=False
    )
    out.has_sorted_indices = True
    return out


def candidate_knn_graph(
    profiles: sp.csr_matrix,
    candidates: NDArray[np.integer],
    k: int,
    shrinkage: float = 0.0,
    *,
    desc: str = "similarity",
    block_entries: int = _RERANK_DENSE,
) -> sp.csr_matrix:
    """:func:`knn_graph` restricted to given candidates: each row's ``k`` most similar rows among its candidates.

    Similarities are computed exactly (the same shrunk cosine as :func:`knn_graph`)
    for the pairs ``(a, candidates[a, j])`` only, and the same rule keeps the
    ``k`` best (positive only, ties to the lower index). Negative entries, the
    row itself and repeats in ``candidates`` are ignored, so with every other
    row as a candidate the graph is :func:`knn_graph`'s. Time
    ``O(sum over pairs of nnz(profile of the candidate))``; memory
    ``O(nnz + n * k)`` plus a block of ``block_entries`` dense profile values
    and its pairs.

    Parameters
    ----------
    profiles : scipy.sparse.csr_matrix, shape (n, d)
    candidates : array of int, shape (n, c)
    k : int >= 1
    shrinkage : float >= 0
    desc : str
        Progress-bar label.
    block_entries : int
        Dense profile values (rows x d) and candidate pairs (rows x c) of one block of rows.

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32))
    >>> g = candidate_knn_graph(m, np.array([[2, 3], [2, 0], [0, 1], [0, 1]]), k=1)
    >>> g.indices.tolist(), np.round(g.data, 3).tolist()
    ([2, 0, 0], [0.5, 1.0, 0.5])
    """
    m = sp.csr_matrix(profiles, dtype=np.float32, copy=True)
    m.sum_duplicates()
    n, d = m.shape
    cand = np.asarray(candidates)
    if cand.ndim != 2 or cand.shape[0] != n:
        raise ValueError(f"candidates must have shape (n_rows, n_candidates) = ({n}, c); got {cand.shape}")
    sq = squared_norms(m)
    # a block's dense rows and its pairs both stay within block_entries
    rows_per_block = max(1, int(block_entries) // max(d, cand.shape[1], 1))
    blocks = [(a, min(n, a + rows_per_block)) for a in range(0, n, rows_per_block)]

    def one(block: tuple[int, int]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
        start, stop = block
        n_rows = stop - start
        # each row's valid candidates once, in increasing order (invalid and repeated ones become -1)
        c = np.sort(cand[start:stop].astype(np.int64), axis=1)
        c[(c >= n) | (c == np.arange(start, stop)[:, None])] = -1
        c[:, 1:][c[:, 1:] == c[:, :-1]] = -1
        r, j = nonzero2d(c >= 0)
        c = c[r, j]
        dense = m[start:stop].toarray()
        q = m[c]  # the candidates' profiles, one row per pair, grouped by row
        q_ptr = np.asarray(q.indptr, dtype=np.int64)
        dots = np.zeros(len(c), dtype=np.float32)
        bounds = np.searchsorted(r, np.arange(n_rows + 1))
        for i in range(n_rows):
            a, b = int(bounds[i]), int(bounds[i + 1])
            if a < b:  # the row's pairs: their profiles against its dense row
                dots[a:b] = q[a:b] @ dense[i] if _csr_matvec is None else _matvec(q, q_ptr, a, b, dense[i])
        v = shrunk_cosine(dots, sq[start + r], sq[c], shrinkage)
        rr, cc, vv = _select_sparse(r, c, v, k, n_rows)
        return rr + start, cc, vv.astype(np.float32)

    parts = list(progress(map_blocks(one, blocks), desc=desc, total=len(blocks)))
    rows = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    cols = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
    vals = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.float32)
    return csr_from_sorted(rows, cols, vals, (n, n))


def _matvec(q: sp.csr_matrix, q_ptr: NDArray[np.int64], a: int, b: int, x: NDArray[np.float32]) -> NDArray[np.float32]:
    """``q[a:b] @ x`` without slicing ``q`` (scipy's kernel reads rows a..b through their absolute offsets)."""
    y = np.zeros(b - a, dtype=np.float32)
    idx = q.indices.dtype
    _csr_matvec(b - a, len(x), q_ptr[a : b + 1].astype(idx), q.indices, q.data, x, y)
    return y


def _top_per_row(
    indptr: NDArray[np.integer], cols: NDArray[np.integer], vals: NDArray[np.float32], c: int, out: NDArray[np.int32]
) -> None:
    """Write into ``out`` (rows x c, pre-filled with -1) the columns of each CSR row's ``c`` largest values
    (rows with at most ``c`` entries keep them all; in a longer row the smallest of the ``c`` comes last)."""
    lengths = np.diff(indptr).astype(np.int64)
    short = np.flatnonzero((lengths > 0) & (lengths <= c))
    if len(short):
        pos = np.arange(lengths[short].sum()) - np.repeat(np.cumsum(lengths[short]) - lengths[short], lengths[short])
        src = np.repeat(indptr[short].astype(np.int64), lengths[short]) + pos
        out[np.repeat(short, lengths[short]), pos] = cols[src]
    # one argpartition per long row: a loop over rows beats padding rows of very different lengths
    for i in np.flatnonzero(lengths > c).tolist():
        a, b = int(indptr[i]), int(indptr[i + 1])
        # argpartition puts the c-th largest first among the c largest: reversed, it is last
        out[i] = cols[a + np.argpartition(vals[a:b], b - a - c)[: b - a - c - 1 : -1]]


def sampled_candidates(
    profiles: sp.csr_matrix,
    n_candidates: int,
    sample: int,
    *,
    seed: int = 0,
    desc: str = "candidates",
    block_entries: int = _BLOCK_ENTRIES,
) -> NDArray[np.int32]:
    """Each row's ``n_candidates`` best OTHER rows by a cosine over sampled co-occurrences.

    Every feature (column) held by more than ``sample`` rows keeps a random
    ``sample`` of them (seeded); the candidates of row ``a`` are the rows of
    largest partial cosine ``sum_f u_af u_bf`` over the kept (feature, row)
    pairs, ``u`` the rows scaled to unit norm. Features held by at most
    ``sample`` rows contribute exactly, so with ``sample >= n`` the partial
    cosine is the cosine. Time ``O(sum_f df(f) * min(df(f), sample))``, at
    most ``nnz * sample`` multiply-adds (against ``sum_f df(f)**2`` for the
    exact product); memory ``O(nnz + n * n_candidates)`` plus blocks of about
    ``block_entries`` entries.

    Parameters
    ----------
    profiles : scipy.sparse.csr_matrix, shape (n, d)
    n_candidates : int >= 1
    sample : int >= 1
        Rows kept per feature.
    seed : int
        Seed of the per-feature samples.
    desc : str
        Progress-bar label.
    block_entries : int
        Target size of one block of the partial product (entries).

    Returns
    -------
    numpy.ndarray of int32, shape (n, min(n_candidates, n - 1))
        Candidate rows (in no particular order), padded with -1 where a row
        has fewer co-occurring rows; never the row itself.

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=np.float32))
    >>> sampled_candidates(m, 1, sample=10).ravel().tolist()
    [1, 0, 3, 2]
    """
    m = sp.csr_matrix(profiles, dtype=np.float32, copy=True)
    m.sum_duplicates()
    n = m.shape[0]
    c = min(int(n_candidates), n - 1)
    out = np.full((n, max(c, 0)), -1, dtype=np.int32)
    if c <= 0:
        return out
    sq = squared_norms(m)
    inv = np.divide(1.0, np.sqrt(sq), out=np.zeros(n), where=sq > 0)
    m.data *= inv[row_ids(m)].astype(np.float32)
    post = m.T.tocsr()  # features x rows
    feat = row_ids(post)
    # a random order within each feature (sorting feature + uniform[0, 1)), then its first `sample`
    order = np.argsort(feat + np.random.default_rng(seed).random(post.nnz), kind="stable")
    pos = np.arange(post.nnz) - post.indptr[feat[order]]
    keep = np.sort(order[pos < sample])
    kept = np.bincount(feat[keep], minlength=post.shape[0])
    sampled = sp.csr_matrix(
        (post.data[keep], post.indices[keep], np.concatenate([[0], np.cumsum(kept)])), shape=post.shape
    )
    work = np.bincount(row_ids(m), weights=kept[m.indices].astype(np.float64), minlength=n)
    bound = np.minimum(work, n)
    blocks = list(_blocks(bound + 1.0, float(block_entries)))

    def one(block: tuple[int, int]) -> None:
        start, stop = block
        p = sparse_product(m[start:stop], sampled, int(bound[start:stop].sum()))
        # c + 1 best, then the row itself out (cheaper than masking it in the whole product)
        best = np.full((stop - start, c + 1), -1, dtype=np.int32)
        _top_per_row(p.indptr, p.indices, p.data, c + 1, best)
        mine = best == np.arange(start, stop)[:, None]
        mine[~mine.any(axis=1), c] = True  # rows without themselves drop their last pick (a long row: its smallest)
        out[start:stop] = best[~mine].reshape(stop - start, c)

    # blocks write disjoint rows of `out`
    for _ in progress(map_blocks(one, blocks), desc=desc, total=len(blocks)):
        pass
    return out
