"""The one interaction-matrix data layer every model consumes."""

from __future__ import annotations

import os
import sys
import warnings
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from recsys._utils.params import check_int
from recsys.data._features import FeatureKind, align_features, take_rows
from recsys.data._idmap import IdMap, _py
from recsys.data._validation import (
    check_ids,
    check_numeric,
    check_timestamps,
    column,
    factorize_ids,
    first_true,
)
from recsys.errors import DataError, DataTypeError, DataWarning, ParameterError
from recsys.types import FrameLike

Duplicates = Literal["error", "sum", "last", "max"]


class Histories(NamedTuple):
    """Per-user interaction sequences in time order (CSR-style layout).

    The items of user ``u`` are ``items[indptr[u]:indptr[u+1]]``, sorted by
    (timestamp, external item id); ``rows`` are the positions of those
    interactions in the :class:`Interactions` rows.
    """

    indptr: NDArray[np.int64]
    items: NDArray[np.int32]
    timestamps: NDArray[Any]
    rows: NDArray[np.int64]


def _freeze(a: NDArray[Any] | None) -> Any:
    if a is not None:
        a.setflags(write=False)
    return a


class Interactions:
    """Users x items interactions with id maps, weights, ratings, timestamps and features.

    Rows keep their input order (splits depend on it). Every row is a distinct
    (user, item) pair; duplicates are merged or rejected when the object is
    built. Objects are immutable: every transformation returns a new one.
    Build them with :meth:`from_frame`, :meth:`from_arrays` or :meth:`from_file`.

    Attributes
    ----------
    users, items : IdMap
        External id <-> contiguous int32 index. Items seen only in the item
        features (a catalogue item nobody has interacted with yet) have an
        index too.
    user_index, item_index : ndarray of int32
        Per row, the user and item index.
    weights : ndarray of float32
        Per row interaction strength (1.0 unless given).
    ratings : ndarray of float32 or None
        Per row explicit rating.
    timestamps : ndarray of int64 / float64 or None
        Per row time; datetimes are stored as int64 nanoseconds.
    user_features, item_features : pandas.DataFrame or None
        One row per index (row ``i`` describes index ``i``); rows of ids
        without features hold nulls.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": ["a", "a", "b"], "item": [1, 2, 2], "rating": [5, 3, 4]})
    >>> data = Interactions.from_frame(df, rating_col="rating")
    >>> data
    Interactions(2 users x 2 items, 3 interactions, density 0.75, ratings)
    >>> data.matrix().toarray()
    array([[1., 1.],
           [0., 1.]], dtype=float32)
    >>> data.users.to_index(["b"]).tolist()
    [1]
    """

    def __init__(
        self,
        *,
        users: IdMap,
        items: IdMap,
        user_index: NDArray[np.int32],
        item_index: NDArray[np.int32],
        weights: NDArray[np.float32],
        ratings: NDArray[np.float32] | None = None,
        timestamps: NDArray[Any] | None = None,
        timestamp_unit: str | None = None,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
        user_feature_kinds: dict[str, FeatureKind] | None = None,
        item_feature_kinds: dict[str, FeatureKind] | None = None,
        csr: sp.csr_matrix | None = None,
    ) -> None:
        # Private: arrays are trusted here; the public builders validate.
        self.users = users
        self.items = items
        self.user_index = _freeze(user_index)
        self.item_index = _freeze(item_index)
        self.weights = _freeze(weights)
        self.ratings = _freeze(ratings)
        self.timestamps = _freeze(timestamps)
        self.timestamp_unit = timestamp_unit
        self.user_features = user_features
        self.item_features = item_features
        self.user_feature_kinds = dict(user_feature_kinds or {})
        self.item_feature_kinds = dict(item_feature_kinds or {})
        self._matrices: dict[tuple[str, str], sp.spmatrix] = {}
        if csr is not None:
            self._matrices[("csr", "weight")] = csr
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        # immutable: cached matrices, counts and histories must never go stale
        if self.__dict__.get("_frozen", False):
            raise AttributeError(
                f"Interactions objects are immutable; cannot set {name!r} (use take, subset, filter... to derive one)"
            )
        object.__setattr__(self, name, value)

    # -- builders -------------------------------------------------------------

    @classmethod
    def from_frame(
        cls,
        df: FrameLike,
        *,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = None,
        timestamp_col: str | None = None,
        weight_col: str | None = None,
        user_features: FrameLike | None = None,
        item_features: FrameLike | None = None,
        duplicates: Duplicates = "error",
    ) -> Interactions:
        """Build from a pandas or polars DataFrame.

        Parameters
        ----------
        df : pandas.DataFrame or polars.DataFrame (or LazyFrame)
            One row per interaction.
        user_col, item_col : str
            Columns of the external user and item ids (int or str).
        rating_col : str, optional
            Explicit ratings: finite numbers (strings, even "4", are rejected).
        timestamp_col : str, optional
            Numbers (e.g. epoch seconds, kept as they are), strings of numbers
            (``"881250949"``: numbers too), datetimes or date strings
            (``"1997-12-04 15:55:49"``). Datetimes are stored as int64
            nanoseconds (time-zone aware ones converted to UTC). A column
            mixing numbers and dates is an error.
        weight_col : str, optional
            Interaction strengths (finite, >= 0); all 1.0 when absent.
        user_features, item_features : DataFrame, optional
            Keyed by a column named ``user_col`` / ``item_col``. Ids that appear
            only here still get an index.
        duplicates : {"error", "sum", "last", "max"}
            Repeated (user, item) rows: raise; sum the weights (keeping the
            last rating and the latest timestamp); keep the last row's values;
            or keep the maximum of each value. A merged pair stays at the
            position of its first row and a :class:`DataWarning` says how many
            rows were merged.

        Raises
        ------
        MissingColumnError
            A named column is absent.
        DataError, DataTypeError
            Null ids, ids a saved model cannot store (anything but integers
            and strings: tuples, bytes, floats, bools, invalid Unicode),
            empty input, non-numeric / NaN / inf ratings or weights (also
            values finite as float64 that overflow float32, such as 1e39,
            and weights of merged duplicates whose sum does),
            negative weights, unparseable timestamps, repeated pairs under
            ``duplicates="error"``, feature rows with null, repeated or
            wrongly typed ids (str ids for int interaction ids) or values of
            an unsupported type; the message names the column and the first
            bad row. Every one is also a ``ValueError`` (``DataTypeError``
            also a ``TypeError``, ``MissingColumnError`` a ``KeyError``).

        Examples
        --------
        >>> import pandas as pd
        >>> import warnings
        >>> df = pd.DataFrame({"u": [1, 1, 2], "i": ["x", "x", "y"]})
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     data = Interactions.from_frame(df, user_col="u", item_col="i", duplicates="sum")
        >>> data.nnz, data.weights.tolist(), str(caught[0].message)
        (2, [2.0, 1.0], "merged 1 duplicate (u, i) rows with duplicates='sum'")
        """
        if isinstance(df, (str, os.PathLike)):
            raise DataTypeError("from_frame takes a DataFrame; use Interactions.from_file for a path")
        if hasattr(df, "collect") and not hasattr(df, "get_column"):  # polars LazyFrame
            df = df.collect()
        if not hasattr(df, "columns"):
            raise DataTypeError(f"df must be a pandas or polars DataFrame; got {type(df).__name__}")
        # every named column must exist before any work starts
        names = [user_col, item_col] + [c for c in (rating_col, timestamp_col, weight_col) if c is not None]
        cols = {c: column(df, c, "interactions") for c in names}
        users, items = cols[user_col], cols[item_col]
        return cls.from_arrays(
            users,
            items,
            ratings=None if rating_col is None else cols[rating_col],
            timestamps=None if timestamp_col is None else cols[timestamp_col],
            weights=None if weight_col is None else cols[weight_col],
            user_features=user_features,
            item_features=item_features,
            duplicates=duplicates,
            user_col=user_col,
            item_col=item_col,
            rating_col=rating_col or "rating",
            timestamp_col=timestamp_col or "timestamp",
            weight_col=weight_col or "weight",
        )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        separator: str = ",",
        **kwargs: Any,
    ) -> Interactions:
        """Build from a CSV or Parquet file (read with polars).

        Keyword arguments are those of :meth:`from_frame`.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
        >>> _ = p.write_text("user,item\\n1,10\\n2,10\\n")
        >>> Interactions.from_file(p).n_users
        2
        """
        import polars as pl

        p = os.fspath(path)
        if not os.path.exists(p):
            raise FileNotFoundError(f"interactions file not found: {p}")
        lower = p.lower()
        if lower.endswith((".parquet", ".pq")):
            frame = pl.read_parquet(p)
        elif lower.endswith((".csv", ".tsv", ".txt", ".csv.gz")):
            frame = pl.read_csv(p, separator="\t" if lower.endswith(".tsv") else separator)
        else:
            raise DataError(f"cannot tell the format of {p!r}: expected .csv, .tsv or .parquet")
        return cls.from_frame(frame, **kwargs)

    @classmethod
    def from_arrays(
        cls,
        users: ArrayLike,
        items: ArrayLike,
        *,
        ratings: ArrayLike | None = None,
        timestamps: ArrayLike | None = None,
        weights: ArrayLike | None = None,
        user_features: FrameLike | None = None,
        item_features: FrameLike | None = None,
        duplicates: Duplicates = "error",
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str = "rating",
        timestamp_col: str = "timestamp",
        weight_col: str = "weight",
    ) -> Interactions:
        """Build from parallel arrays of user ids, item ids and optional values.

        Parameters
        ----------
        users, items : array-like
            External ids per row: integers or strings (lists, numpy arrays,
            pandas or polars Series). A list mixing ints and strs keeps both.
        ratings, timestamps, weights : array-like, optional
            As the columns of :meth:`from_frame`.
        user_features, item_features, duplicates
            As in :meth:`from_frame`.
        user_col, item_col, rating_col, timestamp_col, weight_col : str
            Names used in error messages; ``user_col`` / ``item_col`` also
            name the id column of the feature frames.

        Raises
        ------
        DataError, DataTypeError
            As in :meth:`from_frame`; also when the arrays differ in length.

        Examples
        --------
        >>> d = Interactions.from_arrays([1, 2, 2], [5, 5, 6], ratings=[4.0, 3.0, 5.0])
        >>> d.to_frame()
           user  item  rating
        0     1     5     4.0
        1     2     5     3.0
        2     2     6     5.0
        """
        if duplicates not in ("error", "sum", "last", "max"):
            raise ParameterError(
                f"The 'duplicates' parameter must be 'error', 'sum', 'last' or 'max'. Got {duplicates!r} instead."
            )
        u_raw = check_ids(users, user_col)
        i_raw = check_ids(items, item_col)
        n = _length(u_raw, user_col)
        lengths = {user_col: n, item_col: _length(i_raw, item_col)}
        for name, values in ((rating_col, ratings), (timestamp_col, timestamps), (weight_col, weights)):
            if values is not None:
                lengths[name] = _length(values, name)
        if len(set(lengths.values())) > 1:
            raise DataError(f"columns must have the same length; got {lengths}")
        if n == 0:
            raise DataError("no interactions: the input is empty")
        r = None if ratings is None else check_numeric(ratings, rating_col)
        w = (
            np.ones(n, dtype=np.float32)
            if weights is None
            else check_numeric(weights, weight_col, non_negative=True)
        )
        t, unit = (None, None) if timestamps is None else check_timestamps(timestamps, timestamp_col)

        # int32 codes right after each factorization: never two int64 code arrays alive at once
        codes, u_uniques = factorize_ids(u_raw, user_col)
        uidx = codes.astype(np.int32)
        del codes, u_raw
        codes, i_uniques = factorize_ids(i_raw, item_col)
        iidx = codes.astype(np.int32)
        del codes, i_raw
        user_map = IdMap(u_uniques, name="user")
        item_map = IdMap(i_uniques, name="item")

        ufeat = ifeat = None
        ukinds: dict[str, FeatureKind] = {}
        ikinds: dict[str, FeatureKind] = {}
        if user_features is not None:
            user_map, ufeat, ukinds = align_features(user_features, user_col, user_map, "user_features")
        if item_features is not None:
            item_map, ifeat, ikinds = align_features(item_features, item_col, item_map, "item_features")

        shape = (len(user_map), len(item_map))
        csr: sp.csr_matrix | None = _csr_keeping_duplicates(w, uidx, iidx, shape)
        if _has_duplicates(csr, n):
            uidx, iidx, w, r, t = _merge_duplicates(
                uidx, iidx, w, r, t, duplicates, user_map, item_map, user_col, item_col
            )
            csr = None
        return cls(
            users=user_map,
            items=item_map,
            user_index=uidx,
            item_index=iidx,
            weights=w,
            ratings=r,
            timestamps=t,
            timestamp_unit=unit,
            user_features=ufeat,
            item_features=ifeat,
            user_feature_kinds=ukinds,
            item_feature_kinds=ikinds,
            csr=csr,
        )

    # -- sizes ----------------------------------------------------------------

    @property
    def n_users(self) -> int:
        """Number of users in the id map (including those without rows here)."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of items in the id map (including catalogue-only items)."""
        return len(self.items)

    @property
    def nnz(self) -> int:
        """Number of interactions (distinct user, item pairs)."""
        return len(self.user_index)

    def __len__(self) -> int:
        return self.nnz

    @property
    def density(self) -> float:
        """``nnz / (n_users * n_items)``."""
        return self.nnz / max(1, self.n_users * self.n_items)

    @property
    def has_ratings(self) -> bool:
        return self.ratings is not None

    @property
    def has_timestamps(self) -> bool:
        return self.timestamps is not None

    def __repr__(self) -> str:
        extras = [
            name
            for name, present in (
                ("ratings", self.ratings is not None),
                ("timestamps", self.timestamps is not None),
                ("user features", self.user_features is not None),
                ("item features", self.item_features is not None),
            )
            if present
        ]
        tail = (", " + ", ".join(extras)) if extras else ""
        return (
            f"Interactions({self.n_users} users x {self.n_items} items, {self.nnz} interactions, "
            f"density {self.density:.3g}{tail})"
        )

    # -- matrices ---------------------------------------------------------------

    def matrix(
        self, kind: Literal["csr", "csc"] = "csr", values: Literal["weight", "rating", "binary"] = "weight"
    ) -> sp.csr_matrix | sp.csc_matrix:
        """The users x items sparse matrix (float32), built once and cached.

        Parameters
        ----------
        kind : {"csr", "csc"}
            Row-major (per-user access) or column-major (per-item access).
        values : {"weight", "rating", "binary"}
            Which values fill the matrix.

        Returns
        -------
        scipy.sparse.csr_matrix or csc_matrix
            Shape ``(n_users, n_items)``, canonical (sorted, no duplicates).
            Treat it as read-only: it is shared by every caller.
        """
        if kind not in ("csr", "csc"):
            raise ParameterError(f"The 'kind' parameter of matrix must be 'csr' or 'csc'. Got {kind!r} instead.")
        if values not in ("weight", "rating", "binary"):
            raise ParameterError(
                f"The 'values' parameter of matrix must be 'weight', 'rating' or 'binary'. Got {values!r} instead."
            )
        key = (kind, values)
        cached = self._matrices.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]
        if kind == "csc":
            m = self.matrix("csr", values).tocsc()
            m.sort_indices()
        else:
            if values == "rating":
                if self.ratings is None:
                    raise DataError("these interactions have no ratings (pass rating_col when building them)")
                data = self.ratings
            elif values == "binary":
                data = np.ones(self.nnz, dtype=np.float32)
            else:
                data = self.weights
            m = _csr_keeping_duplicates(data, self.user_index, self.item_index, (self.n_users, self.n_items))
        self._matrices[key] = m
        return m

    @cached_property
    def user_counts(self) -> NDArray[np.int64]:
        """Interactions per user index."""
        return _freeze(np.bincount(self.user_index, minlength=self.n_users).astype(np.int64))

    @cached_property
    def item_counts(self) -> NDArray[np.int64]:
        """Interactions per item index (0 for catalogue-only items)."""
        return _freeze(np.bincount(self.item_index, minlength=self.n_items).astype(np.int64))

    @cached_property
    def item_sort_rank(self) -> NDArray[np.int64]:
        """Rank of each item's external id in sorted order (ties between int and str by str form)."""
        ids = self.items.ids
        try:
            order = np.argsort(ids, kind="stable")
        except TypeError:  # mixed int / str ids
            order = np.argsort(ids.astype(str), kind="stable")
        rank = np.empty(len(ids), dtype=np.int64)
        rank[order] = np.arange(len(ids))
        return _freeze(rank)

    def histories(self) -> Histories:
        """Per-user time-ordered histories (for sequence models such as DIN).

        Each user's rows are sorted by (timestamp, external item id).

        Raises
        ------
        DataError
            If the interactions have no timestamps.

        Examples
        --------
        >>> d = Interactions.from_arrays(["a", "a", "b"], [1, 2, 3], timestamps=[20, 10, 5])
        >>> h = d.histories()
        >>> d.items.to_ids(h.items[h.indptr[0]:h.indptr[1]]).tolist()
        [2, 1]
        """
        cached = self.__dict__.get("_histories")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        if self.timestamps is None:
            raise DataError("these interactions have no timestamps (pass timestamp_col when building them)")
        order = np.lexsort((self.item_sort_rank[self.item_index], self.timestamps, self.user_index))
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(self.user_counts, out=indptr[1:])
        h = Histories(
            indptr=_freeze(indptr),
            items=_freeze(self.item_index[order]),
            timestamps=_freeze(self.timestamps[order]),
            rows=_freeze(order.astype(np.int64)),
        )
        self.__dict__["_histories"] = h
        return h

    # -- conversion -------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """The rows with external ids: ``user``, ``item`` and, when present,
        ``rating``, ``timestamp`` and ``weight`` (only when not all 1).

        Examples
        --------
        >>> Interactions.from_arrays(["u"], ["i"], weights=[2.0]).to_frame()
          user item  weight
        0    u    i     2.0
        """
        out: dict[str, Any] = {
            "user": self.users.to_ids(self.user_index),
            "item": self.items.to_ids(self.item_index),
        }
        if self.ratings is not None:
            out["rating"] = self.ratings
        if self.timestamps is not None:
            ts = self.timestamps
            out["timestamp"] = ts.astype("datetime64[ns]") if self.timestamp_unit == "ns" else ts
        if not np.all(self.weights == 1.0):
            out["weight"] = self.weights
        return pd.DataFrame(out)

    def with_item_features(
        self, frame: pd.DataFrame, columns: str | list[str] | tuple[str, ...] = "title", *, on: str = "item"
    ) -> pd.DataFrame:
        """``frame`` with item feature columns (titles by default) added, looked up by its item ids.

        For reading results: the frames of ``recommend`` (``on="item"``),
        ``similar_items`` (``on="similar_item"``) or ``explain`` (``on="id"``;
        only its rows of kind ``"item"`` or ``"attention"`` hold item ids, the
        others get nulls). Ids these interactions do not know get nulls too.

        Parameters
        ----------
        frame : pandas.DataFrame
            Holds item ids in the column ``on``; not modified.
        columns : str or list of str, default "title"
            Item feature columns to add (MovieLens: ``title``, ``year``, ``genres``).
        on : str, default "item"
            The column of ``frame`` holding item ids.

        Returns
        -------
        pandas.DataFrame
            A copy of ``frame`` with ``columns`` appended (same index, same row order).

        Raises
        ------
        DataError
            These interactions have no item features, ``on`` is not a column of
            ``frame``, a requested column is not an item feature or is
            already a column of ``frame``.

        Examples
        --------
        >>> items = pd.DataFrame({"item": [10, 20], "title": ["Heat (1995)", "Up (2009)"]})
        >>> data = Interactions.from_frame(pd.DataFrame({"user": [1, 1], "item": [10, 20]}), item_features=items)
        >>> data.with_item_features(pd.DataFrame({"item": [20, 99], "score": [0.9, 0.5]}))
           item  score      title
        0    20    0.9  Up (2009)
        1    99    0.5        NaN
        """
        if self.item_features is None:
            raise DataError("these interactions have no item features to add (build them with item_features=)")
        if not isinstance(frame, pd.DataFrame):
            raise DataTypeError(f"with_item_features needs a pandas DataFrame; got {type(frame).__name__}")
        if on not in frame.columns:
            raise DataError(f"with_item_features: the frame has no column {on!r} (its columns: {list(frame.columns)}); pass on=")
        wanted = [columns] if isinstance(columns, str) else list(columns)
        unknown = [c for c in wanted if c not in self.item_features.columns]
        if unknown:
            raise DataError(f"with_item_features: no item feature {unknown[0]!r}; the item features are {list(self.item_features.columns)}")
        clash = [c for c in wanted if c in frame.columns]
        if clash:
            raise DataError(f"with_item_features: the frame already has a column {clash[0]!r}")
        idx = np.full(len(frame), -1, dtype=np.int64)
        holds_items = frame["kind"].isin(["item", "attention"]).to_numpy() if on == "id" and "kind" in frame.columns else np.ones(len(frame), bool)
        if holds_items.any():
            idx[holds_items] = self.items.to_index(frame[on].to_numpy()[holds_items], missing="negative")
        feats = self.item_features[wanted]
        # label -1 is absent: reindex gives nulls for unknown ids and rows without an item
        looked_up = feats.reindex(idx).set_axis(frame.index)
        return pd.concat([frame, looked_up], axis=1)

    # -- transformations (all return new objects) ---------------------------------

    def take(self, rows: ArrayLike) -> Interactions:
        """The given rows (positions or a boolean mask), keeping the id maps and features.

        Keeping the maps means indices stay comparable between the result
        and ``self`` (what splits need).

        Examples
        --------
        >>> d = Interactions.from_arrays([1, 2, 3], [7, 7, 8])
        >>> t = d.take([2, 0])
        >>> t.nnz, t.n_users, t.to_frame()["user"].tolist()
        (2, 3, [3, 1])
        """
        sel = np.asarray(rows)
        if sel.dtype == bool:
            if len(sel) != self.nnz:
                raise DataError(f"a row mask must have {self.nnz} entries; got {len(sel)}")
            sel = np.flatnonzero(sel)
        elif sel.size and sel.dtype.kind not in "iu":
            raise DataTypeError(f"rows must be integer positions or a boolean mask; got dtype {sel.dtype}")
        else:
            sel = sel.astype(np.int64, copy=False).ravel()
            if sel.size:
                if sel.min() < 0 or sel.max() >= self.nnz:
                    bad = sel[(sel < 0) | (sel >= self.nnz)][0]
                    raise IndexError(f"row position {int(bad)} out of range [0, {self.nnz})")
                # a repeated row would repeat a (user, item) pair
                seen = np.bincount(sel, minlength=self.nnz)
                if seen.max() > 1:
                    raise DataError(f"row {int(np.argmax(seen > 1))} is taken more than once; rows must be distinct")
        return self._replace_rows(sel.astype(np.int64, copy=False))

    def _replace_rows(self, sel: NDArray[np.int64], weights: NDArray[np.float32] | None = None) -> Interactions:
        return Interactions(
            users=self.users,
            items=self.items,
            user_index=self.user_index[sel],
            item_index=self.item_index[sel],
            weights=self.weights[sel] if weights is None else weights,
            ratings=None if self.ratings is None else self.ratings[sel],
            timestamps=None if self.timestamps is None else self.timestamps[sel],
            timestamp_unit=self.timestamp_unit,
            user_features=self.user_features,
            item_features=self.item_features,
            user_feature_kinds=self.user_feature_kinds,
            item_feature_kinds=self.item_feature_kinds,
        )

    def subset(self, users: ArrayLike | None = None, items: ArrayLike | None = None) -> Interactions:
        """Rows whose user is in ``users`` and item in ``items`` (external ids), keeping the id maps.

        Raises
        ------
        UnknownIdError
            If a given id is not in the maps.

        Examples
        --------
        >>> d = Interactions.from_arrays([1, 2, 3], [7, 7, 8])
        >>> d.subset(items=[7]).nnz
        2
        """
        mask = np.ones(self.nnz, dtype=bool)
        if users is not None:
            keep = np.zeros(self.n_users, dtype=bool)
            keep[self.users.to_index(users)] = True
            mask &= keep[self.user_index]
        if items is not None:
            keep = np.zeros(self.n_items, dtype=bool)
            keep[self.items.to_index(items)] = True
            mask &= keep[self.item_index]
        return self.take(mask)

    def binarize(self, threshold: float) -> Interactions:
        """Rows with ``rating >= threshold``, with weight 1; ratings are kept.

        Examples
        --------
        >>> d = Interactions.from_arrays([1, 1, 2], [7, 8, 8], ratings=[5, 2, 4])
        >>> d.binarize(4).nnz
        2
        """
        if self.ratings is None:
            raise DataError("binarize needs ratings; these interactions have none")
        rows = np.flatnonzero(self.ratings >= threshold)
        return self._replace_rows(rows, weights=np.ones(len(rows), dtype=np.float32))

    def filter(self, min_user: int = 1, min_item: int = 1) -> Interactions:
        """k-core filtering: repeatedly drop users with fewer than ``min_user``
        interactions and items with fewer than ``min_item``, until stable.

        Unlike :meth:`take`, the id maps are compacted to the surviving users
        and items (catalogue-only items go too), so indices change.

        Examples
        --------
        >>> d = Interactions.from_arrays([1, 1, 2, 2, 3], [7, 8, 7, 8, 9])
        >>> f = d.filter(min_user=2, min_item=2)
        >>> f.n_users, f.n_items, f.nnz
        (2, 2, 4)
        """
        check_int("filter", "min_user", min_user, low=0)
        check_int("filter", "min_item", min_item, low=0)
        mask = np.ones(self.nnz, dtype=bool)
        while True:
            uc = np.bincount(self.user_index[mask], minlength=self.n_users)
            ic = np.bincount(self.item_index[mask], minlength=self.n_items)
            new = mask & (uc[self.user_index] >= min_user) & (ic[self.item_index] >= min_item)
            if new.sum() == mask.sum():
                break
            mask = new
        rows = np.flatnonzero(mask)
        keep_u = np.flatnonzero(np.bincount(self.user_index[rows], minlength=self.n_users) > 0)
        keep_i = np.flatnonzero(np.bincount(self.item_index[rows], minlength=self.n_items) > 0)
        if len(rows) == 0:
            raise DataError(
                f"filter(min_user={min_user}, min_item={min_item}) leaves no interactions"
            )
        return self._compact(rows, keep_u, keep_i)

    def _compact(self, rows: NDArray[np.int64], keep_u: NDArray[np.int64], keep_i: NDArray[np.int64]) -> Interactions:
        unew = np.full(self.n_users, -1, dtype=np.int32)
        unew[keep_u] = np.arange(len(keep_u), dtype=np.int32)
        inew = np.full(self.n_items, -1, dtype=np.int32)
        inew[keep_i] = np.arange(len(keep_i), dtype=np.int32)
        return Interactions(
            users=IdMap(self.users.ids[keep_u], name="user"),
            items=IdMap(self.items.ids[keep_i], name="item"),
            user_index=unew[self.user_index[rows]],
            item_index=inew[self.item_index[rows]],
            weights=self.weights[rows],
            ratings=None if self.ratings is None else self.ratings[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
            timestamp_unit=self.timestamp_unit,
            user_features=take_rows(self.user_features, keep_u),
            item_features=take_rows(self.item_features, keep_i),
            user_feature_kinds=self.user_feature_kinds,
            item_feature_kinds=self.item_feature_kinds,
        )


def _csr_keeping_duplicates(
    data: NDArray[np.float32], rows: NDArray[np.int32], cols: NDArray[np.int32], shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR with sorted column indices, built by two linear bucket passes instead of a sort.

    COO -> CSC buckets the entries by column; CSC -> CSR buckets them by row
    while walking the columns in order, so each row's indices come out
    sorted. Repeated (row, col) pairs are NOT summed: they end up adjacent,
    where :func:`_has_duplicates` finds them. This is cheaper than scipy's
    COO -> CSR, which sorts every row.
    """
    coo = sp.coo_matrix((data, (rows, cols)), shape=shape)
    # tell tocsc the entries are already canonical so it does not sort and sum them;
    # the transpose below sorts them, and duplicates are detected on the result
    coo.has_canonical_format = True
    csr = coo.tocsc().tocsr()
    del coo
    if csr.nnz != len(data):  # a future scipy that sums anyway: re-sort and report via nnz
        csr.sort_indices()
    return csr  # type: ignore[no-any-return]


