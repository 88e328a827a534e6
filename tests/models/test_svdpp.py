"""SVD++: the update rule against autograd, predictions against the formula, fold-in and
partial fits against independent least squares, parameters and errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys import Interactions
from recsys.datasets import synthetic
from recsys.errors import DataError, DataTypeError, ParameterError, UnknownIdError
from recsys.models._svdpp_train import _Trainer
from recsys.models.svdpp import SVDpp
from recsys.split import stratified_split
from recsys.testing import assert_rankings_equal, assert_recommendations_equal, tiny_interactions

FAST = dict(n_factors=4, n_epochs=5, show_progress=False)


def _ratings(rng: np.random.Generator, n_users: int = 6, n_items: int = 5, n: int = 18) -> Interactions:
    pairs = rng.choice(n_users * n_items, size=n, replace=False)
    df = pd.DataFrame(
        {"user": pairs // n_items, "item": pairs % n_items, "rating": rng.integers(1, 6, n).astype(float)}
    )
    return Interactions.from_frame(df, rating_col="rating")


def _dense_implicit(model: SVDpp) -> np.ndarray:
    """z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j from the seen matrix, with plain loops."""
    seen = model.seen_.toarray() > 0
    z = np.zeros((seen.shape[0], model.n_factors_))
    for u in range(seen.shape[0]):
        items = np.flatnonzero(seen[u])
        if len(items):
            z[u] = model.implicit_factors_[items].sum(0) / np.sqrt(len(items))
    return z


def _formula(model: SVDpp, u: int, i: int) -> float:
    z = _dense_implicit(model)[u]
    return float(
        model.global_mean_
        + model.user_bias_[u]
        + model.item_bias_[i]
        + model.item_factors_[i] @ (model.user_factors_[u] + z)
    )


def _ridge(model: SVDpp, items: np.ndarray, ratings: np.ndarray, z: np.ndarray) -> np.ndarray:
    """[b_u, p_u] minimising sum (r - mu - b_i - q_i.(p + z) - b_u)^2 + n (reg_b b^2 + reg |p|^2), by lstsq."""
    n, k = len(items), model.n_factors_
    x = np.hstack([np.ones((n, 1)), model.item_factors_[items].astype(np.float64)])
    t = ratings - model.global_mean_ - model.item_bias_[items] - model.item_factors_[items] @ z
    pen = np.sqrt(n * np.array([model.reg_bias] + [model.reg] * k))
    a = np.vstack([x, np.diag(pen)])
    b = np.concatenate([t, np.zeros(k + 1)])
    return np.linalg.lstsq(a, b, rcond=None)[0]


# -- the training step ------------------------------------------------------------------


def test_one_epoch_matches_autograd_gradient_and_the_documented_steps(rng: np.random.Generator) -> None:
    """One batch, one epoch from a known start: users take the compounded SGD step, items
    one Adam step, along minus the autograd gradient of Koren's regularised loss."""
    data = _ratings(rng)
    k, lr_user, lr_item = 3, 0.05, 0.01
    reg, reg_b, reg_y = 0.05, 0.02, 0.1
    model = SVDpp(n_factors=k, n_epochs=1, lr_user=lr_user, lr_item=lr_item, reg=reg, reg_bias=reg_b,
                  reg_implicit=reg_y, batch_size=10_000, show_progress=False)
    order = np.lexsort((data.item_index, data.user_index))
    users, items, r = data.user_index[order], data.item_index[order].astype(np.int64), data.ratings[order]
    nu, ni = data.n_users, data.n_items
    user0 = torch.from_numpy(rng.normal(0, 0.3, (nu, 1 + k)).astype(np.float32))
    item0 = torch.from_numpy(rng.normal(0, 0.3, (ni, 1 + 2 * k)).astype(np.float32))
    out = _Trainer(model, users, items, r, nu, ni).run(initial=(user0.numpy().copy(), item0.numpy().copy()))

    # independent loss: per-rating loops, autograd for the gradient
    bu = user0[:, 0].double().requires_grad_()
    p = user0[:, 1:].double().requires_grad_()
    bi = item0[:, 0].double().requires_grad_()
    q = item0[:, 1 : 1 + k].double().requires_grad_()
    y = item0[:, 1 + k :].double().requires_grad_()
    mu = float(np.mean(r.astype(np.float64)))
    hist = {u: items[users == u] for u in np.unique(users)}
    loss = torch.zeros((), dtype=torch.float64)
    for u, i, rating in zip(users, items, r):
        n = len(hist[u])
        z = y[hist[u]].sum(0) / np.sqrt(n)
        e = float(rating) - mu - bu[u] - bi[i] - q[i] @ (p[u] + z)
        loss = loss + 0.5 * e**2
        loss = loss + 0.5 * reg_b * (bu[u] ** 2 + bi[i] ** 2) + 0.5 * reg * (p[u] @ p[u] + q[i] @ q[i])
        loss = loss + 0.5 * reg_y * (y[hist[u]] ** 2).sum()
    loss.backward()

    n_u = np.bincount(users, minlength=nu).astype(np.float64)
    step = np.where(n_u > 0, (1 - (1 - lr_user) ** n_u) / np.maximum(n_u, 1), 0.0)
    want_bu = user0[:, 0].double().numpy() - step * bu.grad.numpy()
    want_p = user0[:, 1:].double().numpy() - step[:, None] * p.grad.numpy()
    np.testing.assert_allclose(out["bu"], want_bu, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["P"], want_p, rtol=1e-4, atol=1e-6)

    def adam_first_step(start: torch.Tensor, grad: torch.Tensor) -> np.ndarray:
        d = -grad.numpy()
        s = np.sqrt(1 - 0.999)
        return start.double().numpy() + lr_item * s * d / (s * np.abs(d) + 1e-8)

    rated = np.bincount(items, minlength=ni) > 0
    np.testing.assert_allclose(out["bi"][rated], adam_first_step(item0[:, 0], bi.grad)[rated], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["Q"][rated], adam_first_step(item0[:, 1 : 1 + k], q.grad)[rated], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["Y"][rated], adam_first_step(item0[:, 1 + k :], y.grad)[rated], rtol=1e-4, atol=1e-6)
    # the training RMSE of the epoch is the RMSE at the start (one batch)
    with torch.no_grad():
        errs = [
            float(rating) - mu - bu[u] - bi[i] - q[i] @ (p[u] + y[hist[u]].sum(0) / np.sqrt(len(hist[u])))
            for u, i, rating in zip(users, items, r)
        ]
    assert out["epoch_rmse"] == pytest.approx([float(np.sqrt(np.mean(np.square(errs))))], rel=1e-5)


