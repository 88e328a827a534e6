"""Evaluator: hand-worked cases for every metric, error paths, and bootstrap / compare."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.data import Interactions
from recsys.errors import (
    DataError,
    DataTypeError,
    DataWarning,
    MissingColumnError,
    NotSupportedError,
    ParameterError,
)
from recsys.evaluation import METRICS, EvaluationResult, Evaluator, compare
from recsys.evaluation import metrics as M

LOG2_5 = math.log2(5)


def frame(pairs: list[tuple[Any, ...]], cols: tuple[str, ...] = ("user", "item")) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=list(cols))


def ranked(lists: dict[Any, list[Any]]) -> pd.DataFrame:
    rows = [(u, i, r) for u, items in lists.items() for r, i in enumerate(items, start=1)]
    return frame(rows, ("user", "item", "rank"))


class FakeModel:
    """A fitted model with the base-class API: recommend() from fixed lists, optional predict()."""

    def __init__(self, lists: dict[Any, list[Any]], predictions: dict[tuple[Any, Any], float] | None = None):
        self.lists = lists
        self.predictions = predictions
        self.calls: list[dict[str, Any]] = []
        if predictions is None:
            self.predict = None  # type: ignore[assignment]

    def recommend(self, users: Any, k: int = 10, *, exclude_seen: bool = True, items: Any = None,
                  exclude_items: Any = None, on_unknown: str = "error") -> pd.DataFrame:
        users = list(users)
        self.calls.append({"users": users, "k": k, "exclude_seen": exclude_seen, "on_unknown": on_unknown})
        rows = []
        for u in users:
            for r, i in enumerate(self.lists.get(u, [])[:k], start=1):
                rows.append((u, i, float(10 - r), r))
        return pd.DataFrame(rows, columns=["user", "item", "score", "rank"])

    def predict(self, users: Any, items: Any) -> np.ndarray:  # noqa: F811 - replaced when None
        assert self.predictions is not None
        return np.array([self.predictions[(u, i)] for u, i in zip(users, items)], dtype=np.float32)


# -- accuracy metrics ------------------------------------------------------------------------


ACC_TRAIN = frame([("u1", "x"), ("u2", "x"), ("u3", "x")])
ACC_TEST = frame([("u1", "a"), ("u1", "b"), ("u2", "c"), ("u3", "d")])
ACC_RECS = ranked({"u1": ["a", "z", "b"], "u2": ["z", "y", "c"]})  # u3 has no list


def test_accuracy_metrics_worked_by_hand() -> None:
    res = Evaluator(ACC_TRAIN, ACC_TEST, k=[1, 3], metrics=list(M.RANKING_METRICS)).evaluate(ACC_RECS)
    s = res.summary
    # k=3. u1: rel [1,0,1], |T|=2; u2: rel [0,0,1], |T|=1; u3: empty list.
    ndcg_u1 = 1.5 / (1 + 1 / math.log2(3))
    expected3 = {
        "precision@3": (2 / 3 + 1 / 3 + 0) / 3,
        "recall@3": (1 + 1 + 0) / 3,
        "f1@3": (2 * (2 / 3) * 1 / (2 / 3 + 1) + 2 * (1 / 3) * 1 / (1 / 3 + 1) + 0) / 3,  # (0.8 + 0.5 + 0) / 3
        "hit_rate@3": 2 / 3,
        "mrr@3": (1 + 1 / 3) / 3,
        "ndcg@3": (ndcg_u1 + 0.5) / 3,
        "map@3": ((1 + 2 / 3) / 2 + 1 / 3) / 3,
    }
    # k=1: only u1 hits, at rank 1; recall 1/2, AP divided by min(2, 1).
    expected1 = {"precision@1": 1 / 3, "recall@1": 1 / 6, "f1@1": (2 * 1 * 0.5 / 1.5) / 3, "hit_rate@1": 1 / 3,
                 "mrr@1": 1 / 3, "ndcg@1": 1 / 3, "map@1": 1 / 3}
    for name, v in {**expected3, **expected1}.items():
        assert s[name] == pytest.approx(v, abs=1e-12), name
    assert list(s) == [f"{m}@{k}" for m in M.RANKING_METRICS for k in (1, 3)]
    pu = res.per_user.set_index("user")
    assert pu.loc["u1", "ndcg@3"] == pytest.approx(ndcg_u1)
    assert pu.loc["u3", "ndcg@3"] == 0.0
    assert pu.loc["u3", "n_recommended"] == 0 and pu.loc["u1", "n_relevant"] == 2


def test_f1_is_the_mean_of_per_user_f1_not_the_f1_of_the_means() -> None:
    train = frame([("a", "x"), ("b", "x"), ("c", "x")])
    test = frame([("a", "t1"), ("b", "t1"), ("b", "t2"), ("b", "t3"), ("b", "t4"), ("c", "t1"), ("c", "t2")])
    # k=2. a: |T|=1, hit then miss: P=1/2, R=1, F1=2/3. b: |T|=4, two hits: P=1, R=1/2, F1=2/3.
    # c: |T|=2, no hit: P=R=0, F1=0 (not 0/0).
    recs = ranked({"a": ["t1", "m1"], "b": ["t1", "t2"], "c": ["m1", "m2"]})
    res = Evaluator(train, test, k=2, metrics=["precision", "recall", "f1"]).evaluate(recs)
    pu = res.per_user.set_index("user")["f1@2"]
    assert pu.to_dict() == pytest.approx({"a": 2 / 3, "b": 2 / 3, "c": 0.0}, abs=1e-12)
    s = res.summary
    assert s["f1@2"] == pytest.approx(4 / 9, abs=1e-12)
    assert (s["precision@2"], s["recall@2"]) == pytest.approx((1 / 2, 1 / 2), abs=1e-12)
    f1_of_means = 2 * s["precision@2"] * s["recall@2"] / (s["precision@2"] + s["recall@2"])
    assert f1_of_means == pytest.approx(1 / 2) and abs(s["f1@2"] - f1_of_means) > 0.05

    # Two users, P=1/2,R=1 and P=R=0: mean F1 = 1/3. Here the F1 of the means is 1/3 too (halving
    # P and R halves F1), which is why the case above needs a third user to tell them apart.
    test2 = frame([("a", "t1"), ("c", "t1"), ("c", "t2")])
    r2 = Evaluator(train, test2, k=2, metrics=["f1"]).evaluate(ranked({"a": ["t1", "m1"], "c": ["m1", "m2"]}))
    assert r2.per_user.set_index("user")["f1@2"].to_dict() == pytest.approx({"a": 2 / 3, "c": 0.0}, abs=1e-12)
    assert r2.summary["f1@2"] == pytest.approx(1 / 3, abs=1e-12)


def test_short_list_precision_divides_by_k() -> None:
    res = Evaluator(frame([(1, 9)]), frame([(1, 5)]), k=4).evaluate(ranked({1: [5]}))
    assert res.summary["precision@4"] == 0.25
    assert res.summary["recall@4"] == 1.0 and res.summary["ndcg@4"] == 1.0 and res.summary["map@4"] == 1.0


def test_score_ties_keep_row_order_and_rank_order_ignores_row_order() -> None:
    ev = Evaluator(frame([(1, 9)]), frame([(1, "p")]), k=1, metrics=["mrr"])
    tie_q_first = frame([(1, "q", 0.5), (1, "p", 0.5)], ("user", "item", "score"))
    tie_p_first = frame([(1, "p", 0.5), (1, "q", 0.5)], ("user", "item", "score"))
    assert ev.evaluate(tie_q_first).summary["mrr@1"] == 0.0
    assert ev.evaluate(tie_p_first).summary["mrr@1"] == 1.0
    higher_q = frame([(1, "p", 0.4), (1, "q", 0.5)], ("user", "item", "score"))
    assert ev.evaluate(higher_q).summary["mrr@1"] == 0.0
    shuffled = frame([(1, "q", 2), (1, "p", 1)], ("user", "item", "rank"))
    assert ev.evaluate(shuffled).summary["mrr@1"] == 1.0


def test_rank_gaps_are_closed_and_rows_past_k_ignored() -> None:
    ev = Evaluator(frame([(1, 9)]), frame([(1, "c")]), k=2, metrics=["ndcg", "precision"])
    recs = frame([(1, "a", 3), (1, "c", 10), (1, "b", 1)], ("user", "item", "rank"))  # order b, a, c
    assert ev.evaluate(recs).summary["precision@2"] == 0.0
    recs = frame([(1, "a", 3), (1, "c", 10)], ("user", "item", "rank"))  # order a, c
    assert ev.evaluate(recs).summary["ndcg@2"] == pytest.approx(1 / math.log2(3))


def test_users_without_relevant_items_and_cold_users_are_skipped() -> None:
    train = frame([("u1", "a", 5.0), ("u2", "a", 1.0)], ("user", "item", "rating"))
    test = frame([("u1", "b", 5.0), ("u2", "b", 2.0), ("cold", "b", 5.0)], ("user", "item", "rating"))
    ev = Evaluator(train, test, k=1, relevance_threshold=4)
    assert ev.n_users_evaluated == 1
    res = ev.evaluate(ranked({"u1": ["b"], "u2": ["b"], "cold": ["b"], "stranger": ["b"]}))
    assert res.n_users_evaluated == 1 and res.n_test_users == 3 and res.n_test_users_skipped == 2
    assert res.users.tolist() == ["u1"]
    assert res.summary["precision@1"] == 1.0
    # u1, u2 and cold got lists; the stranger is not a test user and is ignored.
    assert res.summary["user_coverage@1"] == 1.0
    res = ev.evaluate(ranked({"u1": ["b"]}))
    assert res.summary["user_coverage@1"] == pytest.approx(1 / 3)


def test_items_absent_from_train_still_count_as_relevant() -> None:
    res = Evaluator(frame([(1, "a")]), frame([(1, "new")]), k=1).evaluate(ranked({1: ["new"]}))
    assert res.summary["hit_rate@1"] == 1.0
    assert res.summary["coverage@1"] == 0.5  # {new} / ({a} ∪ {new})


def test_no_evaluable_user_is_an_error() -> None:
    with pytest.raises(DataError, match="no test user can be evaluated"):
        Evaluator(frame([(1, "a")]), frame([(2, "a")]))


# -- beyond-accuracy metrics -----------------------------------------------------------------

BA_TRAIN = frame([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c"), ("u3", "a")])
BA_TEST = frame([("u1", "c"), ("u2", "b"), ("u3", "b")])
BA_LISTS = {"u1": ["c", "z"], "u2": ["b", "a"], "u3": ["c"]}  # z: in neither train nor test


def test_beyond_accuracy_metrics_worked_by_hand() -> None:
    res = Evaluator(BA_TRAIN, BA_TEST, k=2).evaluate(ranked(BA_LISTS))
    s = res.summary
    # Slots c, z, b, a, c over catalogue {a, b, c} ∪ {z}.
    assert s["coverage@2"] == 1.0
    assert s["distributional_coverage@2"] == pytest.approx(-(0.4 * math.log2(0.4) + 0.6 * math.log2(0.2)))
    # N = 5; a has 3 train interactions, b and c 1, z none (counts as 1).
    assert s["novelty@2"] == pytest.approx((4 * LOG2_5 - math.log2(3 / 5)) / 5)
    # sorted counts a1 b1 z1 c2: (-3 - 1 + 1 + 6) / (4 * 5).
    assert s["gini@2"] == pytest.approx(0.15)
    # u1 [c, z]: z has no train users -> 1; u2 [b, a]: 1 - 1/sqrt(1*3); u3 has 1 item: left out.
    assert s["diversity@2"] == pytest.approx((1 + 1 - 1 / math.sqrt(3)) / 2)
    # n = 3, popularity ranks a:1, b:2, c:2; hits: u1 c at rank 1, u2 b at rank 1 -> (1 - 2/3) / 2 each.
    assert s["serendipity@2"] == pytest.approx((1 / 6 + 1 / 6 + 0) / 3)
    assert s["user_coverage@2"] == 1.0
    pu = res.per_user.set_index("user")
    assert math.isnan(pu.loc["u3", "diversity@2"])
    assert pu.loc["u2", "novelty@2"] == pytest.approx((LOG2_5 - math.log2(3 / 5)) / 2)
    # At k=1: slots c, b, c; coverage 2/3; no list has 2 items.
    res1 = Evaluator(BA_TRAIN, BA_TEST, k=1).evaluate(ranked(BA_LISTS))
    assert res1.summary["coverage@1"] == pytest.approx(2 / 3)
    assert math.isnan(res1.summary["diversity@1"])


def test_coverage_with_items_outside_train_never_exceeds_one() -> None:
    res = Evaluator(frame([(1, "a")]), frame([(1, "b")]), k=3).evaluate(ranked({1: ["x", "y", "z"]}))
    assert res.summary["coverage@3"] == 0.75  # 3 / |{a, x, y, z}|; MS Recommenders would give 3.0


def test_diversity_with_item_features_is_cosine() -> None:
    feats = pd.DataFrame({"item": ["a", "b", "c"], "f1": [1.0, 0.0, 1.0], "f2": [1.0, 1.0, 0.0]})
    res = Evaluator(BA_TRAIN, BA_TEST, k=2, item_features=feats, metrics=["diversity"]).evaluate(ranked(BA_LISTS))
    # u1 [c, z]: z has no vector -> 1; u2 [b, a]: cos = 1/sqrt(2).
    assert res.summary["diversity@2"] == pytest.approx((1 + 1 - 1 / math.sqrt(2)) / 2)
    vec = pd.DataFrame({"item": ["a", "b", "c"], "vec": [np.array([1.0, 1.0]), [0.0, 1.0], [1.0, 0.0]]})
    res2 = Evaluator(BA_TRAIN, BA_TEST, k=2, item_features=vec, metrics=["diversity"]).evaluate(ranked(BA_LISTS))
    assert res2.summary["diversity@2"] == pytest.approx(res.summary["diversity@2"])


def test_empty_recommendations_give_defined_values() -> None:
    res = Evaluator(BA_TRAIN, BA_TEST, k=2).evaluate(frame([], ("user", "item", "rank")))
    s = res.summary
    assert s["precision@2"] == 0.0 and s["coverage@2"] == 0.0 and s["user_coverage@2"] == 0.0
    assert s["distributional_coverage@2"] == 0.0
    assert all(math.isnan(s[n]) for n in ("novelty@2", "diversity@2", "gini@2"))
    d = json.loads(res.to_json())
    assert d["summary"]["novelty@2"] is None and d["confidence_intervals"]["novelty@2"] is None


# -- models, rmse / mae ----------------------------------------------------------------------

R_TRAIN = frame([("u1", "a", 1.0), ("u1", "b", 5.0), ("u2", "a", 3.0), ("u2", "c", 4.0), ("u3", "a", 2.0)],
                ("user", "item", "rating"))
R_TEST = frame([("u1", "c", 4.0), ("u2", "b", 2.0), ("u3", "b", 5.0), ("u9", "a", 3.0), ("u1", "new", 3.0)],
               ("user", "item", "rating"))


def test_model_is_called_once_for_every_test_user_and_rmse_mae_are_clipped() -> None:
    preds = {("u1", "c"): 6.0, ("u2", "b"): 2.5, ("u3", "b"): 3.0}  # 6 is clipped to the train max 5
    model = FakeModel({"u1": ["c", "b"], "u2": ["b"], "u9": ["a"]}, preds)
    res = Evaluator(R_TRAIN, R_TEST, k=[1, 2]).evaluate(model)
    assert len(model.calls) == 1
    call = model.calls[0]
    assert sorted(call["users"]) == ["u1", "u2", "u3", "u9"]
    assert call["k"] == 2 and call["exclude_seen"] is True and call["on_unknown"] == "skip"
    assert res.summary["rmse"] == pytest.approx(math.sqrt((1 + 0.25 + 4) / 3))
    assert res.summary["mae"] == pytest.approx((1 + 0.5 + 2) / 3)
    assert res.n_rating_rows == 3 and res.n_rating_rows_skipped == 2
    assert res.summary["user_coverage@1"] == 0.75  # u1, u2, u9 of 4 test users
    assert list(res.summary)[-2:] == ["rmse", "mae"]
    ci = res.ci
    assert ci["rmse"] is not None and ci["rmse"][0] <= ci["rmse"][1]


def test_rating_metrics_left_out_with_a_note_or_refused_when_requested() -> None:
    model = FakeModel({"u1": ["c"]})  # no predict
    res = Evaluator(R_TRAIN, R_TEST, k=1).evaluate(model)
    assert "rmse" not in res.summary and any("predict" in n for n in res.notes)
    with pytest.raises(NotSupportedError, match="no predict"):
        Evaluator(R_TRAIN, R_TEST, k=1, metrics=["rmse"]).evaluate(model)
    with pytest.raises(NotSupportedError, match="frame"):
        Evaluator(R_TRAIN, R_TEST, k=1, metrics=["mae"]).evaluate(ranked({"u1": ["c"]}))
    rated = FakeModel({"u1": ["c"]}, {})
    with pytest.raises(NotSupportedError, match="no ratings"):
        Evaluator(BA_TRAIN, BA_TEST, k=1, metrics=["rmse"]).evaluate(rated)


def test_a_predict_that_refuses_leaves_rating_metrics_out() -> None:
    class Refuses(FakeModel):
        def predict(self, users: Any, items: Any) -> np.ndarray:
            raise NotSupportedError("Refuses predicts only in explicit mode")

    model = Refuses({"u1": ["c"]}, {})
    res = Evaluator(R_TRAIN, R_TEST, k=1).evaluate(model)
    assert "rmse" not in res.summary and any("explicit mode" in n for n in res.notes)
    assert res.summary["precision@1"] == Evaluator(R_TRAIN, R_TEST, k=1).evaluate(FakeModel({"u1": ["c"]})).summary["precision@1"]
    with pytest.raises(NotSupportedError, match="explicit mode"):
        Evaluator(R_TRAIN, R_TEST, k=1, metrics=["rmse"]).evaluate(model)


def test_bad_predictions_are_errors() -> None:
    class Bad(FakeModel):
        def predict(self, users: Any, items: Any) -> np.ndarray:
            return np.array([np.nan] * len(users))

    with pytest.raises(DataError, match="non-finite"):
        Evaluator(R_TRAIN, R_TEST, k=1).evaluate(Bad({}, {}))

    class Short(FakeModel):
        def predict(self, users: Any, items: Any) -> np.ndarray:
            return np.zeros(1)

    with pytest.raises(DataError, match="shape"):
        Evaluator(R_TRAIN, R_TEST, k=1).evaluate(Short({}, {}))


def test_interactions_from_a_split_keep_maps_and_catalogue_excludes_test_only_items() -> None:
    full = Interactions.from_frame(pd.concat([BA_TRAIN, BA_TEST.assign(item=["c", "b", "d"])]))
    is_train = np.arange(full.nnz) < len(BA_TRAIN)
    train, test = full.take(is_train), full.take(~is_train)
    assert train.n_items == 4  # "d" is in the shared map but has no train interaction
    lists = {"u1": ["c", "z"], "u2": ["b", "a"], "u3": ["d"]}
    via_split = Evaluator(train, test, k=2).evaluate(ranked(lists)).summary
    via_frames = Evaluator(BA_TRAIN, BA_TEST.assign(item=["c", "b", "d"]), k=2).evaluate(ranked(lists)).summary
    assert via_split == pytest.approx(via_frames, nan_ok=True)
    assert via_split["coverage@2"] == 1.0  # {a,b,c} ∪ {z,d} all recommended


def test_result_is_independent_of_chunk_sizes(monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator) -> None:
    users = np.repeat(np.arange(40), 6)
    train = frame(list(zip(users, rng.integers(0, 30, len(users))))).drop_duplicates()
    test = frame(list(zip(users, rng.integers(0, 35, len(users))))).drop_duplicates()
    recs = pd.DataFrame({"user": np.repeat(np.arange(45), 8),
                         "item": np.concatenate([rng.permutation(40)[:8] for _ in range(45)]),
                         "score": rng.integers(0, 3, 45 * 8).astype(float)})
    ev = Evaluator(train, test, k=[3, 8])
    base = ev.evaluate(recs).summary
    monkeypatch.setattr(M, "_CHUNK_ELEMENTS", 5)
    monkeypatch.setattr(M, "_PAIR_BLOCK_BUDGET", 2)
    monkeypatch.setattr(M, "_PAIR_CHUNK_ELEMENTS", 7)
    assert ev.evaluate(recs).summary == pytest.approx(base, rel=1e-12, abs=1e-12, nan_ok=True)
    ev._relevant_table = None  # membership by binary search in the keys instead of the dense table
    assert ev.evaluate(recs).summary == pytest.approx(base, rel=1e-12, abs=1e-12, nan_ok=True)
    # A shuffled frame gives the same lists when ranks are given.
    ranked_recs = recs.assign(rank=recs.groupby("user").cumcount() + 1).drop(columns="score")
    assert ev.evaluate(ranked_recs.sample(frac=1, random_state=1)).summary == pytest.approx(
        ev.evaluate(ranked_recs).summary, nan_ok=True)


def test_string_and_int_ids_and_polars_input() -> None:
    import polars as pl  # a core dependency: never skipped
    res_pd = Evaluator(BA_TRAIN, BA_TEST, k=2).evaluate(ranked(BA_LISTS))
    res_pl = Evaluator(pl.from_dict({c: BA_TRAIN[c].tolist() for c in BA_TRAIN}),
                       pl.from_dict({c: BA_TEST[c].tolist() for c in BA_TEST}), k=2).evaluate(
        pl.from_dict({c: ranked(BA_LISTS)[c].tolist() for c in ("user", "item", "rank")}))
    assert res_pl.summary == pytest.approx(res_pd.summary, nan_ok=True)


# -- errors ----------------------------------------------------------------------------------


def test_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="ndcg, map") as e:
        Evaluator(ACC_TRAIN, ACC_TEST, metrics=["ndgc"])
    assert "'ndgc'" in str(e.value) or "ndgc" in str(e.value)
    for bad in (0, [], [3, 0], 2.5, True, "10"):
        with pytest.raises(ParameterError, match="'k' parameter"):
            Evaluator(ACC_TRAIN, ACC_TEST, k=bad)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="relevance_threshold"):
        Evaluator(ACC_TRAIN, ACC_TEST, relevance_threshold=float("nan"))
    with pytest.raises(DataError, match="needs test ratings"):
        Evaluator(ACC_TRAIN, ACC_TEST, relevance_threshold=3)
    with pytest.raises(DataTypeError, match="'train' parameter"):
        Evaluator([1, 2], ACC_TEST)
    with pytest.raises(MissingColumnError, match="'item'"):
        Evaluator(ACC_TRAIN, pd.DataFrame({"user": [1]}))
    ev = Evaluator(ACC_TRAIN, ACC_TEST, k=2)
    with pytest.raises(ParameterError, match="on_unknown"):
        ev.evaluate(ACC_RECS, on_unknown="ignore")  # type: ignore[arg-type]
    res = ev.evaluate(ACC_RECS)
    with pytest.raises(ParameterError, match="n_boot"):
        res.confidence_intervals(n_boot=1)
    with pytest.raises(ParameterError, match="level"):
        res.confidence_intervals(level=95)


def test_recommendation_frame_errors() -> None:
    ev = Evaluator(ACC_TRAIN, ACC_TEST, k=2)
    with pytest.raises(DataError, match="user 'u1' has item 'a' twice \\(rows 0 and 2\\)"):
        ev.evaluate(frame([("u1", "a", 1), ("u1", "b", 2), ("u1", "a", 3)], ("user", "item", "rank")))
    long = [("u1", f"i{r}", r) for r in range(100)] + [("u1", "i5", 100)]
    with pytest.raises(DataError, match="has item 'i5' twice"):
        ev.evaluate(frame(long, ("user", "item", "rank")))
    with pytest.raises(DataError, match="two rows with rank 1"):
        ev.evaluate(frame([("u2", "a", 1), ("u2", "b", 1)], ("user", "item", "rank")))
    with pytest.raises(MissingColumnError, match="'rank' or a 'score'"):
        ev.evaluate(frame([("u1", "a")]))
    with pytest.raises(MissingColumnError, match="'item'"):
        ev.evaluate(pd.DataFrame({"user": ["u1"], "rank": [1]}))
    with pytest.raises(DataError, match="'score' must be finite"):
        ev.evaluate(frame([("u1", "a", np.nan)], ("user", "item", "score")))
    with pytest.raises(DataTypeError, match="'rank' must be numeric"):
        ev.evaluate(frame([("u1", "a", "first")], ("user", "item", "rank")))
    with pytest.raises(DataError, match="null id at row 1"):
        ev.evaluate(frame([("u1", "a", 1), (None, "b", 1)], ("user", "item", "rank")))
    with pytest.raises(DataTypeError, match="fitted model"):
        ev.evaluate([("u1", "a")])

    class NotAFrame:
        def recommend(self, *a: Any, **kw: Any) -> list[int]:
            return []

    with pytest.raises(DataTypeError, match="must return a DataFrame"):
        ev.evaluate(NotAFrame())


def test_duplicates_of_non_test_users_are_ignored() -> None:
    ev = Evaluator(ACC_TRAIN, ACC_TEST, k=2)
    res = ev.evaluate(frame([("stranger", "a", 1), ("stranger", "a", 2), ("u1", "a", 1)], ("user", "item", "rank")))
    assert res.summary["hit_rate@2"] == pytest.approx(1 / 3)


def test_item_feature_errors() -> None:
    with pytest.raises(MissingColumnError, match="'item'"):
        Evaluator(BA_TRAIN, BA_TEST, item_features=pd.DataFrame({"f": [1.0]}))
    with pytest.raises(DataError, match="no feature column"):
        Evaluator(BA_TRAIN, BA_TEST, item_features=pd.DataFrame({"item": ["a"]}))
    with pytest.raises(DataTypeError, match="'genre' must be numeric"):
        Evaluator(BA_TRAIN, BA_TEST, item_features=pd.DataFrame({"item": ["a"], "f": [1.0], "genre": ["x"]}))
    with pytest.raises(DataError, match="NaN or infinite value at row 1"):
        Evaluator(BA_TRAIN, BA_TEST, item_features=pd.DataFrame({"item": ["a", "b"], "f": [1.0, np.nan]}))
    with pytest.raises(DataError, match="two rows for item 'a'"):
        Evaluator(BA_TRAIN, BA_TEST, item_features=pd.DataFrame({"item": ["a", "a"], "f": [1.0, 2.0]}))
    with pytest.raises(DataTypeError, match="numeric vectors of one length"):
        Evaluator(BA_TRAIN, BA_TEST, item_features=pd.DataFrame({"item": ["a", "b"], "v": [[1.0], [1.0, 2.0]]}))
    with pytest.raises(DataTypeError, match="pandas or polars"):
        Evaluator(BA_TRAIN, BA_TEST, item_features={"a": [1.0]})


# -- result, bootstrap, compare -------------------------------------------------------------


def _random_setup(rng: np.random.Generator, n_users: int = 300) -> tuple[Evaluator, pd.DataFrame, pd.DataFrame]:
    users = np.repeat(np.arange(n_users), 5)
    train = frame(list(zip(users, rng.integers(0, 50, len(users))))).drop_duplicates()
    test = frame(list(zip(users, rng.integers(0, 50, len(users))))).drop_duplicates()
    ev = Evaluator(train, test, k=[5, 10])

    def recs(hit_bias: float) -> pd.DataFrame:
        rows = []
        truth = test.groupby("user")["item"].apply(list).to_dict()
        for u in range(n_users):
            items = list(rng.permutation(50)[:10])
            if rng.random() < hit_bias:
                items = list(dict.fromkeys(truth[u][:1] + items))[:10]
            rows += [(u, i, r) for r, i in enumerate(items, start=1)]
        return frame(rows, ("user", "item", "rank"))

    return ev, recs(0.6), recs(0.0)


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate(rng: np.random.Generator) -> None:
    ev, good, _ = _random_setup(rng)
    res = ev.evaluate(good)
    ci = res.confidence_intervals(n_boot=300, seed=3)
    assert ci == res.confidence_intervals(n_boot=300, seed=3)
    for name in ("ndcg@10", "recall@5", "f1@10", "novelty@10", "diversity@10", "serendipity@10"):
        lo, hi = ci[name]  # type: ignore[misc]
        assert lo < res.summary[name] < hi, name
    for name in ("coverage@10", "gini@10", "user_coverage@10", "distributional_coverage@10"):
        assert ci[name] is None
    # Width of the per-user-mean interval is near 2 * 1.96 * standard error.
    x = res.per_user["ndcg@10"].to_numpy()
    se = x.std(ddof=1) / math.sqrt(len(x))
    lo, hi = ci["ndcg@10"]  # type: ignore[misc]
    assert 0.8 * 3.92 * se < hi - lo < 1.2 * 3.92 * se


def test_to_dict_is_json_and_complete(rng: np.random.Generator) -> None:
    ev, good, _ = _random_setup(rng, 50)
    d = json.loads(ev.evaluate(good).to_json(n_boot=50))
    assert d["k"] == [5, 10] and d["definitions_version"] == "1"
    assert d["n_users_evaluated"] + d["n_test_users_skipped"] == d["n_test_users"]
    assert set(d["summary"]) == set(d["confidence_intervals"])
    assert d["metrics"] == [m for m in METRICS if m not in ("rmse", "mae")]
    assert "EvaluationResult(50 users" in repr(ev.evaluate(good))


def test_compare_detects_a_real_difference_and_not_a_null_one(rng: np.random.Generator) -> None:
    ev, good, bad = _random_setup(rng)
    a, b = ev.evaluate(good), ev.evaluate(bad)
    table = compare(a, b, n_boot=300)
    row = table.loc["hit_rate@10"]
    assert row["diff"] == pytest.approx(a.summary["hit_rate@10"] - b.summary["hit_rate@10"])
    assert row["ci_low"] > 0 and row["p_ttest"] < 1e-6 and row["p_wilcoxon"] < 1e-6
    assert row["n_users"] == a.n_users_evaluated
    same = compare(a, ev.evaluate(good), n_boot=100)
    assert (same["diff"] == 0).all()
    assert (same.loc["ndcg@10", ["p_ttest", "p_wilcoxon"]] == 1.0).all()
    # f1 is paired like every per-user mean: its tests are scipy's on the per-user values.
    from scipy import stats

    fa, fb = a.per_user["f1@10"].to_numpy(), b.per_user["f1@10"].to_numpy()
    f1 = table.loc["f1@10"]
    assert f1["diff"] == pytest.approx(fa.mean() - fb.mean(), abs=1e-12)
    assert f1["p_ttest"] == pytest.approx(stats.ttest_rel(fa, fb).pvalue, rel=1e-9)
    assert f1["p_wilcoxon"] == pytest.approx(stats.wilcoxon(fa - fb).pvalue, rel=1e-9)
    assert 0 < f1["ci_low"] <= f1["diff"] <= f1["ci_high"] and f1["n_users"] == a.n_users_evaluated
    cov = table.loc["coverage@10"]
    assert math.isnan(cov["ci_low"]) and math.isnan(cov["p_ttest"])
    assert table.loc["novelty@10", "ci_low"] <= table.loc["novelty@10", "diff"] <= table.loc["novelty@10", "ci_high"]


def test_compare_refuses_mismatched_results(rng: np.random.Generator) -> None:
    ev, good, _ = _random_setup(rng, 60)
    a = ev.evaluate(good)
    other_k = Evaluator(ev.train, ev.train, k=[5]).evaluate(good)
    with pytest.raises(ParameterError, match="same k"):
        compare(a, other_k)
    fewer = Evaluator(ev.train, ev.train.take(np.arange(10)), k=[5, 10]).evaluate(good)
    with pytest.raises(ParameterError, match="same evaluated users"):
        compare(a, fewer)
    with pytest.raises(DataTypeError, match="two EvaluationResult"):
        compare(a, a.summary)  # type: ignore[arg-type]
    only_mrr = Evaluator(ev.train, ev.train, k=[5, 10], metrics=["mrr"])
    no_common = Evaluator(ev.train, ev.train, k=[5, 10], metrics=["ndcg"])
    with pytest.raises(ParameterError, match="no metric in common"):
        compare(only_mrr.evaluate(good), no_common.evaluate(good))
    assert isinstance(a, EvaluationResult)


def test_id_type_mismatches_warn() -> None:
    ev = Evaluator(frame([(1, 10)]), frame([(1, 11)]), k=1)
    with pytest.warns(DataWarning, match="user ids are not integers but the train/test user ids are integers"):
        res = ev.evaluate(ranked({"1": [11]}))
    assert res.summary["user_coverage@1"] == 0.0
    with pytest.warns(DataWarning, match=r"item ids are not integers .* \(e\.g\. '11' vs 10\)"):
        res = ev.evaluate(ranked({1: ["11"]}))
    assert res.summary["hit_rate@1"] == 0.0
