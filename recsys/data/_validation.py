"""Column validation shared by the data layer: every check names the column and first bad row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.errors import DataError, DataTypeError, MissingColumnError


def column(frame: Any, name: str, what: str = "frame") -> NDArray[Any]:
    """The values of column ``name`` of a pandas or polars frame as a numpy array."""
    if name not in frame.columns:
        cols = ", ".join(repr(c) for c in list(frame.columns)[:12])
        raise MissingColumnError(f"{what} has no column {name!r} (columns: {cols})")
    col = frame[name]
    return col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)


def first_true(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def check_ids(values: NDArray[Any], col: str) -> NDArray[Any]:
    """Ids as int64 or object; null ids are an error naming the first row."""
    kind = values.dtype.kind
    if kind in "iu":
        return values.astype(np.int64, copy=False)
    if kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            r = first_true(bad)
            raise DataError(f"column {col!r} has a null id at row {r} (value {values[r]!r})")
        if not np.all(values == np.floor(values)):
            r = first_true(values != np.floor(values))
            raise DataTypeError(
                f"column {col!r} must hold integer or string ids; got float {values[r]!r} at row {r}"
            )
        return values.astype(np.int64)
    if kind == "b":
        raise DataTypeError(f"column {col!r} must hold integer or string ids; got bool")
    if kind in "US":
        return values.astype(object)
    nulls = pd.isna(values)
    if nulls.any():
        r = first_true(nulls)
        raise DataError(f"column {col!r} has a null id at row {r}")
    return values.astype(object, copy=False)


def check_numeric(
    values: NDArray[Any], col: str, *, non_negative: bool = False, dtype: type = np.float32
) -> NDArray[Any]:
    """A finite numeric column; NaN, inf, negatives (when forbidden) and non-numbers name the first row."""
    if values.dtype.kind not in "iuf":
        if values.dtype.kind == "b":
            values = values.astype(np.float64)
        elif values.dtype.kind == "O":
            conv = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
            bad = np.isnan(conv) & ~pd.isna(values)
            if bad.any():
                r = first_true(bad)
                raise DataTypeError(
                    f"column {col!r} must be numeric; got {values[r]!r} at row {r}"
                )
            values = conv
        else:
            raise DataTypeError(f"column {col!r} must be numeric; got dtype {values.dtype}")
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            r = first_true(bad)
            raise DataError(f"column {col!r} must be finite; got {values[r]!r} at row {r}")
    if non_negative:
        neg = values < 0
        if neg.any():
            r = first_true(neg)
            raise DataError(f"column {col!r} must be >= 0; got {values[r]!r} at row {r}")
    return values.astype(dtype, copy=False)


def check_timestamps(values: NDArray[Any], col: str) -> tuple[NDArray[Any], str | None]:
    """Timestamps as int64 (or float64) numbers plus the datetime unit they came from.

    Datetimes become int64 nanoseconds since the epoch (unit ``"ns"``) so
    nothing is lost; ``to_frame`` turns them back into datetimes.
    Strings are parsed; any string that does not parse is an error.
    """
    kind = values.dtype.kind
    if kind == "M":
        if np.isnat(values).any():
            r = first_true(np.isnat(values))
            raise DataError(f"column {col!r} has a null timestamp at row {r}")
        return values.astype("datetime64[ns]").astype(np.int64), "ns"
    if kind in "iu":
        return values.astype(np.int64, copy=False), None
    if kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            r = first_true(bad)
            raise DataError(f"column {col!r} has a null or infinite timestamp at row {r}")
        if np.all(values == np.floor(values)):
            return values.astype(np.int64), None
        return values.astype(np.float64, copy=False), None
    if kind == "m":
        raise DataTypeError(f"column {col!r} must hold timestamps; got durations ({values.dtype})")
    nulls = pd.isna(values)
    if nulls.any():
        r = first_true(np.asarray(nulls))
        raise DataError(f"column {col!r} has a null timestamp at row {r}")
    parsed = pd.to_datetime(pd.Series(values), errors="coerce", utc=True, format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        r = first_true(bad)
        raise DataError(f"column {col!r}: cannot parse timestamp {values[r]!r} at row {r}")
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64), "ns"
