"""IdMap: property tests of the round trips and hand-written cases for every error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys import IdMap
from recsys.errors import DataError, DataTypeError, ParameterError, RecsysError, UnknownIdError

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(max_size=6)
ID = st.one_of(INT64, TEXT)

# distinct ids of one family each, and of both mixed (1 and "1" are different ids)
ID_LISTS = st.one_of(
    st.lists(INT64, unique=True, max_size=30),
    st.lists(TEXT, unique=True, max_size=30),
    st.lists(ID, unique=True, max_size=30),
)
SETTINGS = settings(max_examples=60, deadline=None)


def first_seen(values: list) -> list:
    """Independent reference: distinct values in first-seen order."""
    out: dict = {}
    for v in values:
        out.setdefault((type(v), v), v)
    return list(out.values())


def same_ids(a: np.ndarray, b: list) -> bool:
    return len(a) == len(b) and all(type(x) is type(y) and x == y for x, y in zip(a.tolist(), b))


# -- round trips ---------------------------------------------------------------


@SETTINGS
@given(ID_LISTS)
def test_round_trip(ids: list) -> None:
    m = IdMap(ids, name="item")
    assert len(m) == len(ids)
    assert same_ids(m.ids, ids)
    idx = m.to_index(ids)
    assert idx.dtype == np.int32
    assert idx.tolist() == list(range(len(ids)))
    assert same_ids(m.to_ids(np.arange(len(ids))), ids)
    for k, v in enumerate(ids):
        assert m.index_of(v) == k
        assert v in m


@SETTINGS
@given(st.lists(ID, max_size=40))
def test_from_values_keeps_first_seen_order(values: list) -> None:
    m = IdMap.from_values(values)
    expected = first_seen(values)
    assert same_ids(m.ids, expected)
    # every value maps to the position of its first occurrence
    assert m.to_index(values).tolist() == [expected.index(v) for v in values] if values else True


@SETTINGS
@given(ID_LISTS, st.lists(ID, max_size=20), st.sampled_from(["error", "skip", "negative"]))
def test_missing_policies(ids: list, queries: list, missing: str) -> None:
    m = IdMap(ids)
    lookup = {(type(v), v): k for k, v in enumerate(ids)}
    expected = [lookup.get((type(q), q), -1) for q in queries]
    if missing == "negative":
        assert m.to_index(queries, missing="negative").tolist() == expected
    elif missing == "skip":
        assert m.to_index(queries, missing="skip").tolist() == [e for e in expected if e >= 0]
    elif -1 in expected:
        with pytest.raises(UnknownIdError, match="not in the training data"):
            m.to_index(queries)
    else:
        assert m.to_index(queries).tolist() == expected


@SETTINGS
@given(ID_LISTS, st.lists(ID, max_size=20))
def test_extend_appends_new_ids_and_keeps_old_indices(ids: list, more: list) -> None:
    m = IdMap(ids, name="user")
    e = m.extend(more)
    known = {(type(v), v) for v in ids}
    expected = ids + [v for v in first_seen(more) if (type(v), v) not in known]
    assert same_ids(e.ids, expected)
    assert e.to_index(ids).tolist() == list(range(len(ids)))
    assert e.name == "user"
    assert same_ids(m.ids, ids)  # the original is unchanged


@SETTINGS
@given(ID_LISTS, ID)
def test_index_of_unknown(ids: list, q: object) -> None:
    m = IdMap(ids)
    if any(type(q) is type(v) and q == v for v in ids):
        assert m.index_of(q) == ids.index(q)
    else:
        with pytest.raises(UnknownIdError):
            m.index_of(q)


# -- hand-written cases ------------------------------------------------------


def test_scalar_query_and_containers() -> None:
    m = IdMap(["b", "a"], name="item")
    assert m.to_index("a").tolist() == [1]
    assert m.to_index(np.array(["a", "b"])).tolist() == [1, 0]
    assert m.to_index(pd.Series(["b"])).tolist() == [0]
    assert m.to_index(pl.Series(["a"])).tolist() == [1]
    assert m.to_index([]).tolist() == []


def test_int_map_with_str_queries_and_back() -> None:
    m = IdMap([10, 20])
    assert m.to_index(["10", 20], missing="negative").tolist() == [-1, 1]
    s = IdMap(["10"])
    assert s.to_index([10, "10"], missing="negative").tolist() == [-1, 0]


def test_mixed_list_is_not_coerced_to_strings() -> None:
    m = IdMap([1, "a"])
    assert m.ids.tolist() == [1, "a"]
    assert m.to_index(["a", 1]).tolist() == [1, 0]
    assert "1" not in m


def test_numpy_and_unsigned_ints() -> None:
    m = IdMap(np.array([3, 1], dtype=np.uint32))
    assert m.ids.dtype == np.int64
    assert m.to_index(np.array([1], dtype=np.uint64)).tolist() == [1]
    assert m.to_index(np.array([2**63 + 5], dtype=np.uint64), missing="negative").tolist() == [-1]


def test_unknown_error_message_counts_and_lists_first_ids() -> None:
    m = IdMap(["a"], name="user")
    with pytest.raises(UnknownIdError, match=r"^2 user ids not in the training data \(first: 'x', 'y'\)$") as e:
        m.to_index(["x", "a", "y", "x"])
    assert isinstance(e.value, KeyError) and isinstance(e.value, RecsysError)
    with pytest.raises(UnknownIdError, match=r"1 user id not in the training data \(first: 7\)"):
        m.index_of(7)
    with pytest.raises(UnknownIdError):
        m.index_of([1, 2])  # unhashable


def test_bad_missing_policy() -> None:
    with pytest.raises(ParameterError, match="'missing' parameter of to_index .* Got 'drop'") as e:
        IdMap([1]).to_index([1], missing="drop")  # type: ignore[call-overload]
    assert isinstance(e.value, ValueError)


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(DataError, match="item ids of an IdMap must be unique; 'a' appears twice") as e:
        IdMap(["a", "b", "a"], name="item")
    assert isinstance(e.value, ValueError)


def test_null_ids_rejected() -> None:
    with pytest.raises(DataError, match="user ids must not be null"):
        IdMap(np.array(["a", None], dtype=object), name="user")


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (np.array([1.0, 2.0]), "got float dtype float64"),
        (np.array([True, False]), "got bool"),
    ],
)
def test_float_and_bool_ids_rejected(ids: np.ndarray, match: str) -> None:
    with pytest.raises(DataTypeError, match=match) as e:
        IdMap(ids)
    assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)


def test_two_dimensional_and_huge_unsigned_rejected() -> None:
    with pytest.raises(DataError, match=r"one-dimensional; got an array of shape \(1, 2\)"):
        IdMap(np.array([[1, 2]]))
    with pytest.raises(DataError, match="unsigned ids above 2\\*\\*63-1"):
        IdMap(np.array([2**63], dtype=np.uint64))


def test_to_ids_errors() -> None:
    m = IdMap(["x", "y"], name="item")
    with pytest.raises(IndexError, match=r"item index 2 out of range \[0, 2\)"):
        m.to_ids([0, 2])
    with pytest.raises(IndexError, match="item index -1 out of range"):
        m.to_ids([-1])
    with pytest.raises(DataTypeError, match="item indices must be integers; got dtype bool"):
        m.to_ids([True])
    assert m.to_ids([]).tolist() == []


def test_empty_map() -> None:
    m = IdMap([], name="user")
    assert len(m) == 0
    assert m.to_index([1], missing="negative").tolist() == [-1]
    assert m.extend(["a"]).ids.tolist() == ["a"]


def test_ids_are_read_only_and_map_unhashable() -> None:
    m = IdMap([1, 2])
    with pytest.raises(ValueError, match="read-only"):
        m.ids[0] = 5
    with pytest.raises(TypeError):
        hash(m)


def test_equality_repr_contains() -> None:
    assert IdMap([1, 2]) == IdMap([1, 2])
    assert IdMap([1, 2]) != IdMap([2, 1])
    assert IdMap([1]).__eq__("x") is NotImplemented
    assert repr(IdMap(["a", "b", "c", "d"], name="item")) == "IdMap(item: 4 ids ['a', 'b', 'c', ...])"
    assert repr(IdMap([5], name="user")) == "IdMap(user: 1 ids [5])"
    assert 5 not in IdMap(["5"])
    assert [1] not in IdMap([1])  # unhashable query: not contained, no error


def test_extend_without_new_ids_returns_same_map() -> None:
    m = IdMap([1, 2])
    assert m.extend([2, 1]) is m
    assert m.extend(["z"]).ids.tolist() == [1, 2, "z"]
