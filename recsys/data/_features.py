"""User and item feature tables aligned to an id map."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.data._idmap import IdMap
from recsys.data._validation import check_ids, column, first_true
from recsys.errors import DataError, DataTypeError

FeatureKind = Literal["numeric", "categorical", "multi", "text"]

_LIST_TYPES = (list, tuple, np.ndarray, set, frozenset)


def to_pandas(frame: Any) -> pd.DataFrame:
    """A pandas frame from pandas or polars (without needing pyarrow)."""
    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "columns") and hasattr(frame, "get_column"):  # polars
        data = {}
        for name in frame.columns:
            s = frame.get_column(name)
            if str(s.dtype).startswith(("List", "Array")):
                data[name] = pd.Series([None if v is None else list(v) for v in s.to_list()], dtype=object)
            else:
                data[name] = s.to_numpy()
        return pd.DataFrame(data)
    raise DataTypeError(f"features must be a pandas or polars DataFrame; got {type(frame).__name__}")


def infer_kind(values: pd.Series, name: str, what: str) -> FeatureKind:
    """Kind of a feature column; a column mixing lists and scalars is an error."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "categorical"
    if values.dtype.kind in "iuf":
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(arr)
        if bad.any():
            r = first_true(bad)
            raise DataError(f"{what} column {name!r} must be finite; got {arr[r]!r} at row {r}")
        return "numeric"
    if values.dtype.kind == "b":
        return "categorical"
    if values.dtype.kind == "M":
        return "numeric"
    obj = values.to_numpy(dtype=object)
    present = np.array([not _is_null(v) for v in obj], dtype=bool)
    if not present.any():
        return "categorical"
    is_list = np.array([isinstance(v, _LIST_TYPES) for v in obj], dtype=bool)
    if is_list[present].any():
        mixed = present & ~is_list
        if mixed.any():
            r = first_true(mixed)
            raise DataTypeError(
                f"{what} column {name!r} mixes lists and scalars: row {r} holds {obj[r]!r}; "
                "a multi-valued feature needs a list (possibly empty) in every row"
            )
        return "multi"
    is_str = np.array([isinstance(v, str) for v in obj], dtype=bool)
    bad = present & ~is_str & ~np.array([isinstance(v, (int, float, np.number)) for v in obj])
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


def _is_null(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return v is pd.NA or v is pd.NaT


def align_features(
    frame: Any, id_col: str, idmap: IdMap, what: str
) -> tuple[IdMap, pd.DataFrame, dict[str, FeatureKind]]:
    """Align a feature frame to ``idmap``, appending ids seen only in the features.

    Returns the (possibly extended) map, a frame with one row per index
    (missing rows hold nulls) and the inferred kind of each column.
    """
    df = to_pandas(frame)
    ids = check_ids(column(df, id_col, what), id_col)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        r = first_true(dup)
        raise DataError(f"{what} has more than one row for {id_col} {ids[r]!r} (row {r})")
    extended = idmap.extend(ids)
    pos = extended.to_index(ids)
    values = df.drop(columns=[id_col]).reset_index(drop=True)
    kinds = {str(c): infer_kind(values[c], str(c), what) for c in values.columns}
    order = np.full(len(extended), -1, dtype=np.int64)
    order[pos] = np.arange(len(pos))
    if (order < 0).any():
        # label -1 is absent, so reindexing gives all-null rows for ids without features
        aligned = values.reindex(order).reset_index(drop=True)
    else:
        aligned = values.iloc[order].reset_index(drop=True)
    return extended, aligned, kinds


def take_rows(features: pd.DataFrame | None, index: NDArray[np.int64]) -> pd.DataFrame | None:
    if features is None:
        return None
    return features.iloc[index].reset_index(drop=True)
