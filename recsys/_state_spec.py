"""Declared structure of a model's learned state, checked when an artifact is loaded.

Every model class declares ``_state_spec``: a mapping from each learned
attribute to what it must be, with array shapes written in named dimensions
(``"n_users"``, ``"n_items"``, or a model's own name such as ``"factors"``,
bound by the first array that uses it). :func:`check_state` applies the
declarations of a class and its bases to a decoded state before the model
touches it: unknown or missing attributes, wrong types, dtypes, shapes,
out-of-range indices and non-finite values all raise :class:`ArtifactError`
naming the attribute and its file. The generic checks (sparse structure,
dtypes, finiteness, bounds) live here once; a model only declares.

Examples
--------
>>> import numpy as np
>>> spec = {"w_": Array(shape=("n_items", "k"))}
>>> check_state(spec, {"w_": np.zeros((3, 2), np.float32)}, {"n_items": 3}, lambda f: "test")
{'n_items': 3, 'k': 2}
>>> check_state(spec, {"w_": np.zeros((4, 2), np.float32)}, {"n_items": 3}, lambda f: "test")
Traceback (most recent call last):
...
recsys.errors.ArtifactError: test: field 'w_' has shape (4, 2); expected (n_items=3, k=2)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys._utils.registry import codec_for_tag
from recsys.data import IdMap
from recsys.errors import ArtifactError

# A dimension: a fixed size, a named size (bound on first use), or None (any size).
Dim = int | str | None
Where = Callable[[str], str]  # field name -> "the file(s) holding it", for messages

INDEX_DTYPES = ("int32", "int64")
FLOAT_DTYPES = ("float32", "float64")


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Base of the declarations; ``when`` makes an attribute required only for some hyper-parameters."""

    optional: bool = False
    when: Callable[[Any], bool] | None = None


@dataclass(frozen=True, kw_only=True)
class Array(Spec):
    """A dense numpy array of a declared shape and dtype.

    ``bounds=(low, high)``: every value lies in ``[low, high)`` (``high`` may be a named dimension),
    for arrays of indices. ``finite``: no NaN or inf (float arrays). ``nondecreasing``: a 1-D
    offsets array (``indptr``-like) starting at 0; ``ends`` names the dimension its last value equals.
    """

    shape: tuple[Dim, ...] = ()
    dtype: tuple[str, ...] = ("float32",)
    finite: bool = True
    bounds: tuple[int, Dim] | None = None
    nondecreasing: bool = False
    ends: Dim = None


@dataclass(frozen=True, kw_only=True)
class Sparse(Spec):
    """A scipy CSR matrix of a declared shape; ``nnz`` names a dimension bound to its stored entries."""

    shape: tuple[Dim, Dim] = (None, None)
    dtype: tuple[str, ...] = ("float32",)
    finite: bool = True
    nnz: str | None = None


@dataclass(frozen=True, kw_only=True)
class Ids(Spec):
    """An :class:`IdMap` whose length is the named dimension."""

    dim: str = ""


@dataclass(frozen=True, kw_only=True)
class Number(Spec):
    """A JSON number: ``integer`` (no bools), finite; ``equals`` names the dimension it must equal."""

    integer: bool = False
    low: float | None = None
    equals: str | None = None


@dataclass(frozen=True, kw_only=True)
class Flag(Spec):
    """A bool."""


@dataclass(frozen=True, kw_only=True)
class Json(Spec):
    """Any JSON value that the model does not need for recommending (logs), or checks itself."""

    types: tuple[type, ...] = (dict, list, str, int, float, bool, type(None))


@dataclass(frozen=True, kw_only=True)
class Floats(Spec):
    """A JSON list of ``length`` finite numbers."""

    length: int | None = None


@dataclass(frozen=True, kw_only=True)
class Model(Spec):
    """A nested, already checked model (or a list of them) over the same users and items."""

    many: bool = False


@dataclass(frozen=True, kw_only=True)
class Index(Spec):
    """A :class:`recsys.index.ItemIndex` (its own loader checks it; the model checks its size)."""


@dataclass(frozen=True, kw_only=True)
class ArrayDict(Spec):
    """A dict of str to finite arrays of ``dtype`` (a torch state dict; the model checks shapes)."""

    dtype: tuple[str, ...] = ("float32",)


def merged_spec(cls: type) -> dict[str, Spec]:
    """The declarations of ``cls`` and its bases (a subclass's entry wins)."""
    out: dict[str, Spec] = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass).get("_state_spec", {}))
    return out


