"""EmbeddingRecommender: retrieval through the shared ItemIndex equals brute-force scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from recsys import Interactions, load_model
from recsys.models._embedding import EmbeddingRecommender
from recsys.testing import assert_recommendations_equal, assert_recommendations_match_scores, assert_top_k


class FixedVectors(EmbeddingRecommender):
    """Seeded random user/item vectors: a model whose scores are known without training."""

    def __init__(self, dim: int = 8, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed

    def _fit(self, data: Interactions) -> None:
        rng = np.random.default_rng(self.seed)
        self.uv_ = rng.normal(size=(data.n_users, self.dim)).astype(np.float32)
        self.iv_ = rng.normal(size=(data.n_items, self.dim)).astype(np.float32)

    def _user_vectors(self, user_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return np.asarray(self.uv_[user_idx])

    def _item_vectors(self) -> NDArray[np.float32]:
        return np.asarray(self.iv_)

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        return np.asarray(self.iv_[item_idx].sum(axis=0), dtype=np.float32)


@pytest.fixture
def data() -> Interactions:
    rng = np.random.default_rng(3)
    users = rng.integers(0, 60, size=900)
    items = rng.integers(0, 400, size=900)
    frame = pd.DataFrame({"user": users, "item": items}).drop_duplicates()
    # 20 catalogue items nobody interacted with: never candidates of a CF model
    catalogue = pd.DataFrame({"item": np.arange(400, 420), "title": ["t"] * 20})
    return Interactions.from_frame(frame, item_features=catalogue)


def brute_force(model: FixedVectors, data: Interactions) -> NDArray[np.float64]:
    """Every user's score of every item in float64; -inf where excluded (seen or cold)."""
    s = model.uv_.astype(np.float64) @ model.iv_.T.astype(np.float64)
    s[data.matrix().toarray() > 0] = -np.inf
    s[:, data.item_counts == 0] = -np.inf
    return s


def test_recommend_through_the_index_equals_brute_force(data: Interactions) -> None:
    model = FixedVectors().fit(data)
    assert model.index_.kind == "exact"
    assert model.index_.n_items == int((data.item_counts > 0).sum())  # cold items are not indexed
    recs = model.recommend(data.users.ids, k=10)
    # float32 index against a float64 reference: tolerance on scores, ties within it in any order
    assert_recommendations_match_scores(recs, brute_force(model, data), data.users.ids, data.items.ids, k=10)
    np.testing.assert_allclose(model.score(recs["user"], recs["item"]), recs["score"].to_numpy(), rtol=1e-5, atol=1e-6)


def test_fold_in_and_candidates_through_the_index(data: Interactions) -> None:
    model = FixedVectors().fit(data)
    hist = data.items.ids[[0, 5, 9]]
    ids, scores = model.recommend_history(hist, k=5)
    s = model.iv_.astype(np.float64) @ model.iv_[[0, 5, 9]].sum(axis=0).astype(np.float64)
    s[[0, 5, 9]] = -np.inf
    s[data.item_counts == 0] = -np.inf
    assert_top_k(ids, scores, dict(zip(data.items.ids.tolist(), s.tolist())), k=5)
    allowed = data.items.ids[::7]
    r = model.recommend(data.users.ids[:5], k=4, items=allowed)
    assert set(r["item"]) <= set(allowed.tolist())
    ids, _ = model.recommend_history(hist, k=50, candidates=np.append(allowed, 405))
    assert set(ids.tolist()) <= set(allowed.tolist()) - set(hist.tolist())


def test_approximate_index_is_saved_and_recalls(data: Interactions, tmp_path: Path) -> None:
    model = FixedVectors().fit(data)
    exact = model.recommend(data.users.ids, k=10)
    model.build_index("hnsw", M=16, ef_search=200)
    approx = model.recommend(data.users.ids, k=10)
    hits = len(set(zip(exact["user"], exact["item"])) & set(zip(approx["user"], approx["item"])))
    assert hits / len(exact) >= 0.95
    loaded = load_model(model.save(tmp_path / "m"))
    assert isinstance(loaded, FixedVectors) and loaded.index_.kind == "hnsw"
    assert_recommendations_equal(loaded.recommend(data.users.ids, k=10), approx)
