"""Explanations: the parts of a score sum to the score, and removing a part removes its share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.datasets import synthetic
from recsys.errors import DataError, NotSupportedError, UnknownIdError
from recsys.models import BPR, ItemKNN


@pytest.fixture(scope="module")
def data() -> Interactions:
    return synthetic(120, 60, 2_000, seed=3)


def _history(model: ItemKNN, user: object) -> np.ndarray:
    u = model.users_.index_of(user)
    return model.items_.ids[model.seen_[u].indices]


def test_itemknn_by_hand() -> None:
    # users x items: u0 has a, b; u1 has a, b, c; u2 has b, c. Cosine: sim(a,b) = 2/sqrt(2*3), sim(a,c) = 1/sqrt(2*2), sim(b,c) = 2/sqrt(3*2)
    frame = pd.DataFrame({"user": [0, 0, 1, 1, 1, 2, 2], "item": ["a", "b", "a", "b", "c", "b", "c"]})
    model = ItemKNN(k=5, weighting="none", shrinkage=0.0).fit(Interactions.from_frame(frame))
    exp = model.explain(0, "c")
    got = dict(zip(exp["id"], exp["contribution"]))
    assert got == pytest.approx({"b": 2 / np.sqrt(6), "a": 0.5})
    assert list(exp["id"]) == ["b", "a"]  # largest first
    assert exp.attrs["score"] == pytest.approx(2 / np.sqrt(6) + 0.5)


@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
def test_itemknn_parts_sum_to_score(data: Interactions, feedback: str) -> None:
    model = ItemKNN(k=15, feedback=feedback).fit(data)
    for user in model.users_.ids[:10]:
        items, scores = model.recommend_one(user, k=3)
        for item, score in zip(items, scores):
            exp = model.explain(user, item, top=2)
            assert exp.attrs["exact"]
            assert exp["contribution"].sum() == pytest.approx(float(score), abs=1e-5)
            assert len(exp[exp["kind"] == "item"]) <= 2


def test_itemknn_removing_top_contributor(data: Interactions) -> None:
    model = ItemKNN(k=15).fit(data)
    user = model.users_.ids[5]
    hist = _history(model, user)
    item = model.recommend_one(user, k=1)[0][0]
    full = model.explain_history(hist, item, top=100)
    top = full.iloc[0]
    assert top["kind"] == "item"
    rest = [h for h in hist if h != top["id"]]
    reduced = model.explain_history(rest, item, top=100)
    assert full.attrs["score"] - reduced.attrs["score"] == pytest.approx(top["contribution"], abs=1e-5)
    # a history equal to the user's training data explains the same score as the known user
    assert full.attrs["score"] == pytest.approx(model.explain(user, item).attrs["score"], abs=1e-5)


def test_errors(data: Interactions) -> None:
    knn = ItemKNN(k=5).fit(data)
    with pytest.raises(UnknownIdError):
        knn.explain("no-such-user", knn.items_.ids[0])
    with pytest.raises(DataError, match="at least one history item"):
        knn.explain_history([], knn.items_.ids[0])
    with pytest.raises(NotSupportedError, match="BPR cannot explain"):
        BPR(n_factors=4, n_epochs=1).fit(data).explain(knn.users_.ids[0], knn.items_.ids[0])
