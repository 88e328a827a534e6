"""ItemKNN, UserKNN and the sparse k-NN graph, checked against dense brute-force references."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recsys import Interactions
from recsys.errors import DataError, NotSupportedError, ParameterError, UnknownIdError
from recsys.models import ItemKNN, UserKNN
from recsys.models._similarity import (
    centre_cols,
    centre_rows,
    csr_from_sorted,
    idf_of,
    knn_graph,
    mean_length_of,
    weight_profiles,
)
from recsys.testing import assert_rankings_equal, tiny_interactions

# -- dense references ----------------------------------------------------------------------


def ref_graph(m: np.ndarray, k: int, shrinkage: float = 0.0) -> np.ndarray:
    """Dense k-NN graph: shrunk cosine, self excluded, positive only, k best, ties to the lower column."""
    m = m.astype(np.float64)
    norms = np.sqrt((m * m).sum(1))
    s = m @ m.T
    den = np.outer(norms, norms) + shrinkage
    s = np.divide(s, den, out=np.zeros_like(s), where=den > 0)
    np.fill_diagonal(s, 0.0)
    out = np.zeros_like(s)
    for a in range(len(s)):
        cand = [b for b in np.lexsort((np.arange(len(s)), -s[a])) if s[a, b] > 0][:k]
        out[a, cand] = s[a, cand]
    return out


def exact_neighbours(m: np.ndarray, k: int) -> list[list[int]]:
    """Each row's k most similar other rows by EXACT cosine (integer matrix, no shrinkage, no weighting).

    cos(a, b)^2 = <a, b>^2 / (|a|^2 |b|^2) is a ratio of integers: compared as fractions, mathematically
    equal cosines are equal, so the documented rule (positive only, k best, ties to the lower index) is
    applied without any float rounding.
    """
    mi = m.astype(np.int64)
    dots = mi @ mi.T
    sq = np.diag(dots)
    out = []
    for a in range(len(mi)):
        cands = [(-Fraction(int(dots[a, b]) ** 2, int(sq[a] * sq[b])), b) for b in range(len(mi)) if b != a and dots[a, b] > 0]
        out.append(sorted(b for _, b in sorted(cands)[:k]))
    return out


def ref_weight(m: np.ndarray, scheme: str, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    n = m.shape[0]
    df = (m != 0).sum(0)
    idf = np.where(df > 0, np.log(n / np.maximum(df, 1)), 0.0)
    if scheme == "none":
        return m.astype(np.float64)
    if scheme == "tfidf":
        return np.sign(m) * np.sqrt(np.abs(m)) * idf[None, :]
    lengths = np.abs(m).sum(1)
    norm = 1 - b + b * lengths / lengths[lengths > 0].mean()
    return m * (k1 + 1) / (k1 * norm[:, None] + np.abs(m)) * idf[None, :] * (m != 0)


def frame_data(matrix: np.ndarray, ratings: bool = False) -> Interactions:
    u, i = np.nonzero(matrix)
    df = pd.DataFrame({"user": u, "item": i})
    if ratings:
        df["rating"] = matrix[u, i].astype(float)
        return Interactions.from_frame(df, rating_col="rating")
    return Interactions.from_frame(df)


def random_binary(rng: np.random.Generator, n_users: int = 30, n_items: int = 25, p: float = 0.25) -> np.ndarray:
    m = (rng.random((n_users, n_items)) < p).astype(np.float32)
    m[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0  # every user has an item
    m[rng.integers(0, n_users, n_items), np.arange(n_items)] = 1.0  # every item has a user
    return m


def internal_dense(data: Interactions, m: np.ndarray) -> np.ndarray:
    """``m`` (indexed by external ids 0..n) reordered to the internal indices of ``data``."""
    return m[np.ix_(data.users.ids.astype(int), data.items.ids.astype(int))]


# -- the graph --------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 14),
    d=st.integers(1, 9),
    k=st.integers(1, 6),
    shrinkage=st.sampled_from([0.0, 2.0]),
    block=st.sampled_from([1, 7, 1 << 20]),
)
def test_knn_graph_matches_brute_force(seed: int, n: int, d: int, k: int, shrinkage: float, block: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.integers(0, 3, (n, d)).astype(np.float32) * (rng.random((n, d)) < 0.5)
    g = knn_graph(sp.csr_matrix(m), k, shrinkage, block_entries=block)
    ref = ref_graph(m, k, shrinkage)
    assert g.shape == (n, n) and g.has_sorted_indices
    got = g.toarray()
    # Same kept sets except at float near-ties; same values.
    for a in range(n):
        mine, theirs = set(np.flatnonzero(got[a])), set(np.flatnonzero(ref[a]))
        if mine != theirs:
            pos = np.sort(ref_graph(m, n, shrinkage)[a])[::-1]
            assert len(mine) == len(theirs) and abs(pos[k - 1] - pos[k]) < 1e-5
    np.testing.assert_allclose(got[got > 0], ref_graph(m, n, shrinkage)[got > 0], rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 30),
    d=st.integers(1, 12),
    k=st.integers(1, 6),
    top=st.sampled_from([1, 2, 5]),
    block=st.sampled_from([1, 7, 1 << 20]),
)
def test_knn_graph_without_shrinkage_keeps_the_exact_neighbours(seed: int, n: int, d: int, k: int, top: int, block: int) -> None:
    # binary (top=1) and rated (top=5) profiles: mathematically equal cosines must tie exactly, so the
    # kept set is the exact one, ties to the lower index, in the dense and the sparse selection paths
    rng = np.random.default_rng(seed)
    m = rng.integers(0, top + 1, (n, d)).astype(np.float32) * (rng.random((n, d)) < 0.5)
    g = knn_graph(sp.csr_matrix(m), k, 0.0, block_entries=block)
    got = [g.indices[g.indptr[a] : g.indptr[a + 1]].tolist() for a in range(n)]
    assert got == exact_neighbours(m, k)
    np.testing.assert_allclose(g.toarray(), ref_graph(m, n) * (g.toarray() > 0), rtol=1e-6)


@pytest.mark.parametrize("top", [1, 3])
@pytest.mark.parametrize("k", [1, 4, 12])
@pytest.mark.parametrize("block", [1 << 20, 1])
def test_knn_graph_long_rows_keep_the_exact_neighbours(top: int, k: int, block: int) -> None:
    # Rows of the product far longer than k: the sparse path prunes them by a chunk-maxima bound and the
    # dense path by float32 keys before the exact cosine; the kept sets must still be the exact ones,
    # ties (many, with binary profiles) to the lower index.
    rng = np.random.default_rng(100 * top + k)
    m = rng.integers(1, top + 1, (160, 24)).astype(np.float32) * (rng.random((160, 24)) < 0.3)
    g = knn_graph(sp.csr_matrix(m), k, 0.0, block_entries=block)
    got = [g.indices[g.indptr[a] : g.indptr[a + 1]].tolist() for a in range(len(m))]
    assert got == exact_neighbours(m, k)
    assert max(len(r) for r in got) == k


@pytest.mark.parametrize("block", [1 << 20, 1])
def test_knn_graph_long_rows_with_shrinkage_match_brute_force(block: int) -> None:
    rng = np.random.default_rng(7)
    m = rng.random((150, 20)).astype(np.float32) * (rng.random((150, 20)) < 0.4)
    g = knn_graph(sp.csr_matrix(m), 5, 3.0, block_entries=block).toarray()
    ref = ref_graph(m, 5, 3.0)
    np.testing.assert_array_equal(g > 0, ref > 0)
    np.testing.assert_allclose(g, ref, rtol=1e-6)


def test_knn_graph_ties_go_to_lower_index_in_dense_and_sparse_paths() -> None:
    # Rows 1, 2 and 3 are identical, so each is equally similar to row 0.
    m = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    dense = knn_graph(sp.csr_matrix(m), k=2)
    sparse = knn_graph(sp.csr_matrix(m), k=2, block_entries=1)
    for g in (dense, sparse):
        rows = [g.indices[g.indptr[a] : g.indptr[a + 1]].tolist() for a in range(5)]
        assert rows == [[1, 2], [2, 3], [1, 3], [1, 2], []]
        np.testing.assert_allclose(g[0, 1], 1 / np.sqrt(2), rtol=1e-6)


def test_knn_graph_does_not_modify_its_input_and_ignores_negative_similarities() -> None:
    m = sp.csr_matrix(np.array([[1.0, -1.0], [1.0, 1.0], [2.0, -2.0]], dtype=np.float32))
    before = m.toarray().copy()
    g = knn_graph(m, k=5)
    np.testing.assert_array_equal(m.toarray(), before)
    # rows 0 and 2 point the same way (cosine 1); row 1 is orthogonal to both: no neighbour
    assert g.toarray().round(6).tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]


def test_csr_from_sorted_uses_int64_only_when_needed() -> None:
    small = csr_from_sorted(np.array([0]), np.array([1]), np.array([1.0], np.float32), (2, 2))
    assert small.indptr.dtype == np.int32 and small.toarray().tolist() == [[0, 1], [0, 0]]
    big = csr_from_sorted(np.array([0]), np.array([2**31]), np.array([1.0], np.float32), (1, 2**31 + 1))
    assert big.indptr.dtype == np.int64 and big.indices.dtype == np.int64 and big.indices.tolist() == [2**31]


@pytest.mark.parametrize("scheme", ["none", "tfidf", "bm25"])
def test_weight_profiles_match_the_formulas(scheme: str, rng: np.random.Generator) -> None:
    m = rng.integers(0, 4, (8, 6)).astype(np.float32) * (rng.random((8, 6)) < 0.6)
    m[0] = 0.0
    s = sp.csr_matrix(m)
    got = weight_profiles(s, scheme, idf_of(s), mean_length_of(s)).toarray()  # type: ignore[arg-type]
    np.testing.assert_allclose(got, ref_weight(m, scheme), rtol=1e-5, atol=1e-6)


def test_centring_subtracts_means_of_stored_entries_only() -> None:
    m = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [4.0, 0.0, 2.0]], dtype=np.float32))
    rows, means = centre_rows(m)
    assert means.tolist() == [2.0, 0.0, 3.0]
    assert rows.toarray().tolist() == [[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, -1.0]]
    assert rows.nnz == m.nnz  # explicit zeros kept: the pattern is unchanged
    cols, cmeans = centre_cols(m)
    assert cmeans.tolist() == [2.5, 3.0, 2.0]
    assert cols.toarray().tolist() == [[-1.5, 0.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0]]


# -- ItemKNN -------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighting", ["none", "tfidf", "bm25"])
@pytest.mark.parametrize("shrinkage", [0.0, 3.0])
def test_itemknn_scores_match_dense_reference(weighting: str, shrinkage: float, rng: np.random.Generator) -> None:
    m = random_binary(rng)
    data = frame_data(m)
    x = internal_dense(data, m)
    model = ItemKNN(k=4, weighting=weighting, shrinkage=shrinkage).fit(data)  # type: ignore[arg-type]
    graph = ref_graph(ref_weight(x.T, weighting), 4, shrinkage)  # row j: neighbours of item j
    expected = x @ graph.T
    got = model._score(np.arange(data.n_users, dtype=np.int32), None)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # score() on pairs agrees, and restricted candidates keep their scores
    cols = np.array([3, 0, 7], dtype=np.int32)
    np.testing.assert_allclose(model._score(np.array([2, 5], dtype=np.int32), cols), expected[[2, 5]][:, cols], rtol=1e-4, atol=1e-5)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 8))
@example(seed=24, k=4).via("seed failing before mathematically equal cosines were computed equal")
@example(seed=47, k=4).via("idem")
@example(seed=74, k=4).via("idem")
@example(seed=125, k=4).via("idem")
@example(seed=172, k=4).via("idem")
@example(seed=173, k=4).via("idem")
@example(seed=294, k=4).via("idem")
def test_itemknn_reference_holds_at_every_seed(seed: int, k: int) -> None:
    # the dense-reference test below at any seed: 'none' weighting and no shrinkage on binary data,
    # against the exact (rational) neighbour sets. Before, 7 of seeds 0..299 failed: two equal cosines
    # such as 2/sqrt(4*6) and 2/sqrt(3*8) differed by one float32 step and the higher index was kept.
    m = random_binary(np.random.default_rng(seed))
    data = frame_data(m)
    x = internal_dense(data, m)
    model = ItemKNN(k=k, weighting="none", shrinkage=0.0).fit(data)
    g = model.neighbours_
    assert [g.indices[g.indptr[j] : g.indptr[j + 1]].tolist() for j in range(data.n_items)] == exact_neighbours(x.T, k)
    graph = ref_graph(x.T, data.n_items) * (g.toarray() > 0)  # float64 cosines of the exact kept pairs
    np.testing.assert_allclose(model._score(np.arange(data.n_users, dtype=np.int32), None), x @ graph.T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weighting", ["none", "bm25"])
def test_itemknn_history_neighbours_spread_each_history_items_own_list(weighting: str, rng: np.random.Generator) -> None:
    m = random_binary(rng)
    data = frame_data(m)
    x = internal_dense(data, m)
    model = ItemKNN(k=3, weighting=weighting, neighbours_of="history").fit(data)  # type: ignore[arg-type]
    graph = ref_graph(ref_weight(x.T, weighting), 3, 50.0)  # row i: the neighbours of item i
    expected = x @ graph  # score(u, j) = sum over history items i of sim(i, j), j among i's neighbours
    users = np.arange(data.n_users, dtype=np.int32)
    np.testing.assert_allclose(model._score(users, None), expected, rtol=1e-4, atol=1e-5)
    # fold-in and known users agree, as in the default mode
    csr = data.matrix()
    hist = data.items.ids[csr.indices[csr.indptr[3] : csr.indptr[4]]]
    assert_rankings_equal(*model.recommend_history(hist, k=5), *model.recommend_one(data.users.ids[3], k=5), rtol=1e-6)


def test_itemknn_both_neighbour_modes_agree_when_every_item_keeps_every_neighbour(rng: np.random.Generator) -> None:
    # Symmetric cosines and k >= n_items: each item's list is the other's transpose, so the sums coincide.
    data = frame_data(random_binary(rng))
    users = np.arange(data.n_users, dtype=np.int32)
    a = ItemKNN(k=data.n_items, weighting="none", shrinkage=0.0).fit(data)._score(users, None)
    b = ItemKNN(k=data.n_items, weighting="none", shrinkage=0.0, neighbours_of="history").fit(data)._score(users, None)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # with few neighbours they differ (otherwise the parameter would do nothing)
    c = ItemKNN(k=1, weighting="none", shrinkage=0.0).fit(data)._score(users, None)
    d = ItemKNN(k=1, weighting="none", shrinkage=0.0, neighbours_of="history").fit(data)._score(users, None)
    assert not np.allclose(c, d)


def test_itemknn_fold_in_equals_known_user_and_similar_items_lists_neighbours(rng: np.random.Generator) -> None:
    m = random_binary(rng)
    data = frame_data(m)
    model = ItemKNN(k=5).fit(data)
    csr = data.matrix()
    for u in (0, 7):
        hist = data.items.ids[csr.indices[csr.indptr[u] : csr.indptr[u + 1]]]
        ids, scores = model.recommend_history(hist, k=6)
        ids2, scores2 = model.recommend_one(data.users.ids[u], k=6)
        assert_rankings_equal(ids, scores, ids2, scores2, rtol=1e-6)
    sim = model.similar_items(data.items.ids[:2], k=10)
    g = model.neighbours_
    for pos, item in enumerate(data.items.ids[:2]):
        rows = sim[sim["item"] == item]
        nbrs = g.indices[g.indptr[pos] : g.indptr[pos + 1]]
        assert set(rows["similar_item"]) == set(data.items.ids[nbrs].tolist())  # at most k neighbours, never more
        assert np.all(np.diff(rows["score"].to_numpy()) <= 0)


def ref_baseline(rr: np.ndarray, damping: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Dense damped-bias baseline ``mean + b_u + b_i`` and the residuals on rated cells."""
    mask = rr > 0
    mu = rr[mask].mean()
    b_i = np.where(mask, rr - mu, 0).sum(0) / (mask.sum(0) + damping)
    b_u = np.where(mask, rr - mu - b_i[None, :], 0).sum(1) / (mask.sum(1) + damping)
    base = mu + b_u[:, None] + b_i[None, :]
    return base, np.where(mask, rr - base, 0.0)


