"""UserKNN's bounded neighbour search: candidates from sampled co-raters, re-ranked exactly.

Checked against the exact graph (:func:`knn_graph`) where the bound does not bind, and against a
dense brute-force reference restricted to the candidates where it does.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.errors import ParameterError
from recsys.models import UserKNN
from recsys.models import knn as knn_module
from recsys.models._similarity import (
    candidate_knn_graph,
    idf_of,
    knn_graph,
    mean_length_of,
    sampled_candidates,
    weight_profiles,
)
from recsys.testing import tiny_interactions


def _profiles(rng: np.random.Generator, n: int, d: int, weighted: bool, density: float = 0.4) -> sp.csr_matrix:
    m = sp.csr_matrix(rng.integers(1, 4, (n, d)).astype(np.float32) * (rng.random((n, d)) < density))
    return weight_profiles(m, "tfidf", idf_of(m), mean_length_of(m)) if weighted else m


def _cosine(m: sp.csr_matrix, shrinkage: float = 0.0) -> np.ndarray:
    d = m.toarray().astype(np.float64)
    norms = np.sqrt((d * d).sum(1))
    den = np.outer(norms, norms) + shrinkage
    s = np.divide(d @ d.T, den, out=np.zeros((len(d), len(d))), where=den > 0)
    np.fill_diagonal(s, 0.0)
    return s


def _ref_among(m: sp.csr_matrix, candidates: np.ndarray, k: int, shrinkage: float) -> np.ndarray:
    """Dense reference: each row's k best positive similarities among its candidates, ties to the lower index."""
    s = _cosine(m, shrinkage)
    n = len(s)
    out = np.zeros_like(s)
    for a in range(n):
        cand = sorted({int(c) for c in candidates[a] if 0 <= c < n and c != a and s[a, c] > 0})
        best = sorted(cand, key=lambda b: (-s[a, b], b))[:k]
        out[a, best] = s[a, best]
    return out


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shrinkage", [0.0, 3.0])
def test_every_row_as_candidate_gives_the_exact_graph_bitwise(weighted: bool, shrinkage: float) -> None:
    rng = np.random.default_rng(7)
    m = _profiles(rng, 60, 25, weighted)
    exact = knn_graph(m, 5, shrinkage)
    everyone = np.tile(np.arange(60), (60, 1))  # includes each row itself: ignored
    for block in (1, 100, 1 << 20):
        g = candidate_knn_graph(m, everyone, 5, shrinkage, block_entries=block)
        np.testing.assert_array_equal(g.indptr, exact.indptr)
        np.testing.assert_array_equal(g.indices, exact.indices)
        np.testing.assert_array_equal(g.data, exact.data)  # same float32 sums in the same order


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 25),
    d=st.integers(1, 10),
    k=st.integers(1, 6),
    width=st.integers(1, 8),
    shrinkage=st.sampled_from([0.0, 2.0]),
)
def test_neighbours_are_the_exact_top_k_among_the_candidates(
    seed: int, n: int, d: int, k: int, width: int, shrinkage: float
) -> None:
    rng = np.random.default_rng(seed)
    m = _profiles(rng, n, d, weighted=True, density=0.5)
    # arbitrary candidate lists: repeats, -1 padding and the row itself are all ignored
    cand = rng.integers(-1, n, (n, width))
    g = candidate_knn_graph(m, cand, k, shrinkage)
    ref = _ref_among(m, cand, k, shrinkage)
    got = g.toarray()
    assert g.has_sorted_indices
    for a in range(n):
        if set(np.flatnonzero(got[a])) != set(np.flatnonzero(ref[a])):
            # only a float near-tie at the k-th value may differ: the k-th and (k+1)-th best distinct
            # candidates (repeats in the list counted once; equal similarities kept) are within 1e-5
            vals = np.sort(ref[a][ref[a] > 0])[::-1]
            distinct = sorted({int(c) for c in cand[a] if 0 <= c < n and c != a})
            pool = np.sort(_cosine(m, shrinkage)[a, distinct])[::-1]
            assert len(vals) == k and len(pool) > k and abs(pool[k - 1] - pool[k]) < 1e-5
    np.testing.assert_allclose(got[got > 0], _cosine(m, shrinkage)[got > 0], rtol=1e-5)


