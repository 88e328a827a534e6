"""Bad input is refused where it enters, with the column, row and value: finiteness as stored
(float32), ids a saved model can store, numeric-string timestamps."""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from recsys import Interactions
from recsys.data import IdMap
from recsys.errors import DataError, DataTypeError
from recsys.models import Popular

# -- finite as float32 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"weights": [1.0, 1e39]}, "column 'weight' must be finite; got 1e+39 at row 1, which overflows float32"),
        ({"weights": [1.0, 2.0, -1e39]}, "column 'weight' must be finite; got -1e+39 at row 2, which overflows float32"),
        ({"ratings": [4.0, 1e39]}, "column 'rating' must be finite; got 1e+39 at row 1, which overflows float32"),
        ({"ratings": np.array([3, 1e39], dtype=object)}, "column 'rating' must be finite; got 1e+39 at row 1"),
        ({"ratings": [np.nan, 1.0]}, "column 'rating' must be finite; got nan at row 0"),
    ],
)
def test_values_that_overflow_float32_are_refused(kw: dict[str, object], message: str) -> None:
    n = len(next(iter(kw.values())))  # type: ignore[arg-type]
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("+", r"\+")):
        Interactions.from_arrays(list(range(n)), list(range(n)), **kw)  # type: ignore[arg-type]


def test_the_largest_float32_is_accepted_and_kept() -> None:
    big = float(np.finfo(np.float32).max)  # 3.4028235e38: finite as float32
    d = Interactions.from_arrays([1, 2], [1, 2], weights=[big, 1.0])
    assert d.weights.tolist() == [np.float32(big), 1.0]


def test_a_weight_column_read_from_csv_that_overflows_names_the_row(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text("user,item,w\n1,10,2.0\n2,10,5e38\n")
    with pytest.raises(DataError, match=r"column 'w' must be finite; got 5e\+38 at row 1"):
        Interactions.from_file(p, weight_col="w")
    q = tmp_path / "r.parquet"
    pl.DataFrame({"user": [1, 2], "item": [10, 10], "rating": [4.0, -7e38]}).write_parquet(q)
    with pytest.raises(DataError, match=r"column 'rating' must be finite; got -7e\+38 at row 1"):
        Interactions.from_file(q, rating_col="rating")


def test_summed_duplicate_weights_that_overflow_name_the_pair_and_rows() -> None:
    # 3e38 + 3e38 = 6e38 > float32 max (3.4e38); each row alone is fine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"pair 'a', 'x' in rows 0, 2: its weights sum to 6e\+38, beyond float32"):
            Interactions.from_arrays(["a", "b", "a"], ["x", "x", "x"], weights=[3e38, 1.0, 3e38], duplicates="sum")
        kept = Interactions.from_arrays(["a", "b", "a"], ["x", "x", "x"], weights=[3e38, 1.0, 2.0], duplicates="max")
    assert kept.weights.tolist() == [np.float32(3e38), 1.0]


# -- ids a saved model can store -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([1, (1, 2)], r"column 'user', row 1: id \(1, 2\) \(tuple\): ids must be integers or strings"),
        ([b"a", b"b"], r"column 'user', row 0: id b'a' \(bytes\): ids must be integers or strings"),
        (np.array([b"a", b"b"]), r"column 'user', row 0: id b'a' \(bytes\)"),
        (np.array(["a", 2.5], dtype=object), r"column 'user', row 1: id 2.5 \(float\)"),
        (np.array(["a", True], dtype=object), r"column 'user', row 1: id True \(bool\)"),
        (pd.Series(["a", frozenset({1})]), r"column 'user', row 1: id frozenset\(\{1\}\) \(frozenset\)"),
        (["a", "b\udc80"], r"column 'user', row 1: id 'b\\udc80': a string that is not valid Unicode"),
    ],
)
def test_ids_a_saved_model_cannot_store_are_refused_at_ingest(users: object, message: str) -> None:
    with pytest.raises(DataTypeError, match=message):
        Interactions.from_arrays(users, ["x", "y"])  # type: ignore[arg-type]


def test_an_unsavable_id_in_a_feature_frame_names_its_column_and_row() -> None:
    items = pd.DataFrame({"i": ["x", ("y", 1)], "year": [1990, 1991]})
    with pytest.raises(DataTypeError, match=r"item_features column 'i', row 1: id \('y', 1\) \(tuple\)"):
        Interactions.from_frame(pd.DataFrame({"u": [1], "i": ["x"]}), user_col="u", item_col="i", item_features=items)


