"""ItemIndex: exact search against an independent brute force, approximate recall, filtering, persistence, errors."""

from __future__ import annotations

import io
import json
from typing import Any

import faiss
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.errors import ArtifactError, DataError, ParameterError
from recsys.index import ItemIndex
from recsys.index import _index as index_mod
from recsys.index import _kernels as kernels
from recsys.testing import assert_rankings_equal

METRICS = ["dot", "cosine", "l2"]
APPROX = ["ivf", "hnsw", "ivfpq"]


# -- independent reference ------------------------------------------------------------


def brute_scores(Q: np.ndarray, V: np.ndarray, metric: str, bias: np.ndarray | None = None) -> np.ndarray:
    Q = Q.astype(np.float64)
    V = V.astype(np.float64)
    if metric == "dot":
        S = Q @ V.T
        return S + bias[None, :] if bias is not None else S
    if metric == "cosine":
        qn = np.linalg.norm(Q, axis=1, keepdims=True)
        vn = np.linalg.norm(V, axis=1, keepdims=True)
        Qu = np.divide(Q, qn, out=np.zeros_like(Q), where=qn > 0)
        Vu = np.divide(V, vn, out=np.zeros_like(V), where=vn > 0)
        return Qu @ Vu.T
    return -np.sqrt(((Q[:, None, :] - V[None, :, :]) ** 2).sum(-1))


