"""Column validation shared by the data layer: every check names the column and first bad row."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.data._idmap import _py, one_dimensional, query_array, savable_id_problem
from recsys.errors import DataError, DataTypeError, MissingColumnError

# pandas.api.types.infer_dtype results that are plain numbers
_NUMERIC_INFERRED = frozenset({"integer", "floating", "mixed-integer-float", "decimal", "boolean", "empty"})


def column(frame: Any, name: str, what: str = "frame") -> Any:
    """Column ``name`` of a pandas or polars frame: a pandas Series, or a numpy array for polars."""
    if name not in frame.columns:
        cols = ", ".join(repr(c) for c in list(frame.columns)[:12])
        raise MissingColumnError(f"{what} has no column {name!r} (columns: {cols})")
    col = frame[name]
    if isinstance(col, pd.DataFrame):
        raise DataError(f"{what} has more than one column named {name!r}")
    if isinstance(col, pd.Series):
        return col
    return col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)


def as_array(values: Any, name: str) -> NDArray[Any]:
    """A 1-D numpy array from a Series, polars Series, list or array."""
    return one_dimensional(values, f"column {name!r}", DataError)


def owned(out: NDArray[Any], source: NDArray[Any]) -> NDArray[Any]:
    """``out``, copied if it may share memory with the caller's ``source`` (so freezing or
    keeping it never ties us to, or locks, the caller's array)."""
    return out.copy() if np.may_share_memory(out, source) else out


