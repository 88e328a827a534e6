"""User and item feature tables aligned to an id map."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.data._idmap import IdMap, _py
from recsys.data._validation import check_ids, column, factorize_ids, first_true
from recsys.errors import DataError, DataTypeError

FeatureKind = Literal["numeric", "categorical", "multi", "text"]

_LIST_TYPES = (list, tuple, np.ndarray, set, frozenset)
_SCALAR_TYPES = (str, int, float, np.number, np.bool_)


def to_pandas(frame: Any, what: str = "features") -> pd.DataFrame:
    """A pandas frame from pandas or polars (without needing pyarrow).

    Polars list / array columns become object columns of Python lists,
    categoricals become pandas categoricals and integer or boolean columns
    with nulls become pandas nullable ``Int64`` / ``boolean`` (not floats).

    Examples
    --------
    >>> import pandas as pd
    >>> from recsys.data import to_pandas
    >>> to_pandas(pd.DataFrame({"item": [1, 2]})).shape
    (2, 1)
    >>> to_pandas([1, 2], "item_features")
    Traceback (most recent call last):
    ...
    recsys.errors.DataTypeError: item_features must be a pandas or polars DataFrame; got list
    """
    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "collect") and not hasattr(frame, "get_column"):  # polars LazyFrame
        frame = frame.collect()
    if not (hasattr(frame, "columns") and hasattr(frame, "get_column")):
        raise DataTypeError(f"{what} must be a pandas or polars DataFrame; got {type(frame).__name__}")
    import polars as pl

    data: dict[str, Any] = {}
    for name in frame.columns:
        s = frame.get_column(name)
        dt = s.dtype
        if dt == pl.List or dt == pl.Array:
            data[name] = pd.Series([None if v is None else list(v) for v in s.to_list()], dtype=object)
        elif dt == pl.Categorical or dt == pl.Enum:
            data[name] = pd.Categorical(s.cast(pl.String).to_numpy())
        elif dt == pl.Struct or dt == pl.Object or dt.is_nested():
            raise DataTypeError(
                f"{what} column {name!r} has polars dtype {dt}; expected numbers, strings, "
                "categoricals, datetimes or lists"
            )
        elif s.null_count() and (dt.is_integer() or dt == pl.Boolean):
            nullable = "boolean" if dt == pl.Boolean else str(dt)  # polars "Int32" is pandas "Int32"
            data[name] = pd.array(s.to_list(), dtype=nullable)
        else:
            data[name] = s.to_numpy()
    return pd.DataFrame(data)


def infer_kind(values: pd.Series, name: str, what: str) -> FeatureKind:
    """Kind of a feature column; unsupported values and lists mixed with scalars are errors."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "categorical"
    if values.dtype.kind == "b" or isinstance(values.dtype, pd.BooleanDtype):
        return "categorical"
    if values.dtype.kind in "iuf":
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(arr)
        if bad.any():
            r = first_true(bad)
            raise DataError(f"{what} column {name!r} must be finite; got {_py(arr[r])!r} at row {r}")
        return "numeric"
    if values.dtype.kind in "mM":
        return "numeric"
    obj = values.to_numpy(dtype=object)
    present = ~pd.isna(obj)
    if not present.any():
        return "categorical"
    is_list = np.fromiter((isinstance(v, _LIST_TYPES) for v in obj), dtype=bool, count=len(obj))
    if is_list.any():
        mixed = present & ~is_list
        if mixed.any():
            r = first_true(mixed)
            raise DataTypeError(
                f"{what} column {name!r} mixes lists and scalars: row {r} holds {obj[r]!r}; "
                "a multi-valued feature needs a list (possibly empty) in every row"
            )
        for row in np.flatnonzero(is_list).tolist():
            for v in obj[row]:
                if not isinstance(v, _SCALAR_TYPES) or isinstance(v, np.ndarray):
                    raise DataTypeError(
                        f"{what} column {name!r} holds {v!r} ({type(v).__name__}) inside the list at row {row}; "
                        "list elements must be strings or numbers"
                    )
        return "multi"
    inferred = pd.api.types.infer_dtype(obj, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return infer_kind(pd.Series(pd.to_numeric(values), dtype=np.float64), name, what)
    is_str = np.fromiter((isinstance(v, str) for v in obj), dtype=bool, count=len(obj))
    ok = is_str | np.fromiter((isinstance(v, _SCALAR_TYPES) for v in obj), dtype=bool, count=len(obj))
    bad = present & ~ok
    if bad.any():
        r = first_true(bad)
        raise DataTypeError(
            f"{what} column {name!r} holds an unsupported value {obj[r]!r} "
            f"({type(obj[r]).__name__}) at row {r}; expected str, number or list"
        )
    strs = obj[present & is_str]
    if len(strs) and np.mean([" " in s for s in strs]) >= 0.5:
        return "text"
    return "categorical"


def _id_family(ids: NDArray[Any]) -> str:
    """'int', 'str' or 'mixed': what kind of external ids an array holds."""
    if ids.dtype.kind in "iu":
        return "int"
    inferred = pd.api.types.infer_dtype(ids, skipna=True)
    return {"string": "str", "integer": "int"}.get(inferred, "mixed")


def _nullable(col: pd.Series) -> pd.Series:
    """Integer / bool columns as pandas nullable dtypes, so missing rows stay exact (not float NaN)."""
    if col.dtype.kind in "iu" and not isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
        return col.astype(col.dtype.name.capitalize().replace("Uint", "UInt"))
    if col.dtype.kind == "b" and not isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
        return col.astype("boolean")
    return col


def align_features(
    frame: Any, id_col: str, idmap: IdMap, what: str
) -> tuple[IdMap, pd.DataFrame, dict[str, FeatureKind]]:
    """Align a feature frame to ``idmap``, appending ids seen only in the features.

    Returns the (possibly extended) map, a frame with one row per index
    (rows of ids without features hold nulls: NaN, ``<NA>`` for integer and
    bool columns, which become pandas nullable dtypes) and the inferred kind
    of each column.
    """
    df = to_pandas(frame, what)
    ids = check_ids(column(df, id_col, what), id_col, what)
    codes, uniques = factorize_ids(ids, id_col, what)
    if len(uniques) < len(codes):
        dup = pd.Series(codes).duplicated().to_numpy()
        r = first_true(dup)
        first = first_true(codes == codes[r])
        raise DataError(
            f"{what} has more than one row for {id_col} {_py(uniques[codes[r]])!r} (rows {first} and {r})"
        )
    fam_map, fam_feat = _id_family(idmap.ids), _id_family(uniques)
    if {fam_map, fam_feat} == {"int", "str"}:
        raise DataTypeError(
            f"{what} column {id_col!r} holds {fam_feat} ids (row 0: {_py(uniques[0])!r}) but the interactions "
            f"hold {fam_map} ids (e.g. {_py(idmap.ids[0])!r}); convert one to the other's type"
        )
    extended = idmap.extend(uniques)
    pos = extended.to_index(uniques)[codes]
    values = df.drop(columns=[id_col]).reset_index(drop=True)
    kinds: dict[str, FeatureKind] = {}
    for c in values.columns:
        kinds[str(c)] = infer_kind(values[c], str(c), what)
        if kinds[str(c)] == "numeric" and values[c].dtype == object:
            values[c] = pd.to_numeric(values[c]).astype(np.float64)
    order = np.full(len(extended), -1, dtype=np.int64)
    order[pos] = np.arange(len(pos))
    if (order < 0).any():
        values = pd.DataFrame({c: _nullable(values[c]) for c in values.columns}, columns=values.columns)
        # label -1 is absent, so reindexing gives all-null rows for ids without features
        aligned = values.reindex(order).reset_index(drop=True)
    else:
        aligned = values.iloc[order].reset_index(drop=True)
    return extended, aligned, kinds


def take_rows(features: pd.DataFrame | None, index: NDArray[np.int64]) -> pd.DataFrame | None:
    if features is None:
        return None
    return features.iloc[index].reset_index(drop=True)
