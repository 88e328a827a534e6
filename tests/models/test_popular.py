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