def _has_duplicates(csr: sp.csr_matrix, n: int) -> bool:
    """Whether the ``n`` entries given to :func:`_csr_keeping_duplicates` repeat a (row, col) pair."""
    if csr.nnz != n:
        return True
    ind, ptr = csr.indices, csr.indptr
    same = ind[1:] == ind[:-1]
    starts = ptr[1:-1]
    starts = starts[(starts > 0) & (starts < csr.nnz)]
    same[starts - 1] = False  # equal indices across a row boundary are not duplicates
    return bool(same.any())


def _caller_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside recsys.data."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _length(values: Any, name: str) -> int:
    if np.ndim(values) == 0 and not hasattr(values, "__len__"):
        raise DataError(f"column {name!r} must be one-dimensional; got a scalar {values!r}")
    return len(values)


def _merge_duplicates(
    uidx: NDArray[np.int32],
    iidx: NDArray[np.int32],
    w: NDArray[np.float32],
    r: NDArray[np.float32] | None,
    t: NDArray[Any] | None,
    policy: Duplicates,
    user_map: IdMap,
    item_map: IdMap,
    user_col: str,
    item_col: str,
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float32], NDArray[np.float32] | None, NDArray[Any] | None]:
    """Merge repeated (user, item) rows by ``policy``; vectorised with a groupby."""
    key = uidx.astype(np.int64) * len(item_map) + iidx
    dup = pd.Series(key).duplicated().to_numpy()
    n_dup = int(dup.sum())
    if policy == "error":
        second = first_true(dup)
        first = first_true(key == key[second])
        raise DataError(
            f"duplicate ({user_col}, {item_col}) pair {_py(user_map.ids[uidx[second]])!r}, "
            f"{_py(item_map.ids[iidx[second]])!r} in rows {first} and {second} ({n_dup} repeated rows in all); "
            "pass duplicates='sum', 'last' or 'max' to merge them"
        )
    # weights summed in float64, then checked to fit float32
    frame = pd.DataFrame({"key": key, "pos": np.arange(len(key)), "w": w.astype(np.float64)})
    if r is not None:
        frame["r"] = r
    if t is not None:
        frame["t"] = t
    g = frame.groupby("key", sort=False)
    agg: dict[str, str] = {"pos": "first"}
    if policy == "sum":
        agg.update(w="sum", r="last", t="max")
    elif policy == "last":
        agg.update(w="last", r="last", t="last")
    else:
        agg.update(w="max", r="max", t="max")
    merged = g.agg({k: v for k, v in agg.items() if k in frame.columns}).sort_values("pos")
    pos = merged["pos"].to_numpy()
    with np.errstate(over="ignore"):
        w_merged = merged["w"].to_numpy(dtype=np.float32)
    if not np.isfinite(w_merged).all():  # a sum of finite float32 weights can overflow
        first = int(pos[first_true(~np.isfinite(w_merged))])
        rows = np.flatnonzero(key == key[first])
        raise DataError(
            f"duplicate ({user_col}, {item_col}) pair {_py(user_map.ids[uidx[first]])!r}, "
            f"{_py(item_map.ids[iidx[first]])!r} in rows {', '.join(map(str, rows[:5].tolist()))}: "
            f"its weights sum to {float(merged['w'].to_numpy(dtype=np.float64)[first_true(~np.isfinite(w_merged))]):.4g}, "
            f"beyond float32 (largest {float(np.finfo(np.float32).max):.4g})"
        )
    warnings.warn(
        f"merged {n_dup} duplicate ({user_col}, {item_col}) rows with duplicates={policy!r}",
        DataWarning,
        stacklevel=_caller_stacklevel(),
    )
    return (
        uidx[pos],
        iidx[pos],
        w_merged,
        None if r is None else merged["r"].to_numpy(dtype=np.float32),
        None if t is None else merged["t"].to_numpy(dtype=t.dtype),
    )
