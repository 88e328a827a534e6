"""Vectorised metric kernels behind :class:`recsys.evaluation.Evaluator`.

Every kernel works on internal integer indices: a user's top-k list is one
row of a dense ``(n_users, kmax)`` int64 matrix padded with ``-1`` at the end
(valid slots always form a prefix), and relevance is a boolean matrix of the
same shape. Users are processed in chunks of rows so memory stays bounded
however many users or how long the lists are; there is no per-user Python
loop. The definitions are those of the :mod:`recsys.evaluation` module
docstring; :mod:`recsys.evaluation.reference` implements the same
definitions with plain loops and the tests check both agree to 1e-9.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._utils.topk import nonzero2d

__all__ = [
    "RANKING_METRICS",
    "bootstrap_estimates",
    "diversity_cooccurrence",
    "diversity_features",
    "novelty_sums",
    "popularity_rank",
    "ranking_metrics",
    "relevance_matrix",
    "relevant_table",
    "serendipity",
    "set_metrics",
]

#: The per-user accuracy metrics computed by :func:`ranking_metrics`.
RANKING_METRICS = ("precision", "recall", "f1", "hit_rate", "mrr", "ndcg", "map")

# Keys of (user position, item index) pairs: item indices are int32, so 31 bits hold them.
KEY_SHIFT = 31

# Elements of the largest temporary per chunk (kept module-level so tests can force chunking).
_CHUNK_ELEMENTS = 1 << 22
# List pairs handled at once by diversity_cooccurrence (each extra chunk recomputes the blocks).
_PAIR_CHUNK_ELEMENTS = 1 << 24
# Cells of one dense block of the co-occurrence product (bounds its memory).
_PAIR_BLOCK_BUDGET = 1 << 25


def _chunks(n: int, per_row: int, budget: int | None = None) -> list[tuple[int, int]]:
    step = max(1, (_CHUNK_ELEMENTS if budget is None else budget) // max(1, per_row))
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def pair_keys(user_pos: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.int64]:
    """One int64 key per (user position, item index) pair; sorting keys sorts by user then item."""
    return (user_pos.astype(np.int64) << KEY_SHIFT) | items.astype(np.int64)


def relevant_table(relevant_keys: NDArray[np.int64], n_rows: int, max_width: int = 32) -> NDArray[np.int64] | None:
    """Each row's relevant items as a dense ``(n_rows, width)`` table padded with -2, or None
    when some row has more than ``max_width`` (then :func:`relevance_matrix` uses keys).

    Examples
    --------
    >>> relevant_table(np.sort(pair_keys(np.array([0, 1, 1]), np.array([1, 5, 4]))), 2).tolist()
    [[1, -2], [4, 5]]
    """
    rows = relevant_keys >> KEY_SHIFT
    counts = np.bincount(rows, minlength=n_rows)
    width = int(counts.max()) if len(counts) else 0
    if width > max_width or width == 0:
        return None
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    table = np.full((n_rows, width), -2, dtype=np.int64)
    table[rows, np.arange(len(rows)) - starts[rows]] = relevant_keys & ((1 << KEY_SHIFT) - 1)
    return table


def relevance_matrix(
    recs: NDArray[np.int64], relevant_keys: NDArray[np.int64], table: NDArray[np.int64] | None = None
) -> NDArray[np.bool_]:
    """``rel[u, r]``: whether the item at slot ``r`` of row ``u`` is relevant to that user.

    Parameters
    ----------
    recs : ndarray of int64, shape (n_users, kmax)
        Item indices, ``-1`` for empty slots.
    relevant_keys : ndarray of int64
        Sorted keys ``(row << 31) | item`` of the relevant (row, item) pairs.
    table : ndarray, optional
        :func:`relevant_table` of the keys: when given, membership is a
        comparison against each row's few relevant items instead of a binary
        search in all keys (same result, faster).

    Examples
    --------
    >>> recs = np.array([[3, 1, -1], [0, 2, 5]])
    >>> keys = np.sort(pair_keys(np.array([0, 1, 1]), np.array([1, 5, 4])))
    >>> relevance_matrix(recs, keys).astype(int).tolist()
    [[0, 1, 0], [0, 0, 1]]
    >>> relevance_matrix(recs, keys, relevant_table(keys, 2)).astype(int).tolist()
    [[0, 1, 0], [0, 0, 1]]
    """
    n, kmax = recs.shape
    rel = np.zeros((n, kmax), dtype=bool)
    if len(relevant_keys) == 0 or n == 0:
        return rel
    if table is not None:
        for j in range(table.shape[1]):
            rel |= recs == table[:, j : j + 1]
        return rel
    for s, e in _chunks(n, kmax):
        block = recs[s:e]
        rows = np.arange(s, e, dtype=np.int64)[:, None]
        q = (rows << KEY_SHIFT) | np.maximum(block, 0)
        pos = np.searchsorted(relevant_keys, q)
        np.minimum(pos, len(relevant_keys) - 1, out=pos)
        rel[s:e] = (relevant_keys[pos] == q) & (block >= 0)
    return rel


def ranking_metrics(
    rel: NDArray[np.bool_],
    n_relevant: NDArray[np.int64],
    ks: Sequence[int],
    names: Collection[str] = RANKING_METRICS,
) -> dict[str, NDArray[np.float64]]:
    """Per-user precision, recall, F1, hit rate, MRR, NDCG and MAP at each k.

    Parameters
    ----------
    rel : ndarray of bool, shape (n_users, kmax)
        Relevance of each slot of each user's list (``False`` for empty slots).
    n_relevant : ndarray of int, shape (n_users,)
        ``|T_u|``, at least 1 for every row.
    ks : sequence of int
        Cut-offs, each ``<= kmax``.
    names : collection of str
        Which of :data:`RANKING_METRICS` to compute.

    Returns
    -------
    dict
        ``"name@k"`` -> float64 array of per-user values.

    Notes
    -----
    Per-user F1 = 2PR / (P + R) with P = h/k and R = h/|T_u| (h = hits@k)
    simplifies to 2h / (k + |T_u|), which is also the 0 the definition gives
    when h = 0, so it is computed from the same hit counts as precision and
    recall with no 0/0 case. (The loop reference evaluates 2PR / (P + R).)

    Examples
    --------
    A 3-item list with hits at ranks 1 and 3 for a user with 2 relevant items:
    F1 = 2 * (2/3) * 1 / (2/3 + 1) = 0.8 = 2 * 2 / (3 + 2);
    DCG = 1 + 1/log2(4) = 1.5, IDCG = 1 + 1/log2(3) = 1.63093, NDCG = 0.91972;
    AP = (1/1 + 2/3) / 2 = 0.83333.

    >>> m = ranking_metrics(np.array([[True, False, True]]), np.array([2]), [3])
    >>> {name: round(float(v[0]), 5) for name, v in m.items()}
    {'precision@3': 0.66667, 'recall@3': 1.0, 'f1@3': 0.8, 'hit_rate@3': 1.0, 'mrr@3': 1.0,
     'ndcg@3': 0.91972, 'map@3': 0.83333}
    """
    n, kmax = rel.shape
    wanted = [m for m in RANKING_METRICS if m in names]
    out = {f"{m}@{k}": np.zeros(n, dtype=np.float64) for k in ks for m in wanted}
    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    disc = 1.0 / np.log2(ranks + 1.0)
    ideal = np.cumsum(disc)
    for s, e in _chunks(n, kmax):
        # Hits are few: work on their coordinates (row-major, so ranks ascend within a row).
        rows, cols = nonzero2d(rel[s:e])
        m = e - s
        nrel = n_relevant[s:e].astype(np.int64)
        first = np.ones(len(rows), dtype=bool)
        first[1:] = rows[1:] != rows[:-1]
        starts = np.flatnonzero(first)
        ordinal = np.arange(1, len(rows) + 1) - np.repeat(starts, np.diff(np.append(starts, len(rows))))
        for k in ks:
            sel = cols < k
            r_k, c_k = rows[sel], cols[sel]
            hits = np.bincount(r_k, minlength=m).astype(np.float64)
            if "precision" in names:
                out[f"precision@{k}"][s:e] = hits / k
            if "recall" in names:
                out[f"recall@{k}"][s:e] = hits / nrel
            if "f1" in names:  # 2PR / (P + R) with P = hits / k, R = hits / nrel (see Notes)
                out[f"f1@{k}"][s:e] = 2.0 * hits / (k + nrel)
            if "hit_rate" in names:
                out[f"hit_rate@{k}"][s:e] = hits > 0
            if "mrr" in names:
                f_sel = first & sel
                out[f"mrr@{k}"][s:e][rows[f_sel]] = 1.0 / (cols[f_sel] + 1.0)
            if "ndcg" in names:
                dcg = np.bincount(r_k, weights=disc[c_k], minlength=m)
                out[f"ndcg@{k}"][s:e] = dcg / ideal[np.minimum(nrel, k) - 1]
            if "map" in names:
                ap = np.bincount(r_k, weights=ordinal[sel] / (c_k + 1.0), minlength=m)
                out[f"map@{k}"][s:e] = ap / np.minimum(nrel, k)
    return out


def slot_counts(recs: NDArray[np.int64], k: int, n_items: int) -> NDArray[np.int64]:
    """How many of the top-k slots (over all rows) each item fills."""
    top = recs[:, :k]
    return np.bincount(top[top >= 0], minlength=n_items).astype(np.int64)


def set_metrics(counts: NDArray[np.int64], in_train: NDArray[np.bool_]) -> dict[str, float]:
    """Coverage, distributional coverage and Gini index of one top-k list set.

    Parameters
    ----------
    counts : ndarray of int64, shape (n_items,)
        Recommendation slots given to each item (see :func:`slot_counts`).
    in_train : ndarray of bool, shape (n_items,)
        Whether each item has at least one train interaction (``I_train``).

    Returns
    -------
    dict with keys ``coverage``, ``distributional_coverage``, ``gini``.

    Examples
    --------
    Four train items; item 0 gets 3 slots, item 1 gets 1, items 2 and 3 none:
    entropy = -(0.75 log2 0.75 + 0.25 log2 0.25) = 0.81128; sorted counts
    0, 0, 1, 3 give Gini = (-3*0 - 1*0 + 1*1 + 3*3) / (4 * 4) = 0.625.

    >>> m = set_metrics(np.array([3, 1, 0, 0]), np.ones(4, dtype=bool))
    >>> {name: round(v, 5) for name, v in m.items()}
    {'coverage': 0.5, 'distributional_coverage': 0.81128, 'gini': 0.625}
    """
    recommended = counts > 0
    catalogue = in_train | recommended
    n_cat = int(catalogue.sum())
    total = int(counts.sum())
    coverage = float(recommended.sum()) / n_cat if n_cat else float("nan")
    if total:
        p = counts[recommended] / total
        entropy = float(-(p * np.log2(p)).sum())
        c = np.sort(counts[catalogue]).astype(np.float64)
        i = np.arange(1, n_cat + 1, dtype=np.float64)
        gini = float(((2.0 * i - n_cat - 1.0) * c).sum() / (n_cat * c.sum()))
    else:
        entropy = 0.0
        gini = float("nan")
    return {"coverage": coverage, "distributional_coverage": entropy, "gini": gini}


def novelty_sums(
    recs: NDArray[np.int64], item_counts: NDArray[np.int64], n_interactions: int, ks: Sequence[int]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-user sum of slot novelties and number of slots, one column per k.

    Slot novelty is ``-log2(max(n_i, 1) / N)``; novelty@k is
    ``sums[:, j].sum() / counts[:, j].sum()`` (a mean over all slots).

    Examples
    --------
    N = 8 train interactions; item 0 has 4 (novelty 1 bit), item 1 has 1 (3 bits):

    >>> s, c = novelty_sums(np.array([[0, 1], [1, -1]]), np.array([4, 1]), 8, [2])
    >>> s.ravel().tolist(), c.ravel().tolist()
    ([4.0, 3.0], [2.0, 1.0])
    """
    item_nov = -np.log2(np.maximum(item_counts, 1) / float(n_interactions))
    n, kmax = recs.shape
    sums = np.zeros((n, len(ks)), dtype=np.float64)
    cnts = np.zeros((n, len(ks)), dtype=np.float64)
    for s, e in _chunks(n, kmax):
        block = recs[s:e]
        valid = block >= 0
        nov = np.where(valid, item_nov[np.maximum(block, 0)], 0.0)
        for j, k in enumerate(ks):
            sums[s:e, j] = nov[:, :k].sum(axis=1)
            cnts[s:e, j] = valid[:, :k].sum(axis=1)
    return sums, cnts