def brute_topk(
    Q: np.ndarray,
    V: np.ndarray,
    k: int,
    metric: str,
    *,
    bias: np.ndarray | None = None,
    exclude: Any = None,
    candidates: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row loop over a dense allowed mask: score desc, then lower index."""
    S = brute_scores(Q, V, metric, bias)
    nq, n = S.shape
    allowed = np.ones((nq, n), dtype=bool)
    if exclude is not None:
        allowed &= ~_pattern(exclude)
    if candidates is not None:
        if sp.issparse(candidates):
            allowed &= _pattern(candidates)
        else:
            m = np.zeros(n, dtype=bool)
            m[np.asarray(candidates)] = True
            allowed &= m[None, :]
    ids = np.full((nq, k), -1, dtype=np.int64)
    sc = np.full((nq, k), -np.inf)
    for r in range(nq):
        items = np.flatnonzero(allowed[r])
        order = items[np.lexsort((items, -S[r, items]))][:k]
        ids[r, : order.size] = order
        sc[r, : order.size] = S[r, order]
    return ids, sc


def _pattern(m: Any) -> np.ndarray:
    coo = sp.coo_matrix(m)
    out = np.zeros(coo.shape, dtype=bool)
    out[coo.row, coo.col] = True
    return out


def random_csr(rng: np.random.Generator, nq: int, n: int, per_row: int) -> sp.csr_matrix:
    rows, cols = [], []
    for r in range(nq):
        c = rng.choice(n, size=min(n, int(rng.integers(0, per_row + 1))), replace=False)
        rows += [r] * c.size
        cols += c.tolist()
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(nq, n))


def clustered(rng: np.random.Generator, n: int, dim: int, n_clusters: int = 30) -> np.ndarray:
    centres = rng.normal(size=(n_clusters, dim))
    return (centres[rng.integers(0, n_clusters, n)] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], *, exact_ties: bool = False) -> None:
    """Search results equal the brute force: same padding, scores within float32 error, and the same ids
    up to ties within that error (float32 search against a float64 reference). ``exact_ties``: the
    scores are small integers, exact in both, so ids must match exactly (the lower-index tie rule)."""
    assert got[0].dtype == np.int64 and got[1].dtype == np.float32
    if exact_ties:
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-4)
        return
    np.testing.assert_array_equal(got[0] < 0, want[0] < 0)  # same number of results per row
    for r in range(len(got[0])):
        ok = want[0][r] >= 0
        assert_rankings_equal(
            got[0][r][ok], got[1][r][ok], want[0][r][ok], want[1][r][ok],
            rtol=1e-4, atol=1e-4, truncated=bool(ok.all()), err_msg=f"row {r}",
        )  # a padded row holds every eligible item: its last tie group is compared too


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force many query and item blocks so block boundaries are exercised."""
    monkeypatch.setattr(kernels, "ITEM_BLOCK", 64)
    monkeypatch.setattr(kernels, "BLOCK_FLOATS", 64 * 16)
    monkeypatch.setattr(kernels, "GATHER_FLOATS", 256)
    monkeypatch.setattr(kernels, "PAIR_BLOCK", 50)


# -- exact search equals brute force --------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("blocks", [False, True])
def test_exact_equals_brute_force_with_filters(metric: str, blocks: bool, rng: np.random.Generator, request: pytest.FixtureRequest) -> None:
    if blocks:
        request.getfixturevalue("small_blocks")
    n, dim, nq, k = 700, 8, 40, 10
    V = rng.normal(size=(n, dim)).astype(np.float32)
    Q = rng.normal(size=(nq, dim)).astype(np.float32)
    index = ItemIndex.build(V, metric=metric, kind="exact")
    excl = random_csr(rng, nq, n, 60)
    cand1 = rng.choice(n, size=150, replace=False)
    cand2 = random_csr(rng, nq, n, 40)
    assert_same(index.search(Q, k), brute_topk(Q, V, k, metric))
    assert_same(index.search(Q, k, exclude=excl), brute_topk(Q, V, k, metric, exclude=excl))
    assert_same(index.search(Q, k, candidates=cand1), brute_topk(Q, V, k, metric, candidates=cand1))
    assert_same(index.search(Q, k, candidates=cand2), brute_topk(Q, V, k, metric, candidates=cand2))
    assert_same(
        index.search(Q, k, exclude=excl, candidates=cand1), brute_topk(Q, V, k, metric, exclude=excl, candidates=cand1)
    )
    assert_same(
        index.search(Q, k, exclude=excl, candidates=cand2), brute_topk(Q, V, k, metric, exclude=excl, candidates=cand2)
    )


def test_dot_with_bias_equals_brute_force(rng: np.random.Generator) -> None:
    V = rng.normal(size=(300, 6)).astype(np.float32)
    b = rng.normal(size=300).astype(np.float32) * 3
    Q = rng.normal(size=(20, 6)).astype(np.float32)
    excl = random_csr(rng, 20, 300, 30)
    index = ItemIndex.build(V, metric="dot", kind="exact", item_bias=b)
    assert index.has_bias
    assert_same(index.search(Q, 7, exclude=excl), brute_topk(Q, V, 7, "dot", bias=b, exclude=excl))
    # and approximately: the returned scores include the bias exactly
    approx = ItemIndex.build(V, metric="dot", kind="ivf", item_bias=b, nlist=4, nprobe=4)
    ids, sc = approx.search(Q, 7, exclude=excl)
    assert_same((ids, sc), brute_topk(Q, V, 7, "dot", bias=b, exclude=excl))


def test_ties_broken_by_lower_index_across_blocks(small_blocks: None, rng: np.random.Generator) -> None:
    # integer vectors with few distinct values: many exact ties, spread over many item blocks
    V = rng.integers(-1, 2, size=(500, 3)).astype(np.float32)
    Q = rng.integers(-1, 2, size=(30, 3)).astype(np.float32)
    excl = random_csr(rng, 30, 500, 100)
    index = ItemIndex.build(V, metric="dot", kind="exact")
    assert_same(index.search(Q, 25, exclude=excl), brute_topk(Q, V, 25, "dot", exclude=excl), exact_ties=True)
    ids, _ = index.search(np.zeros((1, 3)), 4)
    assert ids.tolist() == [[0, 1, 2, 3]]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    nq=st.integers(1, 6),
    k=st.integers(1, 50),
    metric=st.sampled_from(METRICS),
    seed=st.integers(0, 2**16),
)
def test_property_exact_matches_brute_force(n: int, nq: int, k: int, metric: str, seed: int) -> None:
    g = np.random.default_rng(seed)
    V = g.integers(-2, 3, size=(n, 3)).astype(np.float32)
    Q = g.integers(-2, 3, size=(nq, 3)).astype(np.float32)
    excl = random_csr(g, nq, n, n)
    index = ItemIndex.build(V, metric=metric, kind="exact")
    ids, sc = index.search(Q, k, exclude=excl)
    want_ids, want_sc = brute_topk(Q, V, k, metric, exclude=excl)
    np.testing.assert_allclose(sc, want_sc, rtol=1e-5, atol=1e-5)
    if metric == "dot":  # integer dot products are exact: ids must match including ties
        np.testing.assert_array_equal(ids, want_ids)
    assert not _pattern(excl)[np.arange(nq)[:, None].repeat(k, 1)[ids >= 0], ids[ids >= 0]].any()


