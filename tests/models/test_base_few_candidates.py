"""``items=`` with fewer candidates than ``k``: lists are the allowed unseen candidates, best first, never an error.

(Found by the service: ``GET /recommend?user=3&items=1,3,5,7`` with the default k=10
raised a broadcast ValueError in the base class.)
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.content import HashingEncoder
from recsys.models import EASE, ContentBased, ItemKNN, Popular, Recommender, UserKNN
from recsys.testing import assert_rankings_equal, assert_top_k, tiny_interactions

MODELS = {
    "Popular": lambda: Popular(),
    "ItemKNN": lambda: ItemKNN(k=10),
    "UserKNN": lambda: UserKNN(k=5),
    "EASE": lambda: EASE(reg=10.0),
    "ContentBased": lambda: ContentBased(encoder=HashingEncoder(dim=256)),
}


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return tiny_interactions()


@pytest.mark.parametrize("name", list(MODELS))
def test_fewer_candidates_than_k(name: str, data) -> None:  # type: ignore[no-untyped-def]
    model: Recommender = MODELS[name]().fit(data)
    user = 3
    seen = set(data.items.ids[data.matrix("csr").getrow(model.users_.index_of(user)).indices].tolist())
    candidates = [1, 2, 3, 5, 7, 9]
    want = [i for i in candidates if i not in seen]
    ids, scores = model.recommend_one(user, k=10, items=candidates)
    assert sorted(ids.tolist()) == sorted(want)  # every allowed unseen candidate, nothing else
    assert np.all(np.diff(scores) <= 0) and np.isfinite(scores).all()
    # the same list as the scores of those candidates ranked independently (score() sums in another
    # order: ties within float error may come either way)
    full = model.score([user] * len(want), want)
    assert_top_k(ids, scores, dict(zip(want, full.tolist())), k=10)
    frame = model.recommend([user, 4], k=10, items=candidates)
    assert_rankings_equal(frame[frame.user == user].item, frame[frame.user == user].score, ids, scores, truncated=False)
    ids_all, _ = model.recommend_one(user, k=10, items=candidates, exclude_seen=False)
    assert sorted(ids_all.tolist()) == sorted(candidates)