def test_many_batches_visit_every_rating_once_per_epoch(rng: np.random.Generator) -> None:
    """From a zero start with (almost) zero learning rates every prediction is the mean, so the
    epoch RMSE is the ratings' standard deviation whatever the batching, unless a rating is
    skipped or visited twice."""
    data = _ratings(rng, n_users=12, n_items=8, n=50)
    r = data.ratings.astype(np.float64)
    for batch in (1, 7, 10_000):
        m = SVDpp(n_factors=2, n_epochs=1, init_std=0.0, lr_user=1e-12, lr_item=1e-12, batch_size=batch,
                  show_progress=False).fit(data)
        assert m.epoch_rmse_[0] == pytest.approx(float(np.sqrt(np.mean((r - r.mean()) ** 2))), rel=1e-5)


def test_heavy_users_stay_finite_with_a_large_user_rate() -> None:
    """A user with 3000 ratings in one batch: a summed SGD step of 0.5 per rating would explode."""
    rng = np.random.default_rng(0)
    heavy = pd.DataFrame({"user": 0, "item": np.arange(3000), "rating": rng.integers(1, 6, 3000).astype(float)})
    light = pd.DataFrame({"user": 1 + rng.integers(0, 50, 2000), "item": rng.integers(0, 3000, 2000), "rating": 4.0})
    df = pd.concat([heavy, light]).drop_duplicates(["user", "item"])
    data = Interactions.from_frame(df, rating_col="rating")
    m = SVDpp(n_epochs=5, lr_user=0.5, reg_bias=0.0, show_progress=False).fit(data)
    assert np.isfinite(m.user_factors_).all() and np.isfinite(m.item_factors_).all()
    # the heavy user's bias approaches the mean of its ratings relative to the items
    assert abs(m.user_bias_[0] - (heavy.rating.mean() - m.global_mean_)) < 0.3


def test_learns_better_than_the_global_mean_on_synthetic_data() -> None:
    data = synthetic(n_users=400, n_items=200, n_interactions=12_000, seed=3)
    train, test = stratified_split(data, 0.8, seed=1)
    model = SVDpp(n_epochs=10, show_progress=False).fit(train)
    f = test.to_frame()
    pred = model.predict(f["user"], f["item"])
    rmse = float(np.sqrt(np.mean((pred - f["rating"].to_numpy()) ** 2)))
    rmse_mean = float(np.sqrt(np.mean((model.global_mean_ - f["rating"].to_numpy()) ** 2)))
    assert rmse < 0.9 * rmse_mean
    assert model.epoch_rmse_[-1] < model.epoch_rmse_[0]


