"""Pipeline(retriever, ranker): candidates from the retriever, order from the ranker."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recsys.errors import NotSupportedError, ParameterError
from recsys.models import DIN, EASE, DeepFM, ItemKNN, Pipeline, Popular, Ranker
from recsys.testing import assert_recommendations_equal, assert_top_k, tiny_interactions

RANKER: dict[str, Any] = dict(epochs=3, hidden_units=[16], validation_fraction=0.0, num_threads=1, show_progress=False)


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, Any]:
    data = tiny_interactions()
    model = Pipeline(retriever=EASE(reg=10.0), ranker=DeepFM(**RANKER), n_candidates=6, ranker_training="interactions")
    return model.fit(data), data


def test_recommendations_are_the_retrievers_candidates_ordered_by_the_ranker(fitted: tuple[Pipeline, Any]) -> None:
    model, data = fitted
    recs = model.recommend(data.users.ids, k=4)
    cands = model.retriever_.recommend(data.users.ids, k=6)
    for u in data.users.ids:
        got = recs[recs["user"] == u]
        pool = cands[cands["user"] == u]["item"].to_numpy()
        assert set(got["item"]) <= set(pool.tolist())
        scores = model.ranker_.score(np.repeat(u, len(pool)), pool)
        assert_top_k(got["item"], got["score"], dict(zip(pool.tolist(), scores.tolist())), k=4)


def test_many_users_are_ranked_in_blocks_with_the_same_lists(fitted: tuple[Pipeline, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import recsys.models.pipeline as pipeline_module

    model, data = fitted
    whole = model.recommend(data.users.ids, k=4)
    calls: list[int] = []
    real = Pipeline._topk_block

    def spy(self: Pipeline, uidx: Any, *args: Any) -> Any:
        calls.append(len(uidx))
        return real(self, uidx, *args)

    monkeypatch.setattr(pipeline_module, "_BLOCK_PAIRS", 13)  # 2 users of 6 candidates per block
    monkeypatch.setattr(Pipeline, "_topk_block", spy)
    blocked = model.recommend(data.users.ids, k=4)
    assert calls == [2] * (data.n_users // 2) + ([data.n_users % 2] if data.n_users % 2 else [])
    assert_recommendations_equal(blocked, whole)


def test_more_candidates_than_items_is_the_rankers_own_ranking() -> None:
    data = tiny_interactions()
    model = Pipeline(retriever=ItemKNN(k=10), ranker=DeepFM(**RANKER), n_candidates=500, ranker_training="interactions")
    model.fit(data)
    a = model.recommend(data.users.ids, k=5)
    b = model.ranker_.recommend(data.users.ids, k=5)
    assert_recommendations_equal(a, b)


def test_k_above_n_candidates_still_gives_k_items(fitted: tuple[Pipeline, Any]) -> None:
    model, data = fitted
    ids, scores = model.recommend_one(data.users.ids[0], k=9)
    assert len(ids) == 9 and np.all(np.diff(scores) <= 0)


def test_models_are_fitted_copies_and_din_can_rank() -> None:
    data = tiny_interactions()
    retriever, ranker = Popular(), DIN(attention_units=[8], **RANKER)
    model = Pipeline(retriever=retriever, ranker=ranker, n_candidates=5, ranker_training="interactions").fit(data)
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


# -- the ranker learns to rank the retriever's candidates (ranker_training="candidates") --------


def test_candidate_rows_are_labelled_by_the_held_out_part() -> None:
    from recsys.split import stratified_split

    data = tiny_interactions()
    pipe = Pipeline(retriever=ItemKNN(k=10), ranker=DeepFM(**RANKER), n_candidates=6, n_folds=1, holdout=0.3, seed=3)
    rows = pipe._candidate_rows(data)
    part, held = stratified_split(data, ratio=0.7, by="user", seed=3)
    held_pairs = set(zip(held.user_index.tolist(), held.item_index.tolist()))
    part_pairs = set(zip(part.user_index.tolist(), part.item_index.tolist()))
    pairs = list(zip(rows.users.tolist(), rows.items.tolist()))
    assert rows.labels.tolist() == [float(p in held_pairs) for p in pairs]
    assert not set(pairs) & part_pairs  # the retriever fitted on ``part`` never proposes its seen items
    assert len(rows.history) == 1 and rows.history[0].nnz == part.nnz and np.all(rows.fold == 0)
    # the prior is each user's retriever scores, standardised by hand
    retriever = ItemKNN(k=10).fit(part)
    for u in np.unique(rows.users):
        ids, scores = retriever.recommend_one(part.users.ids[u], k=6)
        z = (scores - scores.mean()) / scores.std()
        np.testing.assert_allclose(rows.prior[rows.users == u], z, rtol=1e-4, atol=1e-5)


def test_cross_fitted_candidate_rows_label_every_interaction_once() -> None:
    from recsys.split import k_fold

    data = tiny_interactions()
    pipe = Pipeline(retriever=ItemKNN(k=10), n_candidates=data.n_items, n_folds=3, seed=5)
    rows = pipe._candidate_rows(data)
    folds = k_fold(data, n_folds=3, seed=5)
    assert len(rows.history) == 3 and sorted(np.unique(rows.fold).tolist()) == [0, 1, 2]
    positives = []
    for f, (part, held) in enumerate(folds):
        mine = rows.fold == f
        assert rows.history[f].nnz == part.nnz
        held_pairs = set(zip(held.user_index.tolist(), held.item_index.tolist()))
        part_pairs = set(zip(part.user_index.tolist(), part.item_index.tolist()))
        pairs = list(zip(rows.users[mine].tolist(), rows.items[mine].tolist()))
        assert rows.labels[mine].tolist() == [float(p in held_pairs) for p in pairs]
        assert not set(pairs) & part_pairs  # each fold's retriever never proposes what it was fitted on
        positives += [p for p, y in zip(pairs, rows.labels[mine]) if y == 1]
    # all items are candidates here: every interaction labels exactly one positive row
    assert sorted(positives) == sorted(zip(data.user_index.tolist(), data.item_index.tolist()))


def test_cross_fitted_din_histories_come_from_the_rows_own_fold() -> None:
    data = tiny_interactions()
    pipe = Pipeline(retriever=ItemKNN(k=10), ranker=DIN(label_threshold=4, attention_units=[8], **RANKER),
                    n_candidates=4, n_folds=2, seed=1)
    rows = pipe._candidate_rows(data)
    items, end, length = rows.history_rows(lambda part: (part.ratings >= 4).astype(np.float32), max_len=50)
    for r in range(0, len(rows.users), 7):
        part = rows.history[rows.fold[r]]
        u = rows.users[r]
        mine = (part.user_index == u) & (part.ratings >= 4)
        assert sorted(items[end[r] - length[r] : end[r]].tolist()) == sorted(part.item_index[mine].tolist())
    model = pipe.fit(data)  # trains on both folds' histories, serves over the whole data's
    assert model.ranker_.uses_prior_
    assert len(model.recommend(data.users.ids[:3], k=3)) == 9


def test_candidate_trained_ranker_orders_the_candidates_with_the_retriever_score() -> None:
    data = tiny_interactions()
    model = Pipeline(retriever=EASE(reg=10.0), ranker=DeepFM(**RANKER), n_candidates=6).fit(data)
    assert model.ranker_.uses_prior_ and "prior_weight" in model.ranker_.state_dict_
    with pytest.raises(NotSupportedError, match="Pipeline"):
        model.ranker_.recommend(data.users.ids[:2], k=3)
    recs = model.recommend(data.users.ids, k=4)
    for u in data.users.ids[:5]:
        pool, raw = model.retriever_.recommend_one(u, k=6)
        uidx = np.full(len(pool), data.users.to_index([u])[0], dtype=np.int32)
        iidx = data.items.to_index(pool).astype(np.int32)
        prior = ((raw - raw.mean()) / raw.std()).astype(np.float32) if raw.std() > 0 else np.zeros(len(raw), np.float32)
        scores = model.ranker_.score_candidates(uidx, iidx, prior)
        order = np.lexsort((iidx, -scores))[:4]
        got = recs[recs["user"] == u]
        assert_top_k(got["item"], got["score"], dict(zip(pool.tolist(), scores.tolist())), k=4, rtol=1e-5, atol=1e-5)
        # score() of a pair agrees with recommend whatever the other candidates are
        np.testing.assert_allclose(model.score(np.repeat(u, 4), pool[order]), scores[order], rtol=1e-5, atol=1e-5)


def test_pipeline_parameters() -> None:
    with pytest.raises(ParameterError, match="ranker_training"):
        Pipeline(ranker_training="joint").fit(tiny_interactions())
    with pytest.raises(ParameterError, match="holdout"):
        Pipeline(holdout=1.0).fit(tiny_interactions())
    with pytest.raises(ParameterError, match="n_folds"):
        Pipeline(n_folds=0).fit(tiny_interactions())


def test_candidate_training_needs_a_declared_ranker() -> None:
    assert isinstance(DeepFM(), Ranker) and isinstance(DIN(), Ranker)
    assert not isinstance(EASE(), Ranker)
    with pytest.raises(ParameterError, match="'ranker' parameter of Pipeline must implement recsys.models.Ranker.*Got EASE"):
        Pipeline(retriever=ItemKNN(k=5), ranker=EASE(reg=10.0), n_candidates=5).fit(tiny_interactions())
    # any model ranks on the interactions alone
    model = Pipeline(retriever=ItemKNN(k=5), ranker=EASE(reg=10.0), n_candidates=5, ranker_training="interactions")
    ids, scores = model.fit(tiny_interactions()).recommend_one(0, k=3)
    assert len(ids) == 3 and np.all(np.diff(scores) <= 0)
