"""Field encoding for the deep CTR models: ids and user / item features as embedding fields.

A *field* is one input of a CTR model. Each categorical field owns a block of
rows of one shared embedding table (its first row is the field's "unknown"
value, used for missing or unseen values); row 0 of the table is padding and
stays zero. Multi-valued fields (lists such as genres) are padded index
matrices whose embeddings are mean-pooled; numeric fields are standardised
values that scale a learned vector. Vector fields (dense float vectors per user /
item, such as text embeddings) are projected to the embedding dimension by a
learned linear map.

Everything is encoded once per fit, per user and per item (not per
interaction): a batch only gathers rows of these tables by user and item index.

Field specifications are strings (JSON-friendly):

``"user.gender"``, ``"item.genres"``
    A feature column with its inferred kind (categorical, multi-valued or numeric).
``"user.zip:prefix=1"``
    The first characters of a string column, as a categorical field.
``"item.genres:first"``
    The first element of a list column, as a categorical field.
``"user.age:bucket=18,25,35,45,50,56"``
    A numeric column cut at the given edges (``np.digitize``), as a categorical field;
    ``bucket=5`` cuts at quantiles into about 5 buckets.
``"item.year:numeric"``, ``"item.year:categorical"``
    Force the kind of a column.
``"item.text_emb:vector"``
    A column whose cells are fixed-length float vectors (lists or arrays of
    numbers), as a *vector* field; a column of float numpy arrays is inferred
    as one without ``:vector`` (lists of Python floats need it). Build such a
    column from item texts with :func:`with_text_vectors` (any
    :class:`~recsys.content.TextEncoder`: BERT, Doc2Vec, hashing) or from
    given vectors with :func:`with_vectors`.

Vector fields: every vector is L2-normalised (divided by its Euclidean norm),
then a learned linear map without bias (``dim`` outputs, plus a first-order
weight in DeepFM and in DIN with ``first_order``) turns it into the field's
embedding, one field like any other in DeepFM's FM and DNN parts and in DIN's
item representation (the history items' vectors included). L2 rather than
per-dimension standardisation because text encoders' vectors are compared by
direction (cosine); their norms depend on the encoder and the text length, and
normalising keeps the projection's scale independent of the encoder and of the
vector length. A missing cell (a user / item without a row in the feature
table, or None / NaN) is a cold entry: it stays the zero vector, so its field
embedding and first-order term are exactly 0 (no bias). NaN or infinite
values inside a vector, vectors of different lengths, non-numeric values and
cells that are not vectors are :class:`~recsys.errors.DataError` naming the
feature and the user / item.

The user id and item id fields are always present (first and second).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.data import Interactions
from recsys.errors import DataError, ParameterError

Side = Literal["user", "item"]
Kind = Literal["categorical", "multi", "numeric", "vector"]
_TRANSFORMS = ("prefix", "first", "bucket", "numeric", "categorical", "vector")
# A multi-valued field keeps at most this many values per user / item.
MAX_MULTI = 64


@dataclass(frozen=True)
class FieldSpec:
    """One parsed field specification (see the module docstring for the string form).

    Examples
    --------
    >>> FieldSpec.parse("user.zip:prefix=1")
    FieldSpec(side='user', column='zip', transform='prefix', arg='1')
    >>> FieldSpec.parse("user.age:bucket=18,25").name
    'user.age:bucket=18,25'
    """

    side: Side
    column: str
    transform: str | None = None
    arg: str | None = None

    @property
    def name(self) -> str:
        t = "" if self.transform is None else ":" + self.transform + ("" if self.arg is None else "=" + self.arg)
        return f"{self.side}.{self.column}{t}"

    @classmethod
    def parse(cls, spec: Any, owner: str = "the model") -> FieldSpec:
        def bad(why: str) -> ParameterError:
            return ParameterError(
                f"The 'features' parameter of {owner} holds {spec!r}: {why}. Expected 'user.<column>' or "
                "'item.<column>', optionally followed by ':prefix=N', ':first', ':bucket=EDGES|N', ':numeric', "
                "':categorical' or ':vector'."
            )

        if not isinstance(spec, str):
            raise bad("not a string")
        head, _, tail = spec.partition(":")
        side, dot, column = head.partition(".")
        if side not in ("user", "item") or not dot or not column:
            raise bad("it must start with 'user.' or 'item.' and name a column")
        if not tail:
            return cls(side, column)  # type: ignore[arg-type]
        transform, eq, arg = tail.partition("=")
        if transform not in _TRANSFORMS:
            raise bad(f"unknown transform {transform!r}")
        if transform in ("prefix", "bucket") and not arg:
            raise bad(f"':{transform}' needs a value (':{transform}=...')")
        if transform == "prefix" and not (arg.isdigit() and int(arg) >= 1):
            raise bad("the prefix length must be an int >= 1")
        if transform == "bucket":
            try:
                edges = [float(x) for x in arg.split(",")]
            except ValueError:
                raise bad("bucket takes comma-separated numbers or a bucket count") from None
            if len(edges) == 1 and not (float(edges[0]).is_integer() and edges[0] >= 2):
                raise bad("a bucket count must be an int >= 2")
            if len(edges) > 1 and np.any(np.diff(edges) <= 0):
                raise bad("bucket edges must increase")
        if transform in ("first", "numeric", "categorical", "vector") and eq:
            raise bad(f"':{transform}' takes no value")
        return cls(side, column, transform, arg or None)  # type: ignore[arg-type]


@dataclass
class FieldTables:
    """Encoded fields of every user and item index (rows align with the id maps).

    Attributes
    ----------
    user_cat, item_cat : ndarray of int64, shape (n, n_fields)
        Global embedding rows of the categorical fields (the id field first).
    user_multi, item_multi : ndarray of int64, shape (n, width)
        Padded global rows of the multi-valued fields, side by side (0 = padding).
    user_num, item_num : ndarray of float32, shape (n, n_numeric)
        Standardised numeric fields (missing = 0, the mean).
    fields : list of dict
        Per field: ``name``, ``side``, ``kind``, ``size`` (embedding rows, categorical
        and multi) and for multi-valued fields the ``start`` / ``stop`` columns;
        for vector fields ``dim`` and the ``start`` / ``stop`` columns of ``*_vec``.
    n_rows : int
        Rows of the shared embedding table (row 0 is padding).
    user_vec, item_vec : ndarray of float32, shape (n, total vector length)
        The L2-normalised vector fields side by side (a cold entry: zeros);
        default: no vector field.
    """

    user_cat: NDArray[np.int64]
    item_cat: NDArray[np.int64]
    user_multi: NDArray[np.int64]
    item_multi: NDArray[np.int64]
    user_num: NDArray[np.float32]
    item_num: NDArray[np.float32]
    fields: list[dict[str, Any]] = field(default_factory=list)
    n_rows: int = 1
    user_vec: NDArray[np.float32] = None  # type: ignore[assignment]  # filled in __post_init__
    item_vec: NDArray[np.float32] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.user_vec is None:
            self.user_vec = np.zeros((len(self.user_cat), 0), np.float32)
        if self.item_vec is None:
            self.item_vec = np.zeros((len(self.item_cat), 0), np.float32)

    def side_fields(self, side: Side, kind: Kind) -> list[dict[str, Any]]:
        return [f for f in self.fields if f["side"] == side and f["kind"] == kind]

    def n_fields(self, kind: Kind | None = None) -> int:
        return sum(1 for f in self.fields if kind is None or f["kind"] == kind)


def default_specs(data: Interactions) -> list[FieldSpec]:
    """Every user and item feature column except text, with its inferred kind."""
    out: list[FieldSpec] = []
    for side, kinds in (("user", data.user_feature_kinds), ("item", data.item_feature_kinds)):
        for column, kind in kinds.items():
            if kind != "text":
                out.append(FieldSpec(side, column))  # type: ignore[arg-type]
    return out


def _series(data: Interactions, spec: FieldSpec) -> tuple[pd.Series, str]:
    frame = data.user_features if spec.side == "user" else data.item_features
    kinds = data.user_feature_kinds if spec.side == "user" else data.item_feature_kinds
    if frame is None or spec.column not in frame.columns or spec.column == spec.side:
        have = [] if frame is None else [c for c in frame.columns if c != spec.side]
        raise DataError(
            f"feature {spec.name!r}: the {spec.side} features have no column {spec.column!r} "
            f"(available: {', '.join(map(str, have)) or 'none; pass ' + spec.side + '_features when building Interactions'})"
        )
    return frame[spec.column], kinds.get(spec.column, "categorical")


def _codes(values: pd.Series | NDArray[Any]) -> tuple[NDArray[np.int64], int]:
    """1-based category codes (0 = missing) and the number of categories."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values)
    return (codes.astype(np.int64) + 1), len(uniques)