def test_public_scipy_fallback_trains_the_same_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch products call scipy's compiled kernels directly when importable; the public
    scipy.sparse path they fall back to gives the same model."""
    from recsys.models import _svdpp_train

    assert _svdpp_train._matvecs is not None  # the fast path is the one normally taken
    data = synthetic(n_users=60, n_items=40, n_interactions=900, seed=5)
    fast = SVDpp(**FAST, batch_size=100).fit(data)
    monkeypatch.setattr(_svdpp_train, "_matvecs", None)
    slow = SVDpp(**FAST, batch_size=100).fit(data)
    for name in ("user_bias_", "user_factors_", "item_bias_", "item_factors_", "implicit_factors_"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-5, atol=1e-6)
    assert fast.epoch_rmse_ == pytest.approx(slow.epoch_rmse_, rel=1e-6)


def test_same_seed_same_model_other_seed_differs() -> None:
    data = tiny_interactions()
    a = SVDpp(**FAST, seed=3).fit(data)
    b = SVDpp(**FAST, seed=3).fit(data)
    c = SVDpp(**FAST, seed=4).fit(data)
    for name in ("user_bias_", "user_factors_", "item_bias_", "item_factors_", "implicit_factors_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    SVDpp(n_factors=2, n_epochs=2, show_progress=True).fit(tiny_interactions())
    assert "SVDpp" in capsys.readouterr().err


# -- scoring and prediction -----------------------------------------------------------------


def test_scores_follow_the_svdpp_formula_and_predict_clips_them() -> None:
    data = tiny_interactions()
    model = SVDpp(**FAST).fit(data)
    users, items = data.users.ids, data.items.ids
    u_idx = np.repeat(np.arange(len(users)), len(items))
    i_idx = np.tile(np.arange(len(items)), len(users))
    want = np.array([_formula(model, u, i) for u, i in zip(u_idx, i_idx)])
    got = model.score(users[u_idx], items[i_idx])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    pred = model.predict(users[u_idx], items[i_idx])
    np.testing.assert_allclose(pred, np.clip(want, 1.0, 5.0), rtol=1e-5, atol=1e-5)
    assert model.rating_range_ == [1.0, 5.0]


def test_predict_clips_to_the_training_range() -> None:
    """Ratings 4-5 only; item biases pushed out of range after fit: predict clips, score does not."""
    df = pd.DataFrame({"user": np.repeat(np.arange(30), 10), "item": np.tile(np.arange(10), 30)})
    df["rating"] = np.where(df["item"] < 5, 5.0, 4.0)
    df = df.sample(frac=0.7, random_state=0)
    data = Interactions.from_frame(df, rating_col="rating")
    model = SVDpp(n_epochs=20, show_progress=False).fit(data)
    assert model.rating_range_ == [4.0, 5.0]
    model.item_bias_[data.items.index_of(0)] += 3.0
    model.item_bias_[data.items.index_of(9)] -= 3.0
    model._prepare()
    u, i = np.repeat(np.arange(30), 10), np.tile(np.arange(10), 30)
    raw, pred = model.score(u, i), model.predict(u, i)
    assert raw[i == 0].min() > 5.0 and raw[i == 9].max() < 4.0
    np.testing.assert_array_equal(pred, np.clip(raw, 4.0, 5.0))
    assert (pred[i == 0] == 5.0).all() and (pred[i == 9] == 4.0).all()


def test_unknown_users_and_items_get_the_mean_plus_known_biases() -> None:
    data = tiny_interactions()
    model = SVDpp(**FAST).fit(data)
    mu = model.global_mean_
    got = model.predict([0, "ghost", "ghost"], ["nothing", 3, "nothing"])
    want = [mu + model.user_bias_[0], mu + model.item_bias_[data.items.index_of(3)], mu]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_items_and_users_without_train_ratings_have_zero_parameters() -> None:
    data = tiny_interactions()  # items 1000 and 1001 have features only
    train, _ = stratified_split(data, 0.5, seed=0)
    model = SVDpp(**FAST).fit(train)
    cold = data.item_counts == 0
    assert cold.any()
    for arr in (model.item_factors_, model.implicit_factors_):
        assert not arr[cold].any()
    assert not model.item_bias_[cold].any()
    # the catalogue item predicts as an unknown item would
    np.testing.assert_allclose(model.predict([0], [1000]), model.predict([0], ["never heard of"]))


def test_predict_length_mismatch_is_an_error() -> None:
    model = SVDpp(**FAST).fit(tiny_interactions())
    with pytest.raises(DataError, match="same length; got 2 and 1"):
        model.predict([0, 1], [0])


def test_fit_needs_ratings() -> None:
    data = Interactions.from_frame(pd.DataFrame({"user": [1, 2], "item": [1, 1]}))
    with pytest.raises(DataError, match="explicit ratings"):
        SVDpp(**FAST).fit(data)


# -- fold-in and incremental users --------------------------------------------------------------


def test_fold_in_without_ratings_uses_only_the_implicit_term() -> None:
    data = tiny_interactions()
    model = SVDpp(**FAST).fit(data)
    hist = [0, 2, 4]
    idx = data.items.to_index(hist)
    z = model.implicit_factors_[idx].sum(0) / np.sqrt(3)
    want = model.global_mean_ + model.item_bias_ + model.item_factors_ @ z
    ids, scores = model.recommend_history(hist, k=5)
    np.testing.assert_allclose(scores, want[data.items.to_index(ids)], rtol=1e-5)
    assert not set(ids.tolist()) & set(hist)


def test_fold_in_with_ratings_solves_the_user_by_ridge() -> None:
    data = tiny_interactions()
    model = SVDpp(**FAST).fit(data)
    hist, ratings = [0, 2, 4, 7], np.array([5.0, 4.0, 5.0, 1.0])
    idx = data.items.to_index(hist)
    z = model.implicit_factors_[idx].sum(0) / np.sqrt(4)
    sol = _ridge(model, idx, ratings, z)
    want = model.global_mean_ + sol[0] + model.item_bias_ + model.item_factors_ @ (sol[1:] + z)
    ids, scores = model.recommend_history(hist, ratings=ratings, k=6)
    np.testing.assert_allclose(scores, want[data.items.to_index(ids)], rtol=1e-5, atol=1e-5)


def test_fold_in_rejects_non_finite_ratings() -> None:
    model = SVDpp(**FAST).fit(tiny_interactions())
    with pytest.raises(DataError, match="finite"):
        model.recommend_history([0, 2], ratings=[5.0, np.nan])


def test_partial_fit_updates_only_the_given_users() -> None:
    data = tiny_interactions()
    model = SVDpp(**FAST).fit(data)
    before = {n: getattr(model, n).copy() for n in ("user_bias_", "user_factors_", "item_bias_", "item_factors_", "implicit_factors_")}
    scores_before = model.score(np.repeat(data.users.ids, 3), np.tile(data.items.ids[:3], data.n_users))
    # user 0 re-rates item 0 (already rated) and rates item 1 (other group, new)
    u0 = data.users.index_of(0)
    old_items = model.seen_[u0].indices
    new = Interactions.from_frame(pd.DataFrame({"user": [0, 0], "item": [0, 1], "rating": [1.0, 5.0]}), rating_col="rating")
    model.partial_fit_users(new)
    changed = np.zeros(data.n_users, dtype=bool)
    changed[u0] = True
    np.testing.assert_array_equal(model.user_bias_[~changed], before["user_bias_"][~changed])
    np.testing.assert_array_equal(model.user_factors_[~changed], before["user_factors_"][~changed])
    for n in ("item_bias_", "item_factors_", "implicit_factors_"):
        np.testing.assert_array_equal(getattr(model, n), before[n])
    scores_after = model.score(np.repeat(data.users.ids, 3), np.tile(data.items.ids[:3], data.n_users))
    other = np.repeat(~changed, 3)
    np.testing.assert_array_equal(scores_after[other], scores_before[other])
    # user 0: N(u) gained item 1, the rating of item 0 is replaced, the rest kept
    items = np.union1d(old_items, data.items.to_index([1]))
    np.testing.assert_array_equal(model.seen_[u0].indices, items)
    train = data.to_frame()
    rated = dict(zip(train.loc[train.user == 0, "item"], train.loc[train.user == 0, "rating"]))
    rated.update({0: 1.0, 1: 5.0})
    ratings = np.array([rated[i] for i in data.items.to_ids(items)])
    z = model.implicit_factors_[items].sum(0) / np.sqrt(len(items))
    sol = _ridge(model, items, ratings, z)
    np.testing.assert_allclose(model.user_bias_[u0], sol[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.user_factors_[u0], sol[1:], rtol=1e-4, atol=1e-5)
    assert 1 not in model.recommend_one(0, k=30)[0].tolist()


def test_partial_fit_adds_new_users_like_fold_in_and_they_survive_save_load() -> None:
    data = tiny_interactions()
    model = SVDpp(**FAST).fit(data)
    n_users = data.n_users
    hist, ratings = [0, 2, 4, 7], [5.0, 4.0, 5.0, 1.0]
    new = Interactions.from_frame(
        pd.DataFrame({"user": ["ann"] * 4, "item": hist, "rating": ratings}), rating_col="rating"
    )
    want_ids, want_scores = model.recommend_history(hist, ratings=ratings, k=5)
    model.partial_fit_users(new)
    assert len(model.users_) == n_users + 1 and model.seen_.shape[0] == n_users + 1
    ids, scores = model.recommend_one("ann", k=5)
    assert_rankings_equal(ids, scores, want_ids, want_scores, rtol=1e-6)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = SVDpp.load(model.save(Path(tmp) / "m"))
        assert_recommendations_equal(loaded.recommend(["ann", 0], k=5), model.recommend(["ann", 0], k=5))


def test_partial_fit_errors() -> None:
    model = SVDpp(**FAST).fit(tiny_interactions())
    with pytest.raises(DataTypeError, match="expects recsys.Interactions; got DataFrame"):
        model.partial_fit_users(pd.DataFrame({"user": [0], "item": [0]}))  # type: ignore[arg-type]
    unrated = Interactions.from_frame(pd.DataFrame({"user": [0], "item": [0]}))
    with pytest.raises(DataError, match="needs ratings"):
        model.partial_fit_users(unrated)
    unknown = Interactions.from_frame(pd.DataFrame({"user": [0], "item": ["zzz"], "rating": [3.0]}), rating_col="rating")
    with pytest.raises(UnknownIdError, match="zzz"):
        model.partial_fit_users(unknown)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_hist=st.integers(1, 8))
def test_fold_in_equals_partial_fit_of_a_new_user(seed: int, n_hist: int) -> None:
    rng = np.random.default_rng(seed)
    data = tiny_interactions()
    model = _fitted_tiny()
    hist = rng.choice(data.items.ids[:30], size=n_hist, replace=False)
    ratings = rng.integers(1, 6, n_hist).astype(float)
    _, folded = model.recommend_history(hist, ratings=ratings, k=32, exclude_seen=False)
    new = Interactions.from_frame(
        pd.DataFrame({"user": ["x"] * n_hist, "item": hist, "rating": ratings}), rating_col="rating"
    )
    fitted = SVDpp.load(model.save(Path(tempfile.mkdtemp()) / "m")).partial_fit_users(new)
    _, direct = fitted.recommend_one("x", k=32, exclude_seen=False)
    np.testing.assert_allclose(np.sort(direct), np.sort(folded), rtol=1e-5, atol=1e-5)
    assert np.all((fitted.predict(["x"] * 3, data.items.ids[:3]) >= 1) & (fitted.predict(["x"] * 3, data.items.ids[:3]) <= 5))


_TINY: list[SVDpp] = []


def _fitted_tiny() -> SVDpp:
    if not _TINY:
        _TINY.append(SVDpp(**FAST).fit(tiny_interactions()))
    return _TINY[0]


# -- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_factors": 0}, "'n_factors' parameter of SVDpp must be an int >= 1. Got 0"),
        ({"n_epochs": 1.5}, "'n_epochs' parameter of SVDpp must be an int >= 1"),
        ({"lr_user": 1.0}, "'lr_user' parameter of SVDpp must be a float > 0.0 and < 1.0. Got 1.0"),
        ({"lr_item": 0.0}, "'lr_item' parameter of SVDpp must be a float > 0.0. Got 0.0"),
        ({"lr_decay": 1.5}, "'lr_decay' parameter of SVDpp must be a float > 0.0 and <= 1.0"),
        ({"reg": -0.1}, "'reg' parameter of SVDpp must be a float >= 0.0"),
        ({"reg_bias": float("nan")}, "'reg_bias' parameter of SVDpp"),
        ({"reg_implicit": "a"}, "'reg_implicit' parameter of SVDpp"),
        ({"init_std": -1.0}, "'init_std' parameter of SVDpp"),
        ({"batch_size": 0}, "'batch_size' parameter of SVDpp must be an int >= 1"),
        ({"seed": -1}, "'seed' parameter of SVDpp"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, object], match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        SVDpp(**params).fit(tiny_interactions())  # type: ignore[arg-type]


def test_show_progress_must_be_bool() -> None:
    with pytest.raises(ParameterError, match="'show_progress' parameter of SVDpp must be a bool or None"):
        SVDpp(show_progress="yes").fit(tiny_interactions())  # type: ignore[arg-type]
