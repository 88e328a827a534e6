"""Item texts: the default description, templates, functions and every error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.content import item_texts
from recsys.errors import DataError, DataTypeError, MissingColumnError, ParameterError
from recsys.testing import tiny_interactions


def _movies() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": [1, 2, 3],
            "title": ["Toy Story (1995)", "Heat (1995)", None],
            "year": pd.array([1995, 1995, None], dtype="Int64"),
            "genres": [["Animation", "Comedy"], [], None],
            "tags": [["pixar"], [], []],
        }
    )


def _data() -> Interactions:
    ratings = pd.DataFrame({"user": [1, 1, 2], "item": [2, 1, 2]})
    return Interactions.from_frame(ratings, item_features=_movies())


def test_default_description_follows_internal_item_order() -> None:
    data = _data()
    assert data.items.ids.tolist() == [2, 1, 3]  # first-seen order: the texts must follow it
    assert item_texts(data) == [
        "Heat (1995). year: 1995",
        "Toy Story (1995). year: 1995. genres: Animation, Comedy. tags: pixar",
        "",
    ]


def test_template_joins_lists_and_blanks_missing_values() -> None:
    assert item_texts(_data(), "{title} | {genres} | {year}") == [
        "Heat (1995) |  | 1995",
        "Toy Story (1995) | Animation, Comedy | 1995",
        " |  | ",
    ]


def test_function_gets_each_row_as_a_dict() -> None:
    seen: list[dict[str, object]] = []

    def text(row: dict[str, object]) -> str:
        seen.append(row)
        return f"#{len(seen)}"

    assert item_texts(_data(), text) == ["#1", "#2", "#3"]
    assert sorted(seen[0]) == ["genres", "tags", "title", "year"]
    assert seen[1]["title"] == "Toy Story (1995)"


def test_plain_frame_guesses_text_columns_and_formats_whole_floats() -> None:
    f = pd.DataFrame({"score": [1.0, 2.5], "name": ["a", "b"], "n": [np.nan, 3.0]})
    assert item_texts(f) == ["a. score: 1", "b. score: 2.5. n: 3"]
    assert item_texts(f, kinds={}) == ["score: 1. name: a", "score: 2.5. name: b. n: 3"]


def test_tiny_data_titles_carry_group_words() -> None:
    texts = item_texts(tiny_interactions())
    assert texts[0].startswith("space alien story 0. genres: scifi. year: 1990")
    assert len(texts) == 32


def test_errors() -> None:
    no_features = Interactions.from_frame(pd.DataFrame({"user": [1], "item": [1]}))
    with pytest.raises(DataError, match="content models need item features"):
        item_texts(no_features)
    with pytest.raises(DataTypeError, match="Interactions or a pandas DataFrame; got list"):
        item_texts([1, 2])  # type: ignore[arg-type]
    with pytest.raises(MissingColumnError, match="names column 'plot'"):
        item_texts(_data(), "{title} {plot}")
    with pytest.raises(ParameterError, match="must use named fields"):
        item_texts(_data(), "{} {title}")
    with pytest.raises(ParameterError, match="must use named fields"):
        item_texts(_data(), "{title.upper}")
    with pytest.raises(ParameterError, match="not a valid format string"):
        item_texts(_data(), "{title")
    with pytest.raises(ParameterError, match="must be None, a format template"):
        item_texts(_data(), 42)  # type: ignore[arg-type]
    with pytest.raises(DataTypeError, match="for item row 0 it returned int"):
        item_texts(_data(), lambda row: 1)  # type: ignore[arg-type,return-value]