# -- zero vectors, k beyond the catalogue, exclusion extremes ---------------------------


@pytest.mark.parametrize("metric", ["dot", "cosine", "l2"])
def test_exact_results_do_not_depend_on_the_batch(metric: str, rng: np.random.Generator) -> None:
    # float32 BLAS gives a query slightly different scores alone than inside a batch;
    # the exact kind must still return identical ids and scores (RecBole #1556)
    X = rng.normal(size=(3000, 32)).astype(np.float32)
    Q = rng.normal(size=(64, 32)).astype(np.float32)
    seen = sp.random(64, 3000, density=0.01, format="csr", random_state=0)
    index = ItemIndex.build(X, metric=metric, kind="exact")
    ids, scores = index.search(Q, 10, exclude=seen)
    for i in range(64):
        one_ids, one_scores = index.search(Q[i : i + 1], 10, exclude=seen[i])
        np.testing.assert_array_equal(one_ids[0], ids[i])
        np.testing.assert_array_equal(one_scores[0], scores[i])
    # and the scores are the float64 values rounded once
    ref = (Q.astype(np.float64) @ X.T.astype(np.float64)) if metric == "dot" else None
    if ref is not None:
        # (within one float32 step: numpy's float64 product may sum in another order than the index's)
        np.testing.assert_array_max_ulp(scores, np.take_along_axis(ref, ids, axis=1).astype(np.float32), maxulp=1)


@pytest.mark.parametrize("kind", ["exact", *APPROX])
def test_cosine_zero_vectors_score_zero(kind: str, rng: np.random.Generator) -> None:
    V = clustered(rng, 2000, 8)
    V[[3, 10, 500]] = 0.0
    index = ItemIndex.build(V, metric="cosine", kind=kind, **({"nlist": 10} if kind != "exact" and kind != "hnsw" else {}))
    ids, sc = index.search(np.zeros((2, 8)), 5)  # zero query: cosine 0 with every item, ties by index
    assert ids.tolist() == [[0, 1, 2, 3, 4]] * 2
    assert np.all(sc == 0.0)
    # zero items score exactly 0 against any query
    Q = rng.normal(size=(4, 8)).astype(np.float32)
    cand = sp.csr_matrix((np.ones(12), (np.repeat(np.arange(4), 3), np.tile([3, 10, 500], 4))), shape=(4, 2000))
    ids, sc = index.search(Q, 3, candidates=cand)
    assert sorted(ids[0].tolist()) == [3, 10, 500]
    assert np.all(sc == 0.0)


def test_dot_zero_query_and_zero_items(rng: np.random.Generator) -> None:
    V = np.zeros((60, 4), dtype=np.float32)
    index = ItemIndex.build(V, metric="dot", kind="exact")
    ids, sc = index.search(rng.normal(size=(2, 4)), 3)
    assert ids.tolist() == [[0, 1, 2]] * 2 and np.all(sc == 0)


