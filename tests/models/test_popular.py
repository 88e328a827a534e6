from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.errors import DataError, ParameterError
from recsys.models import Popular


def test_counts_and_fold_in() -> None:
    df = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3], "item": ["a", "b", "a", "c", "a", "b"]})
    m = Popular().fit(Interactions.from_frame(df))
    # counts: a=3, b=2, c=1; user 1 has seen a and b
    assert m.recommend_one(1, k=5)[0].tolist() == ["c"]
    ids, scores = m.recommend_history(["b"], k=2)
    assert ids.tolist() == ["a", "c"] and scores.tolist() == [3.0, 1.0]


def test_half_life_weights_by_hand() -> None:
    # latest timestamp 20; half-life 10: ages 20, 10, 0 weigh 0.25, 0.5, 1
    df = pd.DataFrame({"user": [1, 2, 3, 4], "item": ["a", "a", "b", "c"], "t": [0, 0, 10, 20]})
    m = Popular(half_life=10).fit(Interactions.from_frame(df, timestamp_col="t"))
    np.testing.assert_allclose(m.score([1, 1, 1], ["a", "b", "c"]), [0.5, 0.5, 1.0])
    assert m.recommend_one(4, k=2)[0].tolist() == ["a", "b"]  # tie 0.5/0.5: lower index first


def test_half_life_needs_timestamps_and_positive_value() -> None:
    data = Interactions.from_arrays([1], ["a"])
    with pytest.raises(DataError, match="needs timestamps"):
        Popular(half_life=5).fit(data)
    with pytest.raises(ParameterError, match="The 'half_life' parameter of Popular must be a float > 0.0. Got 0 instead."):
        Popular(half_life=0).fit(data)


@pytest.mark.parametrize("seed", range(6))
def test_fast_top_k_equals_the_generic_scoring_path(seed: int) -> None:
    """Popular's walk down one ranking gives exactly the lists of the base class's score-everything path."""
    from recsys.models.base import Recommender

    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 25
    users = rng.integers(0, n_users, 300)
    items = np.minimum(rng.zipf(1.6, 300) - 1, n_items - 1)  # skewed: heavy users see most of the head
    df = pd.DataFrame({"user": users, "item": items}).drop_duplicates()
    df = pd.concat([df, pd.DataFrame({"user": [999] * n_items, "item": np.arange(n_items)})])  # one user saw all
    m = Popular().fit(Interactions.from_frame(df))
    uidx = np.arange(len(m.users_.ids), dtype=np.int32)
    allowed = rng.random(m.n_items_) < 0.6
    for k in (1, 3, 10, 40):
        for exclude_seen in (True, False):
            for mask in (None, allowed):
                fast = m._topk_users(uidx, k, exclude_seen, mask)
                slow = Recommender._topk_users(m, uidx, k, exclude_seen, mask)
                np.testing.assert_array_equal(fast[0], slow[0])
                np.testing.assert_array_equal(fast[1], slow[1])
    assert len(m.recommend([999], k=3)) == 0  # the user who saw every item gets an empty list
