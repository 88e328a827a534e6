"""Mapping between external ids and contiguous int32 indices."""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from recsys.errors import DataError, DataTypeError, ParameterError, UnknownIdError

Missing = Literal["error", "skip", "negative"]

_MAX_SHOWN = 5


def _as_id_array(values: Any) -> NDArray[Any]:
    """Ids as a 1-D numpy array: int64 for integers, object otherwise."""
    if isinstance(values, (pd.Series, pd.Index)):
        arr = values.to_numpy()
    elif hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):  # polars
        arr = values.to_numpy()
    elif isinstance(values, (list, tuple, range)):
        arr = query_array(values)  # keeps [1, "a"] mixed instead of numpy's ["1", "a"]
    else:
        arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise DataError(f"ids must be one-dimensional; got an array of shape {arr.shape}")
    if arr.size == 0 and arr.dtype.kind == "f":  # np.asarray([]) is float64
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise DataError("unsigned ids above 2**63-1 are not supported")
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind in "USO":
        return arr.astype(object, copy=False)
    if arr.dtype.kind == "f":
        raise DataTypeError(
            f"ids must be integers or strings; got float dtype {arr.dtype} "
            "(a float id column usually means missing values: fill or drop them first)"
        )
    if arr.dtype.kind == "b":
        raise DataTypeError("ids must be integers or strings; got bool")
    return arr.astype(object, copy=False)


def savable_id_problem(ids: NDArray[Any]) -> tuple[int, str] | None:
    """The position of the first id a saved model cannot store, and why; None when all can.

    Saved id maps hold integers or strings (valid UTF-8), nothing else: a
    tuple, bytes, a float, a bool or a string with a lone surrogate is
    refused where ids enter (see :func:`recsys.persistence.save_model`).
    Integer arrays are always fine; object arrays are checked in C where
    possible (``infer_dtype``), element by element only when types are mixed.
    """
    if ids.dtype.kind != "O" or len(ids) == 0:
        return None
    inferred = pd.api.types.infer_dtype(ids, skipna=False)
    if inferred == "integer":
        return None
    if inferred != "string":
        for pos, x in enumerate(ids):
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer, str)):
                return pos, f"{x!r} ({type(x).__name__}): ids must be integers or strings, which a saved model can store"
        strings = [x for x in ids if isinstance(x, str)]
    else:
        strings = ids.tolist()
    try:
        "".join(strings).encode("utf-8")
    except UnicodeEncodeError:
        pos = next(i for i, x in enumerate(ids) if isinstance(x, str) and not _utf8(x))
        return pos, f"{ids[pos]!r}: a string that is not valid Unicode (no UTF-8 form), which a saved model cannot store"
    return None


