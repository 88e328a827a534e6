"""Independent cross-check: the vectorised Evaluator equals the loop-based reference to 1e-9."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.errors import DataError
from recsys.evaluation import Evaluator
from recsys.evaluation import metrics as M
from recsys.evaluation.reference import reference_evaluate

TOL = 1e-9


class TableModel:
    """A rating model whose predictions come from a fixed function of the ids."""

    def __init__(self, recs: pd.DataFrame) -> None:
        self.recs = recs

    def recommend(self, users: Any, k: int = 10, **kw: Any) -> pd.DataFrame:
        return self.recs[self.recs["user"].isin(list(users))]

    @staticmethod
    def value(u: Any, i: Any) -> float:
        return ((int(u) * 31 + sum(map(ord, str(i)))) % 47) / 7.0  # 0 .. 6.6: some predictions get clipped

    def predict(self, users: Any, items: Any) -> np.ndarray:
        return np.array([self.value(u, i) for u, i in zip(users, items)], dtype=np.float64)


def make_case(seed: int, n_users: int, n_items: int, ordering: str, str_items: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    item_name = (lambda i: f"i{i}") if str_items else (lambda i: int(i))

    def pairs(n_rows: int, user_hi: int, item_hi: int) -> pd.DataFrame:
        u = rng.integers(0, user_hi, n_rows)
        i = rng.integers(0, item_hi, n_rows)
        df = pd.DataFrame({"user": u, "item": [item_name(x) for x in i]}).drop_duplicates()
        return df.assign(rating=rng.integers(1, 6, len(df)).astype(float)).reset_index(drop=True)

    train = pairs(rng.integers(1, 4 * n_users + 2), n_users, n_items)
    # Test users include cold ones (ids up to n_users + 2), items some absent from train.
    test = pairs(rng.integers(1, 3 * n_users + 2), n_users + 2, n_items + 3)
    rows = []
    for u in range(n_users + 4):  # includes users outside the test set
        if rng.random() < 0.2:
            continue  # no list
        length = int(rng.integers(0, 8))
        items = rng.permutation(n_items + 5)[:length]  # some items in neither train nor test
        for r, i in enumerate(items):
            rows.append((u, item_name(i), r))
    recs = pd.DataFrame(rows, columns=["user", "item", "pos"])
    if ordering == "score":  # few distinct scores: many ties, resolved by row order
        recs["score"] = rng.integers(0, 3, len(recs)).astype(float)
    else:  # ranks with gaps, rows shuffled
        recs["rank"] = recs["pos"] * 3 + 1 + rng.integers(0, 3, len(recs))
        recs = recs.sample(frac=1, random_state=seed % 1000)
    recs = recs.drop(columns="pos").reset_index(drop=True)
    return {"train": train, "test": test, "recs": recs}


def assert_close(got: float, want: float, name: str) -> None:
    if math.isnan(want):
        assert math.isnan(got), f"{name}: got {got}, reference NaN"
    else:
        assert abs(got - want) <= TOL, f"{name}: got {got!r}, reference {want!r}"


def check(case: dict[str, Any], ks: list[int], threshold: float | None, with_features: bool,
          with_model: bool, seed: int) -> None:
    train, test, recs = case["train"], case["test"], case["recs"]
    vectors = None
    feats = None
    if with_features:
        rng = np.random.default_rng(seed + 1)
        items = pd.unique(pd.concat([train["item"], recs["item"]]))
        chosen = [i for i in items if rng.random() < 0.8]
        mat = rng.integers(-1, 3, (len(chosen), 3)).astype(float)  # includes zero vectors
        vectors = {i: list(v) for i, v in zip(chosen, mat)}
        feats = pd.DataFrame({"item": chosen, "f0": mat[:, 0], "f1": mat[:, 1], "f2": mat[:, 2]})
    model = TableModel(recs) if with_model else None
    try:
        want = reference_evaluate(
            train, test, recs, ks, relevance_threshold=threshold, item_vectors=vectors,
            predict=TableModel.value if with_model else None,
        )
    except DataError:
        with pytest.raises(DataError):
            Evaluator(train, test, k=ks, relevance_threshold=threshold, item_features=feats).evaluate(recs)
        return
    if want["n_users_evaluated"] == 0:
        with pytest.raises(DataError, match="no test user"):
            Evaluator(train, test, k=ks, relevance_threshold=threshold)
        return
    ev = Evaluator(train, test, k=ks, relevance_threshold=threshold, item_features=feats)
    res = ev.evaluate(model if with_model else recs)
    assert res.n_users_evaluated == want["n_users_evaluated"]
    assert res.n_test_users == want["n_test_users"]
    expected_keys = set(want["summary"])
    assert set(res.summary) == expected_keys
    # Every per-user accuracy metric is among the compared keys (f1 included), at every k.
    assert {f"{m}@{k}" for m in M.RANKING_METRICS for k in ks} <= expected_keys
    for name, v in want["summary"].items():
        assert_close(res.summary[name], v, name)
    per_user = res.per_user.set_index("user")
    for user, values in want["per_user"].items():
        for name, v in values.items():
            assert_close(float(per_user.loc[user, name]), v, f"{name} of user {user}")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n_users=st.integers(1, 9),
    n_items=st.integers(1, 10),
    ordering=st.sampled_from(["rank", "score"]),
    str_items=st.booleans(),
    ks=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    threshold=st.sampled_from([None, 3.0]),
    with_features=st.booleans(),
    with_model=st.booleans(),
)
def test_vectorised_equals_reference(seed: int, n_users: int, n_items: int, ordering: str, str_items: bool,
                                     ks: list[int], threshold: float | None, with_features: bool,
                                     with_model: bool) -> None:
    case = make_case(seed, n_users, n_items, ordering, str_items)
    check(case, sorted(set(ks)), threshold, with_features, with_model, seed)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), ordering=st.sampled_from(["rank", "score"]))
def test_vectorised_equals_reference_with_tiny_chunks(seed: int, ordering: str) -> None:
    # Every chunk and item-block boundary is exercised: results must not move (RecBole #1556).
    old = M._CHUNK_ELEMENTS, M._PAIR_BLOCK_BUDGET, M._PAIR_CHUNK_ELEMENTS
    M._CHUNK_ELEMENTS, M._PAIR_BLOCK_BUDGET, M._PAIR_CHUNK_ELEMENTS = 3, 1, 4
    try:
        check(make_case(seed, 8, 9, ordering, False), [2, 5], None, False, False, seed)
    finally:
        M._CHUNK_ELEMENTS, M._PAIR_BLOCK_BUDGET, M._PAIR_CHUNK_ELEMENTS = old


def test_reference_rejects_duplicates_like_the_evaluator() -> None:
    train = pd.DataFrame({"user": [1], "item": [1]})
    recs = pd.DataFrame({"user": [1, 1], "item": [2, 2], "rank": [1, 2]})
    with pytest.raises(DataError, match="duplicate item"):
        reference_evaluate(train, train, recs, [2])
    with pytest.raises(DataError, match="twice"):
        Evaluator(train, train, k=2).evaluate(recs)
