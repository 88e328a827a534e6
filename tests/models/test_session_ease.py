"""SessionEASE against a dense float64 closed form with sessions cut by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.errors import DataError, ParameterError
from recsys.models import EASE, SessionEASE
from recsys.models.session_ease import session_matrix
from recsys.testing import assert_rankings_equal, tiny_interactions


def dense_session_ease(x: np.ndarray, s: np.ndarray, weight: float, reg: float) -> np.ndarray:
    g = x.T.astype(np.float64) @ x + weight * s.T.astype(np.float64) @ s + reg * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def test_sessions_cut_at_gaps_larger_than_session_gap() -> None:
    # user a: 0, 10, 25 | 100 ; user b: 7 | 30 (unsorted input rows)
    df = pd.DataFrame(
        {"user": ["a", "b", "a", "a", "b", "a"], "item": [3, 1, 1, 2, 2, 4], "timestamp": [100, 30, 0, 10, 7, 25]}
    )
    data = Interactions.from_frame(df, timestamp_col="timestamp")
    s = session_matrix(data, gap=15.0).toarray()
    cols = {int(i): k for k, i in enumerate(data.items.ids)}
    expected = np.zeros((4, 4), dtype=np.float32)
    for row, items in enumerate([[1, 2, 4], [3], [2], [1]]):  # a's two sessions, then b's two
        for i in items:
            expected[row, cols[i]] = 1.0
    np.testing.assert_array_equal(s, expected)
    # A gap exactly equal to session_gap stays in the session: 0 -> 10 at gap 10; 10 -> 25 does not.
    s10 = session_matrix(data, gap=10.0).toarray()
    assert s10.shape[0] == 5  # a: {1, 2}, {4}, {3}; b: {2}, {1}
    assert s10[0, cols[1]] == 1 and s10[0, cols[2]] == 1 and s10[0].sum() == 2


def test_datetime_timestamps_are_cut_in_seconds() -> None:
    secs = [0, 5, 100, 3]
    base = Interactions.from_arrays(["a", "a", "a", "b"], [1, 2, 3, 1], timestamps=secs)
    dt = Interactions.from_arrays(
        ["a", "a", "a", "b"], [1, 2, 3, 1], timestamps=pd.to_datetime(np.array(secs), unit="s").to_numpy()
    )
    np.testing.assert_array_equal(session_matrix(dt, 10.0).toarray(), session_matrix(base, 10.0).toarray())
    assert session_matrix(dt, 10.0).shape[0] == 3


def random_timed_data(rng: np.random.Generator, n_users: int = 40, n_items: int = 25) -> Interactions:
    m = rng.random((n_users, n_items)) < 0.3
    m[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    u, i = np.nonzero(m)
    # bursts: a few seconds apart inside a burst, an hour between bursts
    t = rng.integers(0, 4, len(u)) * 3600 + rng.integers(0, 20, len(u))
    return Interactions.from_frame(pd.DataFrame({"user": u, "item": i, "timestamp": t}), timestamp_col="timestamp")


@pytest.mark.parametrize(("gap", "weight", "reg"), [(5.0, 2.0, 10.0), (30.0, 0.5, 100.0), (0.0, 4.0, 3.0)])
def test_weights_match_dense_closed_form(rng: np.random.Generator, gap: float, weight: float, reg: float) -> None:
    data = random_timed_data(rng)
    x = data.matrix().toarray()
    # Sessions by an independent loop over each user's time-sorted rows.
    rows = []
    frame = pd.DataFrame({"u": data.user_index, "i": data.item_index, "t": data.timestamps})
    for _, grp in frame.sort_values(["u", "t"]).groupby("u"):
        current: list[int] = []
        last = None
        for it, tt in zip(grp["i"], grp["t"]):
            if last is not None and tt - last > gap:
                rows.append(current)
                current = []
            current.append(it)
            last = tt
        rows.append(current)
    s = np.zeros((len(rows), data.n_items))
    for r, items in enumerate(rows):
        s[r, items] = 1.0
    model = SessionEASE(reg=reg, session_gap=gap, session_weight=weight).fit(data)
    b = dense_session_ease(x, s, weight, reg)
    np.testing.assert_allclose(model.weights_, b, rtol=2e-3, atol=2e-5)
    assert np.all(np.diag(model.weights_) == 0)
    scores = model._score(np.arange(data.n_users, dtype=np.int32), None)
    np.testing.assert_allclose(scores, x @ b, rtol=2e-3, atol=1e-4)


def test_zero_session_weight_is_ease_and_needs_no_timestamps(rng: np.random.Generator) -> None:
    data = random_timed_data(rng)
    plain = Interactions.from_frame(data.to_frame()[["user", "item"]])
    a = SessionEASE(reg=20.0, session_weight=0.0).fit(plain)
    b = EASE(reg=20.0).fit(plain)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-5, atol=1e-7)
    with pytest.raises(DataError, match="SessionEASE needs timestamps.*session_weight=0"):
        SessionEASE().fit(plain)


def test_same_session_neighbour_wins_a_tie_that_ease_cannot_break() -> None:
    # Items 1 and 2 co-occur with item 0 in exactly as many users (symmetric for EASE),
    # but item 1 is always rated in the same sitting as item 0, item 2 a day later.
    rows = []
    for u in range(6):
        rows += [(u, 0, 0), (u, 1, 5), (u, 2, 86_400)]
    for u in range(6, 12):  # filler so neither 1 nor 2 is more popular
        rows += [(u, 3, 0), (u, 4, 5)]
    rows += [(99, 0, 0)]  # the user to recommend for
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    data = Interactions.from_frame(df, timestamp_col="timestamp")
    ease_items, ease_scores = EASE(reg=1.0).fit(data).recommend_one(99, k=2)
    assert ease_scores[0] == pytest.approx(ease_scores[1], rel=1e-5)  # a tie for plain EASE
    items, scores = SessionEASE(reg=1.0, session_gap=10.0, session_weight=2.0).fit(data).recommend_one(99, k=2)
    assert items.tolist() == [1, 2] and scores[0] > scores[1] + 1e-3


def test_fold_in_equals_known_user(rng: np.random.Generator) -> None:
    data = random_timed_data(rng)
    model = SessionEASE(reg=20.0).fit(data)
    csr = data.matrix()
    hist = data.items.ids[csr.indices[csr.indptr[3] : csr.indptr[4]]]
    ids, scores = model.recommend_history(hist, k=5)
    ids2, scores2 = model.recommend_one(data.users.ids[3], k=5)
    assert_rankings_equal(ids, scores, ids2, scores2)


def test_memory_guard_names_the_model() -> None:
    with pytest.raises(ParameterError, match=r"SessionEASE needs a dense 32 x 32 item matrix .* max_items=10"):
        SessionEASE(max_items=10).fit(tiny_interactions())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"reg": 0.0}, "'reg' parameter of SessionEASE must be a float > 0.0. Got 0.0 instead"),
        ({"session_gap": -1.0}, "'session_gap' parameter of SessionEASE must be a float >= 0.0. Got -1.0 instead"),
        ({"session_weight": -0.5}, "'session_weight' parameter of SessionEASE must be a float >= 0.0"),
        ({"max_items": 0}, "'max_items' parameter of SessionEASE must be an int >= 1. Got 0 instead"),
    ],
)
def test_invalid_parameters(params: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        SessionEASE(**params).fit(tiny_interactions())
