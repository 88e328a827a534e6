"""Interactions.with_item_features: titles (or any item feature) next to the ids of result frames."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys import Interactions
from recsys.errors import DataError, DataTypeError
from recsys.models import UserKNN


@pytest.fixture
def data() -> Interactions:
    # user and item ids overlap (1, 2, 3), as in MovieLens: only item rows may get titles
    frame = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3, 3], "item": [1, 2, 2, 3, 1, 2, 3]})
    items = pd.DataFrame({"item": [1, 2, 3, 4], "title": ["One", "Two", "Three", "Four"], "year": [2001, 2002, 2003, 2004]})
    return Interactions.from_frame(frame, item_features=items)


def test_titles_join_by_item_and_keep_order_and_index(data: Interactions) -> None:
    recs = pd.DataFrame({"item": [3, 4, 1, 99], "score": [0.4, 0.3, 0.2, 0.1]}, index=[10, 11, 12, 13])
    out = data.with_item_features(recs, ["title", "year"])
    assert out["title"].tolist()[:3] == ["Three", "Four", "One"] and pd.isna(out["title"].iloc[3])
    assert out["year"].tolist()[:3] == [2003, 2004, 2001]
    assert list(out.index) == [10, 11, 12, 13] and list(out.columns) == ["item", "score", "title", "year"]
    assert "title" not in recs.columns  # the input is not modified


def test_explanation_frames_get_titles_on_item_rows_only(data: Interactions) -> None:
    model = UserKNN(k=2, weighting="none").fit(data)
    why = model.explain(1, 3)  # explained by neighbour users, whose ids are also item ids
    out = data.with_item_features(why, on="id")
    assert (why["kind"] == "user").any()
    assert out.loc[out["kind"] != "item", "title"].isna().all()
    mixed = pd.DataFrame({"kind": ["item", "user", "rest"], "id": [2, 2, None], "contribution": [1.0, 2.0, 3.0]})
    assert data.with_item_features(mixed, on="id")["title"].tolist()[0] == "Two"
    assert data.with_item_features(mixed, on="id")["title"].iloc[1:].isna().all()


def test_bad_input_says_what_is_wrong(data: Interactions) -> None:
    recs = pd.DataFrame({"item": [1], "title": ["mine"]})
    with pytest.raises(DataError, match="no column 'similar_item'"):
        data.with_item_features(recs, on="similar_item")
    with pytest.raises(DataError, match="no item feature 'genres'.*'title', 'year'"):
        data.with_item_features(recs, "genres")
    with pytest.raises(DataError, match="already has a column 'title'"):
        data.with_item_features(recs)
    with pytest.raises(DataTypeError, match="pandas DataFrame"):
        data.with_item_features([1, 2])  # type: ignore[arg-type]
    bare = Interactions.from_frame(pd.DataFrame({"user": [1], "item": [1]}))
    with pytest.raises(DataError, match="no item features"):
        bare.with_item_features(pd.DataFrame({"item": [1]}))
