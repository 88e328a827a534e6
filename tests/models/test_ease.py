"""EASE against the closed form computed densely in float64."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.errors import ParameterError
from recsys.models import EASE
from recsys.models.ease import ease_bytes
from recsys.testing import assert_rankings_equal, assert_top_k, tiny_interactions


def dense_ease(x: np.ndarray, reg: float) -> np.ndarray:
    g = x.T.astype(np.float64) @ x + reg * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def random_data(rng: np.random.Generator, n_users: int = 40, n_items: int = 25) -> tuple[Interactions, np.ndarray]:
    m = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    m[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0
    u, i = np.nonzero(m)
    data = Interactions.from_frame(pd.DataFrame({"user": u, "item": i}))
    x = m[np.ix_(data.users.ids.astype(int), data.items.ids.astype(int))]
    return data, x


@pytest.mark.parametrize("reg", [0.5, 10.0, 500.0])
def test_weights_match_dense_closed_form(reg: float, rng: np.random.Generator) -> None:
    data, x = random_data(rng)
    model = EASE(reg=reg).fit(data)
    b = dense_ease(x, reg)
    np.testing.assert_allclose(model.weights_, b, rtol=2e-3, atol=1e-5)
    assert np.all(np.diag(model.weights_) == 0)
    scores = model._score(np.arange(data.n_users, dtype=np.int32), None)
    np.testing.assert_allclose(scores, x @ b, rtol=2e-3, atol=1e-4)


def test_weights_are_the_constrained_least_squares_solution(rng: np.random.Generator) -> None:
    # Stationarity of ||X - XB||^2 + reg ||B||^2 with diag(B) = 0: off-diagonal gradient is zero.
    data, x = random_data(rng)
    reg = 5.0
    b = EASE(reg=reg).fit(data).weights_.astype(np.float64)
    grad = -x.T @ (x - x @ b) + reg * b
    off = ~np.eye(len(b), dtype=bool)
    assert np.abs(grad[off]).max() < 1e-3


def test_cold_items_get_no_weight_and_are_never_recommended() -> None:
    data = tiny_interactions()  # items 1000 and 1001 have no interactions
    model = EASE(reg=10.0).fit(data)
    cold = data.items.to_index([1000, 1001])
    assert np.all(model.weights_[:, cold] == 0) and np.all(model.weights_[cold] == 0)
    recs = model.recommend(data.users.ids, k=40)
    assert not set(recs["item"]) & {1000, 1001}


def test_fold_in_equals_known_user_and_similar_items_follow_weights(rng: np.random.Generator) -> None:
    data, _ = random_data(rng)
    model = EASE(reg=20.0).fit(data)
    csr = data.matrix()
    hist = data.items.ids[csr.indices[csr.indptr[3] : csr.indptr[4]]]
    ids, scores = model.recommend_history(hist, k=5)
    ids2, scores2 = model.recommend_one(data.users.ids[3], k=5)
    assert_rankings_equal(ids, scores, ids2, scores2)
    sim = model.similar_items([data.items.ids[0]], k=3)
    row = model.weights_[0].astype(np.float64)
    assert_top_k(sim["similar_item"], sim["score"], {i: w for j, (i, w) in enumerate(zip(data.items.ids.tolist(), row)) if j != 0}, k=3)


def test_memory_guard_names_the_size() -> None:
    data = tiny_interactions()  # 32 items
    with pytest.raises(ParameterError, match=r"EASE needs a dense 32 x 32 item matrix \(about 0\.0 GiB\) but max_items=10"):
        EASE(max_items=10).fit(data)
    assert ease_bytes(20_000) > 8 * 20_000**2 - 1


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"reg": 0.0}, "'reg' parameter of EASE must be a float > 0.0. Got 0.0 instead"),
        ({"reg": "big"}, "'reg' parameter of EASE must be a float > 0.0 or 'auto'. Got 'big' instead"),
        ({"max_items": 0}, "'max_items' parameter of EASE must be an int >= 1. Got 0 instead"),
    ],
)
def test_invalid_parameters(params: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        EASE(**params).fit(tiny_interactions())


def test_auto_reg_is_twice_the_frobenius_norm() -> None:
    """reg="auto" equals the explicit reg 2 * sqrt(sum of squared weights) (ratings as weights, by hand)."""
    frame = pd.DataFrame({"user": [0, 0, 1, 2], "item": [0, 1, 1, 2], "rating": [3.0, 1.0, 2.0, 1.0]})
    data = Interactions.from_frame(frame, weight_col="rating")
    auto = EASE(reg="auto").fit(data)
    assert auto.reg_ == pytest.approx(2.0 * np.sqrt(9.0 + 1.0 + 4.0 + 1.0), rel=1e-6)
    explicit = EASE(reg=auto.reg_).fit(data)
    np.testing.assert_allclose(auto.weights_, explicit.weights_, rtol=1e-6, atol=1e-7)


def test_default_reg_is_the_auto_rule_and_is_recorded() -> None:
    """EASE() resolves reg="auto" at fit time and records the lambda it used in reg_ (the rule by hand)."""
    # 6 interactions, binary: 2 * sqrt(6)
    data = Interactions.from_frame(pd.DataFrame({"user": [0, 0, 1, 2, 2, 3], "item": [0, 1, 0, 0, 2, 2]}))
    model = EASE().fit(data)
    assert model.get_params()["reg"] == "auto"
    assert model.reg_ == pytest.approx(2.0 * np.sqrt(6.0), rel=1e-12)
    assert EASE(reg=7.5).fit(data).reg_ == 7.5
    # the closed form with that lambda, in float64
    x = data.matrix("csr", "weight").toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 2.0 * np.sqrt(6.0) * np.eye(3))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.weights_, b, rtol=1e-5, atol=1e-6)


def test_a_state_without_reg_loads(tmp_path: Path) -> None:
    """Artifacts saved before reg="auto" have no reg_: they load and score as saved."""
    from recsys import load_model
    from tests.models._legacy import drop_state_key

    model = EASE(reg=10.0).fit(tiny_interactions())
    model.save(tmp_path / "m")
    drop_state_key(tmp_path / "m", "reg_")
    loaded = load_model(tmp_path / "m")
    assert "reg_" not in vars(loaded)
    pd.testing.assert_frame_equal(loaded.recommend(model.users_.ids[:3], k=5), model.recommend(model.users_.ids[:3], k=5))