@pytest.mark.parametrize("kind", ["exact", *APPROX])
def test_k_larger_than_catalogue_is_padded(kind: str, rng: np.random.Generator) -> None:
    n = 200
    V = rng.normal(size=(n, 4)).astype(np.float32)
    Q = rng.normal(size=(3, 4)).astype(np.float32)
    params = {"nlist": 4} if kind in ("ivf", "ivfpq") else {}
    index = ItemIndex.build(V, metric="dot", kind=kind, **params)
    excl = sp.csr_matrix((np.ones(2), ([0, 0], [5, 7])), shape=(3, n))
    ids, sc = index.search(Q, n + 50, exclude=excl)
    want = brute_topk(Q, V, n + 50, "dot", exclude=excl)
    assert_same((ids, sc), want)
    assert (ids[0] == -1).sum() == 52 and (ids[1] == -1).sum() == 50
    assert np.all(np.isneginf(sc[ids == -1]))


@pytest.mark.parametrize("kind", ["exact", *APPROX])
@pytest.mark.parametrize("metric", METRICS)
def test_empty_and_very_long_exclusion_rows(kind: str, metric: str, rng: np.random.Generator) -> None:
    n, k = 1500, 10
    V = clustered(rng, n, 8)
    Q = clustered(rng, 6, 8)
    params = {"nlist": 12, "nprobe": 4} if kind in ("ivf", "ivfpq") else {}
    index = ItemIndex.build(V, metric=metric, kind=kind, **params)
    dense = np.zeros((6, n), dtype=np.float32)
    dense[1, :] = 1  # everything excluded
    dense[2, 3:] = 1  # all but items 0, 1, 2
    dense[3, rng.choice(n, 1000, replace=False)] = 1  # a long history
    dense[4, :: 2] = 1
    excl = sp.csr_matrix(dense)  # row 0 and 5 empty
    ids, sc = index.search(Q, k, exclude=excl)
    assert ids[1].tolist() == [-1] * k and np.all(np.isneginf(sc[1]))
    assert sorted(ids[2][:3].tolist()) == [0, 1, 2] and ids[2][3:].tolist() == [-1] * 7
    for r in range(6):
        got = ids[r][ids[r] >= 0]
        assert not dense[r, got].any()
        assert got.size == min(k, int((dense[r] == 0).sum()))
    # rows answered exactly (long histories fall back to exact search) equal brute force
    want = brute_topk(Q, V, k, metric, exclude=excl)
    assert_same((ids[1:4], sc[1:4]), (want[0][1:4], want[1][1:4]))


def test_empty_query_batch_and_empty_candidates(rng: np.random.Generator) -> None:
    index = ItemIndex.build(rng.normal(size=(30, 4)), kind="exact")
    ids, sc = index.search(np.zeros((0, 4)), 5)
    assert ids.shape == (0, 5) and sc.shape == (0, 5)
    ids, sc = index.search(rng.normal(size=(2, 4)), 3, candidates=np.array([], dtype=np.int64))
    assert ids.tolist() == [[-1] * 3] * 2
    mask = np.zeros(30, dtype=bool)
    mask[[4, 9]] = True
    ids, _ = index.search(rng.normal(size=(2, 4)), 3, candidates=mask)
    assert sorted(ids[0][:2].tolist()) == [4, 9] and ids[0][2] == -1


def test_exclude_is_not_modified_and_duplicates_ok(rng: np.random.Generator) -> None:
    V = rng.normal(size=(50, 4)).astype(np.float32)
    Q = rng.normal(size=(2, 4)).astype(np.float32)
    excl = sp.csr_matrix((np.array([1.0, 1.0, 2.0]), np.array([9, 3, 9]), np.array([0, 3, 3])), shape=(2, 50))
    before = (excl.indices.copy(), excl.data.copy())
    index = ItemIndex.build(V, kind="exact")
    ids, _ = index.search(Q, 50, exclude=excl)
    assert not np.isin(ids[0], [3, 9]).any() and (ids[0] >= 0).sum() == 48
    np.testing.assert_array_equal(excl.indices, before[0])
    np.testing.assert_array_equal(excl.data, before[1])