def _utf8(x: str) -> bool:
    try:
        x.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class IdMap:
    """Bijection between external ids and indices ``0..n-1`` (int32).

    Indices follow the order in which ids were first seen. External ids may
    be integers or strings (any hashable); lookups are vectorised through a
    hash index.

    Parameters
    ----------
    ids : array-like
        The distinct external ids, in index order.
    name : str, default "id"
        What the ids are ("user", "item"); used in error messages.

    Examples
    --------
    >>> m = IdMap.from_values(["b", "a", "b", "c"], name="item")
    >>> len(m), m.to_index(["c", "b"]).tolist(), m.to_ids([1]).tolist()
    (3, [2, 0], ['a'])
    >>> m.to_index(["a", "zz"], missing="negative").tolist()
    [1, -1]
    """

    __slots__ = ("_ids", "_index", "name")

    def __init__(self, ids: ArrayLike, *, name: str = "id") -> None:
        arr = _as_id_array(ids)
        index = pd.Index(arr, copy=False)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise DataError(f"{name} ids of an IdMap must be unique; {dup!r} appears twice")
        if len(arr) > np.iinfo(np.int32).max:
            raise DataError(f"at most 2**31-1 {name} ids are supported; got {len(arr)}")
        if arr.dtype == object and len(arr) and index.hasnans:
            raise DataError(f"{name} ids must not be null")
        problem = savable_id_problem(arr)
        if problem is not None:
            raise DataTypeError(f"{name} id at position {problem[0]} is {problem[1]}")
        arr.setflags(write=False)
        self._ids: NDArray[Any] = arr
        self._index = index
        self.name = name

    @classmethod
    def from_values(cls, values: ArrayLike, *, name: str = "id") -> IdMap:
        """Build a map from values that may repeat, keeping first-seen order.

        Examples
        --------
        >>> IdMap.from_values([10, 30, 10]).ids.tolist()
        [10, 30]
        """
        arr = _as_id_array(values)
        uniques = pd.unique(arr)
        return cls(np.asarray(uniques), name=name)

    @property
    def ids(self) -> NDArray[Any]:
        """External ids in index order (read-only)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        try:
            return item in self._index
        except TypeError:
            return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return len(self) == len(other) and bool(self._index.equals(other._index))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(repr(_py(x)) for x in self._ids[:3])
        more = ", ..." if len(self) > 3 else ""
        return f"IdMap({self.name}: {len(self)} ids [{head}{more}])"

    @overload
    def to_index(self, ids: ArrayLike, missing: Literal["error", "negative"] = ...) -> NDArray[np.int32]: ...

    @overload
    def to_index(self, ids: ArrayLike, missing: Literal["skip"]) -> NDArray[np.int32]: ...

    def to_index(self, ids: ArrayLike, missing: Missing = "error") -> NDArray[np.int32]:
        """Indices of external ids.

        Parameters
        ----------
        ids : array-like
            External ids (a scalar is treated as a list of one).
        missing : {"error", "skip", "negative"}
            What to do with ids not in the map: raise :class:`UnknownIdError`,
            drop them from the result, or return -1 in their place.

        Returns
        -------
        numpy.ndarray of int32

        Examples
        --------
        >>> m = IdMap([7, 8, 9], name="user")
        >>> m.to_index([9, 5, 7], missing="skip").tolist()
        [2, 0]
        """
        if missing not in ("error", "skip", "negative"):
            raise ParameterError(
                f"The 'missing' parameter of to_index must be 'error', 'skip' or 'negative'. Got {missing!r} instead."
            )
        query = query_array(ids)
        if query.dtype == object and self._ids.dtype != object:
            pos = self._index.get_indexer(pd.Index(query, dtype=object))
        else:
            pos = self._index.get_indexer(query)
        pos = pos.astype(np.int32, copy=False)
        unknown = pos < 0
        if unknown.any():
            if missing == "error":
                raise self.unknown_error(query[unknown])
            if missing == "skip":
                pos = pos[~unknown]
        return pos

    def index_of(self, id_: Any) -> int:
        """Index of one external id (fast path, no array built).

        Raises
        ------
        UnknownIdError
            If the id is not in the map.

        Examples
        --------
        >>> IdMap(["x", "y"]).index_of("y")
        1
        """
        try:
            loc = self._index.get_loc(id_)
        except (KeyError, TypeError, pd.errors.InvalidIndexError):
            raise self.unknown_error(_one(id_)) from None
        if not isinstance(loc, (int, np.integer)):
            raise self.unknown_error(_one(id_))
        return int(loc)

    def to_ids(self, index: ArrayLike) -> NDArray[Any]:
        """External ids of indices.

        Raises
        ------
        IndexError
            If an index is negative or not below ``len(self)``.
        DataTypeError
            If ``index`` does not hold integers.

        Examples
        --------
        >>> IdMap(["x", "y"]).to_ids([1, 0]).tolist()
        ['y', 'x']
        """
        idx = np.asarray(index)
        if idx.dtype.kind not in "iu":
            if idx.size:
                raise DataTypeError(f"{self.name} indices must be integers; got dtype {idx.dtype}")
            idx = idx.astype(np.intp)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))].ravel()[0]
            raise IndexError(f"{self.name} index {int(bad)} out of range [0, {len(self)})")
        return self._ids[idx]

    def unknown_error(self, unknown: NDArray[Any]) -> UnknownIdError:
        """The error that reports unknown ids: their count and the first few."""
        try:
            uniq = pd.unique(np.asarray(unknown, dtype=object))
        except TypeError:  # unhashable values
            uniq = np.asarray(unknown, dtype=object)
        shown = ", ".join(repr(_py(x)) for x in uniq[:_MAX_SHOWN])
        return UnknownIdError(
            f"{len(uniq)} {self.name} id{'s' if len(uniq) != 1 else ''} not in the training data "
            f"(first: {shown})"
        )

    def extend(self, values: ArrayLike) -> IdMap:
        """A new map with the ids of ``values`` not yet present appended.

        Examples
        --------
        >>> IdMap([1, 2]).extend([2, 5, 1, 6]).ids.tolist()
        [1, 2, 5, 6]
        """
        arr = _as_id_array(values)
        new = pd.unique(arr)
        new = new[self._index.get_indexer(new) < 0]
        if len(new) == 0:
            return self
        dtype = self._ids.dtype if np.asarray(new).dtype == self._ids.dtype else object
        return IdMap(np.concatenate([self._ids.astype(dtype), np.asarray(new, dtype=dtype)]), name=self.name)


class IdLookup:
    """External id -> index of an :class:`IdMap`, -1 when absent, for repeated look-ups.

    Integer ids spanning a compact range are looked up in a dense table (an
    array index instead of a hash probe); other ids go through
    :meth:`IdMap.to_index` with ``missing="negative"``. The results are the same.

    Parameters
    ----------
    idmap : IdMap

    Examples
    --------
    >>> import numpy as np
    >>> from recsys.data import IdLookup, IdMap
    >>> IdLookup(IdMap([10, 12, 11]))(np.array([11, 13, 10])).tolist()
    [2, -1, 0]
    """

    def __init__(self, idmap: IdMap) -> None:
        self.idmap = idmap
        self.table: NDArray[np.int64] | None = None
        self.offset = 0
        ids = idmap.ids
        if ids.dtype.kind == "i" and len(ids):
            lo, hi = int(ids.min()), int(ids.max())
            if hi - lo < 4 * len(ids) + 1024:  # the table stays within a few times the map's size
                table = np.full(hi - lo + 1, -1, dtype=np.int64)
                table[ids - lo] = np.arange(len(ids), dtype=np.int64)
                self.table, self.offset = table, lo

    def __call__(self, values: NDArray[Any]) -> NDArray[np.int64]:
        if self.table is not None and values.dtype.kind == "i" and len(values):
            shifted = values - self.offset if self.offset else values
            if shifted.min() >= 0 and shifted.max() < len(self.table):
                return self.table[shifted]
            ok = (shifted >= 0) & (shifted < len(self.table))
            out = np.full(len(values), -1, dtype=np.int64)
            out[ok] = self.table[shifted[ok]]
            return out
        return self.idmap.to_index(values, missing="negative").astype(np.int64)


def _one(x: Any) -> NDArray[Any]:
    """A one-element object array holding ``x`` as is (even a list or tuple)."""
    arr = np.empty(1, dtype=object)
    arr[0] = x
    return arr


def _py(x: Any) -> Any:
    """Numpy scalars as Python scalars so reprs read naturally."""
    return x.item() if isinstance(x, np.generic) else x


def one_dimensional(values: Any, what: str, error: type[Exception]) -> NDArray[Any]:
    """``values`` (a pandas or polars Series, list or array) as a 1-D numpy array;
    anything else raises ``error`` naming ``what``."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        arr = values.to_numpy()
    else:
        arr = np.asarray(values)
    if arr.ndim != 1:
        raise error(f"{what} must be one-dimensional; got shape {arr.shape}")
    return arr  # type: ignore[no-any-return]