def _numbers(values: pd.Series, name: str) -> NDArray[np.float64]:
    try:
        if values.dtype.kind in "mM":
            return values.to_numpy().astype("datetime64[ns]").astype(np.int64).astype(np.float64)
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError(f"feature {name!r} needs numbers; its column holds {values.dtype} values") from None


def _lists(values: pd.Series, name: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for v in values.to_numpy(dtype=object):
        if isinstance(v, (list, tuple, np.ndarray, set, frozenset)):
            out.append(list(v))
        elif v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out.append([])
        else:
            raise DataError(f"feature {name!r} needs a list column; it holds {v!r}")
    return out


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, (float, np.floating)) and np.isnan(v))


def _float_arrays(values: pd.Series) -> bool:
    """True when every present cell is a 1-D float numpy array (what a vector column is inferred from)."""
    present = [v for v in values.to_numpy(dtype=object) if not _missing(v)]
    return bool(present) and all(isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind == "f" for v in present)


def _vectors(values: Any, name: str, side: str, ids: NDArray[Any]) -> NDArray[np.float32]:
    """The L2-normalised (n, d) float32 matrix of a vector column (missing cells: zero rows).

    Errors name the feature and the user / item (external id and row) of the first bad cell.
    """
    from recsys.data._idmap import _py

    cells = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else list(values)

    def bad(r: int, why: str) -> DataError:
        return DataError(f"vector feature {name!r}: {side} {_py(ids[r])!r} (row {r}) {why}")

    rows: list[int] = []
    parts: list[NDArray[np.float64]] = []
    dim = -1
    for r, v in enumerate(cells):
        if _missing(v):
            continue
        if not isinstance(v, (list, tuple, np.ndarray)):
            raise bad(r, f"holds {v!r:.60} ({type(v).__name__}); expected a list or 1-D array of numbers (or None for no vector)")
        a = np.asarray(v)
        if a.ndim != 1:
            raise bad(r, f"holds an array of shape {a.shape}; expected a 1-D vector")
        if a.dtype.kind not in "iuf":
            raw = list(v) if not isinstance(v, np.ndarray) else v.tolist()
            odd = next((x for x in raw if not isinstance(x, (int, float, np.number)) or isinstance(x, (bool, np.bool_))), a.dtype)
            raise bad(r, f"holds the non-numeric value {odd!r:.40}; vectors must hold numbers")
        if dim < 0:
            dim, first = len(a), r
            if dim == 0:
                raise bad(r, "holds an empty vector; vectors need at least one value")
        elif len(a) != dim:
            raise bad(r, f"has {len(a)} values but {side} {_py(ids[first])!r} (row {first}) has {dim}; every vector needs the same length")
        if not np.isfinite(a).all():
            j = int(np.flatnonzero(~np.isfinite(a))[0])
            raise bad(r, f"holds {float(a[j])!r} at position {j}; vectors must be finite (None marks a missing vector)")
        rows.append(r)
        parts.append(a.astype(np.float64))
    if dim < 0:
        raise DataError(f"vector feature {name!r}: no {side} has a vector (every cell is missing)")
    mat = np.zeros((len(cells), dim), dtype=np.float64)
    mat[rows] = np.stack(parts)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return (mat / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _encode_one(values: pd.Series, kind: str, spec: FieldSpec) -> tuple[Kind, Any, int]:
    """(kind, encoded values, n_categories): codes for categorical, (codes matrix) for multi, floats for numeric."""
    t = spec.transform
    if t == "numeric" or (t is None and kind == "numeric"):
        x = _numbers(values, spec.name)
        ok = np.isfinite(x)
        mu = float(x[ok].mean()) if ok.any() else 0.0
        sd = float(x[ok].std()) if ok.sum() > 1 else 0.0
        z = np.where(ok, (x - mu) / (sd if sd > 0 else 1.0), 0.0)
        return "numeric", z.astype(np.float32), 0
    if t == "bucket":
        x = _numbers(values, spec.name)
        assert spec.arg is not None
        parts = [float(a) for a in spec.arg.split(",")]
        if len(parts) == 1:
            ok = x[np.isfinite(x)]
            edges = np.unique(np.quantile(ok, np.linspace(0, 1, int(parts[0]) + 1)[1:-1])) if len(ok) else np.array([])
        else:
            edges = np.asarray(parts)
        codes = np.where(np.isfinite(x), np.digitize(np.nan_to_num(x), edges) + 1, 0).astype(np.int64)
        return "categorical", codes, len(edges) + 1
    if t == "prefix":
        assert spec.arg is not None
        s = values.astype(object).where(values.notna(), None)
        pref = np.array([None if v is None else str(v)[: int(spec.arg)] for v in s], dtype=object)
        codes, n = _codes(pref)
        return "categorical", codes, n
    if t == "first":
        firsts = np.array([v[0] if v else None for v in _lists(values, spec.name)], dtype=object)
        codes, n = _codes(firsts)
        return "categorical", codes, n
    if t is None and kind == "multi":
        lists = [v[:MAX_MULTI] for v in _lists(values, spec.name)]
        lengths = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
        flat = np.array([x for v in lists for x in v], dtype=object)
        codes, n = _codes(flat) if len(flat) else (np.zeros(0, np.int64), 0)
        width = max(1, int(lengths.max(initial=0)))
        mat = np.zeros((len(lists), width), dtype=np.int64)
        rows = np.repeat(np.arange(len(lists)), lengths)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        mat[rows, cols] = codes
        return "multi", mat, n
    codes, n = _codes(values)  # categorical (inferred or forced)
    return "categorical", codes, n


def encode_fields(data: Interactions, specs: list[FieldSpec] | None) -> FieldTables:
    """Encode the id fields and ``specs`` (default: :func:`default_specs`) for every user and item.

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> t = encode_fields(tiny_interactions(), [FieldSpec.parse("item.genres"), FieldSpec.parse("user.age:bucket=25")])
    >>> [(f["name"], f["kind"]) for f in t.fields]
    [('user', 'categorical'), ('user.age:bucket=25', 'categorical'), ('item', 'categorical'), ('item.genres', 'multi')]
    >>> t.user_cat.shape, t.item_multi.shape
    ((20, 2), (32, 2))
    """
    specs = default_specs(data) if specs is None else specs
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise ParameterError(f"feature {s.name!r} is listed twice")
        seen.add(s.name)
    n = {"user": data.n_users, "item": data.n_items}
    cat: dict[str, list[NDArray[np.int64]]] = {"user": [], "item": []}
    multi: dict[str, list[NDArray[np.int64]]] = {"user": [], "item": []}
    num: dict[str, list[NDArray[np.float32]]] = {"user": [], "item": []}
    vec: dict[str, list[NDArray[np.float32]]] = {"user": [], "item": []}
    ids = {"user": data.users.ids, "item": data.items.ids}
    meta: dict[str, list[dict[str, Any]]] = {"categorical": [], "multi": [], "numeric": [], "vector": []}
    # id fields: index + 1 (row 0 of each field is "unknown")
    for side in ("user", "item"):
        cat[side].append(np.arange(1, n[side] + 1, dtype=np.int64))
        meta["categorical"].append({"name": side, "side": side, "kind": "categorical", "size": n[side] + 1})
    for s in specs:
        values, kind = _series(data, s)
        if s.transform == "vector" or (s.transform is None and kind == "multi" and _float_arrays(values)):
            vec[s.side].append(_vectors(values, s.name, s.side, ids[s.side]))
            meta["vector"].append({"name": s.name, "side": s.side, "kind": "vector", "dim": vec[s.side][-1].shape[1]})
            continue
        k, enc, n_cat = _encode_one(values, kind, s)
        info: dict[str, Any] = {"name": s.name, "side": s.side, "kind": k}
        if k == "numeric":
            num[s.side].append(enc)
        elif k == "multi":
            multi[s.side].append(enc)
            info["size"] = n_cat + 1
        else:
            cat[s.side].append(enc)
            info["size"] = n_cat + 1
        meta[k].append(info)
    # global rows: 1.. for categorical fields (user side first), then the multi-valued fields
    offset = 1
    fields: list[dict[str, Any]] = []
    side_cat: dict[str, list[NDArray[np.int64]]] = {"user": [], "item": []}
    pos = {"user": 0, "item": 0}
    for info in [m for m in meta["categorical"] if m["side"] == "user"] + [m for m in meta["categorical"] if m["side"] == "item"]:
        codes = cat[info["side"]][pos[info["side"]]]
        pos[info["side"]] += 1
        side_cat[info["side"]].append(codes + offset)
        fields.append({**info, "offset": offset})
        offset += info["size"]
    side_multi: dict[str, list[NDArray[np.int64]]] = {"user": [], "item": []}
    col = {"user": 0, "item": 0}
    pos = {"user": 0, "item": 0}
    for info in [m for m in meta["multi"] if m["side"] == "user"] + [m for m in meta["multi"] if m["side"] == "item"]:
        side = info["side"]
        mat = multi[side][pos[side]]
        pos[side] += 1
        side_multi[side].append(np.where(mat > 0, mat + offset, 0))  # value c -> row offset + c; 0 stays padding
        fields.append({**info, "offset": offset, "start": col[side], "stop": col[side] + mat.shape[1]})
        col[side] += mat.shape[1]
        offset += info["size"]
    for info in [m for m in meta["numeric"] if m["side"] == "user"] + [m for m in meta["numeric"] if m["side"] == "item"]:
        fields.append(dict(info))
    col = {"user": 0, "item": 0}
    for info in [m for m in meta["vector"] if m["side"] == "user"] + [m for m in meta["vector"] if m["side"] == "item"]:
        side = info["side"]
        fields.append({**info, "start": col[side], "stop": col[side] + info["dim"]})
        col[side] += info["dim"]

    def stack_int(parts: list[NDArray[np.int64]], rows: int) -> NDArray[np.int64]:
        return np.ascontiguousarray(np.column_stack(parts)) if parts else np.zeros((rows, 0), dtype=np.int64)

    def stack_num(parts: list[NDArray[np.float32]], rows: int) -> NDArray[np.float32]:
        return np.ascontiguousarray(np.column_stack(parts).astype(np.float32)) if parts else np.zeros((rows, 0), np.float32)

    return FieldTables(
        user_cat=stack_int(side_cat["user"], n["user"]),
        item_cat=stack_int(side_cat["item"], n["item"]),
        user_multi=np.hstack(side_multi["user"]) if side_multi["user"] else np.zeros((n["user"], 0), np.int64),
        item_multi=np.hstack(side_multi["item"]) if side_multi["item"] else np.zeros((n["item"], 0), np.int64),
        user_num=stack_num(num["user"], n["user"]),
        item_num=stack_num(num["item"], n["item"]),
        fields=fields,
        n_rows=offset,
        user_vec=np.hstack(vec["user"]) if vec["user"] else np.zeros((n["user"], 0), np.float32),
        item_vec=np.hstack(vec["item"]) if vec["item"] else np.zeros((n["item"], 0), np.float32),
    )


def with_vectors(data: Interactions, column: str, vectors: Any, *, side: Side = "item") -> Interactions:
    """``data`` with one more user / item feature column holding a float32 vector per user / item.

    Parameters
    ----------
    data : Interactions
    column : str
        Name of the new feature column (use it as ``"item.<column>"`` or
        ``"item.<column>:vector"`` in ``features=``).
    vectors : array-like of shape (n_items, d) or mapping
        Row ``i`` is the vector of item index ``i`` (``data.items.ids[i]``); or a
        mapping from external id to vector, which must hold every id of the
        side (ids it holds beyond those are ignored). NaN rows are refused;
        pass an explicit zero vector for an item without content.
    side : {"item", "user"}, default "item"

    Returns
    -------
    Interactions
        The same interactions, id maps and features, plus ``column``.

    Raises
    ------
    DataError
        A mapping lacks ids (the first few are named), the array has the wrong
        number of rows, the column exists already, or a vector is bad (ragged,
        NaN, non-numeric: the user / item is named).

    Examples
    --------
    >>> import numpy as np
    >>> from recsys.testing import tiny_interactions
    >>> data = tiny_interactions()
    >>> vecs = {i: np.array([1.0, float(k % 3)]) for k, i in enumerate(data.items.ids)}
    >>> with_vectors(data, "emb", vecs).item_features["emb"].iloc[4].tolist()
    [1.0, 1.0]
    """
    from recsys.data._idmap import _py

    if side not in ("user", "item"):
        raise ParameterError(f"with_vectors: side must be 'user' or 'item'; got {side!r}")
    if not isinstance(column, str) or not column or column == side:
        raise ParameterError(f"with_vectors: column must be a non-empty str other than {side!r}; got {column!r}")
    ids = data.users.ids if side == "user" else data.items.ids
    frame = data.user_features if side == "user" else data.item_features
    if frame is not None and column in frame.columns:
        raise DataError(f"with_vectors: the {side} features already have a column {column!r}")
    if isinstance(vectors, Mapping):
        keys = pd.Index(list(vectors.keys()))
        lacking = [x for x, ok in zip(ids.tolist(), pd.Index(ids).isin(keys)) if not ok]
        if lacking:
            raise DataError(
                f"with_vectors: the vectors of {column!r} lack {len(lacking)} of the {len(ids)} {side}s, e.g. "
                f"{', '.join(repr(_py(x)) for x in lacking[:5])}; give every {side} a vector (zeros for no content)"
            )
        cells: list[Any] = [vectors[x] for x in ids.tolist()]
    else:
        arr = np.asarray(vectors) if not isinstance(vectors, (list, tuple)) else None
        if arr is not None and arr.ndim == 2:
            cells = list(arr)
        elif isinstance(vectors, (list, tuple)):
            cells = list(vectors)
        else:
            raise DataError(f"with_vectors: vectors must be an (n_{side}s, d) array or a mapping from {side} id to vector; got {type(vectors).__name__}")
        if len(cells) != len(ids):
            raise DataError(f"with_vectors: vectors has {len(cells)} rows; the data has {len(ids)} {side}s (one row per {side} index)")
    for r, v in enumerate(cells):
        if _missing(v):
            raise DataError(f"with_vectors: the vector of {side} {_py(ids[r])!r} (row {r}) is missing; pass zeros for no content")
    _vectors(pd.Series(cells, dtype=object), f"{side}.{column}", side, ids)  # the same checks as at fit time, now
    col = pd.Series([np.asarray(v, dtype=np.float32) for v in cells], dtype=object)
    new = pd.DataFrame(index=pd.RangeIndex(len(ids))) if frame is None else frame.copy()
    new[column] = col.to_numpy()
    kinds = dict(data.user_feature_kinds if side == "user" else data.item_feature_kinds)
    kinds[column] = "multi"  # what the data layer infers for array cells
    return Interactions(
        users=data.users,
        items=data.items,
        user_index=data.user_index,
        item_index=data.item_index,
        weights=data.weights,
        ratings=data.ratings,
        timestamps=data.timestamps,
        timestamp_unit=data.timestamp_unit,
        user_features=new if side == "user" else data.user_features,
        item_features=new if side == "item" else data.item_features,
        user_feature_kinds=kinds if side == "user" else data.user_feature_kinds,
        item_feature_kinds=kinds if side == "item" else data.item_feature_kinds,
    )


def with_text_vectors(
    data: Interactions,
    encoder: Any,
    *,
    text: Any = None,
    column: str = "text_emb",
    fit: bool = True,
    show_progress: bool | None = None,
) -> Interactions:
    """``data`` with an item feature column of text embeddings: one vector per item from its text.

    The texts are :func:`recsys.content.item_texts` of the item features
    (``text``: None for the default description, a template such as
    ``"{title}"`` or a function of a row); ``encoder`` is any
    :class:`~recsys.content.TextEncoder` (``BertEncoder()``: all-MiniLM-L6-v2,
    offline from the bundled package; ``Doc2VecEncoder()``, which needs
    gensim; ``HashingEncoder()``). An item without text gets the zero vector
    (a cold item). Use the column as ``features=[..., "item.text_emb"]``.

    Parameters
    ----------
    fit : bool, default True
        Fit the encoder on the item texts first (Doc2Vec and hashing learn
        from them; a pre-trained BERT model does nothing). False: use an
        already fitted encoder as it is.

    Examples
    --------
    >>> from recsys.content import HashingEncoder
    >>> from recsys.testing import tiny_interactions
    >>> data = with_text_vectors(tiny_interactions(), HashingEncoder(dim=16), text="{title}")
    >>> data.item_features["text_emb"].iloc[0].shape
    (16,)
    """
    from recsys.content import TextEncoder, item_texts

    if not isinstance(encoder, TextEncoder):
        raise ParameterError(f"with_text_vectors: encoder must be a recsys.content TextEncoder; got {type(encoder).__name__}")
    texts = item_texts(data, text)
    if fit:
        encoder.fit(texts)
    return with_vectors(data, column, encoder.encode(texts, show_progress=show_progress))


def parse_specs(features: Any, owner: str) -> list[FieldSpec] | None:
    """None (every feature) or a list of parsed specs; errors name ``owner``."""
    if features is None:
        return None
    if isinstance(features, str) or not isinstance(features, (list, tuple)):
        raise ParameterError(
            f"The 'features' parameter of {owner} must be None or a list of field specifications "
            f"such as ['user.gender', 'item.genres']. Got {features!r} instead."
        )
    return [FieldSpec.parse(s, owner) for s in features]


__all__ = ["FieldSpec", "FieldTables", "MAX_MULTI", "default_specs", "encode_fields", "parse_specs", "with_text_vectors", "with_vectors"]