# -- small query blocks: numpy selection equals the faiss heaps --------------------------------
# Small blocks skip faiss' OpenMP heaps because, right after a threaded OpenBLAS product, the OpenMP
# region waited milliseconds for a core (recommend_one of embedding models went from ~0.8 ms to ~35 ms
# on 2 cores). The two paths must stay interchangeable: same ids, same scores, same tie rule.


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


# -- approximate kinds ---------------------------------------------------------------------


def recall_at(ids: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum()) for a, b in zip(ids, truth)]
    return float(np.mean(hits))


@pytest.mark.parametrize("kind", APPROX)
@pytest.mark.parametrize("metric", METRICS)
def test_approximate_recall_and_exact_scores(kind: str, metric: str, rng: np.random.Generator) -> None:
    n, k = 3000, 10
    V = clustered(rng, n, 16)
    Q = clustered(rng, 100, 16)
    excl = random_csr(rng, 100, n, 20)
    index = ItemIndex.build(V, metric=metric, kind=kind)  # default parameters
    assert index.kind == kind
    ids, sc = index.search(Q, k, exclude=excl)
    truth, _ = brute_topk(Q, V, k, metric, exclude=excl)
    assert recall_at(ids, truth) >= 0.9
    # returned scores are the exact scores of the returned items, sorted
    S = brute_scores(Q, V, metric)
    np.testing.assert_allclose(sc, np.take_along_axis(S, ids, axis=1), rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(sc, axis=1) <= 1e-6)
    assert not _pattern(excl)[np.arange(100)[:, None].repeat(k, 1), ids].any()
    assert np.all(ids >= 0)


@pytest.mark.parametrize("kind", APPROX)
def test_approximate_with_candidate_selector(kind: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_mod, "SUBSET_EXACT_MAX", 10)  # force the faiss IDSelector path
    n, k = 3000, 10
    V = clustered(rng, n, 16)
    Q = clustered(rng, 50, 16)
    cand = rng.choice(n, 1500, replace=False)
    excl = random_csr(rng, 50, n, 30)
    index = ItemIndex.build(V, metric="dot", kind=kind)
    ids, sc = index.search(Q, k, exclude=excl, candidates=cand)
    truth, _ = brute_topk(Q, V, k, "dot", exclude=excl, candidates=cand)
    assert np.isin(ids, cand).all()
    assert not _pattern(excl)[np.arange(50)[:, None].repeat(k, 1), ids].any()
    assert recall_at(ids, truth) >= 0.9


def test_short_approximate_rows_are_filled_exactly(rng: np.random.Generator) -> None:
    # nprobe=1 on a fine IVF leaves lists with fewer than k items: rows must still be filled
    V = clustered(rng, 600, 4, n_clusters=100)
    Q = clustered(rng, 20, 4, n_clusters=100)
    index = ItemIndex.build(V, metric="l2", kind="ivf", nlist=150, nprobe=1, train_size=600)
    ids, sc = index.search(Q, 30)
    assert np.all(ids >= 0)
    np.testing.assert_allclose(sc, np.take_along_axis(brute_scores(Q, V, "l2"), ids, axis=1), rtol=1e-4, atol=1e-4)


def test_search_params_change_results_quality(rng: np.random.Generator) -> None:
    V = clustered(rng, 3000, 16, n_clusters=200)
    Q = clustered(rng, 100, 16, n_clusters=200)
    truth, _ = brute_topk(Q, V, 10, "dot")
    index = ItemIndex.build(V, kind="ivf", nlist=50, nprobe=1)
    low = recall_at(index.search(Q, 10)[0], truth)
    index.set_search_params(nprobe=50)  # all lists: exact
    assert recall_at(index.search(Q, 10)[0], truth) == 1.0 > low
    h = ItemIndex.build(V, kind="hnsw", M=8, ef_search=8)
    h.set_search_params(ef_search=200)
    assert h.params["ef_search"] == 200 and recall_at(h.search(Q, 10)[0], truth) >= 0.95


