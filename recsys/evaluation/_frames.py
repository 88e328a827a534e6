"""Reading the evaluator's inputs: train/test data, item features and recommendation frames.

Ids and columns are read with the data layer's helpers (:func:`recsys.data.id_column`,
:func:`recsys.data.to_pandas`, :class:`recsys.data.IdLookup`), so a frame is validated
the same way here as when a model is fitted on it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.data import IdLookup, IdMap, Interactions, id_column, to_pandas
from recsys.data._validation import as_array, column
from recsys.errors import DataError, DataTypeError, DataWarning, MissingColumnError
from recsys.evaluation import metrics as M

__all__ = ["RecommendationReader", "as_interactions", "read_item_features", "warn_id_type"]


def _py(x: Any) -> Any:
    """Numpy scalars as Python scalars, so messages read naturally."""
    return x.item() if isinstance(x, np.generic) else x


def as_interactions(data: Any, name: str) -> Interactions:
    """The ``train`` or ``test`` argument as Interactions (a frame's ``rating`` column is used when present)."""
    if isinstance(data, Interactions):
        return data
    if hasattr(data, "columns"):
        cols = list(data.columns)
        for c in ("user", "item"):
            if c not in cols:
                raise MissingColumnError(
                    f"the {name!r} frame has no column {c!r} (columns: {', '.join(map(repr, cols[:12]))})"
                )
        return Interactions.from_frame(data, rating_col="rating" if "rating" in cols else None)
    raise DataTypeError(
        f"The {name!r} parameter of Evaluator must be an Interactions or a DataFrame with 'user' and "
        f"'item' columns. Got {type(data).__name__} instead."
    )


def read_item_features(item_features: Any) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Item ids and their feature vectors (one row each), validated."""
    frame = to_pandas(item_features, "item_features")
    if "item" not in frame.columns:
        raise MissingColumnError(
            f"item_features has no column 'item' (columns: {', '.join(map(repr, list(frame.columns)[:12]))})"
        )
    ids = id_column(frame, "item", "item_features")
    other = [c for c in frame.columns if c != "item"]
    if not other:
        raise DataError("item_features has no feature column besides 'item'")
    if len(other) == 1 and frame[other[0]].dtype == object:
        vals = frame[other[0]].to_list()
        try:
            mat = np.array([np.asarray(v, dtype=np.float64).ravel() for v in vals])
        except (TypeError, ValueError) as exc:
            raise DataTypeError(
                f"item_features column {other[0]!r} must hold numeric vectors of one length ({exc})"
            ) from None
        if mat.ndim != 2:
            raise DataTypeError(f"item_features column {other[0]!r} must hold numeric vectors of one length")
    else:
        bad = [c for c in other if frame[c].dtype.kind not in "iufb"]
        if bad:
            raise DataTypeError(
                f"item_features column {bad[0]!r} must be numeric; got dtype {frame[bad[0]].dtype}"
            )
        mat = frame[other].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(mat).all():
        r = int(np.flatnonzero(~np.isfinite(mat).all(axis=1))[0])
        raise DataError(f"item_features has a NaN or infinite value at row {r}")
    if pd.Index(ids).has_duplicates:
        dup = pd.Index(ids)[pd.Index(ids).duplicated()][0]
        raise DataError(f"item_features has two rows for item {_py(dup)!r}")
    return ids, mat


def warn_id_type(raw: NDArray[Any], idmap: IdMap, what: str) -> None:
    """Warn when recommendation ids are ints and the data's are not (or the reverse) and none match."""
    if len(raw) == 0 or len(idmap) == 0:
        return
    raw_int = raw.dtype.kind == "i"
    if raw_int == (idmap.ids.dtype.kind == "i"):
        return
    if (idmap.to_index(raw[:1000], missing="negative") >= 0).any():
        return
    warnings.warn(
        f"recommendation {what} ids are {'integers' if raw_int else 'not integers'} but the train/test "
        f"{what} ids are {'not integers' if raw_int else 'integers'}, and none matches (e.g. "
        f"{_py(raw[0])!r} vs {_py(idmap.ids[0])!r}): convert the ids to one type",
        DataWarning,
        stacklevel=4,
    )


def _numeric(frame: Any, name: str) -> NDArray[np.float64]:
    """Column ``name`` of the recommendations as finite float64 (numeric strings are parsed)."""
    values = as_array(column(frame, name, "recommendations"), name)
    if values.dtype.kind not in "iufb":
        conv = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(conv)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DataTypeError(f"recommendations column {name!r} must be numeric; got {values[r]!r} at row {r}")
        values = conv
    out = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DataError(f"recommendations column {name!r} must be finite; got {out[r]!r} at row {r}")
    return out


class RecommendationReader:
    """Turns a recommendation frame into the evaluator's (|U|, kmax) matrix of item indices.

    Parameters
    ----------
    user_map, item_map : IdMap
        The evaluator's id maps (train's, extended with test-only ids).
    user_lookup, item_lookup : IdLookup
        Look-ups of those maps.
    is_test_user : ndarray of bool
        Per user index: is it a test user (rows of other users are ignored).
    user_pos : ndarray of int64
        Per user index: its row in U, -1 outside U.
    kmax : int
        The largest cut-off: longer lists are cut.
    """

    def __init__(
        self,
        user_map: IdMap,
        item_map: IdMap,
        user_lookup: IdLookup,
        item_lookup: IdLookup,
        is_test_user: NDArray[np.bool_],
        user_pos: NDArray[np.int64],
        kmax: int,
    ) -> None:
        self.user_map = user_map
        self.item_map = item_map
        self.user_lookup = user_lookup
        self.item_lookup = item_lookup
        self.is_test_user = is_test_user
        self.user_pos = user_pos
        self.n_eval = int((user_pos >= 0).sum())
        self.kmax = kmax

    def read(self, frame: Any) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The (|U|, kmax) item matrix padded with -1, and which test users have a list."""
        users_raw = id_column(frame, "user", "recommendations")
        items_raw = id_column(frame, "item", "recommendations")
        cols = list(frame.columns)
        if "rank" in cols:
            key = _numeric(frame, "rank")
            by_rank = True
        elif "score" in cols:
            key = -_numeric(frame, "score")
            by_rank = False
        else:
            raise MissingColumnError(
                "recommendations need a 'rank' or a 'score' column to order each user's items "
                f"(columns: {', '.join(map(repr, cols[:12]))})"
            )
        warn_id_type(users_raw, self.user_map, "user")
        warn_id_type(items_raw, self.item_map, "item")
        n_users = len(self.user_map)
        uidx = self.user_lookup(users_raw)
        fast = self._read_regular(uidx, items_raw, key, by_rank)
        if fast is not None:
            return fast
        keep = uidx >= 0
        keep[keep] = self.is_test_user[uidx[keep]]
        rows = np.flatnonzero(keep)
        has_list = np.zeros(n_users, dtype=bool)
        kmax = self.kmax
        recs = np.full((self.n_eval, kmax), -1, dtype=np.int64)
        if len(rows) == 0:
            return recs, has_list[self.is_test_user]
        u = uidx[rows]
        key = key[rows]
        item = self.item_lookup(items_raw[rows])
        unknown = item < 0
        if unknown.any():  # items in neither train nor test: new indices after the map
            codes, _ = pd.factorize(items_raw[rows][unknown])
            item[unknown] = len(self.item_map) + codes
        # Order rows by (user, key, row); the common already-sorted case skips the sort.
        du = np.diff(u)
        if not ((du >= 0).all() and (np.diff(key)[du == 0] >= 0).all()):
            order = np.lexsort((key, u))  # lexsort is stable: ties keep row order
            u, key, item, rows = u[order], key[order], item[order], rows[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = u[1:] != u[:-1]
        if by_rank:
            same = ~first[1:] & (key[1:] == key[:-1])
            if same.any():
                j = int(np.flatnonzero(same)[0]) + 1
                raise DataError(
                    f"recommendations: user {_py(users_raw[rows[j]])!r} has two rows with rank "
                    f"{_py(key[j])!r} (rows {int(rows[j - 1])} and {int(rows[j])})"
                )
        starts = np.flatnonzero(first)
        lengths = np.diff(np.append(starts, len(u)))
        pos = np.arange(len(u)) - np.repeat(starts, lengths)
        self._check_duplicates(u, item, pos, lengths, users_raw, items_raw, rows)
        has_list[u] = True
        up = self.user_pos[u]
        sel = (up >= 0) & (pos < kmax)
        recs[up[sel], pos[sel]] = item[sel]
        return recs, has_list[self.is_test_user]

    def _read_regular(
        self, uidx: NDArray[np.int64], items_raw: NDArray[Any], key: NDArray[np.float64], by_rank: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]] | None:
        """Fast path for the usual layout: every user's rows contiguous, in list order, all lists
        of one length L, no duplicates. Returns None (use the general path) otherwise."""
        n = len(uidx)
        if n == 0:
            return None
        change = np.flatnonzero(uidx[1:] != uidx[0])
        width = int(change[0]) + 1 if len(change) else n
        if n % width or width > 64:
            return None
        u2 = uidx.reshape(-1, width)
        group = u2[:, 0]
        if not (u2 == group[:, None]).all():
            return None
        k2 = key.reshape(-1, width)
        if not ((k2[:, 1:] > k2[:, :-1]).all() if by_rank else (k2[:, 1:] >= k2[:, :-1]).all()):
            return None
        keep = group >= 0
        keep[keep] = self.is_test_user[group[keep]]
        group = group[keep]
        if np.bincount(group, minlength=1).max(initial=0) > 1:
            return None  # a user's rows are split in several places
        kept_raw = items_raw if keep.all() else items_raw[keep.repeat(width)]
        item = self.item_lookup(kept_raw)
        unknown = item < 0
        if unknown.any():  # items in neither train nor test: new indices after the map
            codes, _ = pd.factorize(kept_raw[unknown])
            item[unknown] = len(self.item_map) + codes
        i2 = item.reshape(-1, width)
        if width > 1:
            srt = np.sort(i2, axis=1)
            if (srt[:, 1:] == srt[:, :-1]).any():
                return None  # duplicate items: the general path reports where
        has_list = np.zeros(len(self.user_map), dtype=bool)
        has_list[group] = True
        recs = np.full((self.n_eval, self.kmax), -1, dtype=np.int64)
        up = self.user_pos[group]
        sel = up >= 0
        cut = min(width, self.kmax)
        recs[up[sel], :cut] = i2[sel, :cut]
        return recs, has_list[self.is_test_user]

    @staticmethod
    def _check_duplicates(
        u: NDArray[np.int64],
        item: NDArray[np.int64],
        pos: NDArray[np.int64],
        lengths: NDArray[np.int64],
        users_raw: NDArray[Any],
        items_raw: NDArray[Any],
        rows: NDArray[np.int64],
    ) -> None:
        width = int(lengths.max())
        if width <= 64:  # short lists: sort each list in a dense matrix
            group = np.repeat(np.arange(len(lengths)), lengths)
            dense = np.full((len(lengths), width), -1, dtype=np.int64)
            dense[group, pos] = item
            dense.sort(axis=1)
            dup = (dense[:, 1:] == dense[:, :-1]) & (dense[:, 1:] >= 0)
            if not dup.any():
                return
        keys = M.pair_keys(u, item)
        order = np.argsort(keys, kind="stable")
        ks = keys[order]
        same = np.flatnonzero(ks[1:] == ks[:-1])
        if len(same):
            a, b = order[same[0]], order[same[0] + 1]
            raise DataError(
                f"recommendations: user {_py(users_raw[rows[b]])!r} has item {_py(items_raw[rows[b]])!r} "
                f"twice (rows {int(min(rows[a], rows[b]))} and {int(max(rows[a], rows[b]))}); "
                f"{len(same)} duplicate (user, item) rows in all"
            )
