"""Field specifications and their encoding, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import Interactions
from recsys.errors import DataError, ParameterError
from recsys.models.deep.features import FieldSpec, encode_fields, parse_specs


def _data() -> Interactions:
    df = pd.DataFrame({"user": [1, 1, 2, 3], "item": ["a", "b", "a", "c"]})
    users = pd.DataFrame(
        {"user": [1, 2, 3], "age": [17, 30, np.nan], "zip": ["85711", "94043", None], "gender": ["M", "F", "M"]}
    )
    items = pd.DataFrame(
        {"item": ["a", "b", "c", "d"], "genres": [["x", "y"], ["y"], [], ["z", "x", "y"]], "year": [1990, 2000, None, 2010]}
    )
    return Interactions.from_frame(df, user_features=users, item_features=items)


def _local(t: object, side: str, name: str, values: np.ndarray) -> np.ndarray:
    f = next(f for f in t.fields if f["name"] == name)  # type: ignore[attr-defined]
    return values - f["offset"]


def test_spec_strings_parse_and_round_trip_their_names() -> None:
    for s in ["user.gender", "item.genres:first", "user.zip:prefix=2", "user.age:bucket=18,25", "user.age:bucket=4",
              "item.year:numeric", "item.year:categorical"]:
        assert FieldSpec.parse(s).name == s


@pytest.mark.parametrize(
    "bad", ["gender", "users.gender", "user.", "user.zip:prefix", "user.zip:prefix=0", "user.age:bucket=3,2",
            "user.age:bucket=1", "user.age:bucket=a", "item.genres:first=1", "item.x:log", 7]
)
def test_bad_specs_are_parameter_errors_naming_the_spec(bad: object) -> None:
    with pytest.raises(ParameterError, match="features"):
        FieldSpec.parse(bad, "DeepFM")


def test_features_must_be_a_list() -> None:
    with pytest.raises(ParameterError, match="list of field specifications"):
        parse_specs("user.gender", "DeepFM")
    assert parse_specs(None, "DeepFM") is None


def test_id_fields_come_first_and_rows_do_not_overlap() -> None:
    t = encode_fields(_data(), [FieldSpec.parse("user.gender"), FieldSpec.parse("item.genres")])
    assert [f["name"] for f in t.fields[:2]] == ["user", "user.gender"]
    assert t.fields[2]["name"] == "item"
    # user index u -> row offset + u + 1 (offset + 0 is the unknown value)
    np.testing.assert_array_equal(t.user_cat[:, 0], 1 + 1 + np.arange(3))
    blocks = sorted((f["offset"], f["offset"] + f["size"]) for f in t.fields if "size" in f)
    assert blocks[0][0] == 1 and all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert t.n_rows == blocks[-1][1]


def test_bucket_prefix_first_and_missing_values() -> None:
    d = _data()
    specs = [FieldSpec.parse(s) for s in ["user.age:bucket=18,25,35", "user.zip:prefix=1", "item.genres:first"]]
    t = encode_fields(d, specs)
    # ages 17, 30, NaN -> buckets 1 (< 18), 3 ([25, 35)), unknown 0
    np.testing.assert_array_equal(_local(t, "user", "user.age:bucket=18,25,35", t.user_cat[:, 1]), [1, 3, 0])
    # zip prefixes "8", "9", missing -> two codes and unknown
    z = _local(t, "user", "user.zip:prefix=1", t.user_cat[:, 2])
    assert z[2] == 0 and z[0] != z[1] and min(z[:2]) >= 1
    # first genres x, y, (none), z: a, c -> item index order a, b, c, d
    g = _local(t, "item", "item.genres:first", t.item_cat[:, 1])
    assert g[d.items.index_of("c")] == 0
    assert g[d.items.index_of("a")] != g[d.items.index_of("b")]


def test_multi_valued_field_is_padded_with_zero_rows() -> None:
    d = _data()
    t = encode_fields(d, [FieldSpec.parse("item.genres")])
    f = t.fields[-1]
    assert f["kind"] == "multi" and (f["start"], f["stop"]) == (0, 3)
    m = t.item_multi
    counts = (m > 0).sum(1)
    np.testing.assert_array_equal(counts[[d.items.index_of(i) for i in "abcd"]], [2, 1, 0, 3])
    valid = m[m > 0]
    assert valid.min() > f["offset"] and valid.max() < f["offset"] + f["size"]
    # the same genre gets the same row everywhere: "y" is in a, b and d
    a, b = m[d.items.index_of("a")], m[d.items.index_of("b")]
    assert b[0] in set(a[:2].tolist())


def test_numeric_fields_are_standardised_with_missing_at_the_mean() -> None:
    d = _data()
    t = encode_fields(d, [FieldSpec.parse("item.year"), FieldSpec.parse("user.age:numeric")])
    years = np.array([1990, 2000, 2010], dtype=float)
    expect = (years - years.mean()) / years.std()
    got = t.item_num[:, 0][[d.items.index_of(i) for i in "abd"]]
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    assert t.item_num[d.items.index_of("c"), 0] == 0.0
    assert t.user_num.shape == (3, 1)


def test_default_specs_skip_text_columns() -> None:
    from recsys.testing import tiny_interactions

    t = encode_fields(tiny_interactions(), None)
    names = [f["name"] for f in t.fields]
    assert "item.title" not in names and "item.genres" in names and "user.age" in names


def test_unknown_column_is_a_data_error_listing_the_columns() -> None:
    with pytest.raises(DataError, match="no column 'occupation'.*age"):
        encode_fields(_data(), [FieldSpec.parse("user.occupation")])
    with pytest.raises(ParameterError, match="twice"):
        encode_fields(_data(), [FieldSpec.parse("user.age"), FieldSpec.parse("user.age")])
