"""Field encoding for the deep CTR models: ids and user / item features as embedding fields.

A *field* is one input of a CTR model. Each categorical field owns a block of
rows of one shared embedding table (its first row is the field's "unknown"
value, used for missing or unseen values); row 0 of the table is padding and
stays zero. Multi-valued fields (lists such as genres) are padded index
matrices whose embeddings are mean-pooled; numeric fields are standardised
values that scale a learned vector.

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

The user id and item id fields are always present (first and second).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.data import Interactions
from recsys.errors import DataError, ParameterError

Side = Literal["user", "item"]
Kind = Literal["categorical", "multi", "numeric"]
_TRANSFORMS = ("prefix", "first", "bucket", "numeric", "categorical")
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
                "'item.<column>', optionally followed by ':prefix=N', ':first', ':bucket=EDGES|N', ':numeric' "
                "or ':categorical'."
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
        if transform in ("first", "numeric", "categorical") and eq:
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
        and multi) and for multi-valued fields the ``start`` / ``stop`` columns.
    n_rows : int
        Rows of the shared embedding table (row 0 is padding).
    """

    user_cat: NDArray[np.int64]
    item_cat: NDArray[np.int64]
    user_multi: NDArray[np.int64]
    item_multi: NDArray[np.int64]
    user_num: NDArray[np.float32]
    item_num: NDArray[np.float32]
    fields: list[dict[str, Any]] = field(default_factory=list)
    n_rows: int = 1

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
    meta: dict[str, list[dict[str, Any]]] = {"categorical": [], "multi": [], "numeric": []}
    # id fields: index + 1 (row 0 of each field is "unknown")
    for side in ("user", "item"):
        cat[side].append(np.arange(1, n[side] + 1, dtype=np.int64))
        meta["categorical"].append({"name": side, "side": side, "kind": "categorical", "size": n[side] + 1})
    for s in specs:
        values, kind = _series(data, s)
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
    )


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


__all__ = ["FieldSpec", "FieldTables", "MAX_MULTI", "default_specs", "encode_fields", "parse_specs"]
