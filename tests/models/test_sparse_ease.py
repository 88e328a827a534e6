"""SparseEASE against dense float64 closed forms worked out independently, and neighbourhoods worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys import Interactions, load_model
from recsys.errors import ParameterError
from recsys.models import EASE, SparseEASE
from recsys.models.sparse_ease import neighbours, top_m
from recsys.testing import tiny_interactions


def random_data(rng: np.random.Generator, n_users: int = 50, n_items: int = 30, density: float = 0.2) -> tuple[Interactions, np.ndarray]:
    m = (rng.random((n_users, n_items)) < density).astype(np.float32)
    m[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0
    u, i = np.nonzero(m)
    data = Interactions.from_frame(pd.DataFrame({"user": u, "item": i}))
    x = m[np.ix_(data.users.ids.astype(int), data.items.ids.astype(int))]
    return data, x


def dense_ease(x: np.ndarray, reg: float) -> np.ndarray:
    """EASE's closed form through one dense float64 inverse: B = -P / diag(P), diag(B) = 0."""
    p = np.linalg.inv(x.T.astype(np.float64) @ x + reg * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


@pytest.mark.parametrize("reg", [1.0, 20.0, 300.0])
def test_all_items_as_neighbours_is_exact_ease(reg: float, rng: np.random.Generator) -> None:
    data, x = random_data(rng)
    n = data.n_items
    model = SparseEASE(n_neighbours=n - 1, reg=reg).fit(data)
    b = dense_ease(x, reg)
    np.testing.assert_allclose(model.weights_.toarray(), b, rtol=1e-3, atol=1e-5)
    users = np.arange(data.n_users, dtype=np.int32)
    np.testing.assert_allclose(model._score(users, None), x @ b, rtol=1e-3, atol=1e-4)
    # more neighbours than items is the same model, and EASE itself agrees
    bigger = SparseEASE(n_neighbours=10 * n, reg=reg).fit(data)
    np.testing.assert_allclose(bigger.weights_.toarray(), model.weights_.toarray(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(EASE(reg=reg).fit(data)._score(users, None), model._score(users, None), rtol=2e-3, atol=1e-4)


def test_auto_reg_is_eases_rule_and_exact_with_every_neighbour(rng: np.random.Generator) -> None:
    """SparseEASE() takes EASE's reg="auto" (the same lambda from the same Gram diagonal) and, with every
    other item a neighbour, EASE's weights; the lambda is recorded in reg_."""
    data, x = random_data(rng)
    n = data.n_items
    sparse = SparseEASE(n_neighbours=n - 1).fit(data)
    expected = 2.0 * np.sqrt((x * x).sum())
    assert sparse.get_params()["reg"] == "auto"
    assert sparse.reg_ == pytest.approx(expected, rel=1e-6)
    assert EASE().fit(data).reg_ == pytest.approx(sparse.reg_, rel=1e-6)
    np.testing.assert_allclose(sparse.weights_.toarray(), dense_ease(x, expected), rtol=1e-3, atol=1e-5)


# users x items, co-occurrences off the diagonal worked out by hand:
# G01 = 3 (u0, u1, u4), G13 = 2 (u2, u4), G02 = G03 = G12 = G23 = 1
HAND = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 1], [1, 1, 0, 1]], dtype=np.float32)


@pytest.mark.parametrize(
    ("m", "cols", "vals"),
    [
        # m=1: item 2's co-occurrences are all 1 (items 0, 1, 3): the lowest index wins
        (1, [[1], [0], [0], [1]], [[3], [3], [1], [2]]),
        # m=2: item 0 keeps 1 (3) and the lowest of the tied 2, 3; item 3 keeps 1 (2) and the lowest of 0, 2
        (2, [[1, 2], [0, 3], [0, 1], [0, 1]], [[3, 1], [3, 2], [1, 1], [1, 2]]),
        (3, [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]], [[3, 1, 1], [3, 1, 2], [1, 1, 1], [1, 2, 1]]),
    ],
)
def test_neighbourhoods_are_the_largest_co_occurrences(m: int, cols: list[list[int]], vals: list[list[int]]) -> None:
    got_cols, got_vals = neighbours(sp.csr_matrix(HAND), m)
    assert got_cols.tolist() == cols
    assert got_vals.tolist() == vals


def test_cosine_selection_ranks_by_co_occurrence_over_the_neighbours_norm() -> None:
    # G's diagonal (item counts) is 3, 4, 2, 3: item 2's G[2, i] / sqrt(G[i, i]) is 1/sqrt(3), 1/2, 1/sqrt(3),
    # so 0 and 3 (not 1, as by raw counts); item 3's is 1/sqrt(3), 2/2, 1/sqrt(2): 1 and 2
    cols, vals = neighbours(sp.csr_matrix(HAND), 2, "cosine")
    assert cols.tolist() == [[1, 2], [0, 3], [0, 3], [1, 2]]
    assert vals.tolist() == [[3, 1], [3, 2], [1, 1], [2, 1]]  # the right-hand sides stay raw co-occurrences


