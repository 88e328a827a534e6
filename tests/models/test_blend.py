"""Blend: weighted sum of per-user z-scored model scores, checked against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.errors import ParameterError
from recsys.models import EASE, Blend, ItemKNN, Popular
from recsys.testing import assert_recommendations_equal, assert_recommendations_match_scores, tiny_interactions


def _z(rows: np.ndarray, warm: np.ndarray) -> np.ndarray:
    d = rows[:, warm].astype(np.float64)
    mu, sd = d.mean(1, keepdims=True), d.std(1, keepdims=True)
    return np.where(sd > 0, (rows - mu) / np.where(sd > 0, sd, 1), 0.0)


def test_scores_are_the_weighted_sum_of_z_scored_model_scores() -> None:
    data = tiny_interactions()
    model = Blend([ItemKNN(k=10), EASE(reg=10.0)], weights=[1.0, 3.0]).fit(data)
    a, b = ItemKNN(k=10).fit(data), EASE(reg=10.0).fit(data)
    users, items = data.users.ids[:4], data.items.ids
    warm = data.item_counts > 0
    sa = np.stack([a.score(np.repeat(u, len(items)), items) for u in users])
    sb = np.stack([b.score(np.repeat(u, len(items)), items) for u in users])
    sa = np.where(np.isfinite(sa), sa, np.nanmin(np.where(np.isfinite(sa), sa, np.nan)[:, warm], axis=1, keepdims=True))
    expected = 0.25 * _z(sa, warm) + 0.75 * _z(sb, warm)
    got = np.stack([model.score(np.repeat(u, len(items)), items) for u in users])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    recs = model.recommend(users, k=3)
    excluded = (data.matrix("csr", "binary")[data.users.to_index(users)].toarray() > 0) | ~warm
    ref = np.where(excluded, -np.inf, expected)
    assert_recommendations_match_scores(recs, ref, users, items, k=3, rtol=1e-4, atol=1e-4)


def test_only_the_ratio_of_the_weights_matters_and_default_is_equal() -> None:
    data = tiny_interactions()
    a = Blend([Popular(), EASE(reg=10.0)], weights=[2.0, 2.0]).fit(data).recommend(data.users.ids, k=4)
    b = Blend([Popular(), EASE(reg=10.0)]).fit(data).recommend(data.users.ids, k=4)
    assert_recommendations_equal(a, b, rtol=1e-6)


def test_history_blends_the_models_fold_ins() -> None:
    data = tiny_interactions()
    model = Blend([ItemKNN(k=10), EASE(reg=10.0)], weights=[0.5, 0.5]).fit(data)
    hist = data.items.ids[[0, 2, 4]]
    ids, scores = model.recommend_history(hist, k=5)
    assert len(ids) == 5 and not set(ids.tolist()) & set(hist.tolist()) and np.all(np.diff(scores) <= 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(models=[EASE()]), "at least two"),
        (dict(models=[EASE(), Popular()], weights=[1.0]), "weights"),
        (dict(models=[EASE(), Popular()], weights=[1.0, -1.0]), "weights"),
        (dict(models=[EASE(), Popular()], weights=[0.0, 0.0]), "weights"),
        (dict(models=[EASE(), "Popular"]), r"models\[1\]"),
        (dict(normalise="softmax"), "normalise"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        Blend(**kwargs).fit(tiny_interactions())
