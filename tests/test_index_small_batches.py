"""Exact search of small query blocks (numpy selection) equals the faiss-heap path, ties and exclusions included.

Small blocks skip faiss' OpenMP heaps because, right after a threaded OpenBLAS
product, the OpenMP region waited milliseconds for a core (recommend_one of
embedding models went from ~0.8 ms to ~35 ms on 2 cores). The two paths must
stay interchangeable: same ids, same scores, same tie rule.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.index import ItemIndex
from recsys.index import _kernels as kernels


def _both_paths(monkeypatch: pytest.MonkeyPatch, fn):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(kernels, "NUMPY_SELECT_FLOATS", 1 << 40)
    numpy_result = fn()
    monkeypatch.setattr(kernels, "NUMPY_SELECT_FLOATS", 0)
    heap_result = fn()
    return numpy_result, heap_result


@pytest.mark.parametrize("item_block", [64, 32768])
@pytest.mark.parametrize("with_cols", [False, True])
def test_numpy_and_heap_selection_agree(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator, item_block: int, with_cols: bool
) -> None:
    monkeypatch.setattr(kernels, "ITEM_BLOCK", item_block)
    # few distinct values: many exact ties, across item blocks
    X = rng.integers(-2, 3, size=(700, 4)).astype(np.float32)
    Q = rng.integers(-2, 3, size=(9, 4)).astype(np.float32)
    cols = np.sort(rng.choice(700, size=400, replace=False)).astype(np.int64) if with_cols else None
    n = 700 if cols is None else 400
    excl = sp.random(9, n, density=0.2, format="csr", random_state=1)
    excl.data[:] = 1
    excl.sort_indices()
    indptr, pos = excl.indptr.astype(np.int64), excl.indices.astype(np.int64)

    def run():  # type: ignore[no-untyped-def]
        return kernels.exact_topk(Q, X, 30, excl_indptr=indptr, excl_pos=pos, cols=cols)

    (a_ids, a_sc), (b_ids, b_sc) = _both_paths(monkeypatch, run)
    np.testing.assert_array_equal(a_ids, b_ids)
    np.testing.assert_array_equal(a_sc, b_sc)
    # and against a hand-rolled reference: float64 scores, ties to the lower position
    W = X if cols is None else X[cols]
    S = Q.astype(np.float64) @ W.T.astype(np.float64)
    S[np.repeat(np.arange(9), np.diff(indptr)), pos] = -np.inf
    monkeypatch.setattr(kernels, "NUMPY_SELECT_FLOATS", 1 << 40)
    for r in range(9):
        order = sorted((i for i in range(n) if np.isfinite(S[r, i])), key=lambda i: (-S[r, i], i))[:30]
        assert a_ids[r, : len(order)].tolist() == order
        assert (a_ids[r, len(order) :] == -1).all()
        # one query alone takes the einsum product: same positions and scores (integers are exact)
        one_ids, one_sc = kernels.exact_topk(
            Q[r : r + 1], X, 30, excl_indptr=indptr[r : r + 2] - indptr[r], excl_pos=pos[indptr[r] : indptr[r + 1]], cols=cols
        )
        np.testing.assert_array_equal(one_ids[0], a_ids[r])
        np.testing.assert_array_equal(one_sc[0], a_sc[r])


def test_every_item_excluded_gives_padding(monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator) -> None:
    X = rng.normal(size=(5, 3)).astype(np.float32)
    index = ItemIndex.build(X, metric="dot", kind="exact")
    excl = sp.csr_matrix(np.ones((1, 5)))
    (a_ids, a_sc), (b_ids, b_sc) = _both_paths(
        monkeypatch, lambda: index.search(rng.normal(size=(1, 3)).astype(np.float32), 3, exclude=excl)
    )
    assert a_ids.tolist() == b_ids.tolist() == [[-1, -1, -1]]
    assert np.isneginf(a_sc).all() and np.isneginf(b_sc).all()


def test_single_query_search_equals_batch(monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator) -> None:
    # a batch above the threshold takes the heap path, each single query the numpy path
    monkeypatch.setattr(kernels, "NUMPY_SELECT_FLOATS", 3000)
    X = rng.normal(size=(3000, 16)).astype(np.float32)
    Q = rng.normal(size=(20, 16)).astype(np.float32)
    seen = sp.random(20, 3000, density=0.02, format="csr", random_state=0)
    index = ItemIndex.build(X, metric="dot", kind="exact")
    ids, scores = index.search(Q, 10, exclude=seen)
    for i in range(20):
        one_ids, one_scores = index.search(Q[i : i + 1], 10, exclude=seen[i])
        np.testing.assert_array_equal(one_ids[0], ids[i])
        np.testing.assert_array_equal(one_scores[0], scores[i])