def test_itemknn_explicit_predictions_match_dense_reference() -> None:
    # users x items ratings; 0 = unrated
    r = np.array([[5, 3, 0], [4, 0, 4], [1, 1, 5], [0, 2, 4]], dtype=np.float32)
    data = frame_data(r, ratings=True)
    model = ItemKNN(k=2, weighting="none", shrinkage=0.0, feedback="explicit").fit(data)
    rr = internal_dense(data, r)
    base, resid = ref_baseline(rr)
    sims = ref_graph(rr.T, 2)  # cosine of raw rating columns; row j: neighbours of item j
    num = resid @ sims.T
    den = (rr > 0).astype(float) @ np.abs(sims).T
    expected = np.clip(np.where(den > 0, base + num / np.where(den > 0, den, 1), base), 1, 5)
    users = np.repeat(data.users.ids, data.n_items)
    items = np.tile(data.items.ids, data.n_users)
    np.testing.assert_allclose(model.predict(users, items), expected.ravel(), rtol=1e-5)
    # user 0 rated only items 0 and 1, each the other's sole neighbour: prediction for 1 = base + residual of 0
    assert model.predict([0], [1])[0] == pytest.approx(base[0, 1] + resid[0, 0], rel=1e-5)


def test_explicit_prediction_falls_back_to_the_baseline_and_is_clipped() -> None:
    # items 2 and 3 are only rated by user 2, who shares nothing with users 0 and 1
    r = np.array([[5, 4, 0, 0], [4, 5, 0, 0], [0, 0, 1, 2]], dtype=np.float32)
    data = frame_data(r, ratings=True)
    base, _ = ref_baseline(internal_dense(data, r))
    model = ItemKNN(k=3, weighting="none", feedback="explicit").fit(data)
    assert model.predict([0], [2])[0] == pytest.approx(base[0, 2], rel=1e-5)
    user = UserKNN(k=3, weighting="none", feedback="explicit").fit(data)
    assert user.predict([0], [3])[0] == pytest.approx(base[0, 3], rel=1e-5)
    # clipping to the training range [1, 5]
    pred = np.concatenate([m.predict(np.repeat([0, 1, 2], 4), np.tile([0, 1, 2, 3], 3)) for m in (model, user)])
    assert pred.min() >= 1.0 and pred.max() <= 5.0