def query_array(ids: Any) -> NDArray[Any]:
    """Ids to look up as a 1-D array; a scalar is a list of one.

    Lists are converted without numpy's coercion of mixed ints and strs to
    strs (``[0, "x"]`` stays ``[0, "x"]``); all-int input becomes int64.
    """
    if isinstance(ids, (str, bytes)) or np.isscalar(ids):
        ids = [ids]
    if isinstance(ids, (list, tuple, range)):
        values = list(ids)
        if not values:
            ids = np.empty(0, dtype=np.int64)
        elif pd.api.types.infer_dtype(values, skipna=True) == "string":
            # not through pd.Index: with pyarrow installed it infers pyarrow strings, which refuse lone surrogates
            ids = np.array(values, dtype=object)
        else:
            ids = pd.Index(values).to_numpy()
    arr = one_dimensional(ids, "ids", ValueError)
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    return arr


def as_id_array(values: Any, what: str = "ids") -> NDArray[Any]:
    """External ids given as a scalar, list, tuple, array or Series, as a 1-D array.

    The one way models read the ids a caller passes (users, items, histories):
    a scalar is a list of one, mixed ``[0, "x"]`` stays mixed (numpy would
    make it strings) and all-int input becomes int64.

    Parameters
    ----------
    values : scalar or one-dimensional sequence of ids
    what : str, default "ids"
        The argument's name, used in the error message.

    Returns
    -------
    numpy.ndarray
        One-dimensional.

    Raises
    ------
    DataError
        ``values`` has more than one dimension.

    Examples
    --------
    >>> import numpy as np
    >>> from recsys.data import as_id_array
    >>> as_id_array("ann").tolist(), as_id_array([3, "x"], "items").tolist()
    (['ann'], [3, 'x'])
    >>> as_id_array(np.zeros((2, 2)), "users")
    Traceback (most recent call last):
    ...
    recsys.errors.DataError: users must be a scalar id or a one-dimensional sequence of ids
    """
    try:
        return query_array(values)
    except ValueError:
        raise DataError(f"{what} must be a scalar id or a one-dimensional sequence of ids") from None
