"""User and item feature tables: alignment to the id maps, kinds and every error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from recsys import Interactions
from recsys.errors import DataError, DataTypeError, MissingColumnError, RecsysError

RATINGS = pd.DataFrame({"user": ["u1", "u2", "u1"], "item": [20, 10, 10]})


def items_frame(lib: str, data: dict[str, Any]) -> Any:
    return pd.DataFrame(data) if lib == "pandas" else pl.DataFrame(data)


LIBS = pytest.mark.parametrize("lib", ["pandas", "polars"])


@LIBS
def test_alignment_and_catalogue_only_items(lib: str) -> None:
    feats = items_frame(
        lib,
        {
            "item": [30, 10, 40],  # 30 and 40 are catalogue-only (nobody interacted yet)
            "year": [1999, 2001, 2010],
            "score": [0.5, 1.5, 2.5],
            "genre": ["drama", "comedy", "drama"],
            "genres": [["drama"], ["comedy", "romance"], []],
            "title": ["the long night", "a fine day", "more of it"],
        },
    )
    d = Interactions.from_frame(RATINGS, item_features=feats)
    # interaction items first (first-seen order), then feature-only ones in feature-frame order
    assert d.items.ids.tolist() == [20, 10, 30, 40]
    assert d.n_items == 4 and d.item_counts.tolist() == [1, 2, 0, 0]
    f = d.item_features
    assert f is not None and len(f) == 4
    assert list(f.columns) == ["year", "score", "genre", "genres", "title"]
    # item 20 has no feature row: every column is null there
    assert f.iloc[0].isna().all()
    assert f["year"].iloc[1:].tolist() == [2001, 1999, 2010]
    assert f["year"].dtype == "Int64"  # exact ints with <NA>, not floats
    assert f["score"].iloc[1:].tolist() == [1.5, 0.5, 2.5]
    assert f["genre"].iloc[1:].tolist() == ["comedy", "drama", "drama"]
    assert f["genres"].iloc[1:].tolist() == [["comedy", "romance"], ["drama"], []]
    assert f["title"].iloc[3] == "more of it"
    assert d.item_feature_kinds == {
        "year": "numeric",
        "score": "numeric",
        "genre": "categorical",
        "genres": "multi",
        "title": "text",
    }
    # a catalogue item can be addressed like any other
    assert d.items.to_index([40]).tolist() == [3]
    assert d.matrix().shape == (2, 4)


def test_user_features_and_full_coverage_keeps_dtypes() -> None:
    users = pd.DataFrame({"user": ["u2", "u1"], "age": [30, 40], "vip": [True, False]})
    d = Interactions.from_frame(RATINGS, user_features=users)
    assert d.users.ids.tolist() == ["u1", "u2"]
    f = d.user_features
    assert f is not None
    assert f["age"].tolist() == [40, 30] and f["age"].dtype == np.int64  # no missing row: dtype unchanged
    assert f["vip"].tolist() == [False, True] and f["vip"].dtype == bool
    assert d.user_feature_kinds == {"age": "numeric", "vip": "categorical"}
    assert d.item_features is None and d.item_feature_kinds == {}


def test_missing_rows_use_nullable_dtypes() -> None:
    feats = pd.DataFrame({"item": [10], "n": np.array([7], dtype=np.uint8), "flag": [True], "cat": pd.Categorical(["x"])})
    f = Interactions.from_frame(RATINGS, item_features=feats).item_features
    assert f is not None
    assert f["n"].dtype == "UInt8" and f["n"].isna().tolist() == [True, False]
    assert f["flag"].dtype == "boolean" and f["flag"].tolist()[1] is True
    assert isinstance(f["cat"].dtype, pd.CategoricalDtype) and f["cat"].isna().tolist() == [True, False]


def test_kinds_inferred() -> None:
    feats = pd.DataFrame(
        {
            "item": [10, 20],
            "n": [1, 2],
            "x": [0.5, np.nan],
            "obj_num": pd.Series([1, None], dtype=object),
            "b": [True, False],
            "c": pd.Categorical(["a", "b"]),
            "s": ["a", None],
            "t": ["two words", "three more words"],
            "multi": [("a", "b"), ["c"]],
            "when": pd.to_datetime(["2020-01-01", "2021-01-01"]),
            "empty": [None, None],
        }
    )
    d = Interactions.from_frame(RATINGS, item_features=feats)
    assert d.item_feature_kinds == {
        "n": "numeric",
        "x": "numeric",
        "obj_num": "numeric",
        "b": "categorical",
        "c": "categorical",
        "s": "categorical",
        "t": "text",
        "multi": "multi",
        "when": "numeric",
        "empty": "categorical",
    }
    assert d.item_features is not None and d.item_features["obj_num"].dtype == np.float64


def test_polars_dtypes() -> None:
    feats = pl.DataFrame(
        {
            "item": [10, 20],
            "cat": pl.Series(["a", "b"]).cast(pl.Categorical),
            "n": pl.Series([1, None], dtype=pl.Int32),
            "flag": [True, None],
            "tags": pl.Series([["x"], None], dtype=pl.List(pl.String)),
        }
    )
    d = Interactions.from_frame(RATINGS, item_features=feats)
    f = d.item_features
    assert f is not None
    assert isinstance(f["cat"].dtype, pd.CategoricalDtype) and f["cat"].tolist() == ["b", "a"]
    assert f["n"].dtype == "Int32" and f["n"].isna().tolist() == [True, False]
    assert f["flag"].dtype == "boolean"
    assert f["tags"].tolist()[1] == ["x"] and f["tags"].tolist()[0] is None
    assert d.item_feature_kinds == {"cat": "categorical", "n": "numeric", "flag": "categorical", "tags": "multi"}


def test_string_item_ids_and_pandas_string_dtype() -> None:
    ratings = pd.DataFrame({"user": [1, 2], "item": pd.Series(["a", "b"], dtype="str")})
    feats = pd.DataFrame({"item": pd.Series(["b", "c"], dtype="str"), "g": ["x", "y"]})
    d = Interactions.from_frame(ratings, item_features=feats)
    assert d.items.ids.tolist() == ["a", "b", "c"]
    assert d.item_features is not None and d.item_features["g"].tolist()[1:] == ["x", "y"]


def test_features_follow_filter() -> None:
    d = Interactions.from_frame(
        RATINGS, item_features=pd.DataFrame({"item": [10, 20, 30], "x": [1.0, 2.0, 3.0]})
    )
    f = d.filter(min_item=2)  # only item 10 has two rows
    assert f.items.ids.tolist() == [10]
    assert f.item_features is not None and f.item_features["x"].tolist() == [1.0]


# -- errors ----------------------------------------------------------------------------


def raises(exc: type[Exception], builtin: type[BaseException], match: str, **kwargs: Any) -> None:
    with pytest.raises(exc, match=match) as e:
        Interactions.from_frame(RATINGS, **kwargs)
    assert isinstance(e.value, RecsysError) and isinstance(e.value, builtin)


def test_duplicate_feature_ids() -> None:
    feats = pd.DataFrame({"item": [10, 30, 10], "x": [1, 2, 3]})
    raises(DataError, ValueError, r"item_features has more than one row for item 10 \(rows 0 and 2\)", item_features=feats)


@LIBS
def test_null_feature_ids(lib: str) -> None:
    feats = items_frame(lib, {"user": ["u1", None], "x": [1, 2]})
    raises(DataError, ValueError, "user_features column 'user' has a null id at row 1", user_features=feats)


def test_missing_feature_id_column() -> None:
    feats = pd.DataFrame({"item_id": [10], "x": [1]})
    raises(MissingColumnError, KeyError, "item_features has no column 'item' \\(columns: 'item_id', 'x'\\)", item_features=feats)


def test_feature_ids_of_another_type() -> None:
    feats = pd.DataFrame({"item": ["10", "20"], "x": [1, 2]})
    raises(
        DataTypeError,
        TypeError,
        "item_features column 'item' holds str ids \\(row 0: '10'\\) but the interactions hold int ids",
        item_features=feats,
    )


def test_float_feature_ids() -> None:
    feats = pd.DataFrame({"item": [10.0, 20.5], "x": [1, 2]})
    raises(DataTypeError, TypeError, "item_features column 'item' must hold integer or string ids; got float 20.5 at row 1", item_features=feats)


def test_lists_mixed_with_scalars() -> None:
    feats = pd.DataFrame({"item": [10, 20, 30], "genres": [["a"], None, "b"]})
    raises(
        DataTypeError,
        TypeError,
        "item_features column 'genres' mixes lists and scalars: row 2 holds 'b'",
        item_features=feats,
    )


def test_nested_list_values() -> None:
    feats = pd.DataFrame({"item": [10, 20], "genres": [["a"], ["b", ["c"]]]})
    raises(DataTypeError, TypeError, "item_features column 'genres' holds \\['c'\\] \\(list\\) inside the list at row 1", item_features=feats)


def test_unsupported_feature_value() -> None:
    feats = pd.DataFrame({"item": [10, 20], "meta": ["a", {"k": 1}]})
    raises(DataTypeError, TypeError, "item_features column 'meta' holds an unsupported value \\{'k': 1\\} \\(dict\\) at row 1", item_features=feats)


def test_infinite_numeric_feature() -> None:
    feats = pd.DataFrame({"item": [10, 20], "x": [1.0, -np.inf]})
    raises(DataError, ValueError, "item_features column 'x' must be finite; got -inf at row 1", item_features=feats)


def test_polars_struct_feature_rejected() -> None:
    feats = pl.DataFrame({"item": [10], "s": [{"a": 1}]})
    raises(DataTypeError, TypeError, "item_features column 's' has polars dtype Struct", item_features=feats)


def test_feature_frame_of_wrong_type() -> None:
    raises(DataTypeError, TypeError, "item_features must be a pandas or polars DataFrame; got dict", item_features={"item": [1]})