def test_explicit_fold_in_uses_ratings() -> None:
    data = tiny_interactions()
    model = ItemKNN(k=5, feedback="explicit", similarity="adjusted_cosine").fit(data)
    ids, scores = model.recommend_history([0, 2, 4], ratings=[5, 5, 4], k=3)
    assert len(ids) == 3 and np.all(scores <= 5) and np.all(scores >= 1)
    # a known user's own history folds in to the same predictions (same biases, same residuals)
    csr = data.matrix("csr", "rating")
    hist, rat = data.items.ids[csr.indices[: csr.indptr[1]]], csr.data[: csr.indptr[1]]
    for m in (model, UserKNN(k=5, feedback="explicit").fit(data)):
        folded = m._score_history(data.items.to_index(hist), rat.astype(np.float32), None)
        if isinstance(m, ItemKNN):
            np.testing.assert_allclose(folded, m._score(np.array([0], np.int32), None)[0], rtol=1e-5)
        else:
            assert folded.shape == (data.n_items,) and np.all((folded >= 1) & (folded <= 5))
    with pytest.raises(DataError, match="needs ratings"):
        model.recommend_history([0, 2], k=3)


@pytest.mark.parametrize("similarity", ["pearson", "adjusted_cosine", "cosine"])
def test_explicit_predictions_separate_liked_from_disliked_groups(similarity: str) -> None:
    # Checkerboard: users rate their own group 4-5 and the other group 1-2.
    data = tiny_interactions()
    users = np.repeat(data.users.ids, 30)
    items = np.tile(np.arange(30), data.n_users)
    own = (users.astype(int) % 2) == (items % 2)
    for model in (ItemKNN(k=10, similarity=similarity, feedback="explicit"), UserKNN(k=5, similarity=similarity, feedback="explicit")):
        pred = model.fit(data).predict(users, items)  # type: ignore[attr-defined]
        assert pred[own].mean() > pred[~own].mean() + 0.5, (type(model).__name__, similarity)