def test_auto_kind(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    V = rng.normal(size=(400, 4)).astype(np.float32)
    assert ItemIndex.build(V).kind == "exact"
    assert ItemIndex.build(V, nprobe=2).params == {}  # approximate params ignored when exact is chosen
    monkeypatch.setattr(index_mod, "AUTO_EXACT_MAX", 100)
    index = ItemIndex.build(V, nprobe=2)
    assert index.kind == "ivf" and index.params["nprobe"] == 2 and index.params["nlist"] == 10


def test_threads_are_limited_then_restored(rng: np.random.Generator) -> None:
    V = rng.normal(size=(300, 4)).astype(np.float32)
    before = faiss.omp_get_max_threads()
    index = ItemIndex.build(V, kind="ivf", nlist=4, threads=1)
    assert index.threads == 1 and faiss.omp_get_max_threads() == before
    Q = rng.normal(size=(5, 4)).astype(np.float32)
    one = index.search(Q, 5)
    index.set_threads(None)
    assert_same(index.search(Q, 5), one)
    assert faiss.omp_get_max_threads() == before


@pytest.mark.gpu
def test_gpu_index_used_when_available(rng: np.random.Generator) -> None:  # pragma: no cover
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
        pytest.skip("faiss has no GPU support here")
    V = clustered(rng, 3000, 16)
    Q = clustered(rng, 20, 16)
    index = ItemIndex.build(V, kind="ivf", nlist=20, nprobe=20)
    assert index.on_gpu
    assert_same(index.search(Q, 10), brute_topk(Q, V, 10, "dot"))


# -- persistence ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["exact", *APPROX])
@pytest.mark.parametrize("metric", METRICS)
def test_save_load_round_trip(kind: str, metric: str, rng: np.random.Generator) -> None:
    V = clustered(rng, 1000, 8)
    Q = clustered(rng, 30, 8)
    params = {"nlist": 8} if kind in ("ivf", "ivfpq") else {}
    bias = rng.normal(size=1000) if metric == "dot" else None
    index = ItemIndex.build(V, metric=metric, kind=kind, item_bias=bias, **params)
    excl = random_csr(rng, 30, 1000, 15)
    config = json.loads(json.dumps(index.get_config()))
    buf = io.BytesIO()
    np.savez(buf, **index.to_arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    again = ItemIndex.from_arrays(config, arrays)
    assert (again.kind, again.metric, again.n_items, again.dim, again.params) == (
        index.kind, index.metric, index.n_items, index.dim, index.params
    )
    assert_same(again.search(Q, 10, exclude=excl), index.search(Q, 10, exclude=excl))


def _artifact(kind: str = "ivf", **kw: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    V = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    index = ItemIndex.build(V, kind=kind, **({"nlist": 4} if kind == "ivf" else {}), **kw)
    return index.get_config(), index.to_arrays()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda c, a: c.update(format="other"), "format"),
        (lambda c, a: c.update(version=99), "version"),
        (lambda c, a: c.update(metric="manhattan"), "metric"),
        (lambda c, a: c.update(kind="annoy"), "kind"),
        (lambda c, a: c.update(n_items=201), r"float32 of shape \(201, 4\)"),
        (lambda c, a: c.update(dim=5), r"shape \(200, 5\)"),
        (lambda c, a: c.update(has_bias=True), r"shape \(200, 5\)"),
        (lambda c, a: c.update(kind="hnsw", params={"M": 32, "ef_construction": 40, "ef_search": 64}), "IndexIVFFlat"),
        (lambda c, a: c.update(kind="exact", params={}), "exactly"),
        (lambda c, a: c["params"].update(nlist=5), "nlist=4"),
        (lambda c, a: c["params"].update(bogus=1), "unknown parameter"),
        (lambda c, a: c["params"].pop("nprobe"), "incomplete"),
        (lambda c, a: a.pop("faiss_index"), "exactly"),
        (lambda c, a: a.update(faiss_index=np.zeros(10, dtype=np.uint8)), "deserialised"),
        (lambda c, a: a.update(faiss_index=a["faiss_index"].astype(np.int64)), "uint8"),
        (lambda c, a: a.update(matrix=a["matrix"].astype(np.float64)), "float32"),
        (lambda c, a: a["matrix"].__setitem__((3, 1), np.nan), "NaN"),
    ],
)
def test_from_arrays_rejects_mismatches(mutate: Any, match: str) -> None:
    config, arrays = _artifact()
    arrays = {k: v.copy() for k, v in arrays.items()}
    mutate(config, arrays)
    with pytest.raises(ArtifactError, match=match):
        ItemIndex.from_arrays(config, arrays)


