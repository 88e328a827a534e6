"""Tests of recsys.datasets.synthetic: sizes, determinism, and the structure it promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.datasets.synthetic import _FILLERS, _GENRES, SyntheticData, synthetic
from recsys.errors import ParameterError
from recsys.split import stratified_split


@pytest.fixture(scope="module")
def sd() -> SyntheticData:
    return synthetic(n_users=600, n_items=1000, n_interactions=30_000, seed=3, return_frames=True)


def top_share(counts: np.ndarray, frac: float = 0.1) -> float:
    c = np.sort(counts)[::-1]
    return float(c[: max(1, int(len(c) * frac))].sum() / c.sum())


# -- sizes, determinism, errors ------------------------------------------------------------


@pytest.mark.parametrize(
    "n_users,n_items,n_interactions",
    [(1000, 500, 20_000), (5, 4, 20), (5, 4, 19), (50, 3, 10), (1, 1, 1), (40, 300, 7)],
)
def test_sizes_are_exact(n_users: int, n_items: int, n_interactions: int) -> None:
    out = synthetic(n_users, n_items, n_interactions, return_frames=True)
    d = out.interactions
    assert (d.n_users, d.n_items, d.nnz) == (n_users, n_items, n_interactions)
    assert not out.frame.duplicated(["user", "item"]).any()
    assert len(out.user_features) == n_users and len(out.item_features) == n_items
    if n_interactions >= n_users:
        assert d.user_counts.min() >= 1  # everyone is active when there are enough rows
    if n_interactions == n_users * n_items:
        assert (d.matrix(values="binary").toarray() == 1).all()


def test_users_and_items_without_rows_stay_in_the_maps() -> None:
    d = synthetic(40, 300, 7)
    assert d.n_users == 40 and d.n_items == 300
    assert (d.user_counts == 0).sum() >= 33 and (d.item_counts == 0).sum() >= 293


def test_deterministic_per_seed() -> None:
    a = synthetic(80, 60, 900, seed=7, return_frames=True)
    b = synthetic(80, 60, 900, seed=7, return_frames=True)
    c = synthetic(80, 60, 900, seed=8, return_frames=True)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    pd.testing.assert_frame_equal(a.item_features, b.item_features)
    pd.testing.assert_frame_equal(a.user_features, b.user_features)
    assert np.array_equal(a.item_factors, b.item_factors)
    assert not a.frame.equals(c.frame)


def test_return_frames_matches_interactions(sd: SyntheticData) -> None:
    d, f = sd.interactions, sd.frame
    assert list(f.columns) == ["user", "item", "rating", "timestamp"]
    assert f["timestamp"].dtype == np.int64 and f["rating"].dtype == np.int8
    got = d.to_frame()
    assert np.array_equal(got["user"].to_numpy(), f["user"].to_numpy())
    assert np.array_equal(got["item"].to_numpy(), f["item"].to_numpy())
    assert np.array_equal(got["rating"].to_numpy(), f["rating"].to_numpy(dtype=np.float32))
    assert np.array_equal(got["timestamp"].to_numpy(), f["timestamp"].to_numpy())
    assert isinstance(synthetic(10, 10, 20), type(d))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_users=0), r"'n_users' parameter of synthetic must be an int >= 1\. Got 0 instead\."),
        (dict(n_items=2.5), r"'n_items' parameter of synthetic must be an int >= 1\. Got 2\.5"),
        (dict(n_interactions=True), "'n_interactions' parameter of synthetic must be an int >= 1"),
        (dict(seed=-1), "'seed' parameter of synthetic must be an int >= 0"),
        (dict(n_factors=0), "'n_factors'"),
        (dict(n_categories=0), "'n_categories'"),
        (dict(n_candidates=0), "'n_candidates'"),
        (dict(popularity_exponent=-1.0), "'popularity_exponent' parameter of synthetic must be a float >= 0\\.0"),
        (dict(preference_strength=float("inf")), "'preference_strength'"),
        (dict(preference_strength="high"), "'preference_strength'"),
        (
            dict(n_users=3, n_items=4, n_interactions=13),
            r"at most n_users \* n_items \(3 \* 4 = 12\).*Got 13 instead",
        ),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        synthetic(**kwargs)


# -- structure --------------------------------------------------------------------------------


def test_popularity_is_skewed(sd: SyntheticData) -> None:
    share = top_share(sd.interactions.item_counts)
    assert share > 0.3  # uniform would give about 0.1
    # The base law really is a power law: top 10% of items hold most of the draw mass.
    assert top_share(sd.item_popularity) > 0.5
    flat = synthetic(600, 1000, 30_000, seed=3, popularity_exponent=0.0, preference_strength=0.0)
    assert top_share(flat.item_counts) < 0.2
    steep = synthetic(600, 1000, 30_000, seed=3, popularity_exponent=1.5)
    assert top_share(steep.item_counts) > share


def test_user_activity_is_skewed(sd: SyntheticData) -> None:
    uc = sd.interactions.user_counts
    assert uc.max() > 5 * np.median(uc)
    assert uc.max() <= sd.interactions.n_items // 2  # at most half the catalogue


def test_picks_follow_latent_preferences(sd: SyntheticData) -> None:
    d = sd.interactions
    u = sd.user_factors[d.users.ids]
    v = sd.item_factors[d.items.ids]
    picked = np.einsum("nf,nf->n", u[d.user_index], v[d.item_index])
    pop = sd.item_popularity[d.items.ids]
    rng = np.random.default_rng(0)
    other = rng.choice(d.n_items, size=d.nnz, p=pop / pop.sum())
    baseline = np.einsum("nf,nf->n", u[d.user_index], v[other])
    # Scores have unit std over random pairs: picks sit far above popularity-drawn items.
    assert picked.mean() - baseline.mean() > 0.5
    # Without preference there is no such gap (so the check above can fail).
    flat = synthetic(600, 1000, 30_000, seed=3, preference_strength=0.0, return_frames=True)
    fd = flat.interactions
    fu, fv = flat.user_factors[fd.users.ids], flat.item_factors[fd.items.ids]
    fpop = flat.item_popularity[fd.items.ids]
    f_other = rng.choice(fd.n_items, size=fd.nnz, p=fpop / fpop.sum())
    gap = np.einsum("nf,nf->n", fu[fd.user_index], fv[fd.item_index]).mean() - np.einsum(
        "nf,nf->n", fu[fd.user_index], fv[f_other]
    ).mean()
    assert abs(gap) < 0.1


def _recall_at_10(scores: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    scores = np.where(train > 0, -np.inf, scores)
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    hits = np.take_along_axis(test, top, axis=1).sum(axis=1)
    n = test.sum(axis=1)
    keep = n > 0
    return float((hits[keep] / np.minimum(n[keep], 10)).mean())


def test_collaborative_filtering_beats_popularity(sd: SyntheticData) -> None:
    train, test = stratified_split(sd.interactions)
    x = train.matrix(values="binary").toarray().astype(np.float64)
    t = test.matrix(values="binary").toarray()
    pop = np.tile(x.sum(axis=0), (x.shape[0], 1))
    norm = x / np.sqrt(np.maximum(x.sum(axis=0), 1.0))
    sim = norm.T @ norm
    np.fill_diagonal(sim, 0.0)
    r_pop = _recall_at_10(pop, x, t)
    r_knn = _recall_at_10(x @ sim, x, t)
    assert r_knn > 1.15 * r_pop, (r_knn, r_pop)


def test_ratings_follow_preference(sd: SyntheticData) -> None:
    d = sd.interactions
    r = d.ratings
    assert set(np.unique(r).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.2 < r.mean() < 4.0
    s = np.einsum("nf,nf->n", sd.user_factors[d.users.ids][d.user_index], sd.item_factors[d.items.ids][d.item_index])
    assert np.corrcoef(s, r)[0, 1] > 0.3


def test_timestamps_increase_along_each_user(sd: SyntheticData) -> None:
    f = sd.frame
    ts = f["timestamp"].to_numpy()
    same_user = f["user"].to_numpy()[1:] == f["user"].to_numpy()[:-1]
    assert (np.diff(ts)[same_user] >= 0).all()
    assert ts.min() >= 1_420_070_400  # 2015-01-01
    assert (np.diff(f["user"].to_numpy()) >= 0).all()  # rows grouped by user, in id order
    assert sd.interactions.timestamps.dtype == np.int64


def test_item_features_aligned_and_informative(sd: SyntheticData) -> None:
    d = sd.interactions
    assert d.item_feature_kinds == {"category": "categorical", "genres": "multi", "title": "text"}
    assert d.user_feature_kinds == {"favourite_genre": "categorical", "age": "numeric"}
    feats = sd.item_features.set_index("item")
    # Row i of the aligned table describes internal index i.
    aligned = d.item_features
    ids = d.items.ids
    assert (aligned["category"].astype(str).to_numpy() == feats.loc[ids, "category"].astype(str).to_numpy()).all()
    assert [list(g) for g in aligned["genres"]] == [list(g) for g in feats.loc[ids, "genres"]]
    for cat, genres, title in zip(feats["category"].astype(str), feats["genres"], feats["title"]):
        assert genres[0] == cat and len(set(genres)) == len(genres) <= 3
        words = title.lower().split()
        assert 2 <= len(words) <= 4
        vocab = set(_FILLERS).union(*(_GENRES[g] for g in genres))
        assert set(words) <= vocab, (title, genres)
    # Items of one category share their latent direction: closer to their centroid than to others.
    cats = feats["category"].astype(str).to_numpy()
    v = sd.item_factors
    centroids = {c: v[cats == c].mean(axis=0) for c in np.unique(cats)}
    nearest = np.array([max(centroids, key=lambda c: float(centroids[c] @ x)) for x in v])
    assert (nearest == cats).mean() > 0.8


def test_user_features_aligned_and_informative(sd: SyntheticData) -> None:
    d = sd.interactions
    uf = sd.user_features.set_index("user")
    assert (d.user_features["age"].to_numpy() == uf.loc[d.users.ids, "age"].to_numpy()).all()
    age = uf["age"].to_numpy()
    assert age.min() >= 16 and age.max() <= 80
    assert np.corrcoef(age, sd.user_factors[:, 0])[0, 1] > 0.5
    # The declared favourite genre is the category of many of the user's items.
    f = sd.frame
    cat_of_item = sd.item_features["category"].astype(str).to_numpy()
    fav = uf["favourite_genre"].astype(str).to_numpy()
    agree = (cat_of_item[f["item"].to_numpy()] == fav[f["user"].to_numpy()]).mean()
    n_cat = len(np.unique(cat_of_item))
    assert agree > 2.0 / n_cat


@pytest.mark.parametrize("n_categories", [1, 2, 3])
def test_few_categories(n_categories: int) -> None:
    out = synthetic(50, 200, 1000, n_categories=n_categories, return_frames=True)
    genres = out.item_features["genres"]
    assert genres.map(len).max() <= n_categories
    assert out.item_features["category"].astype(str).nunique() <= n_categories


def test_many_categories_get_made_up_names() -> None:
    out = synthetic(30, 60, 300, n_categories=25, return_frames=True)
    cats = set(out.item_features["category"].astype(str))
    assert any(c.startswith("genre") for c in cats)
    assert all(len(t.split()) >= 2 for t in out.item_features["title"])