# -- UserKNN ----------------------------------------------------------------------------------


@pytest.mark.parametrize("weighting", ["none", "tfidf", "bm25"])
def test_userknn_scores_and_fold_in_match_dense_reference(weighting: str, rng: np.random.Generator) -> None:
    m = random_binary(rng)
    data = frame_data(m)
    x = internal_dense(data, m)
    model = UserKNN(k=4, weighting=weighting, shrinkage=1.0).fit(data)  # type: ignore[arg-type]
    prof = ref_weight(x, weighting)
    graph = ref_graph(prof, 4, 1.0)
    np.testing.assert_allclose(model._score(np.arange(data.n_users, dtype=np.int32), None), graph @ x, rtol=1e-4, atol=1e-5)
    # fold-in: a new user with user 3's history is compared with every training user (user 3 included)
    csr = data.matrix()
    hist_idx = csr.indices[csr.indptr[3] : csr.indptr[3 + 1]]
    h = np.zeros(data.n_items)
    h[hist_idx] = 1.0
    hp = _weight_with_train_stats(x, h, weighting)
    norms = np.sqrt((prof * prof).sum(1))
    sims = prof @ hp / (norms * np.sqrt(hp @ hp) + 1.0)
    sims[sims <= 0] = 0
    top = [v for v in np.lexsort((np.arange(len(sims)), -sims)) if sims[v] > 0][:4]
    expected = sims[top] @ x[top]
    got = model._score_history(hist_idx.astype(np.int32), None, None)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _weight_with_train_stats(x: np.ndarray, h: np.ndarray, scheme: str, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    df = (x != 0).sum(0)
    idf = np.where(df > 0, np.log(len(x) / np.maximum(df, 1)), 0.0)
    if scheme == "none":
        return h
    if scheme == "tfidf":
        return np.sqrt(h) * idf
    mean_len = x.sum(1).mean()
    norm = 1 - b + b * h.sum() / mean_len
    return h * (k1 + 1) / (k1 * norm + h) * idf


# -- parameters and errors ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k": 0}, "'k' parameter of .* must be an int >= 1. Got 0"),
        ({"k": 2.5}, "'k' parameter"),
        ({"similarity": "jaccard"}, "'similarity' parameter of .* must be one of 'cosine', 'adjusted_cosine', 'pearson'"),
        ({"weighting": "idf"}, "'weighting' parameter"),
        ({"shrinkage": -1.0}, "'shrinkage' parameter of .* must be a float >= 0.0. Got -1.0"),
        ({"feedback": "ratings"}, "'feedback' parameter"),
        ({"bm25_k1": -0.5}, "'bm25_k1' parameter"),
        ({"bm25_b": 1.5}, "'bm25_b' parameter of .* must be a float >= 0.0 and <= 1.0"),
    ],
)
def test_invalid_parameters_are_named(cls: type, params: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        cls(**params).fit(tiny_interactions())


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_data_errors(cls: type) -> None:
    no_ratings = Interactions.from_frame(pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1]}))
    with pytest.raises(DataError, match=r"feedback='explicit'\) needs ratings"):
        cls(feedback="explicit").fit(no_ratings)
    with pytest.raises(DataError, match=r"profile is 0, nothing to compare: similarity='pearson' subtracts means.* Use \w+KNN\(similarity='cosine'\)"):
        cls(similarity="pearson").fit(no_ratings)
    cls(similarity="cosine").fit(no_ratings)  # the advice works
    model = cls(k=3).fit(tiny_interactions())
    with pytest.raises(NotSupportedError, match="predict needs feedback='explicit'"):
        model.predict([0], [0])
    explicit = cls(k=3, feedback="explicit").fit(tiny_interactions())
    with pytest.raises(DataError, match="same length; got 2 and 1"):
        explicit.predict([0, 1], [0])
    with pytest.raises(UnknownIdError):
        explicit.predict(["nobody"], [0])


def test_itemknn_neighbours_of_is_checked() -> None:
    with pytest.raises(ParameterError, match="'neighbours_of' parameter of ItemKNN must be one of 'candidate', 'history'"):
        ItemKNN(neighbours_of="target").fit(tiny_interactions())  # type: ignore[arg-type]


def test_similar_items_not_supported_by_userknn() -> None:
    with pytest.raises(NotSupportedError, match="UserKNN has no item similarity"):
        UserKNN(k=3).fit(tiny_interactions()).similar_items([0])


@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_dense_and_sparse_scoring_paths_give_identical_scores(
    cls: type, feedback: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cost rule picks the dense copy or the sparse product per block: the scores must not depend on it.
    import recsys.models.knn as knn

    data = tiny_interactions()
    model = cls(k=5, feedback=feedback).fit(data)
    users = np.arange(data.n_users, dtype=np.int32)
    monkeypatch.setattr(knn, "_SPARSE_ENTRY_COST", 10**9)  # always dense
    dense = model._score(users, None)
    monkeypatch.setattr(knn, "_SPARSE_ENTRY_COST", 0)  # always sparse
    np.testing.assert_array_equal(model._score(users, None), dense)
