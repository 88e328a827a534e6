"""Pipeline(retriever, ranker): candidates from the retriever, order from the ranker."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recsys.errors import NotSupportedError, ParameterError
from recsys.models import DIN, EASE, DeepFM, ItemKNN, Pipeline, Popular
from recsys.testing import tiny_interactions

RANKER: dict[str, Any] = dict(epochs=3, hidden_units=[16], validation_fraction=0.0, num_threads=1, show_progress=False)


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, Any]:
    data = tiny_interactions()
    return Pipeline(retriever=EASE(reg=10.0), ranker=DeepFM(**RANKER), n_candidates=6).fit(data), data


def test_recommendations_are_the_retrievers_candidates_ordered_by_the_ranker(fitted: tuple[Pipeline, Any]) -> None:
    model, data = fitted
    recs = model.recommend(data.users.ids, k=4)
    cands = model.retriever_.recommend(data.users.ids, k=6)
    for u in data.users.ids:
        got = recs[recs["user"] == u]
        pool = cands[cands["user"] == u]["item"].to_numpy()
        assert set(got["item"]) <= set(pool.tolist())
        scores = model.ranker_.score(np.repeat(u, len(pool)), pool)
        order = np.lexsort((data.items.to_index(pool), -scores))[:4]
        assert got["item"].tolist() == pool[order].tolist()
        np.testing.assert_array_equal(got["score"].to_numpy(), scores[order])


def test_more_candidates_than_items_is_the_rankers_own_ranking() -> None:
    data = tiny_interactions()
    model = Pipeline(retriever=ItemKNN(k=10), ranker=DeepFM(**RANKER), n_candidates=500).fit(data)
    a = model.recommend(data.users.ids, k=5)
    b = model.ranker_.recommend(data.users.ids, k=5)
    assert a["item"].tolist() == b["item"].tolist()
    np.testing.assert_array_equal(a["score"].to_numpy(), b["score"].to_numpy())


def test_k_above_n_candidates_still_gives_k_items(fitted: tuple[Pipeline, Any]) -> None:
    model, data = fitted
    ids, scores = model.recommend_one(data.users.ids[0], k=9)
    assert len(ids) == 9 and np.all(np.diff(scores) <= 0)


def test_models_are_fitted_copies_and_din_can_rank() -> None:
    data = tiny_interactions()
    retriever, ranker = Popular(), DIN(attention_units=[8], **RANKER)
    model = Pipeline(retriever=retriever, ranker=ranker, n_candidates=5).fit(data)
    assert not retriever.is_fitted and not ranker.is_fitted
    assert isinstance(model.ranker_, DIN) and model.ranker_.is_fitted
    recs = model.recommend(data.users.ids[:3], k=3)
    popular5 = set(Popular().fit(data).recommend(data.users.ids[:3], k=5)["item"])
    assert set(recs["item"]) <= popular5


def test_parameters_and_fold_in() -> None:
    with pytest.raises(ParameterError, match="retriever"):
        Pipeline(retriever="ItemKNN").fit(tiny_interactions())  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="n_candidates"):
        Pipeline(n_candidates=0).fit(tiny_interactions())
    model = Pipeline(retriever=ItemKNN(k=5), ranker=DeepFM(**RANKER)).fit(tiny_interactions())
    with pytest.raises(NotSupportedError, match="Pipeline"):
        model.recommend_history([0, 2], k=3)