def test_from_arrays_rejects_other_faiss_index() -> None:
    config, arrays = _artifact()
    other = faiss.IndexFlatL2(5)
    other.add(np.zeros((200, 5), dtype=np.float32))
    arrays["faiss_index"] = faiss.serialize_index(other)
    with pytest.raises(ArtifactError, match="IndexFlatL2"):
        ItemIndex.from_arrays(config, arrays)
    config, arrays = _artifact()
    small = ItemIndex.build(np.zeros((100, 4)) + 1, kind="ivf", nlist=4)
    arrays["faiss_index"] = small.to_arrays()["faiss_index"]
    with pytest.raises(ArtifactError, match="holds 100 vectors"):
        ItemIndex.from_arrays(config, arrays)


# -- errors ------------------------------------------------------------------------------------


def test_build_errors(rng: np.random.Generator) -> None:
    V = rng.normal(size=(50, 4))
    with pytest.raises(ParameterError, match="'metric' parameter of ItemIndex.build must be one of"):
        ItemIndex.build(V, metric="ip")
    with pytest.raises(ParameterError, match="'kind' parameter of ItemIndex.build must be one of"):
        ItemIndex.build(V, kind="flat")
    with pytest.raises(DataError, match=r"2-D array of shape \(n, dim\). Got an array of shape \(4,\)"):
        ItemIndex.build(np.ones(4))
    with pytest.raises(DataError, match="must hold at least one item"):
        ItemIndex.build(np.ones((0, 4)))
    with pytest.raises(DataError, match="numeric"):
        ItemIndex.build(np.array([["a", "b"]]))
    bad = V.copy()
    bad[7, 2] = np.nan
    with pytest.raises(DataError, match="item_vectors of ItemIndex.build must be finite.*Row 7 holds nan"):
        ItemIndex.build(bad)
    with pytest.raises(DataError, match="Row 3 holds inf"):
        ItemIndex.build(np.vstack([V[:3], [[1e39, 0, 0, 0]]]))  # float32 overflow
    with pytest.raises(ParameterError, match="only supported with metric='dot'"):
        ItemIndex.build(V, metric="cosine", item_bias=np.zeros(50))
    with pytest.raises(DataError, match=r"item_bias of ItemIndex.build must have shape \(50,\)"):
        ItemIndex.build(V, item_bias=np.zeros(49))
    with pytest.raises(DataError, match="item_bias .* Row 2 holds"):
        ItemIndex.build(V, item_bias=np.array([0, 0, np.inf] + [0] * 47))
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['nprobe'\] for kind='hnsw'"):
        ItemIndex.build(V, kind="hnsw", nprobe=3)
    with pytest.raises(ParameterError, match="unknown parameter"):
        ItemIndex.build(V, kind="exact", nlist=3)
    with pytest.raises(ParameterError, match=r"'nlist' parameter of ItemIndex.build must be an int in \[1, 50\]. Got 51"):
        ItemIndex.build(V, kind="ivf", nlist=51)
    with pytest.raises(ParameterError, match=r"'nprobe' .* in \[1, 4\]. Got 5"):
        ItemIndex.build(V, kind="ivf", nlist=4, nprobe=5)
    with pytest.raises(ParameterError, match="'M' parameter .* Got 2.5"):
        ItemIndex.build(V, kind="hnsw", M=2.5)
    with pytest.raises(ParameterError, match="'train_size' .* must be >= 10"):
        ItemIndex.build(V, kind="ivf", nlist=10, train_size=5)
    with pytest.raises(ParameterError, match="'threads' parameter of ItemIndex.build must be an int >= 1. Got 0"):
        ItemIndex.build(V, threads=0)