def popularity_rank(item_counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Dense popularity rank of each item: 1 for the largest train count, items with equal
    counts share a rank; 0 for items without train interactions.

    Examples
    --------
    >>> popularity_rank(np.array([5, 0, 2, 5, 1])).tolist()
    [1, 0, 2, 1, 3]
    """
    rank = np.zeros(len(item_counts), dtype=np.int64)
    seen = item_counts > 0
    if seen.any():
        distinct = np.unique(item_counts[seen])[::-1]  # descending
        rank[seen] = np.searchsorted(-distinct, -item_counts[seen]) + 1
    return rank


def serendipity(
    recs: NDArray[np.int64],
    rel: NDArray[np.bool_],
    pop_rank: NDArray[np.int64],
    n_catalogue: int,
    ks: Sequence[int],
) -> NDArray[np.float64]:
    """Per-user serendipity (RecTools' definition), one column per k.

    Slot ``r`` holding item ``i`` scores ``max(p(r) - pu(i), 0) * rel_r`` with
    ``p(r) = (n + 1 - r) / n``, ``pu(i) = (n + 1 - pop_rank(i)) / n`` (0 for an
    item without train interactions) and ``n = n_catalogue``; a user's value is
    the mean over the slots of the list (0 for an empty list).

    Examples
    --------
    Catalogue of 4; the list holds item 0 (popularity rank 2) relevant at rank 1
    and item 1 (rank 1) not relevant: (max(1 - 0.75, 0) + 0) / 2 = 0.125.

    >>> serendipity(np.array([[0, 1]]), np.array([[True, False]]), np.array([2, 1]), 4, [2]).tolist()
    [[0.125]]
    """
    n, kmax = recs.shape
    out = np.zeros((n, len(ks)), dtype=np.float64)
    p_slot = (n_catalogue + 1.0 - np.arange(1, kmax + 1)) / n_catalogue
    pu_item = np.where(pop_rank > 0, (n_catalogue + 1.0 - pop_rank) / n_catalogue, 0.0)
    for s, e in _chunks(n, kmax):
        block = recs[s:e]
        valid = block >= 0
        val = np.maximum(p_slot[None, :] - pu_item[np.maximum(block, 0)], 0.0) * rel[s:e]
        for j, k in enumerate(ks):
            cnt = valid[:, :k].sum(axis=1)
            out[s:e, j] = np.where(cnt > 0, val[:, :k].sum(axis=1) / np.maximum(cnt, 1), 0.0)
    return out


def _pair_positions(kmax: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Slot pairs (a, b), a < b, ordered by b so the pairs inside the top k are a prefix."""
    b = np.concatenate([np.full(j, j) for j in range(kmax)]) if kmax > 1 else np.zeros(0)
    a = np.concatenate([np.arange(j) for j in range(kmax)]) if kmax > 1 else np.zeros(0)
    return a.astype(np.int64), b.astype(np.int64)


def _diversity_from_sums(sim_sums: NDArray[np.float64], lengths: NDArray[np.int64]) -> NDArray[np.float64]:
    n_pairs = lengths * (lengths - 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lengths >= 2, 1.0 - sim_sums / n_pairs, np.nan)


def _list_lengths(recs: NDArray[np.int64], ks: Sequence[int]) -> NDArray[np.int64]:
    valid = recs >= 0
    return np.stack([valid[:, :k].sum(axis=1) for k in ks], axis=1).astype(np.int64)


def diversity_cooccurrence(
    recs: NDArray[np.int64], train: sp.csr_matrix, ks: Sequence[int]
) -> NDArray[np.float64]:
    """Per-user intra-list diversity with co-occurrence cosine similarity, one column per k.

    ``sim(i, j) = |U_i ∩ U_j| / sqrt(|U_i| |U_j|)`` over the train users
    (0 when either is empty); a user's value is ``1 - mean sim`` over the
    unordered pairs of the list, NaN for lists shorter than 2.

    Only co-occurrences among recommended items are computed, and only one
    triangle: the items are compacted to ``0..m-1`` and processed in blocks
    of columns ``[lo, hi)``; each block is the sparse product
    ``X[:, lo:]^T X[:, lo:hi]`` made dense (at most ``_PAIR_BLOCK_BUDGET``
    cells), from which every list pair whose smaller compact id falls in the
    block is read directly. Memory is bounded by the block and user-chunk
    sizes.

    Parameters
    ----------
    recs : ndarray of int64, shape (n_users, kmax)
    train : scipy.sparse.csr_matrix
        Train users x items; nonzero = interaction. Item indices of ``recs``
        at or beyond its width have no train users.
    ks : sequence of int

    Examples
    --------
    Items 0 and 1 share one of their two train users each (sim 1/2), item 2
    shares none: a list [0, 1, 2] has diversity 1 - (1/2 + 0 + 0) / 3 = 5/6.

    >>> X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]))
    >>> diversity_cooccurrence(np.array([[0, 1, 2], [2, -1, -1]]), X, [3]).round(5).tolist()
    [[0.83333], [nan]]
    """
    n, kmax = recs.shape
    n_train_items = train.shape[1]
    lengths = _list_lengths(recs, ks)
    sums = np.zeros((n, len(ks)), dtype=np.float64)
    if kmax < 2 or n == 0:
        return _diversity_from_sums(sums, lengths)
    # float32 counts are exact below 2**24 users.
    dtype = np.float32 if train.shape[0] < 1 << 24 else np.float64
    binary = sp.csc_matrix(train, dtype=dtype, copy=True)
    binary.eliminate_zeros()
    binary.data[:] = 1
    item_users = np.diff(binary.indptr)
    in_range = (recs >= 0) & (recs < n_train_items)
    cand = np.unique(recs[in_range])
    cand = cand[item_users[cand] > 0]
    m = len(cand)
    if m < 2:
        return _diversity_from_sums(sums, lengths)
    compact = np.full(n_train_items, -1, dtype=np.int64)
    compact[cand] = np.arange(m)
    ccomp = np.where(in_range, compact[np.where(in_range, recs, 0)], -1)
    xr = binary[:, cand]  # users x m, CSC
    xr_t = xr.T.tocsr()  # m x users
    norm = 1.0 / np.sqrt(item_users[cand].astype(np.float64))
    # Column blocks [lo, hi) of the compact items, each at most _PAIR_BLOCK_BUDGET dense cells.
    starts = [0]
    while starts[-1] < m:
        lo = starts[-1]
        starts.append(min(m, lo + max(1, _PAIR_BLOCK_BUDGET // (m - lo))))
    bounds = np.array(starts, dtype=np.int64)
    pa, pb = _pair_positions(kmax)
    # A pair at column c (ordered by its larger slot) counts towards every k with c < k(k-1)/2.
    prefix = np.array([k * (k - 1) // 2 for k in ks], dtype=np.int64)
    first_k = np.searchsorted(prefix, np.arange(len(pa)), side="right")
    n_k = len(ks)
    acc = np.zeros(n * n_k, dtype=np.float64)
    for s, e in _chunks(n, len(pa), _PAIR_CHUNK_ELEMENTS):
        ia = ccomp[s:e][:, pa]
        ib = ccomp[s:e][:, pb]
        ok = (ia >= 0) & (ib >= 0) & (first_k < n_k)[None, :]
        va, vb = ia[ok], ib[ok]
        f, g = np.minimum(va, vb), np.maximum(va, vb)
        dest = (np.arange(s, e, dtype=np.int64)[:, None] * n_k + first_k[None, :])[ok]
        del ia, ib, ok, va, vb
        block_id = np.searchsorted(bounds, f, side="right") - 1
        # Few blocks: a small integer type lets numpy use a radix sort.
        order = np.argsort(block_id.astype(np.int16 if len(bounds) < 1 << 15 else np.int64), kind="stable")
        f, g, dest, block_id = f[order], g[order], dest[order], block_id[order]
        cuts = np.searchsorted(block_id, np.arange(len(bounds)))
        for b in range(len(bounds) - 1):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            p0, p1 = int(cuts[b]), int(cuts[b + 1])
            if p0 == p1:
                continue
            # block[y - lo, x - lo] = |U_x ∩ U_y| for x in [lo, hi), y in [lo, m).
            block = (xr_t[lo:] @ xr[:, lo:hi].tocsr()).toarray()
            fb, gb = f[p0:p1], g[p0:p1]
            vals = block[gb - lo, fb - lo].astype(np.float64) * norm[fb] * norm[gb]
            acc += np.bincount(dest[p0:p1], weights=vals, minlength=n * n_k)
            del block
    sums = np.cumsum(acc.reshape(n, n_k), axis=1)
    return _diversity_from_sums(sums, lengths)


def diversity_features(
    recs: NDArray[np.int64], features: NDArray[np.float64], ks: Sequence[int]
) -> NDArray[np.float64]:
    """Per-user intra-list diversity with the cosine of item feature vectors, one column per k.

    Uses ``sum over pairs a<b of f_a.f_b = (|sum f|^2 - sum |f|^2) / 2`` on
    unit-normalised vectors, so no pair is materialised. Items without a
    vector (rows of zeros, or indices beyond ``features``) have similarity 0.

    Examples
    --------
    Orthogonal items 0 and 1, item 2 at 45 degrees to both:
    1 - (0 + 0.70711 + 0.70711) / 3 = 0.5286.

    >>> F = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> diversity_features(np.array([[0, 1, 2]]), F, [2, 3]).round(4).tolist()
    [[1.0, 0.5286]]
    """
    n, kmax = recs.shape
    lengths = _list_lengths(recs, ks)
    sums = np.zeros((n, len(ks)), dtype=np.float64)
    norms = np.linalg.norm(features, axis=1)
    unit = np.zeros((len(features) + 1, features.shape[1]), dtype=np.float64)
    ok = norms > 0
    unit[:-1][ok] = features[ok] / norms[ok, None]
    zero_row = len(features)  # padding and unknown items map to a zero vector
    d = features.shape[1]
    for s, e in _chunks(n, kmax * max(d, 1)):
        block = recs[s:e]
        idx = np.where((block >= 0) & (block < len(features)), block, zero_row)
        vec = unit[idx]  # chunk x kmax x d
        cs = np.cumsum(vec, axis=1)
        self_sq = np.cumsum((vec * vec).sum(axis=2), axis=1)
        for j, k in enumerate(ks):
            total = cs[:, k - 1]
            sums[s:e, j] = ((total * total).sum(axis=1) - self_sq[:, k - 1]) / 2.0
    return _diversity_from_sums(sums, lengths)


def bootstrap_estimates(
    num: NDArray[np.float64], den: NDArray[np.float64], n_boot: int, seed: int
) -> NDArray[np.float64]:
    """Bootstrap replicates of ratio estimates ``sum(num) / sum(den)`` over resampled rows.

    Rows (users) are drawn with replacement, ``n_boot`` times, as a matrix of
    multinomial counts built in chunks and applied with one matrix product
    per chunk. A per-user mean is the case ``den == 1``.

    Parameters
    ----------
    num, den : ndarray of float64, shape (n_rows, n_estimates)
    n_boot : int
    seed : int
        The same seed and ``n_rows`` give the same resamples (paired comparisons
        rely on it).

    Returns
    -------
    ndarray of float64, shape (n_boot, n_estimates); NaN where a replicate's
    denominator is 0.

    Examples
    --------
    >>> est = bootstrap_estimates(np.array([[0.0], [1.0]]), np.ones((2, 1)), 200, seed=0)
    >>> est.shape, bool(((est >= 0) & (est <= 1)).all())
    ((200, 1), True)
    """
    n = num.shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, num.shape[1]), dtype=np.float64)
    step = max(1, _CHUNK_ELEMENTS // max(1, n))
    both = np.concatenate([num, den], axis=1)
    m = num.shape[1]
    for s in range(0, n_boot, step):
        b = min(step, n_boot - s)
        draws = rng.integers(0, n, size=(b, n), dtype=np.int64)
        draws += np.arange(b, dtype=np.int64)[:, None] * n
        weights = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        sums = weights @ both
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + b] = sums[:, :m] / sums[:, m:]
    return out
