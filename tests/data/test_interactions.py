"""Interactions: builders, every input error, duplicates, histories, conversions and transformations."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys import Interactions
from recsys.errors import (
    DataError,
    DataTypeError,
    DataWarning,
    MissingColumnError,
    ParameterError,
    RecsysError,
    UnknownIdError,
)


def frame(lib: str, data: dict[str, Any]) -> Any:
    return pd.DataFrame(data) if lib == "pandas" else pl.DataFrame(data)


LIBS = pytest.mark.parametrize("lib", ["pandas", "polars"])


def small() -> Interactions:
    df = pd.DataFrame(
        {"user": ["a", "b", "a", "c"], "item": [10, 10, 30, 20], "rating": [4.0, 2.0, 5.0, 3.0]}
    )
    return Interactions.from_frame(df, rating_col="rating")


# -- building ------------------------------------------------------------------


@LIBS
def test_from_frame_basic(lib: str) -> None:
    df = frame(lib, {"user": ["a", "b", "a", "c"], "item": [10, 10, 30, 20], "rating": [4, 2, 5, 3]})
    d = Interactions.from_frame(df, rating_col="rating")
    assert (d.n_users, d.n_items, d.nnz, len(d)) == (3, 3, 4, 4)
    assert d.density == pytest.approx(4 / 9)
    assert d.users.ids.tolist() == ["a", "b", "c"]  # first-seen order
    assert d.items.ids.tolist() == [10, 30, 20]
    assert d.user_index.tolist() == [0, 1, 0, 2]  # row order kept
    assert d.item_index.tolist() == [0, 0, 1, 2]
    assert d.user_index.dtype == np.int32 and d.item_index.dtype == np.int32
    assert d.weights.dtype == np.float32 and d.weights.tolist() == [1.0] * 4
    assert d.ratings is not None and d.ratings.dtype == np.float32
    assert d.ratings.tolist() == [4.0, 2.0, 5.0, 3.0]
    assert d.timestamps is None and d.has_ratings and not d.has_timestamps


def test_custom_column_names_and_weights() -> None:
    df = pd.DataFrame({"uid": [1, 2], "iid": ["x", "y"], "clicks": [3, 0]})
    d = Interactions.from_frame(df, user_col="uid", item_col="iid", weight_col="clicks")
    assert d.weights.tolist() == [3.0, 0.0]
    assert d.ratings is None
    # an explicit zero weight is kept: the matrix has one stored entry per row
    assert d.matrix().nnz == 2


def test_from_arrays_lists_and_numpy() -> None:
    d = Interactions.from_arrays(np.array([5, 6, 5]), ["x", "x", "y"], ratings=[1, 2, 3])
    assert d.users.ids.tolist() == [5, 6]
    assert d.items.ids.tolist() == ["x", "y"]
    mixed = Interactions.from_arrays(["a", "a"], ["z", 10])  # ints in a list of strs stay ints
    assert mixed.items.ids.tolist() == ["z", 10]


def test_id_dtypes() -> None:
    pdf = pd.DataFrame(
        {
            "user": pd.Series(["u1", "u2"], dtype="str"),
            "item": pd.Categorical(["i1", "i2"]),
        }
    )
    d = Interactions.from_frame(pdf)
    assert d.users.ids.tolist() == ["u1", "u2"] and d.items.ids.tolist() == ["i1", "i2"]
    d = Interactions.from_arrays(np.array([1.0, 2.0]), np.array([3, 4], dtype=np.uint64))
    assert d.users.ids.dtype == np.int64 and d.users.ids.tolist() == [1, 2]
    assert d.items.ids.tolist() == [3, 4]
    d = Interactions.from_frame(pd.DataFrame({"user": pd.array([1, 2], dtype="Int64"), "item": [1, 1]}))
    assert d.users.ids.tolist() == [1, 2]


def test_polars_lazyframe() -> None:
    d = Interactions.from_frame(pl.DataFrame({"user": [1, 2], "item": [3, 3]}).lazy())
    assert d.nnz == 2


def test_input_arrays_are_neither_frozen_nor_aliased() -> None:
    r = np.array([1.0, 2.0], dtype=np.float32)
    t = np.array([5, 6], dtype=np.int64)
    d = Interactions.from_arrays([1, 2], [1, 1], ratings=r, timestamps=t, weights=r)
    r[0] = 9.0
    t[0] = 9
    assert d.ratings is not None and d.ratings.tolist() == [1.0, 2.0]
    assert d.weights.tolist() == [1.0, 2.0]
    assert d.timestamps is not None and d.timestamps.tolist() == [5, 6]


def test_from_file_csv_tsv_parquet(tmp_path: Path) -> None:
    src = pl.DataFrame(
        {"user": ["a", "b", "a"], "item": [1, 2, 2], "rating": [3.5, 4.0, 1.0], "ts": [30, 10, 20]}
    )
    csv, tsv, pq = tmp_path / "r.csv", tmp_path / "r.tsv", tmp_path / "r.parquet"
    src.write_csv(csv)
    src.write_csv(tsv, separator="\t")
    src.write_parquet(pq)
    for path in (csv, tsv, pq, str(pq)):
        d = Interactions.from_file(path, rating_col="rating", timestamp_col="ts")
        assert d.users.ids.tolist() == ["a", "b"]
        assert d.items.ids.tolist() == [1, 2]
        assert d.ratings is not None and d.ratings.tolist() == [3.5, 4.0, 1.0]
        assert d.timestamps is not None and d.timestamps.tolist() == [30, 10, 20]
    semi = tmp_path / "s.csv"
    semi.write_text("user;item\n1;2\n")
    assert Interactions.from_file(semi, separator=";").nnz == 1


def test_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="interactions file not found: .*nope.csv"):
        Interactions.from_file(tmp_path / "nope.csv")
    odd = tmp_path / "r.json"
    odd.write_text("{}")
    with pytest.raises(DataError, match="cannot tell the format of .*r.json"):
        Interactions.from_file(odd)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\n1,\n")
    with pytest.raises(DataError, match="column 'item' has a null id at row 0"):
        Interactions.from_file(bad)


def test_from_frame_rejects_paths_and_non_frames() -> None:
    with pytest.raises(DataTypeError, match="use Interactions.from_file for a path") as e:
        Interactions.from_frame("ratings.csv")
    assert isinstance(e.value, TypeError)
    with pytest.raises(DataTypeError, match="df must be a pandas or polars DataFrame; got list"):
        Interactions.from_frame([[1, 2]])


# -- every input error names the column and the first bad row ------------------


def check_error(exc: pytest.ExceptionInfo[Any], builtin: type[BaseException]) -> None:
    assert isinstance(exc.value, RecsysError)
    assert isinstance(exc.value, builtin)


@LIBS
@pytest.mark.parametrize("missing", ["item", "rating", "ts", "w"])
def test_missing_column(lib: str, missing: str) -> None:
    data = {"user": [1], "item": [2], "rating": [3.0], "ts": [4], "w": [1.0]}
    del data[missing]
    with pytest.raises(MissingColumnError, match=f"interactions has no column '{missing}' \\(columns: 'user'") as e:
        Interactions.from_frame(frame(lib, data), rating_col="rating", timestamp_col="ts", weight_col="w")
    check_error(e, KeyError)
    assert str(e.value).startswith("interactions has no column")  # not quoted like a plain KeyError


@pytest.mark.parametrize(
    "users",
    [
        pd.Series([1.0, 2.0, np.nan]),
        pd.Series(["a", "b", None]),
        pd.Series(["a", "b", np.nan], dtype=object),
        pd.Series([1, 2, None], dtype="Int64"),
        pl.Series([1, 2, None]),
        pl.Series(["a", "b", None]),
    ],
    ids=["float-nan", "str-none", "object-nan", "Int64-NA", "polars-int", "polars-str"],
)
def test_null_ids(users: Any) -> None:
    df = pl.DataFrame({"user": users, "item": [1, 2, 3]}) if isinstance(users, pl.Series) else pd.DataFrame(
        {"user": users, "item": [1, 2, 3]}
    )
    with pytest.raises(DataError, match="column 'user' has a null id at row 2") as e:
        Interactions.from_frame(df)
    check_error(e, ValueError)


def test_null_item_id_in_from_arrays() -> None:
    with pytest.raises(DataError, match="column 'item' has a null id at row 1"):
        Interactions.from_arrays([1, 2], ["x", None])


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (np.array([1.0, 1.5]), "column 'item' must hold integer or string ids; got float 1.5 at row 1"),
        (np.array([True, False]), "column 'item' must hold integer or string ids; got bool"),
        (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), "got dtype datetime64"),
        (pd.Series([[1], [2]], dtype=object), "column 'item' must hold integer or string ids; got list \\[1\\] at row 0"),
    ],
)
def test_id_type_errors(items: Any, match: str) -> None:
    with pytest.raises(DataTypeError, match=match) as e:
        Interactions.from_arrays([1, 2], items)
    check_error(e, TypeError)
    assert isinstance(e.value, ValueError)


def test_uint64_ids_above_int64_rejected() -> None:
    users = np.array([1, 2**63 + 7], dtype=np.uint64)
    with pytest.raises(DataError, match="column 'user' has id 9223372036854775815 at row 1; unsigned ids above"):
        Interactions.from_arrays(users, [1, 2])


@LIBS
@pytest.mark.parametrize(
    ("ratings", "exc", "match"),
    [
        ([4.0, np.nan, 1.0], DataError, "column 'rating' must be finite; got nan at row 1"),
        ([4.0, 3.0, np.inf], DataError, "column 'rating' must be finite; got inf at row 2"),
        ([4.0, 3.0, -np.inf], DataError, "column 'rating' must be finite; got -inf at row 2"),
        (["4", "five", "3"], DataTypeError, "column 'rating' must be numeric; got str '4' at row 0"),
    ],
)
def test_bad_ratings(lib: str, ratings: list[Any], exc: type[Exception], match: str) -> None:
    df = frame(lib, {"user": [1, 2, 3], "item": [1, 1, 1], "rating": ratings})
    with pytest.raises(exc, match=match) as e:
        Interactions.from_frame(df, rating_col="rating")
    check_error(e, ValueError)
    if exc is DataTypeError:
        assert isinstance(e.value, TypeError)


def test_ratings_object_column() -> None:
    ok = Interactions.from_arrays([1, 2], [1, 1], ratings=np.array([4, 2.5], dtype=object))
    assert ok.ratings is not None and ok.ratings.tolist() == [4.0, 2.5]
    with pytest.raises(DataError, match="column 'rating' must be finite; got nan at row 1"):
        Interactions.from_arrays([1, 2], [1, 1], ratings=np.array([4, None], dtype=object))
    with pytest.raises(DataTypeError, match=r"column 'rating' must be numeric; got dict \{\} at row 1"):
        Interactions.from_arrays([1, 2], [1, 1], ratings=np.array([4, {}], dtype=object))
    with pytest.raises(DataTypeError, match="column 'stars' must be numeric; got dtype datetime64"):
        Interactions.from_arrays([1], [1], ratings=np.array(["2020-01-01"], dtype="datetime64[D]"), rating_col="stars")
    with pytest.raises(DataError, match="column 'rating' must be finite; got nan at row 0"):
        Interactions.from_frame(
            pd.DataFrame({"user": [1], "item": [1], "rating": pd.array([None], dtype="Float64")}), rating_col="rating"
        )


@pytest.mark.parametrize(
    ("weights", "exc", "match"),
    [
        ([1.0, -1.0, 2.0], DataError, "column 'w' must be >= 0; got -1.0 at row 1"),
        ([1, 2, -3], DataError, "column 'w' must be >= 0; got -3 at row 2"),
        ([1.0, np.nan, 2.0], DataError, "column 'w' must be finite; got nan at row 1"),
        ([np.inf, 1.0, 2.0], DataError, "column 'w' must be finite; got inf at row 0"),
        (["x", "y", "z"], DataTypeError, "column 'w' must be numeric; got str 'x' at row 0"),
    ],
)
def test_bad_weights(weights: list[Any], exc: type[Exception], match: str) -> None:
    df = pd.DataFrame({"user": [1, 2, 3], "item": [1, 1, 1], "w": weights})
    with pytest.raises(exc, match=match) as e:
        Interactions.from_frame(df, weight_col="w")
    check_error(e, ValueError)


@LIBS
def test_empty_input(lib: str) -> None:
    df = frame(lib, {"user": [], "item": []})
    with pytest.raises(DataError, match="no interactions: the input is empty") as e:
        Interactions.from_frame(df)
    check_error(e, ValueError)
    with pytest.raises(DataError, match="no interactions"):
        Interactions.from_arrays([], [])


def test_length_mismatch() -> None:
    with pytest.raises(DataError, match=r"same length; got \{'user': 2, 'item': 2, 'rating': 3\}") as e:
        Interactions.from_arrays([1, 2], [1, 2], ratings=[1, 2, 3])
    check_error(e, ValueError)
    with pytest.raises(DataError, match="column 'rating' must be one-dimensional; got a scalar 5"):
        Interactions.from_arrays([1, 2], [1, 2], ratings=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ts", "exc", "match"),
    [
        (["2020-01-01", "yesterday-ish"], DataError, "column 'ts': cannot parse timestamp 'yesterday-ish' at row 1"),
        (["2020-01-01", None], DataError, "column 'ts' has a null timestamp at row 1"),
        ([1.0, np.nan], DataError, "column 'ts' has a null or infinite timestamp at row 1"),
        ([np.inf, 1.0], DataError, "column 'ts' has a null or infinite timestamp at row 0"),
        (pd.to_datetime(["2020-01-01", None]), DataError, "column 'ts' has a null timestamp at row 1"),
        (pd.to_timedelta([1, 2], unit="s"), DataTypeError, "column 'ts' must hold timestamps .* got timedelta64"),
        ([True, False], DataTypeError, "column 'ts' must hold timestamps .* got bool"),
        (pd.Series(["2020-01-01", [1]], dtype=object), DataTypeError, "column 'ts' must hold timestamps .* list \\[1\\] at row 1"),
    ],
)
def test_bad_timestamps(ts: Any, exc: type[Exception], match: str) -> None:
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "ts": ts})
    with pytest.raises(exc, match=match) as e:
        Interactions.from_frame(df, timestamp_col="ts")
    check_error(e, ValueError)


def test_polars_null_timestamp() -> None:
    df = pl.DataFrame({"user": [1, 2], "item": [1, 1], "ts": [5, None]})
    with pytest.raises(DataError, match="column 'ts' has a null or infinite timestamp at row 1"):
        Interactions.from_frame(df, timestamp_col="ts")


def test_duplicates_error_names_both_rows() -> None:
    df = pd.DataFrame({"user": ["a", "b", "a", "a"], "item": [1, 1, 2, 1]})
    with pytest.raises(
        DataError,
        match=r"duplicate \(user, item\) pair 'a', 1 in rows 0 and 3 \(1 repeated rows in all\); pass duplicates=",
    ) as e:
        Interactions.from_frame(df)
    check_error(e, ValueError)


def test_bad_duplicates_parameter() -> None:
    with pytest.raises(ParameterError, match="'duplicates' parameter must be .* Got 'first' instead"):
        Interactions.from_arrays([1], [1], duplicates="first")  # type: ignore[arg-type]


# -- timestamps ------------------------------------------------------------------


def test_timestamp_kinds() -> None:
    base = {"user": [1, 2], "item": [1, 1]}
    ints = Interactions.from_frame(pd.DataFrame({**base, "t": [10, 20]}), timestamp_col="t")
    assert ints.timestamps is not None and ints.timestamps.dtype == np.int64 and ints.timestamp_unit is None
    whole = Interactions.from_frame(pd.DataFrame({**base, "t": [10.0, 20.0]}), timestamp_col="t")
    assert whole.timestamps is not None and whole.timestamps.dtype == np.int64
    frac = Interactions.from_frame(pd.DataFrame({**base, "t": [10.5, 20.0]}), timestamp_col="t")
    assert frac.timestamps is not None and frac.timestamps.dtype == np.float64
    objs = Interactions.from_frame(pd.DataFrame({**base, "t": pd.Series([10, 20], dtype=object)}), timestamp_col="t")
    assert objs.timestamps is not None and objs.timestamps.tolist() == [10, 20] and objs.timestamp_unit is None
    day = np.datetime64("2020-01-02", "ns").astype(np.int64)
    for t in (
        ["2020-01-02", "2020-01-02 00:00:01"],
        pd.to_datetime(["2020-01-02 00:00:00", "2020-01-02 00:00:01"]),
        pd.to_datetime(["2020-01-02 01:00:00", "2020-01-02 01:00:01"]).tz_localize("Europe/Paris"),  # UTC+1
        np.array(["2020-01-02", "2020-01-02T00:00:01"], dtype="datetime64[s]"),
    ):
        d = Interactions.from_frame(pd.DataFrame({**base, "t": t}), timestamp_col="t")
        assert d.timestamp_unit == "ns"
        assert d.timestamps is not None and d.timestamps.tolist() == [day, day + 10**9]
    pdt = pl.DataFrame({**base, "t": pl.Series(["2020-01-02", "2020-01-03"]).str.to_date()})
    d = Interactions.from_frame(pdt, timestamp_col="t")
    assert d.timestamps is not None and d.timestamps.tolist() == [day, day + 86400 * 10**9]


def test_timestamps_outside_nanosecond_range() -> None:
    t = np.array(["2020-01-01", "3000-01-01"], dtype="datetime64[D]")
    with pytest.raises(DataError, match="column 't': timestamp 3000-01-01 at row 1 is outside the nanosecond range"):
        Interactions.from_arrays([1, 2], [1, 1], timestamps=t, timestamp_col="t")


# -- duplicates policies -----------------------------------------------------------

DUP = pd.DataFrame(
    {
        "user": ["u1", "u2", "u1", "u1", "u1"],
        "item": ["i1", "i1", "i1", "i2", "i1"],
        "rating": [4.0, 3.0, 2.0, 5.0, 5.0],
        "ts": [10, 5, 30, 1, 20],
        "w": [1.0, 2.0, 3.0, 1.0, 1.5],
    }
)


@pytest.mark.parametrize(
    ("policy", "w", "r", "t"),
    [
        # (u1, i1) is rows 0, 2, 4: weights 1, 3, 1.5; ratings 4, 2, 5; times 10, 30, 20
        ("sum", 5.5, 5.0, 30),  # summed weight, last rating, latest time
        ("last", 1.5, 5.0, 20),  # everything from row 4
        ("max", 3.0, 5.0, 30),  # maximum of each
    ],
)
@LIBS
def test_duplicates_policies(lib: str, policy: str, w: float, r: float, t: int) -> None:
    df = DUP if lib == "pandas" else pl.from_dict(DUP.to_dict(orient="list"))
    with pytest.warns(DataWarning, match=f"^merged 2 duplicate \\(user, item\\) rows with duplicates='{policy}'$"):
        d = Interactions.from_frame(
            df, rating_col="rating", timestamp_col="ts", weight_col="w", duplicates=policy  # type: ignore[arg-type]
        )
    f = d.to_frame()
    # the merged pair stays where its first row was
    assert f["user"].tolist() == ["u1", "u2", "u1"]
    assert f["item"].tolist() == ["i1", "i1", "i2"]
    assert f["weight"].tolist() == [w, 2.0, 1.0]
    assert f["rating"].tolist() == [r, 3.0, 5.0]
    assert f["timestamp"].tolist() == [t, 5, 1]
    m = d.matrix()
    assert m.nnz == 3 and m[d.users.index_of("u1"), d.items.index_of("i1")] == w


def test_duplicates_without_ratings_or_timestamps() -> None:
    with pytest.warns(DataWarning, match="merged 1 duplicate") as record:
        d = Interactions.from_arrays([1, 1], [2, 2], duplicates="sum")
    assert d.weights.tolist() == [2.0] and d.ratings is None and d.timestamps is None
    assert record[0].filename == __file__  # the warning points at the caller's line


def test_no_warning_without_duplicates() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Interactions.from_arrays([1, 2], [2, 2], duplicates="sum")


# -- matrices ----------------------------------------------------------------------


def test_matrix_values_and_kinds() -> None:
    d = Interactions.from_arrays(["a", "b", "a"], [2, 1, 1], ratings=[5, 3, 4], weights=[2, 1, 1])
    # users a, b; items 2, 1 (first-seen order)
    assert d.matrix().toarray().tolist() == [[2, 1], [0, 1]]
    assert d.matrix(values="rating").toarray().tolist() == [[5, 4], [0, 3]]
    assert d.matrix(values="binary").toarray().tolist() == [[1, 1], [0, 1]]
    for values in ("weight", "rating", "binary"):
        csr = d.matrix("csr", values)  # type: ignore[arg-type]
        csc = d.matrix("csc", values)  # type: ignore[arg-type]
        assert isinstance(csr, sp.csr_matrix) and isinstance(csc, sp.csc_matrix)
        assert csr.dtype == np.float32 and csc.dtype == np.float32
        assert csr.has_canonical_format and csc.has_canonical_format
        assert (csr != csc).nnz == 0
        assert d.matrix("csr", values) is csr and d.matrix("csc", values) is csc  # cached


def test_matrix_shape_includes_catalogue_items_and_errors() -> None:
    d = Interactions.from_arrays([1], [1], item_features=pd.DataFrame({"item": [1, 2, 3], "x": [0, 0, 0]}))
    assert d.matrix().shape == (1, 3)
    with pytest.raises(DataError, match="these interactions have no ratings"):
        d.matrix(values="rating")
    with pytest.raises(ParameterError, match="'kind' parameter of matrix must be 'csr' or 'csc'. Got 'coo'"):
        d.matrix("coo")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="'values' parameter of matrix .* Got 'x'"):
        d.matrix(values="x")  # type: ignore[arg-type]


def test_matrix_of_taken_rows_is_its_own() -> None:
    d = small()
    full = d.matrix()
    t = d.take([0, 1])
    assert t.matrix().nnz == 2 and full.nnz == 4


def test_counts_and_sort_rank() -> None:
    d = small()
    assert d.user_counts.tolist() == [2, 1, 1]
    assert d.item_counts.tolist() == [2, 1, 1]
    # items 10, 30, 20 -> sorted 10, 20, 30
    assert d.item_sort_rank.tolist() == [0, 2, 1]


# -- histories ----------------------------------------------------------------------


def test_histories_time_order_with_ties_by_external_item_id() -> None:
    d = Interactions.from_arrays(
        ["a", "b", "a", "a", "a", "b"],
        [10, 5, 9, 2, 30, 6],
        timestamps=[5, 3, 5, 1, 5, 3],
    )
    h = d.histories()
    ua, ub = d.users.index_of("a"), d.users.index_of("b")
    items_a = d.items.to_ids(h.items[h.indptr[ua] : h.indptr[ua + 1]]).tolist()
    # t=1: 2; then the t=5 tie in numeric (not string) order of the ids: 9, 10, 30
    assert items_a == [2, 9, 10, 30]
    assert h.timestamps[h.indptr[ua] : h.indptr[ua + 1]].tolist() == [1, 5, 5, 5]
    assert h.rows[h.indptr[ua] : h.indptr[ua + 1]].tolist() == [3, 2, 0, 4]
    assert d.items.to_ids(h.items[h.indptr[ub] : h.indptr[ub + 1]]).tolist() == [5, 6]
    assert h.indptr.tolist() == [0, 4, 6]
    assert d.histories() is h


def test_histories_match_a_reference(rng: np.random.Generator) -> None:
    n = 300
    users = rng.integers(0, 20, n)
    items = rng.permutation(np.arange(1000))[:n]  # distinct, so pairs are distinct
    ts = rng.integers(0, 5, n)  # many ties
    d = Interactions.from_arrays(users, items, timestamps=ts)
    h = d.histories()
    for u_ext in np.unique(users):
        u = d.users.index_of(u_ext)
        expected = sorted((t, i) for uu, i, t in zip(users, items, ts) if uu == u_ext)
        got_items = d.items.to_ids(h.items[h.indptr[u] : h.indptr[u + 1]]).tolist()
        got_ts = h.timestamps[h.indptr[u] : h.indptr[u + 1]].tolist()
        assert list(zip(got_ts, got_items)) == expected


def test_histories_need_timestamps() -> None:
    with pytest.raises(DataError, match="these interactions have no timestamps"):
        small().histories()


# -- conversion -------------------------------------------------------------------------


@LIBS
def test_to_frame_round_trip(lib: str) -> None:
    src = {
        "user": ["a", "b", "a"],
        "item": [3, 1, 2],
        "rating": [1.5, 2.0, 3.0],
        "timestamp": [100, 50, 75],
    }
    d = Interactions.from_frame(frame(lib, src), rating_col="rating", timestamp_col="timestamp")
    out = d.to_frame()
    assert list(out.columns) == ["user", "item", "rating", "timestamp"]
    assert out.to_dict(orient="list") == src
    again = Interactions.from_frame(out, rating_col="rating", timestamp_col="timestamp")
    assert again.to_frame().equals(out)


def test_to_frame_restores_datetimes_and_weights() -> None:
    ts = pd.to_datetime(["2021-05-01 10:00:00.123456789", "2021-05-02 00:00:00.000000000"])
    d = Interactions.from_frame(
        pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": ts, "w": [1.0, 2.0]}), timestamp_col="t", weight_col="w"
    )
    out = d.to_frame()
    assert list(out.columns) == ["user", "item", "timestamp", "weight"]
    assert out["timestamp"].dtype == "datetime64[ns]"
    assert out["timestamp"].tolist() == ts.tolist()  # nanoseconds kept
    assert out["weight"].tolist() == [1.0, 2.0]
    assert "weight" not in small().to_frame().columns  # all-ones weights are left out


# -- transformations -------------------------------------------------------------------


def test_take_keeps_maps_and_features() -> None:
    d = Interactions.from_arrays(
        [1, 2, 3], [7, 7, 8], ratings=[1, 2, 3], item_features=pd.DataFrame({"item": [7, 8, 9], "x": [1, 2, 3]})
    )
    t = d.take([2, 0])
    assert t.users is d.users and t.items is d.items
    assert t.item_features is d.item_features
    assert (t.nnz, t.n_users, t.n_items) == (2, 3, 3)
    assert t.to_frame()["user"].tolist() == [3, 1]
    assert t.ratings is not None and t.ratings.tolist() == [3.0, 1.0]
    m = d.take(np.array([False, True, False]))
    assert m.to_frame()["user"].tolist() == [2]
    assert d.take([]).nnz == 0


def test_take_errors() -> None:
    d = small()
    with pytest.raises(DataError, match="a row mask must have 4 entries; got 2"):
        d.take(np.array([True, False]))
    with pytest.raises(DataTypeError, match="rows must be integer positions or a boolean mask; got dtype float64"):
        d.take([0.5])
    with pytest.raises(IndexError, match=r"row position 4 out of range \[0, 4\)"):
        d.take([1, 4])
    with pytest.raises(IndexError, match=r"row position -1 out of range"):
        d.take([-1])
    with pytest.raises(DataError, match="row 1 is taken more than once; rows must be distinct"):
        d.take([1, 0, 1])


def test_subset() -> None:
    d = small()  # rows: (a,10) (b,10) (a,30) (c,20)
    assert d.subset(users=["a"]).to_frame()["item"].tolist() == [10, 30]
    assert d.subset(items=[10, 20]).to_frame()["user"].tolist() == ["a", "b", "c"]
    both = d.subset(users=["a", "c"], items=[20, 10])
    assert both.to_frame()[["user", "item"]].values.tolist() == [["a", 10], ["c", 20]]
    assert both.users is d.users
    with pytest.raises(UnknownIdError, match="1 user id not in the training data \\(first: 'zz'\\)"):
        d.subset(users=["zz"])


def test_binarize() -> None:
    d = Interactions.from_arrays([1, 1, 2], [7, 8, 8], ratings=[5, 2, 4], weights=[3, 3, 3])
    b = d.binarize(4)
    assert b.to_frame()[["user", "item"]].values.tolist() == [[1, 7], [2, 8]]
    assert b.weights.tolist() == [1.0, 1.0]
    assert b.ratings is not None and b.ratings.tolist() == [5.0, 4.0]
    assert b.matrix().toarray().tolist() == [[1, 0], [0, 1]]
    assert b.users is d.users
    with pytest.raises(DataError, match="binarize needs ratings"):
        Interactions.from_arrays([1], [1]).binarize(1)


def test_filter_k_core() -> None:
    # removing user 4 drops item c to 1 row, which drops user 3 to 1 row: three rounds
    d = Interactions.from_arrays(
        [1, 1, 2, 2, 3, 3, 4],
        ["a", "b", "a", "b", "a", "c", "c"],
        ratings=[1, 2, 3, 4, 5, 6, 7],
        item_features=pd.DataFrame({"item": ["a", "b", "c", "d"], "x": [1.0, 2.0, 3.0, 4.0]}),
    )
    f = d.filter(min_user=2, min_item=2)
    assert f.users.ids.tolist() == [1, 2] and f.items.ids.tolist() == ["a", "b"]
    assert f.to_frame().values.tolist() == [[1, "a", 1.0], [1, "b", 2.0], [2, "a", 3.0], [2, "b", 4.0]]
    assert f.item_features is not None and f.item_features["x"].tolist() == [1.0, 2.0]
    # min 1 only compacts away ids without rows (here the catalogue-only item "d")
    g = d.filter()
    assert g.nnz == 7 and g.items.ids.tolist() == ["a", "b", "c"]
    with pytest.raises(DataError, match=r"filter\(min_user=3, min_item=1\) leaves no interactions"):
        d.filter(min_user=3)
    with pytest.raises(ParameterError, match="'min_item' parameter of filter must be an int >= 0. Got -1 instead"):
        d.filter(min_item=-1)
    with pytest.raises(ParameterError, match="'min_user' parameter of filter must be an int >= 0. Got 2.5"):
        d.filter(min_user=2.5)  # type: ignore[arg-type]


def test_filter_matches_a_reference(rng: np.random.Generator) -> None:
    keys = rng.choice(40 * 30, size=300, replace=False)
    users, items = np.divmod(keys, 30)
    d = Interactions.from_arrays(users, items)
    f = d.filter(min_user=5, min_item=6)
    rows = set(zip(users.tolist(), items.tolist()))
    while True:  # independent k-core on Python sets
        uc: dict[int, int] = {}
        ic: dict[int, int] = {}
        for u, i in rows:
            uc[u] = uc.get(u, 0) + 1
            ic[i] = ic.get(i, 0) + 1
        keep = {(u, i) for u, i in rows if uc[u] >= 5 and ic[i] >= 6}
        if keep == rows:
            break
        rows = keep
    assert set(zip(f.to_frame()["user"].tolist(), f.to_frame()["item"].tolist())) == rows


# -- repr and immutability ------------------------------------------------------------


def test_repr() -> None:
    assert repr(small()) == "Interactions(3 users x 3 items, 4 interactions, density 0.444, ratings)"
    d = Interactions.from_arrays(
        [1], [1], timestamps=[1], user_features=pd.DataFrame({"user": [1], "age": [3]}),
        item_features=pd.DataFrame({"item": [1], "x": [1]}),
    )
    assert repr(d) == (
        "Interactions(1 users x 1 items, 1 interactions, density 1, timestamps, user features, item features)"
    )


def test_arrays_are_read_only_and_attributes_fixed() -> None:
    d = Interactions.from_arrays([1, 2], [1, 1], ratings=[1, 2], timestamps=[3, 4])
    h = d.histories()
    arrays = [d.user_index, d.item_index, d.weights, d.ratings, d.timestamps, d.user_counts, d.item_counts]
    arrays += [d.item_sort_rank, h.indptr, h.items, h.timestamps, h.rows, d.users.ids]
    for a in arrays:
        assert a is not None
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 0
    with pytest.raises(AttributeError, match="Interactions objects are immutable; cannot set 'weights'"):
        d.weights = np.zeros(2, dtype=np.float32)  # type: ignore[misc]


# -- matrix against an independent dense reference ----------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=40))
def test_matrix_and_duplicate_detection_match_a_reference(rows: list[tuple[int, int, int]]) -> None:
    users, items, weights = (list(c) for c in zip(*rows))
    pairs = list(zip(users, items))
    has_dup = len(set(pairs)) < len(pairs)
    if has_dup:
        with pytest.raises(DataError, match="duplicate \\(user, item\\) pair"):
            Interactions.from_arrays(users, items, weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        d = Interactions.from_arrays(users, items, weights=weights, duplicates="sum")
    dense = np.zeros((d.n_users, d.n_items))
    for u, i, w in rows:
        dense[d.users.index_of(u), d.items.index_of(i)] += w
    for kind in ("csr", "csc"):
        m = d.matrix(kind)  # type: ignore[arg-type]
        assert m.has_canonical_format and m.nnz == len(set(pairs))
        np.testing.assert_allclose(m.toarray(), dense)