def test_candidates_must_have_one_row_per_profile() -> None:
    with pytest.raises(ValueError, match=r"candidates must have shape \(n_rows, n_candidates\)"):
        candidate_knn_graph(sp.csr_matrix(np.eye(3, dtype=np.float32)), np.zeros((2, 1), dtype=int), 1)


def test_sampled_candidates_unbound_are_the_top_cosines() -> None:
    # every feature's rows all kept (sample >= n): the candidates are each row's best cosines
    rng = np.random.default_rng(3)
    m = _profiles(rng, 50, 30, weighted=True)
    s = _cosine(m)
    cand = sampled_candidates(m, 6, sample=50)
    assert cand.shape == (50, 6) and cand.dtype == np.int32
    for a in range(50):
        assert a not in cand[a]
        got = sorted(int(c) for c in cand[a] if c >= 0)
        best = [int(b) for b in np.argsort(-s[a], kind="stable") if s[a, b] > 0][:6]
        # same set up to float near-ties at the 6th value
        if got != sorted(best):
            assert abs(np.sort(s[a])[::-1][5] - np.sort(s[a])[::-1][6]) < 1e-6


def test_sampled_candidates_with_room_for_everyone_list_every_co_rater() -> None:
    rng = np.random.default_rng(4)
    m = _profiles(rng, 40, 12, weighted=False, density=0.15)
    cand = sampled_candidates(m, 39, sample=40)
    co = (m @ m.T).toarray() > 0
    for a in range(40):
        assert sorted(int(c) for c in cand[a] if c >= 0) == [b for b in range(40) if b != a and co[a, b]]


def test_sampled_candidates_take_at_most_sample_rows_per_feature() -> None:
    # one feature held by every row: with sample=3 only 3 rows of it are ever candidates
    n = 30
    m = sp.csr_matrix(np.ones((n, 1), dtype=np.float32))
    cand = sampled_candidates(m, 10, sample=3)
    found = set(cand[cand >= 0].tolist())
    assert len(found) <= 3
    # and the sample is seeded: the same every time
    np.testing.assert_array_equal(cand, sampled_candidates(m, 10, sample=3))


# -- UserKNN ------------------------------------------------------------------------------------------


def test_userknn_bound_that_does_not_bind_is_the_exact_model() -> None:
    data = tiny_interactions()
    exact = UserKNN(k=5, max_candidates=None).fit(data)
    for bound in ("auto", data.n_users - 1, 10**6):
        model = UserKNN(k=5, max_candidates=bound).fit(data)
        np.testing.assert_array_equal(model.neighbours_.toarray(), exact.neighbours_.toarray())


def test_userknn_binding_bound_keeps_the_exact_top_k_among_sampled_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_interactions()
    n = data.n_users
    # "auto" above its threshold: bounded with max(3 k, minimum) candidates
    monkeypatch.setattr(knn_module, "_EXACT_PAIR_WORK", 0.0)
    monkeypatch.setattr(knn_module, "_MIN_CANDIDATES", 4)
    model = UserKNN(k=2, neighbour_sample=3).fit(data)
    c = model._n_candidates(model.profiles_)
    assert c == 6 and c < n - 1
    cand = sampled_candidates(model.profiles_, c, 3, seed=knn_module._SAMPLE_SEED)
    ref = _ref_among(model.profiles_, cand, 2, 0.0)
    got = model.neighbours_.toarray()
    np.testing.assert_array_equal(got > 0, ref > 0)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # and it recommends from those neighbours
    items, _ = model.recommend_one(data.users.ids[0], k=3)
    assert len(items) == 3


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"max_candidates": 5, "k": 10}, r"'max_candidates' parameter of UserKNN must be 'auto', None or an int >= k \(10\)\. Got 5"),
        ({"max_candidates": "all"}, r"'max_candidates' parameter of UserKNN must be 'auto', None or an int >= k \(100\)\. Got 'all'"),
        ({"max_candidates": True}, "'max_candidates' parameter of UserKNN must be 'auto', None or an int"),
        ({"neighbour_sample": 0}, "'neighbour_sample' parameter of UserKNN must be an int >= 1"),
    ],
)
def test_userknn_bound_parameters_are_checked(params: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        UserKNN(**params).fit(tiny_interactions())