def first_true(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _where(col: str, what: str | None) -> str:
    return f"{what} column {col!r}" if what else f"column {col!r}"


def check_ids(values: Any, col: str, what: str | None = None) -> Any:
    """Ids ready for hashing: int64 numpy, object numpy, or a pandas string Series.

    Null ids of object / string columns are NOT looked for here (that would be
    a slow pass over Python objects): :func:`factorize_ids` finds them for free.
    Float columns must hold whole numbers (a float id column usually comes from
    integers with missing values); NaN there is reported as a null id.
    """
    where = _where(col, what)
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if isinstance(dtype, pd.StringDtype) or (dtype == np.dtype(object)):
            return values  # factorized as is (no copy to an object array)
        if isinstance(dtype, pd.CategoricalDtype):
            return values.astype(object)
        values = as_array(values, col)
    elif isinstance(values, (list, tuple, range)):
        values = query_array(values)  # [1, "a"] stays mixed (numpy would make it ["1", "a"])
    elif not isinstance(values, np.ndarray):
        values = as_array(values, col)
    if values.ndim != 1:
        raise DataError(f"{where} must be one-dimensional; got shape {values.shape}")
    kind = values.dtype.kind
    if kind == "u":
        if values.dtype.itemsize == 8 and values.size and values.max() > np.iinfo(np.int64).max:
            r = first_true(values > np.iinfo(np.int64).max)
            raise DataError(f"{where} has id {_py(values[r])!r} at row {r}; unsigned ids above 2**63-1 are not supported")
        return values.astype(np.int64)
    if kind == "i":
        return values.astype(np.int64, copy=False)
    if kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            r = first_true(~finite)
            raise DataError(f"{where} has a null id at row {r} (value {_py(values[r])!r})")
        whole = values == np.floor(values)
        if not whole.all():
            r = first_true(~whole)
            raise DataTypeError(f"{where} must hold integer or string ids; got float {_py(values[r])!r} at row {r}")
        return values.astype(np.int64)
    if kind == "b":
        raise DataTypeError(f"{where} must hold integer or string ids; got bool")
    if kind in "US":
        return values.astype(object)
    if kind in "mM":
        raise DataTypeError(f"{where} must hold integer or string ids; got dtype {values.dtype}")
    return values.astype(object, copy=False)


def id_column(frame: Any, name: str, what: str = "frame") -> NDArray[Any]:
    """Column ``name`` of a pandas or polars frame as validated ids: int64 or object numpy.

    For readers that look ids up rather than factorize them: unlike
    :func:`check_ids` the result is always a numpy array and null ids of
    object columns are found here (the error names the first row).

    Parameters
    ----------
    frame : pandas or polars DataFrame
    name : str
        The column.
    what : str, default "frame"
        How messages name the frame ("recommendations").

    Returns
    -------
    numpy.ndarray
        int64 for integer (or whole float) ids, object otherwise.

    Raises
    ------
    MissingColumnError
        No column ``name``.
    DataError
        A null id, a non-integral float or a bool (the row is named).

    Examples
    --------
    >>> import pandas as pd
    >>> from recsys.data import id_column
    >>> id_column(pd.DataFrame({"user": [3.0, 4.0]}), "user").tolist()
    [3, 4]
    >>> id_column(pd.DataFrame({"user": ["a", None]}), "user", "recommendations")
    Traceback (most recent call last):
    ...
    recsys.errors.DataError: recommendations column 'user' has a null id at row 1
    """
    values = check_ids(as_array(column(frame, name, what), name), name, what)
    if values.dtype == object:
        nulls = pd.isna(values)
        if nulls.any():
            raise DataError(f"{_where(name, what)} has a null id at row {first_true(nulls)}")
    return values  # type: ignore[no-any-return]


def factorize_ids(values: Any, col: str, what: str | None = None) -> tuple[NDArray[np.intp], NDArray[Any]]:
    """Codes (first-seen order) and uniques of ids checked by :func:`check_ids`.

    Nulls get the code -1 from the factorization itself, so finding them costs
    a min() over the codes rather than a pass over Python objects.
    """
    where = _where(col, what)
    try:
        codes, uniques = pd.factorize(values)
    except TypeError as e:  # unhashable values (lists, dicts...)
        arr = np.asarray(values, dtype=object)
        r = next(i for i, v in enumerate(arr) if not _hashable(v))
        raise DataTypeError(
            f"{where} must hold integer or string ids; got {type(arr[r]).__name__} {arr[r]!r} at row {r}"
        ) from e
    if len(codes) and codes.min() < 0:
        r = first_true(codes < 0)
        raise DataError(f"{where} has a null id at row {r}")
    uniq = uniques.to_numpy() if hasattr(uniques, "to_numpy") else np.asarray(uniques)
    if uniq.dtype.kind not in "iO":
        uniq = uniq.astype(object)
    # refused here, naming the row, rather than when a model fitted on them is saved
    problem = savable_id_problem(uniq)
    if problem is not None:
        r = first_true(codes == problem[0])
        raise DataTypeError(f"{where}, row {r}: id {problem[1]}")
    return codes, uniq


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def check_numeric(
    values: Any, col: str, *, non_negative: bool = False, dtype: type = np.float32
) -> NDArray[Any]:
    """A finite numeric column; NaN, inf, negatives (when forbidden) and non-numbers name the first row."""
    values = source = as_array(values, col)
    kind = values.dtype.kind
    if kind == "b":
        values = values.astype(dtype)
    elif kind == "O":
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred not in _NUMERIC_INFERRED:
            r = next(
                i
                for i, v in enumerate(values)
                if not (v is None or isinstance(v, (int, float, np.number)) or pd.isna(v))
            )
            raise DataTypeError(
                f"column {col!r} must be numeric; got {type(values[r]).__name__} {values[r]!r} at row {r}"
            )
        values = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    elif kind not in "iuf":
        raise DataTypeError(f"column {col!r} must be numeric; got dtype {values.dtype}")
    # finiteness is checked on the stored values: 1e39 is finite as float64 but inf as float32
    with np.errstate(over="ignore"):
        out = values.astype(dtype, copy=False)
    if out.dtype.kind == "f":
        # sum is NaN iff some value is NaN or inf (or they overflow), cheaper than isfinite's mask
        if not np.isfinite(out.sum(dtype=np.float64)):
            bad = ~np.isfinite(out)
            if bad.any():
                r = first_true(bad)
                if np.isfinite(values[r]):
                    raise DataError(
                        f"column {col!r} must be finite; got {_py(values[r])!r} at row {r}, which overflows "
                        f"{np.dtype(dtype).name} (largest magnitude {float(np.finfo(dtype).max):.4g})"
                    )
                raise DataError(f"column {col!r} must be finite; got {_py(values[r])!r} at row {r}")
    if non_negative and out.size and out.min() < 0:
        r = first_true(out < 0)
        raise DataError(f"column {col!r} must be >= 0; got {_py(values[r])!r} at row {r}")
    return owned(out, source)


def check_timestamps(values: Any, col: str) -> tuple[NDArray[Any], str | None]:
    """Timestamps as int64 (or float64) numbers plus the datetime unit they came from.

    Numbers are kept as they are (int64, or float64 when fractional), with
    unit None: their unit is the caller's (epoch seconds, say). Strings of
    numbers (``"881250949"``) are numbers too. Datetimes and date strings
    (``"1997-12-04 15:55:49"``) become int64 nanoseconds since the epoch (unit
    ``"ns"``) so nothing is lost; ``to_frame`` turns them back into
    datetimes. Time-zone aware datetimes are converted to UTC. A string that
    does not parse, or a column mixing numbers and dates, is an error naming
    the column and row.

    Examples
    --------
    >>> check_timestamps(["881250949", "881250950"], "timestamp")
    (array([881250949, 881250950]), None)
    >>> check_timestamps(["1997-12-04"], "timestamp")[1]
    'ns'
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    values = source = as_array(values, col)
    kind = values.dtype.kind
    if kind == "M":
        nat = np.isnat(values)
        if nat.any():
            raise DataError(f"column {col!r} has a null timestamp at row {first_true(nat)}")
        ns = values.astype("datetime64[ns]")
        if values.dtype != ns.dtype and not np.array_equal(ns.astype(values.dtype), values):
            r = first_true(ns.astype(values.dtype) != values)
            raise DataError(f"column {col!r}: timestamp {values[r]} at row {r} is outside the nanosecond range")
        return owned(ns.view(np.int64), source), "ns"
    if kind in "iu":
        return owned(values.astype(np.int64, copy=False), source), None
    if kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            r = first_true(~finite)
            raise DataError(f"column {col!r} has a null or infinite timestamp at row {r} (value {_py(values[r])!r})")
        if np.all(values == np.floor(values)) and np.abs(values).max(initial=0) < 2**63:
            return values.astype(np.int64), None
        return owned(values.astype(np.float64, copy=False), source), None
    if kind in "mb":
        raise DataTypeError(f"column {col!r} must hold timestamps (numbers, datetimes or strings); got {values.dtype}")
    if kind in "US":
        values = values.astype(object)
    nulls = pd.isna(values)
    if nulls.any():
        r = first_true(np.asarray(nulls))
        raise DataError(f"column {col!r} has a null timestamp at row {r}")
    inferred = pd.api.types.infer_dtype(values, skipna=False)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return check_timestamps(pd.to_numeric(pd.Series(values, dtype=object)).to_numpy(), col)
    if inferred in ("datetime", "datetime64", "date"):
        return _parse_datetimes(values, col)
    if inferred != "string":
        kinds = (str, datetime.date, np.datetime64, int, float, np.number)
        r = next((i for i, v in enumerate(values) if isinstance(v, (bool, np.bool_)) or not isinstance(v, kinds)), -1)
        if r >= 0:
            raise DataTypeError(
                f"column {col!r} must hold timestamps (numbers, datetimes or strings); "
                f"got {type(values[r]).__name__} {values[r]!r} at row {r}"
            )
    # strings of numbers ("881250949") are numbers, as numbers are (epoch seconds, say); other
    # strings are dates; a column may not mix the two
    as_number = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    is_number = as_number.notna().to_numpy()
    if inferred != "string":  # datetime objects are dates, whatever to_numeric makes of them
        is_number = is_number & np.array([not isinstance(v, (datetime.date, np.datetime64)) for v in values], dtype=bool)
    if is_number.all():
        return check_timestamps(as_number.to_numpy(), col)
    if not is_number.any():
        return _parse_datetimes(values, col)
    _parse_datetimes(values[~is_number], col, np.flatnonzero(~is_number))  # a non-date names its row first
    r = first_true(is_number != is_number[0])
    kind0, kind_r = ("a number", "a date") if is_number[0] else ("a date", "a number")
    raise DataError(
        f"column {col!r} mixes numbers and dates: row 0 holds {kind0} ({values[0]!r}), row {r} {kind_r} "
        f"({values[r]!r}); give every timestamp as a number (e.g. epoch seconds) or every one as a date"
    )


def _parse_datetimes(
    values: NDArray[Any], col: str, rows: NDArray[np.int64] | None = None
) -> tuple[NDArray[Any], str | None]:
    """Date strings and datetime objects as int64 nanoseconds (unit ``"ns"``); ``rows``: the
    values' rows in the column (for errors), default ``0..n-1``."""
    try:
        parsed = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", utc=True, format="mixed")
    except (TypeError, ValueError, OverflowError) as e:
        raise DataError(f"column {col!r}: cannot parse timestamps ({e})") from e
    bad = parsed.isna().to_numpy()
    if bad.any():
        r = first_true(bad)
        row = r if rows is None else int(rows[r])
        raise DataError(f"column {col!r}: cannot parse timestamp {values[r]!r} at row {row}")
    naive = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    return naive.view(np.int64), "ns"