def test_weights_solve_each_items_restricted_regression(rng: np.random.Generator) -> None:
    data, x = random_data(rng, n_users=80, n_items=40)
    m, reg = 6, 15.0
    model = SparseEASE(n_neighbours=m, reg=reg).fit(data)
    g = x.T.astype(np.float64) @ x
    w = model.weights_.toarray()
    for j in range(data.n_items):
        others = np.array([i for i in range(data.n_items) if i != j])
        # the m largest co-occurrences, ties to the lower index (a stable sort on -G)
        nbrs = np.sort(others[np.argsort(-g[j, others], kind="stable")[:m]])
        want = np.linalg.solve(g[np.ix_(nbrs, nbrs)] + reg * np.eye(m), g[nbrs, j])
        np.testing.assert_allclose(w[nbrs, j], want, rtol=1e-3, atol=1e-6)
        rest = np.setdiff1d(np.arange(data.n_items), nbrs)
        assert np.all(w[rest, j] == 0)
    # only the kept weights are stored
    assert model.weights_.getnnz(axis=0).max() <= m


def test_grouped_unions_give_the_same_weights(rng: np.random.Generator) -> None:
    data, _ = random_data(rng, n_users=60, n_items=40)
    whole = SparseEASE(n_neighbours=5, reg=10.0).fit(data)
    grouped = SparseEASE(n_neighbours=5, reg=10.0, max_dense_items=8).fit(data)
    np.testing.assert_allclose(grouped.weights_.toarray(), whole.weights_.toarray(), rtol=1e-6, atol=1e-7)


def test_top_m_handles_ties_and_minus_infinity() -> None:
    d = np.array([[2, 2, 2, 2], [-np.inf, 1, 0, 0], [1, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    cols, vals = top_m(d, 2)
    assert cols.tolist() == [[0, 1], [1, 2], [0, 1]]
    assert vals[:2].tolist() == [[2, 2], [1, 0]] and vals[2, 0] == 1


def test_cold_items_get_no_weight_and_are_never_recommended() -> None:
    data = tiny_interactions()  # items 1000 and 1001 have no interactions
    model = SparseEASE(n_neighbours=8, reg=10.0).fit(data)
    cold = data.items.to_index([1000, 1001])
    w = model.weights_.toarray()
    assert np.all(w[:, cold] == 0) and np.all(w[cold] == 0)
    recs = model.recommend(data.users.ids, k=40)
    assert not set(recs["item"]) & {1000, 1001}


def test_save_load_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    data, _ = random_data(rng)
    model = SparseEASE(n_neighbours=7, reg=10.0).fit(data)
    path = model.save(tmp_path / "sparse_ease")
    loaded = load_model(path)
    assert isinstance(loaded, SparseEASE) and loaded.get_params() == model.get_params()
    assert (loaded.weights_ != model.weights_).nnz == 0
    users = data.users.ids[:10]
    pd.testing.assert_frame_equal(loaded.recommend(users, k=5), model.recommend(users, k=5))
    hist = data.items.ids[:4]
    a, b = loaded.recommend_history(hist, k=5), model.recommend_history(hist, k=5)
    np.testing.assert_array_equal(a[0], b[0])


def test_similar_items_are_the_items_whose_neighbourhood_holds_it(rng: np.random.Generator) -> None:
    data, _ = random_data(rng)
    model = SparseEASE(n_neighbours=4, reg=10.0).fit(data)
    sim = model.similar_items([data.items.ids[0]], k=50)
    row = model.weights_[0]
    assert set(sim["similar_item"]) == set(data.items.ids[row.indices].tolist())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_neighbours": 0}, "The 'n_neighbours' parameter of SparseEASE must be an int >= 1. Got 0 instead"),
        ({"n_neighbours": 2.5}, "'n_neighbours' parameter of SparseEASE"),
        ({"reg": 0.0}, "The 'reg' parameter of SparseEASE must be a float > 0.0. Got 0.0 instead"),
        ({"reg": float("nan")}, "'reg' parameter of SparseEASE must be a finite float"),
        ({"reg": "large"}, "The 'reg' parameter of SparseEASE must be a float > 0.0 or 'auto'. Got 'large' instead"),
        ({"selection": "jaccard"}, "The 'selection' parameter of SparseEASE must be one of 'cooccurrence', 'cosine'. Got 'jaccard' instead"),
        ({"max_dense_items": 1}, "The 'max_dense_items' parameter of SparseEASE must be an int >= 2. Got 1 instead"),
        # tiny_interactions has 32 items: n_neighbours is capped at 31, so the union must hold 32
        ({"max_dense_items": 20}, r"'max_dense_items' parameter of SparseEASE must be an int >= 32 \(n_neighbours \+ 1, n_neighbours=256 capped at n_items - 1 = 31\)\. Got 20"),
        ({"n_neighbours": 8, "max_dense_items": 8}, r"'max_dense_items' parameter of SparseEASE must be an int >= 9 .*Got 8 instead"),
    ],
)
def test_invalid_parameters(params: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        SparseEASE(**params).fit(tiny_interactions())


def test_registry_pipelines_retrieve_with_sparse_ease_beyond_the_ease_limit() -> None:
    from recsys.models import EASE, Pipeline, SparseEASE
    from recsys.models._registry import build

    limit = EASE().max_items
    small, large = build("deepfm", n_items=limit), build("deepfm", n_items=limit + 1)
    assert isinstance(small, Pipeline) and isinstance(large, Pipeline)
    assert type(small.retriever) is EASE
    assert type(large.retriever) is SparseEASE