def test_idmap_refuses_unsavable_ids_too() -> None:
    with pytest.raises(DataTypeError, match=r"item id at position 1 is b'z' \(bytes\)"):
        IdMap(["x", b"z"], name="item")
    with pytest.raises(DataTypeError, match=r"user id at position 0 is \(1,\) \(tuple\)"):
        IdMap.from_values([(1,), (1,)], name="user")


def test_mixed_int_and_str_ids_and_huge_ints_are_kept_and_survive_a_save(tmp_path: Path) -> None:
    d = Interactions.from_arrays([1, "a", 2**70], ["x", 5, "y"])  # type: ignore[arg-type]
    assert d.users.ids.tolist() == [1, "a", 2**70]
    m = Popular().fit(d)
    loaded = Popular.load(m.save(tmp_path / "m"))
    assert loaded.users_.ids.tolist() == [1, "a", 2**70]
    assert loaded.items_.ids.tolist() == ["x", 5, "y"]


# -- timestamps ------------------------------------------------------------------------------------


def test_numeric_string_timestamps_are_numbers() -> None:
    d = Interactions.from_arrays([1, 2, 3], [1, 1, 1], timestamps=["881250949", "881250950", " 881250951 "])
    assert d.timestamps.tolist() == [881250949, 881250950, 881250951]
    assert d.timestamp_unit is None
    # the same as the numbers themselves
    n = Interactions.from_arrays([1, 2, 3], [1, 1, 1], timestamps=[881250949, 881250950, 881250951])
    assert n.timestamps.dtype == d.timestamps.dtype and n.timestamp_unit is None
    f = Interactions.from_arrays([1, 2], [1, 1], timestamps=np.array(["1.5", "2"]))
    assert f.timestamps.tolist() == [1.5, 2.0]
    mixed = Interactions.from_arrays([1, 2], [1, 1], timestamps=np.array([881250949, "881250950"], dtype=object))
    assert mixed.timestamps.tolist() == [881250949, 881250950]


def test_numeric_string_timestamps_from_a_csv_read_as_text(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user": ["1", "2"], "item": ["10", "20"], "ts": ["881250949", "881250950"]}, dtype=str)
    d = Interactions.from_frame(frame, timestamp_col="ts")
    assert d.timestamps.tolist() == [881250949, 881250950] and d.timestamp_unit is None


def test_date_strings_are_datetimes() -> None:
    d = Interactions.from_arrays([1, 2], [1, 1], timestamps=["1997-12-04", "1997-12-04 00:00:01"])
    assert d.timestamp_unit == "ns"
    # 1997-12-04 is 10,199 days after 1970-01-01: 10199 * 86400 s = 881193600 s
    assert d.timestamps.tolist() == [881193600 * 10**9, 881193601 * 10**9]


@pytest.mark.parametrize(
    ("ts", "error", "message"),
    [
        (["2020-01-01", "881250949"], DataError, r"column 'timestamp' mixes numbers and dates: row 0 holds a date \('2020-01-01'\), row 1 a number \('881250949'\)"),
        (["881250949", "881250950", "2020-01-01"], DataError, r"row 0 holds a number \('881250949'\), row 2 a date \('2020-01-01'\)"),
        ([datetime.datetime(2000, 1, 1), 5, 6], DataError, r"row 0 holds a date \(datetime.datetime\(2000, 1, 1, 0, 0\)\), row 1 a number \(5\)"),
        (["881250949", "soon", "2"], DataError, r"column 'timestamp': cannot parse timestamp 'soon' at row 1"),
        (["x", "y", "z"], DataError, r"column 'timestamp': cannot parse timestamp 'x' at row 0"),
        (["1", "nan", "2"], DataError, r"cannot parse timestamp 'nan' at row 1"),
        (["1", "inf", "2"], DataError, r"column 'timestamp' has a null or infinite timestamp at row 1"),
        (np.array(["1", None, "2"], dtype=object), DataError, r"column 'timestamp' has a null timestamp at row 1"),
        (np.array(["1", b"2", "3"], dtype=object), DataTypeError, r"got bytes b'2' at row 1"),
    ],
)
def test_mixed_or_invalid_timestamps_name_the_column_and_row(ts: object, error: type[Exception], message: str) -> None:
    n = len(ts)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        Interactions.from_arrays(list(range(n)), [1] * n, timestamps=ts)  # type: ignore[arg-type]