def test_search_errors(rng: np.random.Generator) -> None:
    index = ItemIndex.build(rng.normal(size=(50, 4)), kind="exact")
    Q = rng.normal(size=(3, 4))
    with pytest.raises(ParameterError, match="The 'k' parameter of ItemIndex.search must be an int >= 1. Got 0 instead."):
        index.search(Q, 0)
    with pytest.raises(ParameterError, match="Got True"):
        index.search(Q, True)
    with pytest.raises(ParameterError, match="Got 2.0"):
        index.search(Q, 2.0)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"must have 4 columns \(the index dimension\). Got shape \(3, 5\)"):
        index.search(rng.normal(size=(3, 5)), 2)
    with pytest.raises(DataError, match=r"reshape\(1, -1\)"):
        index.search(np.ones(4), 2)
    bad = Q.copy()
    bad[2, 0] = np.inf
    with pytest.raises(DataError, match="query_vectors of ItemIndex.search must be finite.*Row 2 holds inf"):
        index.search(bad, 2)
    with pytest.raises(DataError, match=r"exclude of ItemIndex.search must have shape \(n_queries, n_items\) = \(3, 50\). Got \(2, 50\)"):
        index.search(Q, 2, exclude=sp.csr_matrix((2, 50)))
    with pytest.raises(DataError, match="exclude of ItemIndex.search must be a scipy.sparse matrix"):
        index.search(Q, 2, exclude=np.zeros((3, 50)))
    with pytest.raises(DataError, match=r"candidates .* holds item index 50 at position 1, outside \[0, 50\)"):
        index.search(Q, 2, candidates=np.array([3, 50]))
    with pytest.raises(DataError, match=r"candidates .* Got an array of shape \(3, 50\)"):
        index.search(Q, 2, candidates=np.zeros((3, 50), dtype=int))
    with pytest.raises(DataError, match="integer item indices"):
        index.search(Q, 2, candidates=np.array([1.0, 2.0]))
    with pytest.raises(DataError, match="boolean candidates mask .* length n_items=50"):
        index.search(Q, 2, candidates=np.ones(49, dtype=bool))
    with pytest.raises(DataError, match=r"candidates .* shape \(n_queries, n_items\) = \(3, 50\). Got \(3, 49\)"):
        index.search(Q, 2, candidates=sp.csr_matrix((3, 49)))
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['nprobe'\] for kind='exact'; valid: none"):
        index.set_search_params(nprobe=3)
    with pytest.raises(ParameterError, match="'threads' parameter of ItemIndex.set_threads"):
        index.set_threads(-1)
    ivf = ItemIndex.build(rng.normal(size=(50, 4)), kind="ivf", nlist=4)
    with pytest.raises(ParameterError, match=r"'nprobe' .* in \[1, 4\]. Got 9"):
        ivf.set_search_params(nprobe=9)


def test_large_query_batch_is_chunked(small_blocks: None, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_mod, "FETCH_FLOATS", 64)
    V = clustered(rng, 800, 8)
    Q = clustered(rng, 300, 8)
    excl = random_csr(rng, 300, 800, 10)
    want = brute_topk(Q, V, 5, "dot", exclude=excl)
    assert_same(ItemIndex.build(V, kind="exact").search(Q, 5, exclude=excl), want)
    ivf = ItemIndex.build(V, kind="ivf", nlist=4, nprobe=4)  # all lists probed: exact answers
    assert_same(ivf.search(Q, 5, exclude=excl), want)


def test_repr_and_properties(rng: np.random.Generator) -> None:
    index = ItemIndex.build(rng.normal(size=(100, 3)), metric="l2", kind="ivf", nlist=5, nprobe=2)
    assert (index.n_items, index.dim, index.metric, index.kind, index.on_gpu) == (100, 3, "l2", "ivf", False)
    assert "nlist=5" in repr(index) and "nprobe=2" in repr(index)