def _show(shape: tuple[Dim, ...], dims: Mapping[str, int]) -> str:
    parts = [f"{d}={dims[d]}" if isinstance(d, str) and d in dims else str(d if d is not None else "any") for d in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


class _Checker:
    def __init__(self, dims: dict[str, int], where: Where) -> None:
        self.dims = dims
        self.where = where

    def fail(self, field: str, msg: str) -> ArtifactError:
        return ArtifactError(f"{self.where(field)}: field {field!r} {msg}")

    def shape(self, field: str, got: tuple[int, ...], want: tuple[Dim, ...]) -> None:
        ok = len(got) == len(want)
        bound: dict[str, int] = {}
        if ok:
            for g, w in zip(got, want):
                if isinstance(w, int) and g != w:
                    ok = False
                elif isinstance(w, str):
                    have = self.dims.get(w, bound.get(w))
                    if have is None:
                        bound[w] = g
                    elif have != g:
                        ok = False
        if not ok:
            shown = _show(want, {**self.dims, **bound})
            raise self.fail(field, f"has shape {tuple(got)}; expected {shown}")
        self.dims.update(bound)

    def dtype(self, field: str, arr: np.ndarray[Any, Any], allowed: tuple[str, ...]) -> None:
        if arr.dtype.name not in allowed or not arr.dtype.isnative:
            raise self.fail(field, f"has dtype {arr.dtype.str}; expected {' or '.join(allowed)} (native byte order)")

    def finite(self, field: str, arr: np.ndarray[Any, Any]) -> None:
        if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
            raise self.fail(field, "holds NaN or inf")

    def bounds(self, field: str, arr: np.ndarray[Any, Any], low: int, high: Dim) -> None:
        hi = self.dims[high] if isinstance(high, str) else high
        if arr.size and (int(arr.min()) < low or (hi is not None and int(arr.max()) >= hi)):
            raise self.fail(field, f"holds values outside [{low}, {hi}) (indices out of range)")

    def array(self, field: str, value: Any, spec: Array) -> None:
        if not isinstance(value, np.ndarray):
            raise self.fail(field, f"is a {type(value).__name__}; expected an array")
        self.dtype(field, value, spec.dtype)
        self.shape(field, value.shape, spec.shape)
        if spec.finite:
            self.finite(field, value)
        if spec.bounds is not None:
            self.bounds(field, value, *spec.bounds)
        if spec.nondecreasing:
            end = self.dims.get(spec.ends) if isinstance(spec.ends, str) else spec.ends
            check_offsets(value, end, lambda msg: self.fail(field, msg))
            if isinstance(spec.ends, str) and end is None:
                self.dims[spec.ends] = int(value[-1])

    def sparse(self, field: str, value: Any, spec: Sparse) -> None:
        if not (sp.issparse(value) and value.format == "csr"):
            raise self.fail(field, f"is a {type(value).__name__}; expected a CSR sparse matrix")
        self.dtype(field, value.data, spec.dtype)
        self.shape(field, value.shape, spec.shape)
        if spec.finite:
            self.finite(field, value.data)
        if spec.nnz is not None:
            self.shape(field + ".data", (value.nnz,), (spec.nnz,))

    def number(self, field: str, value: Any, spec: Number) -> None:
        kinds = (int,) if spec.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise self.fail(field, f"is {value!r:.80}; expected {'an integer' if spec.integer else 'a number'}")
        if not math.isfinite(value):
            raise self.fail(field, f"is {value!r}; expected a finite number")
        if spec.low is not None and value < spec.low:
            raise self.fail(field, f"is {value!r}; expected at least {spec.low}")
        if spec.equals is not None:
            want = self.dims.get(spec.equals)
            if want is None:
                self.dims[spec.equals] = int(value)
            elif value != want:
                raise self.fail(field, f"is {value!r}; expected {spec.equals}={want}")


def check_offsets(offsets: np.ndarray[Any, Any], end: int | None, fail: Callable[[str], ArtifactError]) -> None:
    """A 1-D offsets array starting at 0, never decreasing, ending at ``end`` (when given)."""
    if offsets.ndim != 1 or len(offsets) == 0 or offsets.dtype.kind not in "iu":
        raise fail(f"must be a non-empty 1-D integer offsets array; got {offsets.dtype.str} {offsets.shape}")
    if offsets[0] != 0 or (len(offsets) > 1 and bool((np.diff(offsets) < 0).any())):
        raise fail("must start at 0 and never decrease")
    if end is not None and int(offsets[-1]) != end:
        raise fail(f"ends at {int(offsets[-1])}; expected {end}")


def check_state(
    spec: Mapping[str, Spec],
    state: Mapping[str, Any],
    dims: Mapping[str, int],
    where: Where,
    model: Any = None,
    *,
    strict: bool = True,
) -> dict[str, int]:
    """Check ``state`` (decoded attributes) against ``spec``; return the bound dimensions.

    ``dims`` holds dimensions known beforehand; ``model`` (unfitted, with its
    hyper-parameters) decides the ``when`` conditions. Raises ArtifactError
    on the first violation, naming the field and ``where(field)``. With
    ``strict=False`` attributes the spec does not declare are let through.
    """
    c = _Checker(dict(dims), where)
    unknown = sorted(set(state) - set(spec))
    if unknown and not strict:
        state = {k: v for k, v in state.items() if k in spec}
    elif unknown:
        raise c.fail(unknown[0], f"is not part of this model's state (unknown attributes {unknown[:5]})")
    for name, s in spec.items():
        needed = not s.optional and (s.when is None or model is None or s.when(model))
        if name not in state:
            if needed:
                raise c.fail(name, "is missing from the artifact state")
            continue
    # id maps first: they define n_users / n_items for every other declaration
    ordered = sorted(state, key=lambda n: (not isinstance(spec[n], Ids), not isinstance(spec[n], Number)))
    for name in ordered:
        s, value = spec[name], state[name]
        if isinstance(s, Ids):
            if not isinstance(value, IdMap):
                raise c.fail(name, f"is a {type(value).__name__}; expected an id map")
            c.shape(name, (len(value),), (s.dim,))
        elif isinstance(s, Array):
            c.array(name, value, s)
        elif isinstance(s, Sparse):
            c.sparse(name, value, s)
        elif isinstance(s, Number):
            c.number(name, value, s)
        elif isinstance(s, Flag):
            if not isinstance(value, bool):
                raise c.fail(name, f"is {value!r:.80}; expected true or false")
        elif isinstance(s, Floats):
            if not isinstance(value, list) or (s.length is not None and len(value) != s.length):
                raise c.fail(name, f"is {value!r:.80}; expected a list of {s.length or 'any number of'} numbers")
            for i, v in enumerate(value):
                c.number(f"{name}[{i}]", v, Number())
        elif isinstance(s, Json):
            if not isinstance(value, s.types) or _has_array(value):
                raise c.fail(name, f"is a {type(value).__name__}; expected {'/'.join(t.__name__ for t in s.types)}")
        elif isinstance(s, ArrayDict):
            if not isinstance(value, dict):
                raise c.fail(name, f"is a {type(value).__name__}; expected a dict of arrays")
            for k, a in value.items():
                c.array(f"{name}.{k}", a, Array(shape=(None,) * getattr(a, "ndim", 0), dtype=s.dtype))
        elif isinstance(s, Model):
            _check_nested(c, name, value, s.many)
        elif isinstance(s, Index):
            if not isinstance(value, codec_for_tag("__itemindex__").cls):
                raise c.fail(name, f"is a {type(value).__name__}; expected an ItemIndex")
    return c.dims


def _has_array(value: Any) -> bool:
    if isinstance(value, (np.ndarray, IdMap)) or sp.issparse(value):
        return True
    if isinstance(value, list):
        return any(_has_array(v) for v in value)
    if isinstance(value, dict):
        return any(_has_array(v) for v in value.values())
    return False


def _check_nested(c: _Checker, name: str, value: Any, many: bool) -> None:
    model_cls: type[Any] = codec_for_tag("__model__").cls  # registered by the model class: no import of models here

    subs = value if many else [value]
    if not isinstance(subs, list) or (many and not subs):
        raise c.fail(name, f"is a {type(value).__name__}; expected a non-empty list of models")
    for i, sub in enumerate(subs):
        label = f"{name}[{i}]" if many else name
        if not isinstance(sub, model_cls) or not sub.is_fitted:
            raise c.fail(label, f"is a {type(sub).__name__}; expected a fitted model")
        # a nested model is scored with the parent's user and item indices
        for attr, dim in (("users_", "n_users"), ("items_", "n_items")):
            mine, theirs = c.dims.get(dim), len(getattr(sub, attr))
            if mine is not None and theirs != mine:
                raise c.fail(label, f"has {theirs} {attr[:-2]}; the model has {mine}")
