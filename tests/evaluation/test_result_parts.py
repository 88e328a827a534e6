"""The public pieces the evaluator split rests on: EvaluationResult.metric_parts / rated_users
(what compare() and the bootstrap read) and the data layer's id readers the evaluator uses."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.data import IdLookup, IdMap, id_column
from recsys.errors import DataError, MissingColumnError
from recsys.evaluation import Evaluator, MetricParts, compare

# Train: item a has 2 interactions, b has 2, N = 4. Test: user 1 -> {c}, user 2 -> {c, d}, user 3 -> {a}.
TRAIN = pd.DataFrame({"user": [1, 2, 2, 3], "item": ["a", "a", "b", "b"]})
TEST = pd.DataFrame({"user": [1, 2, 2, 3], "item": ["c", "c", "d", "a"]})


def ranked(lists: dict[Any, list[Any]]) -> pd.DataFrame:
    rows = [(u, i, r) for u, items in lists.items() for r, i in enumerate(items, start=1)]
    return pd.DataFrame(rows, columns=["user", "item", "rank"])


def test_metric_parts_hold_the_per_user_numerators_and_denominators_worked_out_by_hand() -> None:
    ev = Evaluator(TRAIN, TEST, k=2, metrics=["recall", "novelty", "coverage"])
    res = ev.evaluate(ranked({1: ["c", "a"], 2: ["d", "x"]}))  # user 3 gets no list
    parts = res.metric_parts
    # recall@2: user 1 hits c (1/1), user 2 hits d (1/2), user 3 nothing.
    assert parts["recall@2"].population == "U"
    assert parts["recall@2"].numerators.tolist() == [1.0, 0.5, 0.0]
    assert parts["recall@2"].denominators.tolist() == [1.0, 1.0, 1.0]
    # novelty@2, -log2(max(n_i, 1) / 4): c, d, x are absent from train (n = 1 -> 2 bits), a has n = 2 (1 bit).
    assert parts["novelty@2"].numerators.tolist() == [3.0, 4.0, 0.0]
    assert parts["novelty@2"].denominators.tolist() == [2.0, 2.0, 0.0]
    assert res.summary["recall@2"] == 0.5
    assert res.summary["novelty@2"] == 7 / 4
    assert "coverage@2" not in parts  # set-level: no per-user decomposition
    assert res.rated_users is None
    # A copy: changing it does not change the result.
    parts.clear()
    assert set(res.metric_parts) == {"recall@2", "novelty@2"}


def test_compare_reads_the_public_parts() -> None:
    ev = Evaluator(TRAIN, TEST, k=2, metrics=["recall", "novelty"])
    a = ev.evaluate(ranked({1: ["c", "a"], 2: ["d", "x"]}))
    b = ev.evaluate(ranked({1: ["a"], 3: ["a", "b"]}))
    table = compare(a, b, n_boot=50)
    # recall per user: a = [1, 1/2, 0], b = [0, 0, 1]; every user is paired.
    assert table.loc["recall@2", "diff"] == pytest.approx(0.5 - 1 / 3)
    assert table.loc["recall@2", "n_users"] == 3
    # novelty has slots for users 1 and 2 in a, 1 and 3 in b: only user 1 is defined in both.
    assert table.loc["novelty@2", "n_users"] == 1
    assert b.metric_parts["novelty@2"].denominators.tolist() == [1.0, 0.0, 2.0]


class RatingModel:
    """Fixed lists and fixed rating predictions, in external ids."""

    def __init__(self, predictions: dict[tuple[Any, Any], float]) -> None:
        self.predictions = predictions

    def recommend(self, users: Any, k: int = 10, **_: Any) -> pd.DataFrame:
        return pd.DataFrame({"user": list(users), "item": "b", "rank": 1})

    def predict(self, users: Any, items: Any) -> np.ndarray:
        return np.array([self.predictions[(u, i)] for u, i in zip(users, items)])


def test_rated_users_and_rating_parts() -> None:
    train = pd.DataFrame({"user": [1, 2, 2], "item": ["a", "a", "b"], "rating": [4.0, 2.0, 5.0]})
    # user 3 has no train interaction: its rating is skipped.
    test = pd.DataFrame({"user": [1, 2, 3], "item": ["b", "a", "a"], "rating": [3.0, 4.0, 5.0]})
    res = Evaluator(train, test, k=1, metrics=["rmse", "mae"]).evaluate(RatingModel({(1, "b"): 4.0, (2, "a"): 2.0}))
    assert res.rated_users is not None and res.rated_users.tolist() == [1, 2]
    rmse = res.metric_parts["rmse"]
    assert isinstance(rmse, MetricParts) and rmse.population == "rated"
    assert rmse.numerators.tolist() == [1.0, 4.0]  # squared errors (4 - 3)^2, (2 - 4)^2
    assert rmse.denominators.tolist() == [1.0, 1.0]
    assert res.metric_parts["mae"].numerators.tolist() == [1.0, 2.0]
    assert res.summary["rmse"] == pytest.approx(math.sqrt(5 / 2))
    assert res.n_rating_rows_skipped == 1


@pytest.mark.parametrize(
    "ids, queries",
    [
        (np.array([10, 12, 11]), np.array([11, 13, 10, 9, 12, -5])),  # compact ints: the dense table
        (np.array([5, 10**12, 7]), np.array([10**12, 6, 5])),  # sparse ints: no table
        (np.array(["x", "y"], dtype=object), np.array(["y", "z", "x"], dtype=object)),
    ],
)
def test_id_lookup_equals_idmap_to_index(ids: np.ndarray, queries: np.ndarray) -> None:
    idmap = IdMap(ids)
    expected = [int(np.flatnonzero(ids == q)[0]) if (ids == q).any() else -1 for q in queries]
    got = IdLookup(idmap)(queries)
    assert got.dtype == np.int64
    assert got.tolist() == expected == idmap.to_index(queries, missing="negative").tolist()


def test_id_column_reads_and_checks_ids() -> None:
    assert id_column(pd.DataFrame({"user": [3.0, 4.0]}), "user").tolist() == [3, 4]
    assert id_column(pd.DataFrame({"user": ["a", "b"]}), "user").dtype == object
    with pytest.raises(DataError, match="recommendations column 'user' has a null id at row 1"):
        id_column(pd.DataFrame({"user": ["a", None]}), "user", "recommendations")
    with pytest.raises(DataError, match="row 0"):
        id_column(pd.DataFrame({"user": [1.5]}), "user")
    with pytest.raises(MissingColumnError, match="no column 'item'"):
        id_column(pd.DataFrame({"user": [1]}), "item")
